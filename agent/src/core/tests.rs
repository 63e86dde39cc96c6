//! Unit tests of the agent core, in virtual time.

use super::*;
use crate::containerizer::{ContainerError, SimulatedContainerizer};
use crate::status_updates::RetryPolicy;
use agora_proto::AgentInfo;
use agora_proto::{CommandInfo, Resources, TaskId};

const SECOND: Duration = Duration::from_secs(1);

fn fw(id: &str) -> FrameworkId {
    FrameworkId::new(id).expect("valid framework id")
}

fn cid(framework: &str, task: &str) -> ContainerId {
    ContainerId::new(fw(framework), TaskId::new(task).expect("valid task id"))
}

fn info() -> AgentInfo {
    AgentInfo {
        hostname: "host-1".to_owned(),
        resources: "cpus:4;mem:1GiB".parse().expect("valid resources"),
        attributes: "rack:r1".parse().expect("valid attributes"),
    }
}

fn task_info(task: &str, command: CommandInfo) -> TaskInfo {
    TaskInfo {
        name: task.to_owned(),
        task_id: TaskId::new(task).expect("valid task id"),
        agent_id: AgentId::new("agent-1").expect("valid agent id"),
        resources: Resources::default(),
        command,
        kill_grace_period: None,
    }
}

/// A containerizer whose exits the test pushes, recording what it was asked.
#[derive(Debug, Default)]
struct Manual {
    launched: Vec<ContainerId>,
    killed: Vec<(ContainerId, Duration)>,
    fail_launch: Option<ContainerError>,
    background: bool,
}

impl Containerizer for Manual {
    fn launch(&mut self, _now: Timestamp, id: &ContainerId, _task: &TaskInfo) -> Result<(), ContainerError> {
        if let Some(error) = self.fail_launch.take() {
            return Err(error);
        }
        self.launched.push(id.clone());
        Ok(())
    }
    fn launches_in_background(&self) -> bool {
        self.background
    }
    fn kill(&mut self, _now: Timestamp, id: &ContainerId, grace: Duration) {
        self.killed.push((id.clone(), grace));
    }
    fn poll_exit(&mut self, _now: Timestamp) -> Option<(ContainerId, ExitStatus)> {
        None
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
}

struct Harness<C> {
    core: AgentCore<C>,
    now: Timestamp,
}

impl Harness<SimulatedContainerizer> {
    fn new() -> Self {
        Self::with(CoreConfig::new(info()), SimulatedContainerizer::new())
    }
}

impl<C: Containerizer> Harness<C> {
    fn with(config: CoreConfig, containerizer: C) -> Self {
        Self {
            core: AgentCore::new(config, containerizer, 7),
            now: Timestamp::from_secs(1_000),
        }
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.core.handle(self.now, input);
        std::iter::from_fn(|| self.core.poll_output()).collect()
    }

    fn master(&mut self, message: MasterMessage) -> Vec<Output> {
        self.input(Input::Master(message))
    }

    /// Moves the clock forward by `by`, firing every timer due on the way.
    fn advance(&mut self, by: Duration) -> Vec<Output> {
        let end = self.now + by;
        let mut outputs = Vec::new();
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            outputs.extend(self.input(Input::Tick));
        }
        self.now = end;
        outputs.extend(self.input(Input::Tick));
        outputs
    }

    /// Connects and registers as `agent-1`; the master does not ping.
    fn register(&mut self) -> Vec<Output> {
        let mut outputs = self.input(Input::Connected);
        outputs.extend(self.registered(Duration::ZERO));
        outputs
    }

    fn registered(&mut self, ping_interval: Duration) -> Vec<Output> {
        self.master(MasterMessage::Registered {
            agent_id: AgentId::new("agent-1").expect("valid agent id"),
            ping_interval,
        })
    }

    fn run(&mut self, framework: &str, task: &str, command: &str) -> Vec<Output> {
        self.master(MasterMessage::RunTask {
            framework_id: fw(framework),
            task: task_info(task, CommandInfo::shell(command)),
        })
    }

    fn kill(&mut self, framework: &str, task: &str) -> Vec<Output> {
        self.master(MasterMessage::KillTask {
            framework_id: fw(framework),
            task_id: TaskId::new(task).expect("valid task id"),
        })
    }

    fn ack(&mut self, status: &TaskStatus, framework: &str) -> Vec<Output> {
        self.master(MasterMessage::Acknowledge {
            framework_id: fw(framework),
            task_id: status.task_id.clone(),
            uuid: status.uuid.expect("updates carry a uuid"),
        })
    }
}

/// The status updates sent among `outputs`.
fn updates(outputs: &[Output]) -> Vec<TaskStatus> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(AgentMessage::StatusUpdate { status, .. }) => Some(status.clone()),
            _ => None,
        })
        .collect()
}

