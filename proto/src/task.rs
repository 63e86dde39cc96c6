//! Tasks: what a framework asks to run ([`TaskInfo`]), the states a task
//! goes through ([`TaskState`]) and the updates that report them
//! ([`TaskStatus`]).

use crate::error::{ProtoError, required};
use crate::ids::{AgentId, TaskId, optional_id, required_id};
use crate::pb;
use crate::resources::Resources;
use crate::time::{Timestamp, duration_from_secs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident => $wire:ident, unspecified: $unspec:ident {
            $($(#[$vdoc:meta])* $variant:ident = $wvariant:ident, $text:literal;)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The Mesos name of the value, such as `TASK_RUNNING`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }

            /// Converts a wire enum number; `field` names it in the error.
            /// The unspecified value (0) is `Ok(None)`.
            pub fn from_wire(value: i32, field: &str) -> Result<Option<Self>, ProtoError> {
                match pb::$wire::try_from(value) {
                    Ok(pb::$wire::$unspec) => Ok(None),
                    $(Ok(pb::$wire::$wvariant) => Ok(Some(Self::$variant)),)*
                    Err(_) => Err(ProtoError::invalid(field, format!("unknown value {value}"))),
                }
            }
        }

        impl From<$name> for pb::$wire {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => Self::$wvariant,)* }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> Self {
                pb::$wire::from(value) as i32
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| format!("unknown {} {s:?}", stringify!($name)))
            }
        }
    };
}

wire_enum!(
    /// The state of a task, as in Mesos.
    TaskState => TaskState, unspecified: Unspecified {
        /// Accepted by the master, not yet started by the agent.
        Staging = TaskStaging, "TASK_STAGING";
        /// The agent is starting it.
        Starting = TaskStarting, "TASK_STARTING";
        /// Its process runs.
        Running = TaskRunning, "TASK_RUNNING";
        /// A kill is in progress (frameworks with TASK_KILLING_STATE).
        Killing = TaskKilling, "TASK_KILLING";
        /// Ended with exit status 0.
        Finished = TaskFinished, "TASK_FINISHED";
        /// Ended with a failure.
        Failed = TaskFailed, "TASK_FAILED";
        /// Ended by a kill.
        Killed = TaskKilled, "TASK_KILLED";
        /// Its description was invalid; never started.
        Error = TaskError, "TASK_ERROR";
        /// Lost (frameworks that are not partition-aware).
        Lost = TaskLost, "TASK_LOST";
        /// Never started: its offer or agent went away.
        Dropped = TaskDropped, "TASK_DROPPED";
        /// Its agent is partitioned; it may come back.
        Unreachable = TaskUnreachable, "TASK_UNREACHABLE";
        /// Its agent is gone for good.
        Gone = TaskGone, "TASK_GONE";
        /// An operator removed its agent.
        GoneByOperator = TaskGoneByOperator, "TASK_GONE_BY_OPERATOR";
        /// The master does not know the task.
        Unknown = TaskUnknown, "TASK_UNKNOWN";
    }
);

impl TaskState {
    /// Whether the task has ended and will never change state again.
    /// UNREACHABLE and UNKNOWN are not terminal: the task may come back.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Finished
                | Self::Failed
                | Self::Killed
                | Self::Error
                | Self::Lost
                | Self::Dropped
                | Self::Gone
                | Self::GoneByOperator
        )
    }
}

