//! The agent core: a pure state machine in the sans-IO shape of `quinn-proto`.
//!
//! The driver feeds [`Input`]s with the current time through
//! [`AgentCore::handle`], drains [`Output`]s with [`AgentCore::poll_output`],
//! and calls `handle(now, Input::Tick)` when [`AgentCore::poll_timeout`] is
//! due. The core reads no clock, does no I/O and draws its randomness (status
//! update uuids) from a generator seeded by the driver, so a run is
//! reproducible from its inputs.
//!
//! It owns the registration state, the task lifecycle and, through the status
//! update manager, the delivery of every task status until acknowledged.

mod io;

pub use io::{CoreConfig, Input, Output, ReconnectReason, Warning};

use crate::checkpoint::{Checkpoint, CheckpointedTask, Fate, KillRequest, RecoveryPlan};
use crate::containerizer::{ContainerId, Containerizer, ExitStatus};
use crate::status_updates::{Ack, StatusUpdateManager};
use agora_proto::{
    AgentId, AgentMessage, FrameworkId, MasterMessage, RunningTask, StatusUuid, TaskInfo, TaskReason, TaskSource,
    TaskState, TaskStatus, Timestamp,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Disconnected,
    /// Connected at `since`; `Register` sent, `Registered` not yet received.
    Registering {
        since: Timestamp,
    },
    Registered {
        last_heard: Timestamp,
        ping_interval: Duration,
    },
}

#[derive(Clone, Debug)]
struct Task {
    info: TaskInfo,
    state: TaskState,
    /// Set once a kill was requested, with the reason to report.
    kill: Option<Option<TaskReason>>,
}

/// The agent's state machine: registration, the task lifecycle and the
/// status update manager, in the sans-IO shape of `quinn-proto`.
///
/// Feed [`Input`]s with the current time through [`handle`](Self::handle),
/// drain [`Output`]s with [`poll_output`](Self::poll_output), and call
/// `handle(now, Input::Tick)` when [`poll_timeout`](Self::poll_timeout) is
/// due. It reads no clock, does no I/O and draws status update uuids from a
/// generator seeded by the caller, so a run is reproducible from its inputs.
///
/// ```
/// use agora_agent::{AgentCore, CoreConfig, Input, Output, SimulatedContainerizer};
/// use agora_proto::{AgentId, AgentInfo, AgentMessage, MasterMessage, Timestamp};
/// use std::time::Duration;
///
/// let info = AgentInfo {
///     hostname: "h1".to_owned(),
///     resources: "cpus:4;mem:8GiB".parse().expect("valid resources"),
///     attributes: Default::default(),
/// };
/// let mut core = AgentCore::new(CoreConfig::new(info), SimulatedContainerizer::new(), 42);
/// let now = Timestamp::from_secs(1);
/// core.handle(now, Input::Connected);
/// assert!(matches!(core.poll_output(), Some(Output::Send(AgentMessage::Register { .. }))));
/// let agent_id = AgentId::new("agent-1").expect("valid id");
/// let ping_interval = Duration::from_secs(15);
/// core.handle(now, Input::Master(MasterMessage::Registered { agent_id, ping_interval }));
/// assert!(core.is_registered());
/// // The master is deemed dead after 5 ping intervals of silence.
/// assert_eq!(core.poll_timeout(), Some(now + 5 * ping_interval));
/// ```
#[derive(Debug)]
pub struct AgentCore<C> {
    config: CoreConfig,
    containerizer: C,
    rng: StdRng,
    now: Timestamp,
    agent_id: Option<AgentId>,
    link: Link,
    /// Live (non-terminal) tasks.
    tasks: BTreeMap<ContainerId, Task>,
    /// Ended tasks whose updates are not all acknowledged, with their final
    /// state: reported on re-registration so that the master does not take
    /// them for lost before their final update arrives.
    ended: BTreeMap<ContainerId, (TaskInfo, TaskState)>,
    /// Bumped on every change the checkpoint records.
    generation: u64,
    /// Frameworks being shut down that still have live tasks.
    shutting_down: BTreeSet<FrameworkId>,
    updates: StatusUpdateManager,
    out: VecDeque<Output>,
}

