//! Calls the master core refuses outright. Problems with what a valid call
//! asks for (a stale offer, a task that does not fit) are not errors: they
//! come back to the framework as status updates, as in Mesos.

use agora_proto::{AgentId, FrameworkId, TaskId};

/// Why the master refused a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MasterError {
    /// No framework has this id.
    #[error("framework {0} is not known to this master; subscribe first")]
    UnknownFramework(FrameworkId),
    /// The framework exists but has no event stream open.
    #[error("framework {0} is not subscribed; re-subscribe with its id before making calls")]
    FrameworkNotSubscribed(FrameworkId),
    /// The framework was torn down or its failover timeout expired.
    #[error("framework {0} has been removed and cannot subscribe again; subscribe without an id")]
    FrameworkRemoved(FrameworkId),
    /// No agent has this id.
    #[error("agent {0} is not known to this master")]
    UnknownAgent(AgentId),
    /// A role the framework does not hold.
    #[error("framework {framework_id} does not hold role {role:?}")]
    UnknownRole {
        /// The framework.
        framework_id: FrameworkId,
        /// The role it named.
        role: String,
    },
    /// UPDATE_FRAMEWORK tried to change what cannot change.
    #[error("cannot update framework {framework_id}: {reason}")]
    InvalidUpdate {
        /// The framework.
        framework_id: FrameworkId,
        /// What was wrong.
        reason: String,
    },
    /// No framework has a task with this id.
    #[error("no task {0} is known to this master")]
    UnknownTask(TaskId),
    /// Several frameworks have a task with this id.
    #[error("tasks named {task_id} belong to several frameworks ({}); name the framework", frameworks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    AmbiguousTask {
        /// The task id.
        task_id: TaskId,
        /// The frameworks that have such a task.
        frameworks: Vec<FrameworkId>,
    },
    /// An operator's weight update names a bad role or weight.
    #[error("invalid weight update: field `{field}`: {reason}")]
    InvalidWeight {
        /// The field at fault, e.g. `weights[1].weight`.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// An operator's quota update names a bad role.
    #[error("invalid quota update: field `{field}`: {reason}")]
    InvalidQuota {
        /// The field at fault, e.g. `quotas[1].role`.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// The connection is already subscribed under another framework.
    #[error("this stream is already subscribed as framework {0}")]
    ConnectionInUse(FrameworkId),
}