fn states(outputs: &[Output]) -> Vec<(String, TaskState)> {
    updates(outputs)
        .into_iter()
        .map(|s| (s.task_id.to_string(), s.state))
        .collect()
}

fn warnings(outputs: &[Output]) -> Vec<Warning> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn connecting_sends_register_with_info() {
    let mut h = Harness::new();
    let out = h.input(Input::Connected);
    assert_eq!(
        out,
        vec![Output::Send(AgentMessage::Register {
            info: info(),
            agent_id: None,
            tasks: vec![],
        })]
    );
    assert!(!h.core.is_registered());
    let out = h.registered(15 * SECOND);
    assert_eq!(
        out,
        vec![Output::Registered {
            agent_id: AgentId::new("agent-1").expect("valid"),
            ping_interval: 15 * SECOND,
        }]
    );
    assert!(h.core.is_registered());
    assert_eq!(h.core.agent_id().map(AgentId::as_str), Some("agent-1"));
}

#[test]
fn sleep_task_runs_then_finishes_in_order() {
    let mut h = Harness::new();
    h.register();
    let out = h.run("f1", "t1", "sleep 5");
    let running = updates(&out);
    assert_eq!(states(&out), [("t1".to_owned(), TaskState::Running)]);
    assert!(out.contains(&Output::TaskChanged {
        container: cid("f1", "t1"),
        state: TaskState::Running,
    }));
    let status = &running[0];
    assert_eq!(status.source, Some(TaskSource::Agent));
    assert_eq!(status.agent_id.as_ref().map(AgentId::as_str), Some("agent-1"));
    assert_eq!(status.timestamp, h.now);

    // FINISHED is produced at 5 s but waits for RUNNING's acknowledgement.
    let out = h.advance(5 * SECOND);
    assert!(updates(&out).is_empty());
    assert_eq!(h.core.task_state(&cid("f1", "t1")), None, "no longer live");
    assert_eq!(h.core.pending_updates(), 2);
    let out = h.ack(status, "f1");
    let finished = updates(&out);
    assert_eq!(states(&out), [("t1".to_owned(), TaskState::Finished)]);
    assert_eq!(finished[0].exit_code, Some(0));
    h.ack(&finished[0], "f1");
    assert_eq!(h.core.pending_updates(), 0);
    assert_eq!(h.core.poll_timeout(), None, "nothing left to retry");
    assert!(updates(&h.advance(3600 * SECOND)).is_empty());
}

#[test]
fn retries_back_off_from_first_retry_to_max() {
    let mut config = CoreConfig::new(info());
    config.status_retry = RetryPolicy {
        first_retry: 10 * SECOND,
        max_interval: 40 * SECOND,
    };
    let mut h = Harness::with(config, SimulatedContainerizer::new());
    h.register();
    let start = h.now;
    h.run("f1", "t1", "sleep 1000");
    let mut sent_at = Vec::new();
    for _ in 0..6 {
        let at = h.core.poll_timeout().expect("a retry is armed");
        let out = h.advance(at.saturating_duration_since(h.now));
        assert_eq!(states(&out), [("t1".to_owned(), TaskState::Running)]);
        sent_at.push(h.now.saturating_duration_since(start).as_secs());
    }
    assert_eq!(sent_at, [10, 30, 70, 110, 150, 190]);
}

#[test]
fn default_retry_policy_is_mesos() {
    let mut h = Harness::new();
    h.register();
    let start = h.now;
    h.run("f1", "t1", "sleep 100000");
    let mut sent_at = Vec::new();
    while let Some(at) = h
        .core
        .poll_timeout()
        .filter(|at| at.saturating_duration_since(start) < 4000 * SECOND)
    {
        let out = h.advance(at.saturating_duration_since(h.now));
        assert_eq!(updates(&out).len(), 1);
        sent_at.push(h.now.saturating_duration_since(start).as_secs());
    }
    // Doubling from 10 s, capped at 10 min.
    assert_eq!(sent_at, [10, 30, 70, 150, 310, 630, 1230, 1830, 2430, 3030, 3630]);
}