wire_enum!(
    /// Why a task reached its state.
    TaskReason => TaskReason, unspecified: ReasonUnspecified {
        /// The task's command failed.
        CommandExecutorFailed = ReasonCommandExecutorFailed, "REASON_COMMAND_EXECUTOR_FAILED";
        /// The task exceeded its memory limit.
        ContainerLimitationMemory = ReasonContainerLimitationMemory, "REASON_CONTAINER_LIMITATION_MEMORY";
        /// Its agent was removed.
        AgentRemoved = ReasonAgentRemoved, "REASON_AGENT_REMOVED";
        /// Its agent is not known to the master.
        AgentUnknown = ReasonAgentUnknown, "REASON_AGENT_UNKNOWN";
        /// Its agent is disconnected.
        AgentDisconnected = ReasonAgentDisconnected, "REASON_AGENT_DISCONNECTED";
        /// An answer to reconciliation.
        Reconciliation = ReasonReconciliation, "REASON_RECONCILIATION";
        /// The offers it was launched with were invalid.
        InvalidOffers = ReasonInvalidOffers, "REASON_INVALID_OFFERS";
        /// The task description was invalid.
        TaskInvalid = ReasonTaskInvalid, "REASON_TASK_INVALID";
        /// The task is unknown.
        TaskUnknown = ReasonTaskUnknown, "REASON_TASK_UNKNOWN";
        /// Killed before it was launched.
        TaskKilledDuringLaunch = ReasonTaskKilledDuringLaunch, "REASON_TASK_KILLED_DURING_LAUNCH";
        /// Its framework was removed.
        FrameworkRemoved = ReasonFrameworkRemoved, "REASON_FRAMEWORK_REMOVED";
        /// The container could not be launched.
        ContainerLaunchFailed = ReasonContainerLaunchFailed, "REASON_CONTAINER_LAUNCH_FAILED";
        /// The executor ended.
        ExecutorTerminated = ReasonExecutorTerminated, "REASON_EXECUTOR_TERMINATED";
        /// The task asked for resources the agent does not know.
        ResourcesUnknown = ReasonResourcesUnknown, "REASON_RESOURCES_UNKNOWN";
        /// Its agent was unreachable and re-registered with the task running.
        AgentReregistered = ReasonAgentReregistered, "REASON_AGENT_REREGISTERED";
    }
);

wire_enum!(
    /// Who produced a status update.
    TaskSource => TaskSource, unspecified: SourceUnspecified {
        /// The master (validation, reconciliation, agent loss).
        Master = SourceMaster, "SOURCE_MASTER";
        /// The agent.
        Agent = SourceAgent, "SOURCE_AGENT";
        /// The task's executor.
        Executor = SourceExecutor, "SOURCE_EXECUTOR";
    }
);

/// The id of one status update, which the framework acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatusUuid(pub [u8; 16]);

impl StatusUuid {
    /// Builds a uuid from 128 random bits supplied by the caller (cores take
    /// randomness as an input).
    pub const fn from_u128(bits: u128) -> Self {
        Self(bits.to_be_bytes())
    }

    fn from_wire(bytes: &[u8], field: &str) -> Result<Option<Self>, ProtoError> {
        match bytes.len() {
            0 => Ok(None),
            16 => {
                let mut raw = [0; 16];
                raw.copy_from_slice(bytes);
                Ok(Some(Self(raw)))
            }
            n => Err(ProtoError::invalid(field, format!("a uuid is 16 bytes, got {n}"))),
        }
    }
}

impl fmt::Display for StatusUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl TryFrom<&[u8]> for StatusUuid {
    type Error = ProtoError;
    fn try_from(bytes: &[u8]) -> Result<Self, ProtoError> {
        Self::from_wire(bytes, "uuid")?.ok_or_else(|| ProtoError::missing("uuid"))
    }
}

/// A report of a task's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task.
    pub task_id: TaskId,
    /// Its new state.
    pub state: TaskState,
    /// Why, when known.
    pub reason: Option<TaskReason>,
    /// A message for people.
    pub message: String,
    /// Who produced the update.
    pub source: Option<TaskSource>,
    /// The agent running the task, when there is one.
    pub agent_id: Option<AgentId>,
    /// When the update was produced.
    pub timestamp: Timestamp,
    /// Present when the update must be acknowledged.
    pub uuid: Option<StatusUuid>,
    /// Result of the task's health check, if it has one.
    pub healthy: Option<bool>,
    /// The exit code of the task's process, when it exited.
    pub exit_code: Option<i32>,
}

