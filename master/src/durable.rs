//! What the master keeps across a restart or a failover: one record per
//! admitted agent, framework and gone agent.
//!
//! The core stays pure: it notes which records changed (a set of keys) and
//! builds each one from its state when the driver takes the changes
//! ([`crate::Master::take_durable_changes`]), so many changes to one object
//! between two writes cost one record, and the driver decides when to write
//! (the server writes when its command queue is drained). A restarted master
//! is given the records back ([`crate::Master::recover`]) before any input.
//!
//! Tasks are not here: agents report them when they re-register, as in
//! Mesos. Role weights and quotas are kept by the server (operators' calls
//! are written before they are answered); they are not the core's state.

use agora_proto::{AgentId, FrameworkId, FrameworkInfo, Resources, TaskId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An admitted agent, as kept: enough to expect it back and to give it its
/// dynamic reservations again when it re-registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRecord {
    /// Its id.
    pub id: AgentId,
    /// Its hostname, for operators while it is not back.
    pub hostname: String,
    /// Dynamic reservations made on it (RESERVE operations and operators'
    /// RESERVE_RESOURCES), re-applied when it re-registers.
    #[serde(default)]
    pub reserved: Resources,
}

/// A framework, as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkRecord {
    /// What it said of itself (id, roles, capabilities, failover timeout).
    pub info: FrameworkInfo,
    /// When it first subscribed.
    pub registered_at: Timestamp,
    /// When its stream closed, if it is disconnected: its failover timeout
    /// counts from then, across master restarts.
    #[serde(default)]
    pub disconnected_at: Option<Timestamp>,
}

/// A task declared gone with its agent, as kept.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoneTask {
    /// Its framework.
    pub framework_id: FrameworkId,
    /// The task.
    pub task_id: TaskId,
    /// The role its resources were allocated to (charged again, as an
    /// orphan, if the agent comes back still running it).
    pub role: String,
}

/// An agent the master gave up on, as kept: if it comes back it is told to
/// kill these tasks, and reconciliation naming it answers TASK_GONE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoneRecord {
    /// Its id.
    pub id: AgentId,
    /// When it was declared gone (the oldest are forgotten first).
    pub at: Timestamp,
    /// Its tasks declared gone.
    #[serde(default)]
    pub tasks: Vec<GoneTask>,
}

/// Everything kept, as given to [`crate::Master::recover`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Admitted agents.
    pub agents: BTreeMap<AgentId, AgentRecord>,
    /// Frameworks not removed.
    pub frameworks: BTreeMap<FrameworkId, FrameworkRecord>,
    /// Gone agents.
    pub gone: BTreeMap<AgentId, GoneRecord>,
}

/// A record to write (`Some`) or delete (`None`), by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurableChange {
    /// An admitted agent.
    Agent(AgentId, Option<AgentRecord>),
    /// A framework.
    Framework(FrameworkId, Option<FrameworkRecord>),
    /// A gone agent.
    Gone(AgentId, Option<GoneRecord>),
}

impl Records {
    /// Applies `changes` in order (a later change of the same key wins): how
    /// a store that holds the records follows the core.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = DurableChange>) {
        for change in changes {
            match change {
                DurableChange::Agent(id, Some(record)) => {
                    self.agents.insert(id, record);
                }
                DurableChange::Agent(id, None) => {
                    self.agents.remove(&id);
                }
                DurableChange::Framework(id, Some(record)) => {
                    self.frameworks.insert(id, record);
                }
                DurableChange::Framework(id, None) => {
                    self.frameworks.remove(&id);
                }
                DurableChange::Gone(id, Some(record)) => {
                    self.gone.insert(id, record);
                }
                DurableChange::Gone(id, None) => {
                    self.gone.remove(&id);
                }
            }
        }
    }
}

/// Which record changed: the core's note of what to build at the next take.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DurableKey {
    Agent(AgentId),
    Framework(FrameworkId),
    Gone(AgentId),
}