#[test]
fn acknowledgement_of_a_non_head_uuid_is_ignored() {
    let mut h = Harness::new();
    h.register();
    let out = h.run("f1", "t1", "echo done");
    // The command ends at once: RUNNING in flight, FINISHED queued behind it.
    assert_eq!(states(&out), [("t1".to_owned(), TaskState::Running)]);
    let queued: Vec<TaskStatus> = h.core.unacknowledged(&cid("f1", "t1")).cloned().collect();
    assert_eq!(
        queued.iter().map(|s| s.state).collect::<Vec<_>>(),
        [TaskState::Running, TaskState::Finished]
    );

    let out = h.ack(&queued[1], "f1");
    assert!(updates(&out).is_empty());
    assert_eq!(
        warnings(&out),
        [Warning::UnexpectedAcknowledgement {
            container: cid("f1", "t1"),
            uuid: queued[1].uuid.expect("uuid"),
        }]
    );
    let out = h.advance(10 * SECOND);
    assert_eq!(
        updates(&out),
        [queued[0].clone()],
        "the head is still retried, unchanged"
    );

    let out = h.ack(&queued[0], "f1");
    assert_eq!(updates(&out), [queued[1].clone()]);
    let out = h.ack(&queued[0], "f1");
    assert_eq!(warnings(&out).len(), 1, "a duplicate acknowledgement is ignored");
    h.ack(&queued[1], "f1");
    assert_eq!(h.core.pending_updates(), 0);
}

#[test]
fn tasks_are_ordered_independently() {
    let mut h = Harness::new();
    h.register();
    let a = updates(&h.run("f1", "a", "sleep 1"));
    let b = updates(&h.run("f1", "b", "sleep 1"));
    let c = updates(&h.run("f2", "a", "sleep 1"));
    assert_eq!(h.core.running_tasks().len(), 3, "task ids are per framework");
    h.ack(&a[0], "f1");
    let out = h.advance(SECOND);
    // a's FINISHED goes out at once; b and c wait behind their RUNNING.
    assert_eq!(states(&out), [("a".to_owned(), TaskState::Finished)]);
    let out = h.ack(&c[0], "f2");
    assert_eq!(states(&out), [("a".to_owned(), TaskState::Finished)]);
    // Each head is retried 10 s after its own first send: b's RUNNING (sent
    // at 0 s) at 10 s, a's and c's FINISHED (sent at 1 s) at 11 s.
    assert_eq!(states(&h.advance(9 * SECOND)), [("b".to_owned(), TaskState::Running)]);
    assert_eq!(
        states(&h.advance(SECOND)),
        [
            ("a".to_owned(), TaskState::Finished),
            ("a".to_owned(), TaskState::Finished)
        ]
    );
    assert!(b[0].uuid != c[0].uuid);
}

#[test]
fn exits_map_to_terminal_states() {
    let mut h = Harness::new();
    h.register();
    for (task, command) in [("ok", "true"), ("three", "exit 3"), ("false", "false")] {
        let r = updates(&h.run("f1", task, command));
        h.ack(&r[0], "f1");
    }
    let finals: Vec<TaskStatus> = ["ok", "three", "false"]
        .iter()
        .flat_map(|t| h.core.unacknowledged(&cid("f1", t)).cloned().collect::<Vec<_>>())
        .collect();
    let summary: Vec<_> = finals.iter().map(|s| (s.state, s.reason, s.exit_code)).collect();
    assert_eq!(
        summary,
        [
            (TaskState::Finished, None, Some(0)),
            (TaskState::Failed, Some(TaskReason::CommandExecutorFailed), Some(3)),
            (TaskState::Failed, Some(TaskReason::CommandExecutorFailed), Some(1)),
        ]
    );
    assert_eq!(finals[1].message, "exited with code 3");
}

#[test]
fn pushed_exits_launch_failures_and_limits() {
    let mut h = Harness::with(CoreConfig::new(info()), Manual::default());
    h.register();
    h.core.containerizer_mut().fail_launch = Some(ContainerError::Launch("no cgroup".to_owned()));
    let out = h.run("f1", "bad", "anything");
    let failed = updates(&out);
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].state, failed[0].reason),
        (TaskState::Failed, Some(TaskReason::ContainerLaunchFailed))
    );
    assert_eq!(failed[0].message, "launch failed: no cgroup");
    assert_eq!(h.core.running_tasks(), []);

    for task in ["oom", "sig"] {
        let r = updates(&h.run("f1", task, "anything"));
        h.ack(&r[0], "f1");
    }
    let oom = ExitStatus {
        signal: Some(9),
        limitation: Some(TaskReason::ContainerLimitationMemory),
        message: "memory limit 32 MB".to_owned(),
        ..ExitStatus::default()
    };
    let out = h.input(Input::ContainerExited {
        container: cid("f1", "oom"),
        exit: oom,
    });
    let s = &updates(&out)[0];
    assert_eq!(
        (s.state, s.reason),
        (TaskState::Failed, Some(TaskReason::ContainerLimitationMemory))
    );
    assert_eq!(
        s.message,
        "terminated by signal 9 (REASON_CONTAINER_LIMITATION_MEMORY): memory limit 32 MB"
    );
    assert_eq!(s.exit_code, Some(137));
    let out = h.input(Input::ContainerExited {
        container: cid("f1", "sig"),
        exit: ExitStatus::signaled(11),
    });
    let s = &updates(&out)[0];
    assert_eq!(
        (s.state, s.reason, s.exit_code),
        (
            TaskState::Failed,
            Some(TaskReason::CommandExecutorFailed),
            Some(128 + 11)
        ),
        "a signal's death has a shell's exit code"
    );

    let out = h.input(Input::ContainerExited {
        container: cid("f1", "sig"),
        exit: ExitStatus::exited(0),
    });
    assert_eq!(warnings(&out), [Warning::UnknownContainerExit(cid("f1", "sig"))]);
    assert!(updates(&out).is_empty());
}

