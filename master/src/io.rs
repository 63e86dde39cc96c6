//! What goes into the master core and what comes out of it.

use agora_proto::{
    AgentId, AgentMessage, Event, FileChunk, FrameworkCall, FrameworkId, FrameworkInfo, MasterMessage, Resources,
    RoleQuota, SandboxFile, TaskId,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A connection (a framework's event stream or an agent's stream), numbered
/// by the driver. The core addresses its outputs to connections so that a
/// stale stream never receives what is meant for its replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// An input to [`crate::Master::handle`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// A framework opened an event stream on `conn` and subscribes (or
    /// re-subscribes, when `info.id` is set).
    Subscribe {
        /// The new stream.
        conn: ConnectionId,
        /// Who subscribes.
        info: FrameworkInfo,
    },
    /// A call from a subscribed framework.
    Call(FrameworkCall),
    /// A framework's event stream closed.
    FrameworkDisconnected {
        /// The stream.
        conn: ConnectionId,
    },
    /// A message on an agent's stream; the first one must be a registration.
    Agent {
        /// The agent's stream.
        conn: ConnectionId,
        /// What it says.
        message: AgentMessage,
    },
    /// An agent's stream closed.
    AgentDisconnected {
        /// The stream.
        conn: ConnectionId,
    },
    /// An operator reads part of a task's sandbox file; answered by
    /// [`Output::FileRead`] with the same `request`.
    ReadFile {
        /// Chosen by the driver to match the answer.
        request: u64,
        /// Needed only when two frameworks have tasks with this id.
        framework_id: Option<FrameworkId>,
        /// The task.
        task_id: TaskId,
        /// Which file.
        file: SandboxFile,
        /// Where to start.
        offset: u64,
        /// At most this many bytes.
        max_bytes: u64,
    },
    /// An operator kills a task.
    KillTask {
        /// Needed only when two frameworks have tasks with this id.
        framework_id: Option<FrameworkId>,
        /// The task.
        task_id: TaskId,
    },
    /// An operator sets role weights (each role valid, each weight finite
    /// and greater than 0; refused as a whole otherwise).
    UpdateWeights(Vec<(String, f64)>),
    /// An operator sets role quotas: limits and guarantees, `None` removing
    /// either (each role valid, each guarantee at most its limit; refused as
    /// a whole otherwise).
    UpdateQuota(Vec<(String, RoleQuota)>),
    /// An operator reserves resources on an agent for a role (Mesos'
    /// RESERVE_RESOURCES): `resources` all reserved for that one role, taken
    /// unreserved from the agent's free resources; offers holding them are
    /// rescinded first when that frees enough. Refused with
    /// [`crate::MasterError::Reservation`] (changing nothing) otherwise.
    ReserveResources {
        /// The agent.
        agent_id: AgentId,
        /// What to reserve, e.g. `cpus(ads):2;mem(ads):512`.
        resources: Resources,
    },
    /// An operator gives dynamic reservations back (Mesos'
    /// UNRESERVE_RESOURCES): `resources`, reserved for one role by an earlier
    /// RESERVE (static reservations stay) and free or offered, become
    /// unreserved. Refused as [`Input::ReserveResources`] is.
    UnreserveResources {
        /// The agent.
        agent_id: AgentId,
        /// What to unreserve, e.g. `cpus(ads):2`.
        resources: Resources,
    },
    /// Time passed: fire whatever timers are due.
    Tick,
}

/// Work the core asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Send an event on a framework's stream.
    ToFramework {
        /// The stream.
        conn: ConnectionId,
        /// The event.
        event: Event,
    },
    /// Close a framework's stream: it was replaced by a newer subscription,
    /// or the framework was torn down or removed.
    CloseFramework {
        /// The stream.
        conn: ConnectionId,
    },
    /// Send a message on an agent's stream.
    ToAgent {
        /// The stream.
        conn: ConnectionId,
        /// The message.
        message: MasterMessage,
    },
    /// Close an agent's stream: it re-registered elsewhere or was refused.
    CloseAgent {
        /// The stream.
        conn: ConnectionId,
    },
    /// The answer to [`Input::ReadFile`]: a chunk, or why it cannot be read
    /// (the agent is gone, or the file does not exist).
    FileRead {
        /// The request answered.
        request: u64,
        /// The chunk or the reason.
        result: Result<FileChunk, String>,
    },
}
