//! Ready-made frameworks built on the [`Scheduler`](crate::Scheduler) trait:
//! [`Batch`] runs a fixed number of tasks to completion, [`Service`] keeps a
//! number of instances running. Both are pure, so a simulator runs them
//! unchanged.

mod batch;
mod service;

pub use batch::{Batch, BatchConfig};
pub use service::{Instance, Service, ServiceConfig};

use crate::calls::Calls;
use crate::matching::{Strategy, TaskRequest, place};
use agora_proto::{AgentId, CommandInfo, Filters, Offer, TaskId, TaskInfo};
use std::time::Duration;

/// What every task of a framework runs and needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTemplate {
    /// Prefix of the task ids (`NAME-3`); must be usable in an id (no `/`,
    /// no control characters).
    pub name: String,
    /// What each task runs.
    pub command: CommandInfo,
    /// What each task needs.
    pub request: TaskRequest,
    /// Time between SIGTERM and SIGKILL when a task is killed.
    pub kill_grace_period: Option<Duration>,
}

impl TaskTemplate {
    /// Tasks named `name` running `command` with `request`.
    pub fn new(name: impl Into<String>, command: CommandInfo, request: TaskRequest) -> Self {
        Self {
            name: name.into(),
            command,
            request,
            kill_grace_period: None,
        }
    }

    /// The id `NAME-SUFFIX`.
    fn task_id(&self, suffix: &str) -> Result<TaskId, FrameworkError> {
        let id = format!("{}-{suffix}", self.name);
        TaskId::new(id.clone()).map_err(|e| FrameworkError::InvalidTaskId {
            id,
            reason: e.to_string(),
        })
    }
}

/// A framework's configuration cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameworkError {
    /// The task name prefix does not make valid task ids.
    #[error("task id {id:?} built from the task name is invalid: {reason}")]
    InvalidTaskId {
        /// The id that was built.
        id: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// How long declined offers stay away while tasks still wait for resources:
/// short, so that freed resources come back soon.
pub const DEFAULT_DECLINE_REFUSE: Duration = Duration::from_secs(2);

/// How long declined offers stay away once nothing waits (offers are also
/// suppressed then; this covers offers already in flight).
pub const DEFAULT_IDLE_REFUSE: Duration = Duration::from_secs(120);

/// Launches as many of `waiting` (task ids, in order) as fit in `offers`,
/// one ACCEPT per offer group, and declines the offers left unused with
/// `unused`. Returns the indices (into `waiting`) launched, with their agent.
fn launch_waiting(
    calls: &mut Calls,
    offers: &[Offer],
    template: &TaskTemplate,
    waiting: &[TaskId],
    strategy: Strategy,
    refuse: Duration,
    unused: Filters,
) -> Vec<(usize, AgentId)> {
    let requests = vec![template.request.clone(); waiting.len()];
    let placement = place(offers, &requests, strategy);
    let mut launched = Vec::with_capacity(placement.placed());
    for plan in placement.plans {
        let tasks = plan
            .tasks
            .into_iter()
            .map(|placed| {
                launched.push((placed.request, plan.agent_id.clone()));
                let task_id = waiting[placed.request].clone();
                TaskInfo {
                    name: task_id.to_string(),
                    task_id,
                    agent_id: plan.agent_id.clone(),
                    resources: placed.resources,
                    command: template.command.clone(),
                    kill_grace_period: template.kill_grace_period,
                }
            })
            .collect();
        calls.launch_with_filters(plan.offer_ids, tasks, Filters::refuse(refuse));
    }
    calls.decline(placement.unused, unused);
    launched
}

#[cfg(test)]
pub(crate) mod testing {
    //! Synthetic offers and updates for driving frameworks through a session.

    use agora_proto::{
        AgentId, Call, Event, FrameworkCall, FrameworkId, Offer, OfferId, Operation, StatusUuid, TaskId, TaskInfo,
        TaskState, TaskStatus, Timestamp,
    };
    use std::time::Duration;

    pub(crate) fn subscribed() -> Event {
        Event::Subscribed {
            framework_id: FrameworkId::new("fw").expect("id"),
            heartbeat_interval: Duration::from_secs(15),
            master_id: "m".to_owned(),
        }
    }

    pub(crate) fn offer(id: &str, agent: &str, spec: &str) -> Offer {
        Offer {
            id: OfferId::new(id).expect("id"),
            framework_id: FrameworkId::new("fw").expect("id"),
            agent_id: AgentId::new(agent).expect("id"),
            hostname: agent.to_owned(),
            resources: spec.parse().expect("resources"),
            attributes: Default::default(),
            role: "*".to_owned(),
        }
    }

    pub(crate) fn update(task: &TaskId, state: TaskState, uuid: u128) -> Event {
        let mut s = TaskStatus::new(task.clone(), state, Timestamp::ZERO);
        s.agent_id = Some(AgentId::new("a1").expect("id"));
        s.uuid = Some(StatusUuid::from_u128(uuid));
        Event::Update(s)
    }

    /// The tasks launched by `calls`, in order.
    pub(crate) fn launched(calls: &[FrameworkCall]) -> Vec<TaskInfo> {
        calls
            .iter()
            .flat_map(|c| match &c.call {
                Call::Accept { operations, .. } => operations
                    .iter()
                    .flat_map(|op| match op {
                        Operation::Launch(tasks) => tasks.clone(),
                        Operation::Reserve(_) | Operation::Unreserve(_) => Vec::new(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    pub(crate) fn names(calls: &[FrameworkCall]) -> Vec<&'static str> {
        calls.iter().map(|c| c.call.name()).collect()
    }
}