#[test]
fn background_launches_run_once_started() {
    let mut h = Harness::with(
        CoreConfig::new(info()),
        Manual {
            background: true,
            ..Manual::default()
        },
    );
    h.register();
    // Queued: staging, nothing reported until the process exists.
    for task in ["a", "quick", "bad", "doomed"] {
        assert!(updates(&h.run("f1", task, "anything")).is_empty());
    }
    assert_eq!(h.core.task_state(&cid("f1", "a")), Some(TaskState::Staging));
    let out = h.input(Input::ContainerStarted {
        container: cid("f1", "a"),
    });
    let states: Vec<_> = updates(&out).iter().map(|s| s.state).collect();
    assert_eq!(states, [TaskState::Running]);
    assert!(
        updates(&h.input(Input::ContainerStarted {
            container: cid("f1", "a")
        }))
        .is_empty(),
        "reported once"
    );

    // Ended before its start was fed in: RUNNING, then (once that is
    // acknowledged) FINISHED.
    let out = h.input(Input::ContainerExited {
        container: cid("f1", "quick"),
        exit: ExitStatus::exited(0),
    });
    let running = updates(&out);
    assert_eq!(
        running.iter().map(|s| s.state).collect::<Vec<_>>(),
        [TaskState::Running]
    );
    let states: Vec<_> = updates(&h.ack(&running[0], "f1")).iter().map(|s| s.state).collect();
    assert_eq!(states, [TaskState::Finished]);
    assert!(
        updates(&h.input(Input::ContainerStarted {
            container: cid("f1", "quick")
        }))
        .is_empty()
    );

    // A failed launch is its exit: FAILED, never RUNNING.
    let out = h.input(Input::ContainerExited {
        container: cid("f1", "bad"),
        exit: ExitStatus {
            limitation: Some(TaskReason::ContainerLaunchFailed),
            message: "launch failed: no such program".to_owned(),
            ..ExitStatus::default()
        },
    });
    let s = updates(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].state, s[0].reason, s[0].message.as_str(), s[0].exit_code),
        (
            TaskState::Failed,
            Some(TaskReason::ContainerLaunchFailed),
            "launch failed: no such program",
            None
        )
    );

    // Killed before it started: KILLED, never RUNNING.
    h.kill("f1", "doomed");
    let out = h.input(Input::ContainerExited {
        container: cid("f1", "doomed"),
        exit: ExitStatus::killed(),
    });
    let states: Vec<_> = updates(&out).iter().map(|s| s.state).collect();
    assert_eq!(states, [TaskState::Killed]);
}

#[test]
fn duplicate_run_task_is_ignored_with_a_warning() {
    let mut h = Harness::new();
    h.register();
    h.run("f1", "t1", "sleep 10");
    let out = h.run("f1", "t1", "sleep 10");
    assert_eq!(out, [Output::Warning(Warning::DuplicateTask(cid("f1", "t1")))]);
    assert_eq!(h.core.containerizer().running(), 1);
}

#[test]
fn kill_reports_killed_once() {
    let mut h = Harness::new();
    h.register();
    let running = updates(&h.run("f1", "t1", "sleep 100"));
    h.ack(&running[0], "f1");
    let out = h.kill("f1", "t1");
    let killed = updates(&out);
    assert_eq!(
        killed.iter().map(|s| (s.state, s.reason)).collect::<Vec<_>>(),
        [(TaskState::Killed, None)]
    );
    assert_eq!(killed[0].message, "killed by the agent");
    // The task ended; its final update is pending: a second kill does nothing.
    let out = h.kill("f1", "t1");
    assert!(out.is_empty(), "{out:?}");
    h.ack(&killed[0], "f1");
    assert_eq!(h.core.pending_updates(), 0);
}

