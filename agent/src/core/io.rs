//! The core's vocabulary: its configuration, what goes in ([`Input`]) and
//! what comes out ([`Output`], with [`ReconnectReason`] and [`Warning`]).

use crate::containerizer::{ContainerId, ExitStatus};
use crate::status_updates::RetryPolicy;
use agora_proto::{AgentId, AgentInfo, AgentMessage, MasterMessage, SandboxFile, StatusUuid, TaskState};
use std::time::Duration;

/// What the core needs to know about its agent.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CoreConfig {
    /// What the agent reports when it registers.
    pub info: AgentInfo,
    /// When unacknowledged status updates are re-sent.
    pub status_retry: RetryPolicy,
    /// Grace between the polite and the forced kill when the task sets none
    /// (Mesos' default kill policy: 3 s).
    pub default_kill_grace: Duration,
    /// How long to wait for `Registered` after connecting before giving up
    /// on this connection.
    pub registration_timeout: Duration,
    /// The master is deemed dead after this many ping intervals without a
    /// message from it (Mesos: 5).
    pub missed_pings: u32,
}

impl CoreConfig {
    /// The defaults for an agent described by `info`.
    pub fn new(info: AgentInfo) -> Self {
        Self {
            info,
            status_retry: RetryPolicy::default(),
            default_kill_grace: Duration::from_secs(3),
            registration_timeout: Duration::from_secs(15),
            missed_pings: 5,
        }
    }
}

/// Something that happened, for the core to handle.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// A new stream to the master is open: the core answers with `Register`.
    Connected,
    /// The stream is gone (closed, failed, or dropped after
    /// [`Output::Reconnect`]).
    Disconnected,
    /// A validated message from the master on the current stream.
    Master(MasterMessage),
    /// The main process of a container launched in the background has
    /// started (see [`Containerizer::launches_in_background`](crate::Containerizer::launches_in_background)).
    ContainerStarted {
        /// The container.
        container: ContainerId,
    },
    /// A container ended (from containerizers that push their exits).
    ContainerExited {
        /// The container.
        container: ContainerId,
        /// How it ended.
        exit: ExitStatus,
    },
    /// A timer set from [`AgentCore::poll_timeout`](crate::AgentCore::poll_timeout) fired.
    Tick,
}

/// Something the driver must do or may want to know.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Send this message on the current stream.
    Send(AgentMessage),
    /// The master (re-)registered the agent.
    Registered {
        /// The agent's id.
        agent_id: AgentId,
        /// How often the master pings.
        ping_interval: Duration,
    },
    /// Drop the current stream and connect again (with backoff). The core is
    /// already disconnected; the driver need not feed `Disconnected`.
    Reconnect(ReconnectReason),
    /// A task changed state (for logs and metrics; the update itself is in a
    /// [`Output::Send`]).
    TaskChanged {
        /// The task's container.
        container: ContainerId,
        /// Its new state.
        state: TaskState,
    },
    /// Something unexpected that the core ignored or worked around.
    Warning(Warning),
    /// Read part of a sandbox file and answer with `AgentMessage::FileData`
    /// (file I/O is the driver's job).
    ReadFile {
        /// Echo in the answer.
        request_id: u64,
        /// The task's container.
        container: ContainerId,
        /// Which file.
        file: SandboxFile,
        /// Where to start.
        offset: u64,
        /// At most this many bytes.
        max_bytes: u64,
    },
}

/// Why the core gave up on the current stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconnectReason {
    /// The master refused the agent.
    #[error("the master refused the agent: {0}")]
    Refused(String),
    /// No `Registered` came in time.
    #[error("no answer to registration within {0:?}")]
    RegistrationTimeout(Duration),
    /// The master sent nothing for too long (missed pings).
    #[error("no message from the master for {0:?}")]
    MasterSilent(Duration),
}

/// Something unexpected that the core ignored or worked around.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Warning {
    /// `RunTask` for a task that already runs: ignored.
    #[error("task {0} already runs; RunTask ignored")]
    DuplicateTask(ContainerId),
    /// `RunTask` for a framework being shut down: ignored.
    #[error("framework of task {0} is shutting down; RunTask ignored")]
    FrameworkShuttingDown(ContainerId),
    /// `KillTask` for a task the agent does not know: answered TASK_DROPPED.
    #[error("kill of unknown task {0}; answered TASK_DROPPED")]
    KillOfUnknownTask(ContainerId),
    /// An acknowledgement that matches no update in flight: ignored.
    #[error("acknowledgement {uuid} of task {container} matches no update in flight; ignored")]
    UnexpectedAcknowledgement {
        /// The task.
        container: ContainerId,
        /// The uuid acknowledged.
        uuid: StatusUuid,
    },
    /// The containerizer reported the end of a container the core does not run.
    #[error("exit of unknown container {0} ignored")]
    UnknownContainerExit(ContainerId),
    /// The final update of a task of a shut-down framework could not be sent
    /// (offline); it is not retried.
    #[error("final update {state} of task {container} dropped: offline and its framework is shut down")]
    UpdateDropped {
        /// The task.
        container: ContainerId,
        /// The state that was not reported.
        state: TaskState,
    },
    /// The master registered the agent under a different id than before.
    #[error("the master changed the agent id from {previous} to {current}")]
    AgentIdChanged {
        /// The id the agent had.
        previous: AgentId,
        /// The id it has now.
        current: AgentId,
    },
    /// A master message arrived while no stream is open: ignored.
    #[error("message from the master while disconnected ignored")]
    MessageWhileDisconnected,
}