impl TaskStatus {
    /// A status with the given essentials and nothing else set.
    pub fn new(task_id: TaskId, state: TaskState, timestamp: Timestamp) -> Self {
        Self {
            task_id,
            state,
            reason: None,
            message: String::new(),
            source: None,
            agent_id: None,
            timestamp,
            uuid: None,
            healthy: None,
            exit_code: None,
        }
    }
}

impl TryFrom<pb::TaskStatus> for TaskStatus {
    type Error = ProtoError;
    fn try_from(wire: pb::TaskStatus) -> Result<Self, ProtoError> {
        let state = TaskState::from_wire(wire.state, "state")?.ok_or_else(|| ProtoError::missing("state"))?;
        if !(wire.timestamp.is_finite() && wire.timestamp >= 0.0) {
            return Err(ProtoError::invalid(
                "timestamp",
                format!("{} is not a non-negative number of seconds", wire.timestamp),
            ));
        }
        Ok(Self {
            task_id: required_id(wire.task_id, "task_id")?,
            state,
            reason: TaskReason::from_wire(wire.reason, "reason")?,
            message: wire.message,
            source: TaskSource::from_wire(wire.source, "source")?,
            agent_id: optional_id(wire.agent_id, "agent_id")?,
            timestamp: Timestamp::from_micros((wire.timestamp * 1e6) as u64),
            uuid: StatusUuid::from_wire(&wire.uuid, "uuid")?,
            healthy: wire.healthy,
            exit_code: wire.exit_code,
        })
    }
}

impl From<TaskStatus> for pb::TaskStatus {
    fn from(s: TaskStatus) -> Self {
        Self {
            task_id: Some(s.task_id.into()),
            state: s.state.into(),
            reason: s.reason.map_or(0, i32::from),
            message: s.message,
            source: s.source.map_or(0, i32::from),
            agent_id: s.agent_id.map(Into::into),
            timestamp: s.timestamp.as_secs_f64(),
            uuid: s.uuid.map(|u| u.0.to_vec()).unwrap_or_default(),
            healthy: s.healthy,
            exit_code: s.exit_code,
        }
    }
}

/// What a task runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// With `shell`, a command line for `/bin/sh -c`; otherwise the executable.
    pub value: String,
    /// Whether `value` runs under a shell (the default, as in Mesos).
    pub shell: bool,
    /// The argv (argv\[0\] included) when `shell` is false.
    pub arguments: Vec<String>,
    /// Extra environment variables.
    pub environment: BTreeMap<String, String>,
    /// The user to run as; the agent's user when absent.
    pub user: Option<String>,
}

impl CommandInfo {
    /// A shell command line.
    pub fn shell(command: impl Into<String>) -> Self {
        Self {
            value: command.into(),
            shell: true,
            ..Self::default()
        }
    }

    /// An executable and its arguments (argv\[0\] is `program`).
    pub fn exec(program: impl Into<String>, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let program = program.into();
        let mut arguments = vec![program.clone()];
        arguments.extend(args.into_iter().map(Into::into));
        Self {
            value: program,
            shell: false,
            arguments,
            ..Self::default()
        }
    }

    /// The argv this command executes.
    pub fn argv(&self) -> Vec<String> {
        if self.shell {
            vec!["/bin/sh".to_owned(), "-c".to_owned(), self.value.clone()]
        } else if self.arguments.is_empty() {
            vec![self.value.clone()]
        } else {
            self.arguments.clone()
        }
    }
}

impl TryFrom<pb::CommandInfo> for CommandInfo {
    type Error = ProtoError;
    fn try_from(wire: pb::CommandInfo) -> Result<Self, ProtoError> {
        if wire.value.trim().is_empty() {
            return Err(ProtoError::missing("value"));
        }
        Ok(Self {
            value: wire.value,
            shell: wire.shell.unwrap_or(true),
            arguments: wire.arguments,
            environment: wire.environment.into_iter().collect(),
            user: Some(wire.user).filter(|u| !u.is_empty()),
        })
    }
}

impl From<CommandInfo> for pb::CommandInfo {
    fn from(c: CommandInfo) -> Self {
        Self {
            value: c.value,
            shell: Some(c.shell),
            arguments: c.arguments,
            environment: c.environment.into_iter().collect(),
            user: c.user.unwrap_or_default(),
        }
    }
}