#[test]
fn kill_waits_for_the_exit_and_uses_the_grace_period() {
    let mut h = Harness::with(CoreConfig::new(info()), Manual::default());
    h.register();
    let mut task = task_info("slow", CommandInfo::shell("x"));
    task.kill_grace_period = Some(30 * SECOND);
    h.master(MasterMessage::RunTask {
        framework_id: fw("f1"),
        task,
    });
    h.run("f1", "quick", "x");
    assert!(updates(&h.kill("f1", "slow")).is_empty(), "KILLED waits for the exit");
    h.kill("f1", "slow");
    h.kill("f1", "quick");
    assert_eq!(
        h.core.containerizer().killed,
        [(cid("f1", "slow"), 30 * SECOND), (cid("f1", "quick"), 3 * SECOND)],
        "one kill per task, with its grace or the default"
    );
    assert_eq!(h.core.task_state(&cid("f1", "slow")), Some(TaskState::Running));
    // Whatever the exit, a killed task is KILLED.
    h.input(Input::ContainerExited {
        container: cid("f1", "slow"),
        exit: ExitStatus::exited(0),
    });
    let states: Vec<TaskState> = h.core.unacknowledged(&cid("f1", "slow")).map(|s| s.state).collect();
    assert_eq!(states, [TaskState::Running, TaskState::Killed]);
}

#[test]
fn kill_of_an_unknown_task_is_answered_dropped() {
    let mut h = Harness::new();
    h.register();
    let out = h.kill("f1", "ghost");
    assert_eq!(warnings(&out), [Warning::KillOfUnknownTask(cid("f1", "ghost"))]);
    let dropped = updates(&out);
    assert_eq!(
        dropped.iter().map(|s| (s.state, s.reason)).collect::<Vec<_>>(),
        [(TaskState::Dropped, Some(TaskReason::TaskUnknown))]
    );
    // Retried until acknowledged, not duplicated by a repeated kill.
    assert!(updates(&h.kill("f1", "ghost")).is_empty());
    assert_eq!(updates(&h.advance(10 * SECOND)), dropped);
    h.ack(&dropped[0], "f1");
    assert_eq!(h.core.pending_updates(), 0);
}

#[test]
fn shutdown_framework_kills_its_tasks_only() {
    let mut h = Harness::new();
    h.register();
    h.run("f1", "a", "sleep 100");
    let b = updates(&h.run("f1", "b", "sleep 100"));
    h.ack(&b[0], "f1");
    h.run("f2", "c", "sleep 100");
    let out = h.master(MasterMessage::ShutdownFramework { framework_id: fw("f1") });
    let finals = updates(&out);
    assert_eq!(
        finals
            .iter()
            .map(|s| (s.task_id.to_string(), s.state, s.reason))
            .collect::<Vec<_>>(),
        [
            ("a".to_owned(), TaskState::Killed, Some(TaskReason::FrameworkRemoved)),
            ("b".to_owned(), TaskState::Killed, Some(TaskReason::FrameworkRemoved)),
        ],
        "sent at once, even though a's RUNNING was never acknowledged"
    );
    assert_eq!(
        h.core
            .running_tasks()
            .iter()
            .map(|t| t.task.task_id.to_string())
            .collect::<Vec<_>>(),
        ["c"]
    );
    // f1's updates are forgotten, f2's are still retried.
    assert_eq!(states(&h.advance(10 * SECOND)), [("c".to_owned(), TaskState::Running)]);
    assert_eq!(h.core.pending_updates(), 1);
    // The framework is gone; a later task of the same id runs normally.
    let out = h.run("f1", "a", "sleep 1");
    assert_eq!(states(&out), [("a".to_owned(), TaskState::Running)]);
}

#[test]
fn shutdown_framework_while_its_tasks_are_dying() {
    let mut h = Harness::with(CoreConfig::new(info()), Manual::default());
    h.register();
    h.run("f1", "a", "x");
    h.master(MasterMessage::ShutdownFramework { framework_id: fw("f1") });
    let out = h.run("f1", "late", "x");
    assert_eq!(warnings(&out), [Warning::FrameworkShuttingDown(cid("f1", "late"))]);
    h.input(Input::Disconnected);
    let out = h.input(Input::ContainerExited {
        container: cid("f1", "a"),
        exit: ExitStatus::killed(),
    });
    assert_eq!(
        warnings(&out),
        [Warning::UpdateDropped {
            container: cid("f1", "a"),
            state: TaskState::Killed,
        }]
    );
    assert_eq!(h.core.pending_updates(), 0);
    h.input(Input::Connected);
    h.registered(Duration::ZERO);
    assert_eq!(
        states(&h.run("f1", "late", "x")),
        [("late".to_owned(), TaskState::Running)]
    );
}

