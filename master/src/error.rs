//! Calls the master core refuses outright. Problems with what a valid call
//! asks for (a stale offer, a task that does not fit) are not errors: they
//! come back to the framework as status updates, as in Mesos.

use agora_proto::{AgentId, FrameworkId, Resources, TaskId};
use std::fmt;

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
    /// An operator's RESERVE_RESOURCES or UNRESERVE_RESOURCES cannot be
    /// applied; nothing changed (no offer was rescinded).
    #[error("cannot {operation} {resources} on agent {agent_id}: {reason}")]
    Reservation {
        /// Reserve or unreserve.
        operation: ReservationOperation,
        /// The agent named.
        agent_id: AgentId,
        /// The resources named (boxed, as `reason`: they would make every
        /// `Result<_, MasterError>` several times larger).
        resources: Box<Resources>,
        /// What was wrong.
        reason: Box<ReservationError>,
    },
}

/// Which operator reservation call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservationOperation {
    /// RESERVE_RESOURCES.
    Reserve,
    /// UNRESERVE_RESOURCES.
    Unreserve,
}

impl fmt::Display for ReservationOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reserve => "reserve",
            Self::Unreserve => "unreserve",
        })
    }
}

/// Why an operator's reservation call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReservationError {
    /// The call names no resources.
    #[error("no resources given")]
    Empty,
    /// A resource carries no role.
    #[error("{0} is not reserved for a role; name the role as in cpus(ads):2")]
    NoRole(String),
    /// The resources name more than one role.
    #[error("the resources name several roles ({}); one call is for one role", .0.join(", "))]
    SeveralRoles(Vec<String>),
    /// The role is not a valid role name.
    #[error("{0}")]
    InvalidRole(String),
    /// The agent is unreachable: it is not offered, and its resources are
    /// rebuilt from its report if it comes back.
    #[error("the agent is unreachable")]
    AgentUnreachable,
    /// The master restarted and the agent has not re-registered since: its
    /// resources are not known yet.
    #[error("the agent has not re-registered since the master restarted")]
    NotReregistered,
    /// Not enough of the resources are free on the agent, even after
    /// rescinding every offer of them: tasks use the rest, or the agent
    /// does not have that much.
    #[error("{needed} must be free on the agent (not used by tasks), but {}", if .available.is_empty() { "none of it is".to_owned() } else { format!("only {} is", .available) })]
    NotAvailable {
        /// What the operation takes from the agent's free resources (boxed,
        /// as below, to keep the error small).
        needed: Box<Resources>,
        /// Of those, what is free or offered (nothing when none is).
        available: Box<Resources>,
    },
    /// UNRESERVE of resources reserved by the agent's own `--resources`.
    #[error(
        "{0} is reserved by the agent's own resources (a static reservation); only dynamic reservations can be unreserved"
    )]
    StaticReservation(Resources),
    /// UNRESERVE of more than the agent's dynamic reservations hold.
    #[error("{requested} is not dynamically reserved on the agent (its dynamic reservations: {})", or_none(.reserved, "none"))]
    NotDynamicallyReserved {
        /// What the call names.
        requested: Box<Resources>,
        /// The agent's dynamic reservations (empty when it has none).
        reserved: Box<Resources>,
    },
}

/// `resources` as text, or `none` when empty (which would print as nothing).
fn or_none(resources: &Resources, none: &str) -> String {
    if resources.is_empty() {
        none.to_owned()
    } else {
        resources.to_string()
    }
}