/// A task a framework launches on an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// A name for people.
    pub name: String,
    /// Unique among the framework's tasks.
    pub task_id: TaskId,
    /// The agent to run on; must be the agent of the offers used.
    pub agent_id: AgentId,
    /// What the task uses; taken out of the offers it is launched with.
    pub resources: Resources,
    /// What it runs.
    pub command: CommandInfo,
    /// Time between SIGTERM and SIGKILL when killed; the agent's default when absent.
    pub kill_grace_period: Option<Duration>,
}

impl TryFrom<pb::TaskInfo> for TaskInfo {
    type Error = ProtoError;
    fn try_from(wire: pb::TaskInfo) -> Result<Self, ProtoError> {
        let task_id: TaskId = required_id(wire.task_id, "task_id")?;
        let kill_grace_period = match wire.kill_policy {
            None => None,
            Some(policy) => Some(duration_from_secs(policy.grace_period_seconds).ok_or_else(|| {
                ProtoError::invalid(
                    "kill_policy.grace_period_seconds",
                    format!(
                        "{} is not a non-negative number of seconds",
                        policy.grace_period_seconds
                    ),
                )
            })?),
        };
        Ok(Self {
            name: if wire.name.is_empty() {
                task_id.to_string()
            } else {
                wire.name
            },
            agent_id: required_id(wire.agent_id, "agent_id")?,
            task_id,
            resources: Resources::try_from(wire.resources).map_err(|e| ProtoError::resources("resources", e))?,
            command: CommandInfo::try_from(required(wire.command, "command")?).map_err(|e| e.within("command"))?,
            kill_grace_period,
        })
    }
}

impl From<TaskInfo> for pb::TaskInfo {
    fn from(t: TaskInfo) -> Self {
        Self {
            name: t.name,
            task_id: Some(t.task_id.into()),
            agent_id: Some(t.agent_id.into()),
            resources: (&t.resources).into(),
            command: Some(t.command.into()),
            kill_policy: t.kill_grace_period.map(|d| pb::KillPolicy {
                grace_period_seconds: d.as_secs_f64(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states() {
        assert!(TaskState::Finished.is_terminal());
        assert!(!TaskState::Running.is_terminal());
        assert!(!TaskState::Unreachable.is_terminal());
    }

    #[test]
    fn state_round_trips_and_parses() {
        for &state in TaskState::ALL {
            assert_eq!(TaskState::from_wire(i32::from(state), "state"), Ok(Some(state)));
            assert_eq!(state.as_str().parse::<TaskState>(), Ok(state));
        }
        assert!(TaskState::from_wire(99, "state").is_err());
    }

    #[test]
    fn status_without_state_is_rejected() {
        let wire = pb::TaskStatus {
            task_id: Some(pb::TaskId { value: "t".into() }),
            ..Default::default()
        };
        let err = TaskStatus::try_from(wire).expect_err("state is required");
        assert_eq!(err, ProtoError::missing("state"));
    }

    #[test]
    fn short_uuid_is_rejected() {
        let wire = pb::TaskStatus {
            task_id: Some(pb::TaskId { value: "t".into() }),
            state: pb::TaskState::TaskRunning as i32,
            uuid: vec![1, 2, 3],
            ..Default::default()
        };
        let err = TaskStatus::try_from(wire).expect_err("bad uuid");
        assert_eq!(err.to_string(), "field `uuid`: a uuid is 16 bytes, got 3");
    }

    #[test]
    fn task_info_without_command_names_the_field() {
        let wire = pb::TaskInfo {
            name: "n".into(),
            task_id: Some(pb::TaskId { value: "t".into() }),
            agent_id: Some(pb::AgentId { value: "a".into() }),
            ..Default::default()
        };
        assert_eq!(TaskInfo::try_from(wire), Err(ProtoError::missing("command")));
    }

    #[test]
    fn uuid_displays_as_uuid() {
        let u = StatusUuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        assert_eq!(u.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