#[test]
fn reregistration_reports_id_and_live_tasks_then_resends_heads() {
    let mut h = Harness::new();
    h.register();
    let long = updates(&h.run("f1", "long", "sleep 100"));
    h.ack(&long[0], "f1");
    let short = updates(&h.run("f1", "short", "sleep 1"));
    h.advance(SECOND); // short FINISHED, queued behind its unacknowledged RUNNING

    assert!(h.input(Input::Disconnected).is_empty());
    assert_eq!(
        h.core.poll_timeout(),
        Some(h.now + 99 * SECOND),
        "no retry while offline"
    );
    let out = h.advance(20 * SECOND);
    assert!(out.is_empty(), "nothing is sent offline: {out:?}");
    let out = h.kill("f1", "long");
    assert_eq!(out, [Output::Warning(Warning::MessageWhileDisconnected)]);

    let out = h.input(Input::Connected);
    assert_eq!(
        out,
        [Output::Send(AgentMessage::Register {
            info: info(),
            agent_id: Some(AgentId::new("agent-1").expect("valid")),
            // The ended task is listed with its final state while its
            // updates are unacknowledged, so the master does not take it for lost.
            tasks: vec![
                RunningTask {
                    framework_id: fw("f1"),
                    task: task_info("long", CommandInfo::shell("sleep 100")),
                    state: TaskState::Running,
                },
                RunningTask {
                    framework_id: fw("f1"),
                    task: task_info("short", CommandInfo::shell("sleep 1")),
                    state: TaskState::Finished,
                },
            ],
        })]
    );
    assert!(
        updates(&h.advance(10 * SECOND)).is_empty(),
        "no updates before Registered"
    );
    let out = h.registered(Duration::ZERO);
    assert_eq!(
        updates(&out),
        short[..1],
        "every unacknowledged head is re-sent at once"
    );
    // ... with a fresh backoff.
    assert_eq!(updates(&h.advance(10 * SECOND)), short[..1]);
}

#[test]
fn updates_made_offline_go_out_after_registration() {
    let mut h = Harness::new();
    h.register();
    let r = updates(&h.run("f1", "t", "sleep 5"));
    h.ack(&r[0], "f1");
    h.input(Input::Disconnected);
    h.advance(5 * SECOND);
    assert_eq!(h.core.pending_updates(), 1);
    let out = h.register();
    assert_eq!(states(&out), [("t".to_owned(), TaskState::Finished)]);
}

