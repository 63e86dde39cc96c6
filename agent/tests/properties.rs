//! Property: whatever the master sends (runs, kills, acknowledgements, framework
//! shutdowns, disconnections) and however time passes, every task incarnation
//! ends with exactly one terminal update, each task's updates are delivered in
//! order (a new one only once the previous was acknowledged), nothing is sent
//! again after its acknowledgement, and in the end everything is acknowledged.
//! The agent may also crash and restart from its checkpoint at any point,
//! its tasks' processes surviving or not (`Op::Restart`): the properties
//! hold across restarts.

use agora_agent::checkpoint::{Checkpoint, plan_recovery};
use agora_agent::{AgentCore, ContainerId, CoreConfig, Input, Output, SimulatedContainerizer};
use agora_proto::{
    AgentId, AgentInfo, AgentMessage, CommandInfo, FrameworkId, MasterMessage, Resources, StatusUuid, TaskId, TaskInfo,
    TaskReason, TaskState, TaskStatus, Timestamp,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const TASKS: u8 = 6;
const FRAMEWORKS: u8 = 2;

#[derive(Clone, Debug)]
enum Op {
    /// Run task `id` of framework `fw` for `secs` seconds.
    Run {
        fw: u8,
        id: u8,
        secs: u8,
    },
    Kill {
        fw: u8,
        id: u8,
    },
    /// The framework acknowledges the latest update it received for the task.
    Ack {
        fw: u8,
        id: u8,
    },
    /// An acknowledgement with a made-up uuid.
    AckStale {
        fw: u8,
        id: u8,
        bits: u128,
    },
    Shutdown {
        fw: u8,
    },
    Advance {
        secs: u16,
    },
    Disconnect,
    Reconnect,
    /// The agent dies and starts again from its checkpoint; the processes of
    /// the live tasks whose bit is set in `dead` end meanwhile.
    Restart {
        dead: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let fw = 0..FRAMEWORKS;
    let id = 0..TASKS;
    prop_oneof![
        4 => (fw.clone(), id.clone(), 0u8..40).prop_map(|(fw, id, secs)| Op::Run { fw, id, secs }),
        2 => (fw.clone(), id.clone()).prop_map(|(fw, id)| Op::Kill { fw, id }),
        5 => (fw.clone(), id.clone()).prop_map(|(fw, id)| Op::Ack { fw, id }),
        1 => (fw.clone(), id, any::<u128>()).prop_map(|(fw, id, bits)| Op::AckStale { fw, id, bits }),
        1 => fw.prop_map(|fw| Op::Shutdown { fw }),
        4 => (0u16..120).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Disconnect),
        1 => Just(Op::Reconnect),
        1 => any::<u8>().prop_map(|dead| Op::Restart { dead }),
    ]
}

fn container(fw: u8, id: u8) -> ContainerId {
    ContainerId::new(
        FrameworkId::new(format!("f{fw}")).expect("valid"),
        TaskId::new(format!("t{id}")).expect("valid"),
    )
}

/// Drives a core and checks every output against the properties.
struct Checker {
    core: AgentCore<SimulatedContainerizer>,
    now: Timestamp,
    registered: bool,
    /// Per task, the distinct updates sent, in order of first sending.
    sent: BTreeMap<ContainerId, Vec<TaskStatus>>,
    acked: BTreeSet<StatusUuid>,
    /// Updates nobody will acknowledge: their framework was shut down.
    forgiven: BTreeSet<StatusUuid>,
    /// How many times the agent has restarted.
    incarnation: u64,
}

impl Checker {
    fn new() -> Self {
        let info = AgentInfo {
            hostname: "h".to_owned(),
            resources: Resources::default(),
            attributes: Default::default(),
        };
        Self {
            core: AgentCore::new(CoreConfig::new(info), SimulatedContainerizer::new(), 1),
            now: Timestamp::from_secs(1),
            registered: false,
            sent: BTreeMap::new(),
            acked: BTreeSet::new(),
            forgiven: BTreeSet::new(),
            incarnation: 0,
        }
    }

    /// The agent crashes (its checkpoint, written before every output, is
    /// all that is left) and a new one recovers from it.
    fn restart(&mut self, dead: u8) -> Result<(), TestCaseError> {
        self.incarnation += 1;
        let checkpoint = Checkpoint {
            boot_id: "boot".to_owned(),
            incarnation: self.incarnation,
            ..self.core.checkpoint()
        };
        let alive: BTreeMap<u32, u64> = checkpoint
            .tasks
            .iter()
            .filter_map(|t| t.container.as_ref())
            .enumerate()
            .filter(|(i, _)| dead & (1 << (i % 8)) == 0)
            .map(|(_, r)| (r.pid, r.start_time))
            .collect();
        let plan = plan_recovery(Some(checkpoint), "boot", |pid| alive.get(&pid).copied());
        self.core = AgentCore::new(
            CoreConfig::new(Self::info()),
            SimulatedContainerizer::new(),
            1 + self.incarnation,
        );
        self.core.recover(self.now, plan);
        self.registered = false;
        // Whatever it produced while recovering (tasks that ended) is not
        // sent while it is not registered.
        self.handle(Input::Tick)
    }

    fn info() -> AgentInfo {
        AgentInfo {
            hostname: "h".to_owned(),
            resources: Resources::default(),
            attributes: Default::default(),
        }
    }

    fn handle(&mut self, input: Input) -> Result<(), TestCaseError> {
        self.core.handle(self.now, input);
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send(AgentMessage::StatusUpdate { framework_id, status }) => {
                    prop_assert!(self.registered, "update sent while not registered");
                    let uuid = status.uuid.expect("updates carry a uuid");
                    if status.reason == Some(TaskReason::FrameworkRemoved) {
                        // Sent once: nobody acknowledges a shut-down framework's updates.
                        self.forgiven.insert(uuid);
                    }
                    prop_assert!(
                        !self.acked.contains(&uuid),
                        "{status:?} re-sent after its acknowledgement"
                    );
                    let key = ContainerId::new(framework_id, status.task_id.clone());
                    let sent = self.sent.entry(key).or_default();
                    if let Some(previous) = sent.iter().find(|s| s.uuid == Some(uuid)) {
                        prop_assert_eq!(previous, &status, "a retry is the same update");
                    } else {
                        for earlier in sent.iter() {
                            let earlier = earlier.uuid.expect("uuid");
                            prop_assert!(
                                self.acked.contains(&earlier) || self.forgiven.contains(&earlier),
                                "{:?} sent before {} was acknowledged",
                                status,
                                earlier
                            );
                        }
                        sent.push(status);
                    }
                }
                Output::Reconnect(_) => self.registered = false,
                _ => {}
            }
        }
        Ok(())
    }

    fn master(&mut self, message: MasterMessage) -> Result<(), TestCaseError> {
        if self.registered {
            self.handle(Input::Master(message))
        } else {
            Ok(())
        }
    }

    fn reconnect(&mut self) -> Result<(), TestCaseError> {
        self.handle(Input::Connected)?;
        self.registered = true;
        self.handle(Input::Master(MasterMessage::Registered {
            agent_id: AgentId::new("a1").expect("valid"),
            ping_interval: Duration::ZERO,
        }))
    }

    fn advance(&mut self, by: Duration) -> Result<(), TestCaseError> {
        let end = self.now + by;
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.handle(Input::Tick)?;
        }
        self.now = end;
        self.handle(Input::Tick)
    }

    fn ack_latest(&mut self, key: &ContainerId) -> Result<(), TestCaseError> {
        let Some(status) = self.sent.get(key).and_then(|s| s.last()).cloned() else {
            return Ok(());
        };
        let Some(uuid) = status.uuid else { return Ok(()) };
        if !self.registered {
            return Ok(());
        }
        self.acked.insert(uuid);
        self.handle(Input::Master(MasterMessage::Acknowledge {
            framework_id: key.framework_id.clone(),
            task_id: key.task_id.clone(),
            uuid,
        }))
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Run { fw, id, secs } => {
                let key = container(fw, id);
                self.master(MasterMessage::RunTask {
                    framework_id: key.framework_id.clone(),
                    task: TaskInfo {
                        name: key.task_id.to_string(),
                        task_id: key.task_id.clone(),
                        agent_id: AgentId::new("a1").expect("valid"),
                        resources: Resources::default(),
                        command: CommandInfo::shell(format!("sleep {secs}")),
                        kill_grace_period: None,
                    },
                })
            }
            Op::Kill { fw, id } => {
                let key = container(fw, id);
                self.master(MasterMessage::KillTask {
                    framework_id: key.framework_id,
                    task_id: key.task_id,
                })
            }
            Op::Ack { fw, id } => self.ack_latest(&container(fw, id)),
            Op::AckStale { fw, id, bits } => {
                let key = container(fw, id);
                self.master(MasterMessage::Acknowledge {
                    framework_id: key.framework_id,
                    task_id: key.task_id,
                    uuid: StatusUuid::from_u128(bits),
                })
            }
            Op::Shutdown { fw } => {
                if self.registered {
                    let framework_id = FrameworkId::new(format!("f{fw}")).expect("valid");
                    let doomed: Vec<StatusUuid> = self
                        .sent
                        .iter()
                        .filter(|(key, _)| key.framework_id == framework_id)
                        .flat_map(|(_, sent)| sent.iter().filter_map(|s| s.uuid))
                        .collect();
                    self.forgiven.extend(doomed);
                }
                self.master(MasterMessage::ShutdownFramework {
                    framework_id: FrameworkId::new(format!("f{fw}")).expect("valid"),
                })
            }
            Op::Advance { secs } => self.advance(Duration::from_secs(u64::from(secs))),
            Op::Disconnect => {
                self.registered = false;
                self.handle(Input::Disconnected)
            }
            Op::Reconnect => self.reconnect(),
            Op::Restart { dead } => self.restart(dead),
        }
    }

    /// Reconnects, lets every task end and acknowledges everything.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        if !self.registered {
            self.reconnect()?;
        }
        for _ in 0..10 {
            self.advance(Duration::from_secs(600))?;
            let keys: Vec<ContainerId> = self.sent.keys().cloned().collect();
            for key in &keys {
                self.ack_latest(key)?;
            }
        }
        prop_assert_eq!(self.core.running_tasks(), vec![]);
        prop_assert_eq!(self.core.pending_updates(), 0);
        Ok(())
    }

    /// Each task's updates read `(RUNNING (FINISHED | KILLED | FAILED*) | DROPPED | KILLED' | RUNNING')*`
    /// where FAILED* is the end of a task whose process ended while the agent
    /// was down (REASON_EXECUTOR_TERMINATED), and
    /// where KILLED' is the final update of a task of a shut-down framework
    /// (whose queued updates were forgotten unsent), and RUNNING' a RUNNING
    /// whose framework was shut down before the task's end was sent.
    fn check_lifecycles(&self) -> Result<(), TestCaseError> {
        use TaskState::{Dropped, Failed, Finished, Killed, Running};
        const SHUTDOWN: Option<TaskReason> = Some(TaskReason::FrameworkRemoved);
        for (key, sent) in &self.sent {
            let mut rest = sent.as_slice();
            while let [first, tail @ ..] = rest {
                let forgiven = first.uuid.is_some_and(|u| self.forgiven.contains(&u));
                rest = match (first.state, first.reason, tail) {
                    (Running, _, [end, tail @ ..]) if matches!(end.state, Finished | Killed) => tail,
                    (Running, _, [end, tail @ ..])
                        if end.state == Failed && end.reason == Some(TaskReason::ExecutorTerminated) =>
                    {
                        tail
                    }
                    (Dropped, _, _) | (Killed, SHUTDOWN, _) => tail,
                    (Running, _, _) if forgiven => tail,
                    _ => {
                        let states: Vec<_> = sent.iter().map(|s| (s.state, s.reason)).collect();
                        return Err(TestCaseError::fail(format!(
                            "task {key}: unexpected updates {states:?}"
                        )));
                    }
                };
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn updates_are_exactly_once_per_end_in_order_until_acknowledged(
        ops in proptest::collection::vec(op(), 0..80)
    ) {
        let mut checker = Checker::new();
        checker.reconnect()?;
        for op in &ops {
            checker.apply(op)?;
        }
        checker.settle()?;
        checker.check_lifecycles()?;
    }
}