impl<C: Containerizer> AgentCore<C> {
    /// A disconnected agent that runs tasks in `containerizer` and draws
    /// status update uuids from a generator seeded with `seed`.
    pub fn new(config: CoreConfig, containerizer: C, seed: u64) -> Self {
        Self {
            updates: StatusUpdateManager::new(config.status_retry),
            config,
            containerizer,
            rng: StdRng::seed_from_u64(seed),
            now: Timestamp::ZERO,
            agent_id: None,
            link: Link::Disconnected,
            tasks: BTreeMap::new(),
            ended: BTreeMap::new(),
            generation: 0,
            shutting_down: BTreeSet::new(),
            out: VecDeque::new(),
        }
    }

    /// Handles `input` at time `now`, then everything due by `now` (ended
    /// containers, retries, the master's liveness). A `now` earlier than a
    /// previous one is taken as the previous one.
    pub fn handle(&mut self, now: Timestamp, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Connected => self.connected(),
            Input::Disconnected => self.go_offline(),
            Input::Master(message) => self.master_message(message),
            Input::ContainerStarted { container } => self.container_started(container),
            Input::ContainerExited { container, exit } => self.container_exited(container, &exit),
            Input::Tick => {}
        }
        self.advance();
    }

    /// The next output, if any; drain after every [`handle`](Self::handle).
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call `handle(now, Input::Tick)` next, if ever.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let liveness = match self.link {
            Link::Disconnected => None,
            Link::Registering { since } => Some(since + self.config.registration_timeout),
            Link::Registered {
                last_heard,
                ping_interval,
            } => self.silence_limit(ping_interval).map(|limit| last_heard + limit),
        };
        [liveness, self.updates.poll_timeout(), self.containerizer.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The id the master gave this agent, once registered.
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent_id.as_ref()
    }

    /// Whether the agent is registered on an open stream.
    pub fn is_registered(&self) -> bool {
        matches!(self.link, Link::Registered { .. })
    }

    /// The live tasks with their latest state, as reported on re-registration.
    pub fn running_tasks(&self) -> Vec<RunningTask> {
        self.tasks
            .iter()
            .map(|(id, task)| RunningTask {
                framework_id: id.framework_id.clone(),
                task: task.info.clone(),
                state: task.state,
            })
            .collect()
    }

    /// Counts the changes that the checkpoint records (agent id, tasks, kills,
    /// unacknowledged updates): the driver writes a checkpoint when it has
    /// moved, before it carries out the outputs (so an update is on disk
    /// before it is sent).
    pub fn checkpoint_generation(&self) -> u64 {
        self.generation
    }

    /// What the checkpoint records, with each live task's main process as
    /// the containerizer reports it. The driver adds the boot id and the
    /// incarnation.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut processes: BTreeMap<ContainerId, _> = self.containerizer.containers().into_iter().collect();
        let live = self.tasks.iter().map(|(id, task)| CheckpointedTask {
            framework_id: id.framework_id.clone(),
            info: task.info.clone(),
            state: task.state,
            kill: task.kill.map(|reason| KillRequest { reason }),
            container: processes.remove(id),
        });
        let ended = self.ended.iter().map(|(id, (info, state))| CheckpointedTask {
            framework_id: id.framework_id.clone(),
            info: info.clone(),
            state: *state,
            kill: None,
            container: None,
        });
        Checkpoint {
            agent_id: self.agent_id.clone(),
            tasks: live.chain(ended).collect(),
            updates: self.updates.snapshot(),
            ..Checkpoint::default()
        }
    }

    /// Takes up where a previous agent on the same work directory stopped,
    /// before the first connection: its agent id, its unacknowledged updates
    /// (sent again, in order, once registered), and its tasks: each one whose
    /// process still runs is reattached through the containerizer (a kill
    /// under way is issued again); each one whose process ended while the
    /// agent was down is reported with the exit status its waiter recorded,
    /// as any exit is (TASK_FINISHED for status 0, else TASK_FAILED with
    /// REASON_COMMAND_EXECUTOR_FAILED, the message naming the status or
    /// signal); with none recorded, TASK_FAILED with
    /// REASON_EXECUTOR_TERMINATED and a message saying why (in both cases
    /// TASK_KILLED if it was being killed), as is one the containerizer
    /// cannot reattach.
    pub fn recover(&mut self, now: Timestamp, plan: RecoveryPlan) {
        self.now = self.now.max(now);
        self.agent_id = plan.agent_id;
        for pending in plan.updates {
            self.updates.restore(pending.container_id(), pending.statuses);
        }
        for recovered in plan.tasks {
            let container = recovered.task.container_id();
            let CheckpointedTask { info, state, kill, .. } = recovered.task;
            let kill = kill.map(|k| k.reason);
            let ended = match recovered.fate {
                Fate::AlreadyEnded => {
                    if self.updates.contains(&container) {
                        self.ended.insert(container, (info, state));
                    }
                    continue;
                }
                Fate::Exited(exit) => {
                    self.containerizer.clean_up_after_restart(&container, &info);
                    let (state, reason) = match kill {
                        Some(reason) => (TaskState::Killed, reason),
                        None if exit.success() => (TaskState::Finished, None),
                        None => (TaskState::Failed, Some(TaskReason::CommandExecutorFailed)),
                    };
                    let message = format!("the task's process {exit} while the agent was down");
                    self.report_ended(container, info, state, reason, message, Some(exit.shell_code()));
                    continue;
                }
                Fate::Ended(why) => why,
                Fate::Reattach(record) => match self.containerizer.reattach(self.now, &container, &info, &record) {
                    Ok(()) => {
                        self.tasks.insert(
                            container.clone(),
                            Task {
                                info,
                                state,
                                kill: None,
                            },
                        );
                        if state == TaskState::Staging {
                            // It started before the agent went down.
                            self.container_started(container.clone());
                        }
                        if let Some(reason) = kill {
                            self.kill_task(container, reason);
                        }
                        continue;
                    }
                    Err(error) => format!("the task's process outlived the agent but {error}"),
                },
            };
            self.containerizer.clean_up_after_restart(&container, &info);
            let (state, reason) = match kill {
                Some(reason) => (TaskState::Killed, reason),
                None => (TaskState::Failed, Some(TaskReason::ExecutorTerminated)),
            };
            self.report_ended(container, info, state, reason, ended, None);
        }
        self.changed();
    }

    /// How many tasks are live (not yet ended).
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// The latest state of a live task.
    pub fn task_state(&self, container: &ContainerId) -> Option<TaskState> {
        self.tasks.get(container).map(|t| t.state)
    }

    /// The unacknowledged updates of a task, oldest (in flight) first.
    pub fn unacknowledged(&self, container: &ContainerId) -> impl Iterator<Item = &TaskStatus> {
        self.updates.pending(container)
    }

    /// How many updates await acknowledgement, over all tasks.
    pub fn pending_updates(&self) -> usize {
        self.updates.len()
    }

    /// The containerizer.
    pub fn containerizer(&self) -> &C {
        &self.containerizer
    }

    /// The containerizer, mutably (for drivers of pushed containerizers).
    pub fn containerizer_mut(&mut self) -> &mut C {
        &mut self.containerizer
    }

    /// The latest time handed in.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    // ---- connection and registration ----

    fn connected(&mut self) {
        self.go_offline();
        self.link = Link::Registering { since: self.now };
        // Ended tasks whose final update is unacknowledged are listed with
        // their final state: left out, the master would take them for lost
        // (GONE) before their update arrives.
        let mut tasks = self.running_tasks();
        // (One relaunched under the same id is listed once, as it runs now.)
        let ended = self.ended.iter().filter(|(id, _)| !self.tasks.contains_key(*id));
        tasks.extend(ended.map(|(id, (info, state))| RunningTask {
            framework_id: id.framework_id.clone(),
            task: info.clone(),
            state: *state,
        }));
        self.out.push_back(Output::Send(AgentMessage::Register {
            info: self.config.info.clone(),
            agent_id: self.agent_id.clone(),
            tasks,
        }));
    }

    /// Notes a change that the checkpoint records.
    fn changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    fn go_offline(&mut self) {
        self.link = Link::Disconnected;
        self.updates.go_offline();
    }

    fn reconnect(&mut self, reason: ReconnectReason) {
        self.go_offline();
        self.out.push_back(Output::Reconnect(reason));
    }

    /// How long the master may stay silent; `None` (no limit) when it does
    /// not ping (a zero interval).
    fn silence_limit(&self, ping_interval: Duration) -> Option<Duration> {
        (!ping_interval.is_zero()).then(|| ping_interval.saturating_mul(self.config.missed_pings.max(1)))
    }

    fn registered(&mut self, agent_id: AgentId, ping_interval: Duration) {
        if let Some(previous) = self.agent_id.take()
            && previous != agent_id
        {
            self.out.push_back(Output::Warning(Warning::AgentIdChanged {
                previous,
                current: agent_id.clone(),
            }));
        }
        self.updates.set_agent_id(&agent_id);
        if self.agent_id.as_ref() != Some(&agent_id) {
            self.changed();
        }
        self.agent_id = Some(agent_id.clone());
        self.link = Link::Registered {
            last_heard: self.now,
            ping_interval,
        };
        self.out.push_back(Output::Registered {
            agent_id,
            ping_interval,
        });
        self.updates.go_online(self.now, &mut self.out);
    }

    fn master_message(&mut self, message: MasterMessage) {
        match &mut self.link {
            Link::Disconnected => {
                self.out.push_back(Output::Warning(Warning::MessageWhileDisconnected));
                return;
            }
            Link::Registering { .. } => {}
            Link::Registered { last_heard, .. } => *last_heard = self.now,
        }
        match message {
            MasterMessage::Registered {
                agent_id,
                ping_interval,
            } => self.registered(agent_id, ping_interval),
            MasterMessage::Ping => self.out.push_back(Output::Send(AgentMessage::Pong)),
            MasterMessage::Error(message) => self.reconnect(ReconnectReason::Refused(message)),
            MasterMessage::RunTask { framework_id, task } => self.run_task(framework_id, task),
            MasterMessage::KillTask { framework_id, task_id } => {
                self.kill_task(ContainerId::new(framework_id, task_id), None);
            }
            MasterMessage::ShutdownFramework { framework_id } => self.shutdown_framework(framework_id),
            MasterMessage::ReadFile {
                request_id,
                framework_id,
                task_id,
                file,
                offset,
                max_bytes,
            } => self.out.push_back(Output::ReadFile {
                request_id,
                container: ContainerId::new(framework_id, task_id),
                file,
                offset,
                max_bytes,
            }),
            MasterMessage::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => {
                let container = ContainerId::new(framework_id, task_id);
                if self.updates.acknowledge(self.now, &container, uuid, &mut self.out) == Ack::Ignored {
                    self.out
                        .push_back(Output::Warning(Warning::UnexpectedAcknowledgement { container, uuid }));
                } else {
                    if !self.updates.contains(&container) {
                        self.ended.remove(&container);
                    }
                    self.changed();
                }
            }
        }
    }

    // ---- task lifecycle ----

    fn run_task(&mut self, framework_id: FrameworkId, task: TaskInfo) {
        let container = ContainerId::new(framework_id, task.task_id.clone());
        if self.tasks.contains_key(&container) {
            self.out.push_back(Output::Warning(Warning::DuplicateTask(container)));
            return;
        }
        if self.shutting_down.contains(&container.framework_id) {
            self.out
                .push_back(Output::Warning(Warning::FrameworkShuttingDown(container)));
            return;
        }
        match self.containerizer.launch(self.now, &container, &task) {
            Ok(()) => {
                // A launch in the background is RUNNING once its process exists.
                let background = self.containerizer.launches_in_background();
                let state = if background {
                    TaskState::Staging
                } else {
                    TaskState::Running
                };
                self.tasks.insert(
                    container.clone(),
                    Task {
                        info: task,
                        state,
                        kill: None,
                    },
                );
                self.changed();
                if !background {
                    self.report(container, state, None, String::new(), None);
                }
            }
            Err(error) => self.report_ended(
                container,
                task,
                TaskState::Failed,
                Some(TaskReason::ContainerLaunchFailed),
                error.to_string(),
                None,
            ),
        }
    }

    /// Kills a live task, reporting `reason` when it ends. A kill of a task
    /// that has ended but whose final update is unacknowledged does nothing;
    /// a kill of a task the agent does not know is answered TASK_DROPPED
    /// (reason TASK_UNKNOWN), as a Mesos agent does for a task it never
    /// launched.
    fn kill_task(&mut self, container: ContainerId, reason: Option<TaskReason>) {
        if let Some(task) = self.tasks.get_mut(&container) {
            if task.kill.is_none() {
                task.kill = Some(reason);
                self.generation = self.generation.wrapping_add(1);
                let grace = task.info.kill_grace_period.unwrap_or(self.config.default_kill_grace);
                self.containerizer.kill(self.now, &container, grace);
            }
        } else if !self.updates.contains(&container) {
            self.out
                .push_back(Output::Warning(Warning::KillOfUnknownTask(container.clone())));
            self.report(
                container,
                TaskState::Dropped,
                Some(TaskReason::TaskUnknown),
                "the agent does not know this task".to_owned(),
                None,
            );
        }
    }

    /// Kills every live task of the framework and forgets its unacknowledged
    /// updates: a shut-down framework acknowledges nothing. The final updates
    /// of its tasks are sent once, not retried.
    fn shutdown_framework(&mut self, framework_id: FrameworkId) {
        self.updates.drop_framework(&framework_id);
        self.ended.retain(|id, _| id.framework_id != framework_id);
        self.changed();
        let doomed: Vec<ContainerId> = self
            .tasks
            .keys()
            .filter(|id| id.framework_id == framework_id)
            .cloned()
            .collect();
        if doomed.is_empty() {
            return;
        }
        self.shutting_down.insert(framework_id);
        for container in doomed {
            self.kill_task(container, Some(TaskReason::FrameworkRemoved));
        }
    }

    /// A container launched in the background has started: TASK_RUNNING.
    /// (Its task may have ended already: its exit reported it running.)
    fn container_started(&mut self, container: ContainerId) {
        if let Some(task) = self.tasks.get_mut(&container)
            && task.state == TaskState::Staging
        {
            task.state = TaskState::Running;
            self.report(container, TaskState::Running, None, String::new(), None);
        }
    }

    fn container_exited(&mut self, container: ContainerId, exit: &ExitStatus) {
        let Some(task) = self.tasks.get(&container) else {
            self.out
                .push_back(Output::Warning(Warning::UnknownContainerExit(container)));
            return;
        };
        let launch_failed = exit.limitation == Some(TaskReason::ContainerLaunchFailed);
        if launch_failed && task.kill.is_none() && !exit.killed {
            if let Some(task) = self.tasks.remove(&container) {
                let message = exit.message.clone();
                self.report_ended(container, task.info, TaskState::Failed, exit.limitation, message, None);
            }
            return;
        }
        // Started in the background (its process ran), and ended before
        // that was fed in.
        let ran = exit.code.is_some() || exit.signal.is_some();
        if task.state == TaskState::Staging && !launch_failed && ran {
            self.container_started(container.clone());
        }
        let Some(task) = self.tasks.remove(&container) else {
            return;
        };
        let (state, reason) = match (task.kill, exit.limitation) {
            (Some(reason), _) => (TaskState::Killed, reason),
            (None, _) if exit.killed => (TaskState::Killed, None),
            (None, Some(limitation)) => (TaskState::Failed, Some(limitation)),
            (None, None) if exit.success() => (TaskState::Finished, None),
            (None, None) => (TaskState::Failed, Some(TaskReason::CommandExecutorFailed)),
        };
        // A signal's death is reported as a shell does: 128 + the signal.
        let exit_code = exit.code.or(exit.signal.map(|signal| 128 + signal));
        self.report_ended(container, task.info, state, reason, exit.to_string(), exit_code);
    }

    /// Reports the final state of a task (no longer live) and remembers it
    /// while its updates are unacknowledged.
    fn report_ended(
        &mut self,
        container: ContainerId,
        info: TaskInfo,
        state: TaskState,
        reason: Option<TaskReason>,
        message: String,
        exit_code: Option<i32>,
    ) {
        self.report(container.clone(), state, reason, message, exit_code);
        if self.updates.contains(&container) {
            self.ended.insert(container, (info, state));
        }
    }

    /// Produces a status update for a task and hands it to the status update
    /// manager (or, for a shut-down framework, sends it once).
    fn report(
        &mut self,
        container: ContainerId,
        state: TaskState,
        reason: Option<TaskReason>,
        message: String,
        exit_code: Option<i32>,
    ) {
        self.changed();
        let status = TaskStatus {
            reason,
            message,
            source: Some(TaskSource::Agent),
            agent_id: self.agent_id.clone(),
            uuid: Some(self.new_uuid()),
            exit_code,
            ..TaskStatus::new(container.task_id.clone(), state, self.now)
        };
        self.out.push_back(Output::TaskChanged {
            container: container.clone(),
            state,
        });
        if self.shutting_down.contains(&container.framework_id) {
            if self.is_registered() {
                self.out.push_back(Output::Send(AgentMessage::StatusUpdate {
                    framework_id: container.framework_id.clone(),
                    status,
                }));
            } else {
                self.out.push_back(Output::Warning(Warning::UpdateDropped {
                    container: container.clone(),
                    state,
                }));
            }
            let framework_id = &container.framework_id;
            if !self.tasks.keys().any(|id| id.framework_id == *framework_id) {
                self.shutting_down.remove(framework_id);
            }
        } else {
            self.updates.enqueue(self.now, container, status, &mut self.out);
        }
    }

    /// A random (version 4) uuid from the seeded generator.
    fn new_uuid(&mut self) -> StatusUuid {
        let bits = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        let bits = (bits & !(0xF << 76)) | (0x4 << 76);
        let bits = (bits & !(0x3 << 62)) | (0x2 << 62);
        StatusUuid::from_u128(bits)
    }

    // ---- time ----

    /// Handles everything due by `now`.
    fn advance(&mut self) {
        while let Some((container, exit)) = self.containerizer.poll_exit(self.now) {
            self.container_exited(container, &exit);
        }
        if self.is_registered() {
            self.updates.tick(self.now, &mut self.out);
        }
        match self.link {
            Link::Registering { since } if self.now >= since + self.config.registration_timeout => {
                self.reconnect(ReconnectReason::RegistrationTimeout(self.config.registration_timeout));
            }
            Link::Registered {
                last_heard,
                ping_interval,
            } => {
                if let Some(limit) = self.silence_limit(ping_interval)
                    && self.now >= last_heard + limit
                {
                    self.reconnect(ReconnectReason::MasterSilent(limit));
                }
            }
            Link::Registering { .. } | Link::Disconnected => {}
        }
    }
}

#[cfg(test)]
mod tests;