#[test]
fn a_silent_master_is_left() {
    let mut h = Harness::new();
    h.input(Input::Connected);
    h.registered(15 * SECOND);
    h.advance(60 * SECOND);
    let out = h.master(MasterMessage::Ping);
    assert_eq!(out, [Output::Send(AgentMessage::Pong)]);
    let out = h.advance(74 * SECOND);
    assert!(out.is_empty(), "{out:?}");
    let out = h.advance(SECOND);
    assert_eq!(out, [Output::Reconnect(ReconnectReason::MasterSilent(75 * SECOND))]);
    assert!(!h.core.is_registered());
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn registration_times_out() {
    let mut h = Harness::new();
    h.input(Input::Connected);
    assert!(h.advance(14 * SECOND).is_empty());
    let out = h.advance(SECOND);
    assert_eq!(
        out,
        [Output::Reconnect(ReconnectReason::RegistrationTimeout(15 * SECOND))]
    );
}

#[test]
fn a_refusal_reconnects() {
    let mut h = Harness::new();
    h.input(Input::Connected);
    let out = h.master(MasterMessage::Error("agent id unknown".to_owned()));
    assert_eq!(
        out,
        [Output::Reconnect(ReconnectReason::Refused(
            "agent id unknown".to_owned()
        ))]
    );
    assert_eq!(
        ReconnectReason::Refused("x".to_owned()).to_string(),
        "the master refused the agent: x"
    );
}

#[test]
fn a_new_agent_id_restamps_pending_updates() {
    let mut h = Harness::new();
    h.register();
    h.run("f1", "t", "sleep 5");
    h.input(Input::Connected);
    let out = h.master(MasterMessage::Registered {
        agent_id: AgentId::new("agent-2").expect("valid"),
        ping_interval: Duration::ZERO,
    });
    assert_eq!(
        warnings(&out),
        [Warning::AgentIdChanged {
            previous: AgentId::new("agent-1").expect("valid"),
            current: AgentId::new("agent-2").expect("valid"),
        }]
    );
    assert_eq!(updates(&out)[0].agent_id.as_ref().map(AgentId::as_str), Some("agent-2"));
}

#[test]
fn uuids_are_random_v4_and_reproducible_from_the_seed() {
    let run = || {
        let mut h = Harness::new();
        h.register();
        (0..20)
            .flat_map(|i| updates(&h.run("f1", &format!("t{i}"), "sleep 1")))
            .map(|s| s.uuid.expect("uuid"))
            .collect::<Vec<_>>()
    };
    let uuids = run();
    assert_eq!(uuids, run());
    let distinct: BTreeSet<_> = uuids.iter().collect();
    assert_eq!(distinct.len(), uuids.len());
    for uuid in &uuids {
        assert_eq!(uuid.0[6] >> 4, 4, "version 4");
        assert_eq!(uuid.0[8] >> 6, 0b10, "RFC 4122 variant");
    }
}

#[test]
fn time_never_runs_backwards() {
    let mut h = Harness::new();
    h.register();
    h.run("f1", "t", "sleep 5");
    h.now = Timestamp::from_secs(10);
    h.input(Input::Tick);
    assert_eq!(h.core.now(), Timestamp::from_secs(1_000));
}

// ----- recovery from a checkpoint ------------------------------------------

/// A containerizer whose processes survive the agent: it reports a record
/// per launched container and reattaches the ones it is told are alive.
#[derive(Debug, Default)]
struct Durable {
    running: BTreeMap<ContainerId, crate::checkpoint::ContainerRecord>,
    killed: Vec<ContainerId>,
    refuse: bool,
}

impl Containerizer for Durable {
    fn launch(&mut self, _now: Timestamp, id: &ContainerId, _task: &TaskInfo) -> Result<(), ContainerError> {
        let pid = 100 + u32::try_from(self.running.len()).expect("few");
        let record = crate::checkpoint::ContainerRecord {
            pid,
            start_time: u64::from(pid) * 10,
            cgroups: Vec::new(),
        };
        self.running.insert(id.clone(), record);
        Ok(())
    }
    fn kill(&mut self, _now: Timestamp, id: &ContainerId, _grace: Duration) {
        self.killed.push(id.clone());
    }
    fn poll_exit(&mut self, _now: Timestamp) -> Option<(ContainerId, ExitStatus)> {
        None
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
    fn containers(&self) -> Vec<(ContainerId, crate::checkpoint::ContainerRecord)> {
        self.running.iter().map(|(id, r)| (id.clone(), r.clone())).collect()
    }
    fn reattach(
        &mut self,
        _now: Timestamp,
        id: &ContainerId,
        _task: &TaskInfo,
        record: &crate::checkpoint::ContainerRecord,
    ) -> Result<(), ContainerError> {
        if self.refuse {
            return Err(ContainerError::Reattach("refused".to_owned()));
        }
        self.running.insert(id.clone(), record.clone());
        Ok(())
    }
}

#[test]
fn a_restarted_agent_reattaches_reregisters_and_resends_in_order() {
    use crate::checkpoint::{Checkpoint, plan_recovery};
    let mut h = Harness::with(CoreConfig::new(info()), Durable::default());
    h.register();
    let a = updates(&h.run("f1", "a", "sleep 30"));
    h.ack(&a[0], "f1");
    let b = updates(&h.run("f1", "b", "sleep 30")); // RUNNING, unacknowledged
    let dead = updates(&h.run("f1", "dead", "sleep 30"));
    h.ack(&dead[0], "f1");
    h.kill("f1", "a"); // a kill under way when the agent dies
    let before = h.core.checkpoint_generation();
    h.run("f1", "c", "sleep 30");
    assert!(
        h.core.checkpoint_generation() > before,
        "a launch is a change to checkpoint"
    );

    let checkpoint = Checkpoint {
        boot_id: "boot".to_owned(),
        ..h.core.checkpoint()
    };
    assert_eq!(checkpoint.tasks.len(), 4);
    assert!(checkpoint.tasks.iter().all(|t| t.container.is_some()));
    // The agent dies; "dead"'s process ends meanwhile; the others still run.
    let plan = plan_recovery(Some(checkpoint), "boot", |pid| {
        (pid != 102).then_some(u64::from(pid) * 10)
    });

    let mut h2 = Harness::with(CoreConfig::new(info()), Durable::default());
    h2.core.recover(h2.now, plan);
    assert_eq!(h2.core.agent_id(), AgentId::new("agent-1").ok().as_ref());
    assert_eq!(h2.core.task_count(), 3, "a, b and c are reattached");
    assert_eq!(
        h2.core.containerizer().killed,
        [cid("f1", "a")],
        "the kill is issued again"
    );
    let out = h2.input(Input::Connected);
    let register = out
        .iter()
        .find(|o| matches!(o, Output::Send(AgentMessage::Register { .. })));
    let Some(Output::Send(AgentMessage::Register { agent_id, tasks, .. })) = register else {
        panic!("expected Register, got {out:?}");
    };
    assert_eq!(agent_id.as_ref().map(AgentId::as_str), Some("agent-1"));
    let listed: Vec<(String, TaskState)> = tasks.iter().map(|t| (t.task.task_id.to_string(), t.state)).collect();
    assert_eq!(
        listed,
        [
            ("a".to_owned(), TaskState::Running),
            ("b".to_owned(), TaskState::Running),
            ("c".to_owned(), TaskState::Running),
            ("dead".to_owned(), TaskState::Failed),
        ]
    );
    let sent = updates(&h2.registered(Duration::ZERO));
    // b's and c's unacknowledged RUNNING (the very same updates), and dead's FAILED.
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0], b[0], "the very update of before the restart, uuid included");
    let failed = sent
        .iter()
        .find(|s| s.task_id.as_str() == "dead")
        .expect("dead reported");
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.reason, Some(TaskReason::ExecutorTerminated));
    assert!(
        failed.message.contains("ended while the agent was down"),
        "{}",
        failed.message
    );
    // Acknowledged, the ended task is forgotten.
    h2.ack(failed, "f1");
    let out = h2.input(Input::Connected);
    let Some(Output::Send(AgentMessage::Register { tasks, .. })) = out.first() else {
        panic!("expected Register, got {out:?}");
    };
    assert_eq!(tasks.len(), 3);
}

#[test]
fn a_task_that_cannot_be_reattached_fails_and_a_killed_one_that_ended_is_killed() {
    use crate::checkpoint::{Checkpoint, plan_recovery};
    let mut h = Harness::with(CoreConfig::new(info()), Durable::default());
    h.register();
    for name in ["x", "y"] {
        let up = updates(&h.run("f1", name, "sleep 30"));
        h.ack(&up[0], "f1");
    }
    h.kill("f1", "y");
    let checkpoint = Checkpoint {
        boot_id: "boot".to_owned(),
        ..h.core.checkpoint()
    };
    // x still runs but cannot be reattached; y ended while the agent was down.
    let plan = plan_recovery(Some(checkpoint), "boot", |pid| (pid == 100).then_some(1000));
    let containerizer = Durable {
        refuse: true,
        ..Durable::default()
    };
    let mut h2 = Harness::with(CoreConfig::new(info()), containerizer);
    h2.core.recover(h2.now, plan);
    assert_eq!(h2.core.task_count(), 0);
    h2.input(Input::Connected);
    let sent = states(&h2.registered(Duration::ZERO));
    assert_eq!(
        sent,
        [("x".to_owned(), TaskState::Failed), ("y".to_owned(), TaskState::Killed)]
    );
}

#[test]
fn tasks_that_ended_while_the_agent_was_down_are_reported_with_their_recorded_status() {
    use crate::checkpoint::{Checkpoint, plan_recovery_with};
    use crate::exit_file::TaskExit;
    let mut h = Harness::with(CoreConfig::new(info()), Durable::default());
    h.register();
    for name in ["zero", "three", "nine", "silent", "stopped"] {
        let up = updates(&h.run("f1", name, "sleep 30"));
        h.ack(&up[0], "f1");
    }
    h.kill("f1", "stopped"); // a kill under way: KILLED whatever the status
    let checkpoint = Checkpoint {
        boot_id: "boot".to_owned(),
        ..h.core.checkpoint()
    };
    // Every process is gone; their waiters recorded all but "silent".
    let plan = plan_recovery_with(
        Some(checkpoint),
        "boot",
        |_| None,
        |id| {
            Ok(match id.task_id.as_str() {
                "zero" => Some(TaskExit::Exited(0)),
                "three" => Some(TaskExit::Exited(3)),
                "nine" | "stopped" => Some(TaskExit::Signaled(9)),
                _ => None,
            })
        },
    );
    let mut h2 = Harness::with(CoreConfig::new(info()), Durable::default());
    h2.core.recover(h2.now, plan);
    assert_eq!(h2.core.task_count(), 0);
    h2.input(Input::Connected);
    let sent = updates(&h2.registered(Duration::ZERO));
    let find = |name: &str| sent.iter().find(|s| s.task_id.as_str() == name).expect("reported");
    let zero = find("zero");
    assert_eq!(
        (zero.state, zero.reason, zero.exit_code),
        (TaskState::Finished, None, Some(0))
    );
    let three = find("three");
    assert_eq!(
        (three.state, three.reason, three.exit_code),
        (TaskState::Failed, Some(TaskReason::CommandExecutorFailed), Some(3))
    );
    assert!(three.message.contains("exited with status 3"), "{}", three.message);
    let nine = find("nine");
    assert_eq!((nine.state, nine.exit_code), (TaskState::Failed, Some(137)));
    assert!(nine.message.contains("killed by signal 9"), "{}", nine.message);
    let silent = find("silent");
    assert_eq!(
        (silent.state, silent.reason),
        (TaskState::Failed, Some(TaskReason::ExecutorTerminated))
    );
    assert!(silent.message.contains("unknown"), "{}", silent.message);
    assert_eq!(find("stopped").state, TaskState::Killed);
}
