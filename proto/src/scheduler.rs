//! The scheduler API in the domain: the [`Call`]s a framework makes and the
//! [`Event`]s it receives. The SDK produces calls, the master core consumes
//! them; the simulator passes them between the two without any wire at all.

use crate::error::{ProtoError, required};
use crate::framework::{Filters, FrameworkInfo, validate_role};
use crate::ids::{AgentId, FrameworkId, OfferId, TaskId, optional_id, required_id};
use crate::offer::{Offer, Operation};
use crate::pb;
use crate::task::{StatusUuid, TaskStatus};
use crate::time::duration_from_secs;
use std::time::Duration;

/// A call from a framework (other than SUBSCRIBE, which carries no id yet).
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// Use offers (all on one agent) for operations; the rest is declined with `filters`.
    Accept {
        /// The offers used, all on the same agent.
        offer_ids: Vec<OfferId>,
        /// What to do with them.
        operations: Vec<Operation>,
        /// Applied to whatever the operations leave unused.
        filters: Filters,
    },
    /// Give offers back.
    Decline {
        /// The offers declined.
        offer_ids: Vec<OfferId>,
        /// How long not to re-offer those resources.
        filters: Filters,
    },
    /// Clear decline filters and resume offers for `roles` (all when empty).
    Revive {
        /// Roles; empty means all of the framework's roles.
        roles: Vec<String>,
    },
    /// Stop offers for `roles` (all when empty); updates keep flowing.
    Suppress {
        /// Roles; empty means all of the framework's roles.
        roles: Vec<String>,
    },
    /// Kill a task.
    Kill {
        /// The task.
        task_id: TaskId,
        /// Its agent, if the framework knows it.
        agent_id: Option<AgentId>,
    },
    /// Acknowledge a status update.
    Acknowledge {
        /// The agent that sent it.
        agent_id: AgentId,
        /// The task.
        task_id: TaskId,
        /// The update's uuid.
        uuid: StatusUuid,
    },
    /// Ask for the latest state of tasks (all of them when empty).
    Reconcile {
        /// Tasks to reconcile; empty means implicit reconciliation.
        tasks: Vec<(TaskId, Option<AgentId>)>,
    },
    /// Unregister: kill every task and forget the framework.
    Teardown,
    /// Change the framework's description (its roles, for instance).
    UpdateFramework(FrameworkInfo),
}

impl Call {
    /// The Mesos name of the call, for logs and metrics.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Accept { .. } => "ACCEPT",
            Self::Decline { .. } => "DECLINE",
            Self::Revive { .. } => "REVIVE",
            Self::Suppress { .. } => "SUPPRESS",
            Self::Kill { .. } => "KILL",
            Self::Acknowledge { .. } => "ACKNOWLEDGE",
            Self::Reconcile { .. } => "RECONCILE",
            Self::Teardown => "TEARDOWN",
            Self::UpdateFramework(_) => "UPDATE_FRAMEWORK",
        }
    }
}

/// A call together with the framework that makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameworkCall {
    /// The caller.
    pub framework_id: FrameworkId,
    /// What it asks.
    pub call: Call,
}

fn offer_ids(wire: Vec<pb::OfferId>) -> Result<Vec<OfferId>, ProtoError> {
    if wire.is_empty() {
        return Err(ProtoError::missing("offer_ids"));
    }
    wire.into_iter()
        .enumerate()
        .map(|(i, id)| OfferId::try_from(id).map_err(|e| e.within(&format!("offer_ids[{i}]"))))
        .collect()
}

fn roles(wire: Vec<String>) -> Result<Vec<String>, ProtoError> {
    for (i, role) in wire.iter().enumerate() {
        validate_role(role).map_err(|reason| ProtoError::invalid(format!("roles[{i}]"), reason))?;
    }
    Ok(wire)
}

macro_rules! framework_call {
    ($wire:ty, |$w:ident| $body:expr) => {
        impl TryFrom<$wire> for FrameworkCall {
            type Error = ProtoError;
            fn try_from(mut $w: $wire) -> Result<Self, ProtoError> {
                let framework_id = required_id($w.framework_id.take(), "framework_id")?;
                let call = $body;
                Ok(Self { framework_id, call })
            }
        }
    };
}

framework_call!(pb::AcceptRequest, |w| {
    let operations = std::mem::take(&mut w.operations)
        .into_iter()
        .enumerate()
        .map(|(i, op)| Operation::try_from(op).map_err(|e| e.within(&format!("operations[{i}]"))))
        .collect::<Result<_, _>>()?;
    Call::Accept {
        offer_ids: offer_ids(w.offer_ids)?,
        operations,
        filters: Filters::from_wire(w.filters)?,
    }
});
framework_call!(pb::DeclineRequest, |w| Call::Decline {
    offer_ids: offer_ids(w.offer_ids)?,
    filters: Filters::from_wire(w.filters)?,
});
framework_call!(pb::ReviveRequest, |w| Call::Revive { roles: roles(w.roles)? });
framework_call!(pb::SuppressRequest, |w| Call::Suppress { roles: roles(w.roles)? });
framework_call!(pb::KillRequest, |w| Call::Kill {
    task_id: required_id(w.task_id, "task_id")?,
    agent_id: optional_id(w.agent_id, "agent_id")?,
});
framework_call!(pb::AcknowledgeRequest, |w| Call::Acknowledge {
    agent_id: required_id(w.agent_id, "agent_id")?,
    task_id: required_id(w.task_id, "task_id")?,
    uuid: StatusUuid::try_from(w.uuid.as_slice())?,
});
framework_call!(pb::ReconcileRequest, |w| Call::Reconcile {
    tasks: w
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("tasks[{i}]");
            Ok((
                required_id(t.task_id, "task_id").map_err(|e: ProtoError| e.within(&field))?,
                optional_id(t.agent_id, "agent_id").map_err(|e: ProtoError| e.within(&field))?,
            ))
        })
        .collect::<Result<_, ProtoError>>()?,
});
framework_call!(pb::TeardownRequest, |_w| Call::Teardown);

impl TryFrom<pb::UpdateFrameworkRequest> for FrameworkCall {
    type Error = ProtoError;
    fn try_from(wire: pb::UpdateFrameworkRequest) -> Result<Self, ProtoError> {
        let info = FrameworkInfo::try_from(required(wire.framework_info, "framework_info")?)
            .map_err(|e| e.within("framework_info"))?;
        let framework_id = info
            .id
            .clone()
            .ok_or_else(|| ProtoError::missing("framework_info.id"))?;
        Ok(Self {
            framework_id,
            call: Call::UpdateFramework(info),
        })
    }
}

/// A call in its wire form, one variant per RPC, for the SDK driver.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum WireCall {
    Accept(pb::AcceptRequest),
    Decline(pb::DeclineRequest),
    Revive(pb::ReviveRequest),
    Suppress(pb::SuppressRequest),
    Kill(pb::KillRequest),
    Acknowledge(pb::AcknowledgeRequest),
    Reconcile(pb::ReconcileRequest),
    Teardown(pb::TeardownRequest),
    UpdateFramework(pb::UpdateFrameworkRequest),
}

impl From<FrameworkCall> for WireCall {
    fn from(fc: FrameworkCall) -> Self {
        let framework_id = Some(pb::FrameworkId::from(fc.framework_id));
        match fc.call {
            Call::Accept {
                offer_ids,
                operations,
                filters,
            } => Self::Accept(pb::AcceptRequest {
                framework_id,
                offer_ids: offer_ids.into_iter().map(Into::into).collect(),
                operations: operations.into_iter().map(Into::into).collect(),
                filters: Some(filters.into()),
            }),
            Call::Decline { offer_ids, filters } => Self::Decline(pb::DeclineRequest {
                framework_id,
                offer_ids: offer_ids.into_iter().map(Into::into).collect(),
                filters: Some(filters.into()),
            }),
            Call::Revive { roles } => Self::Revive(pb::ReviveRequest { framework_id, roles }),
            Call::Suppress { roles } => Self::Suppress(pb::SuppressRequest { framework_id, roles }),
            Call::Kill { task_id, agent_id } => Self::Kill(pb::KillRequest {
                framework_id,
                task_id: Some(task_id.into()),
                agent_id: agent_id.map(Into::into),
            }),
            Call::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => Self::Acknowledge(pb::AcknowledgeRequest {
                framework_id,
                agent_id: Some(agent_id.into()),
                task_id: Some(task_id.into()),
                uuid: uuid.0.to_vec(),
            }),
            Call::Reconcile { tasks } => Self::Reconcile(pb::ReconcileRequest {
                framework_id,
                tasks: tasks
                    .into_iter()
                    .map(|(task_id, agent_id)| pb::ReconcileTask {
                        task_id: Some(task_id.into()),
                        agent_id: agent_id.map(Into::into),
                    })
                    .collect(),
            }),
            Call::Teardown => Self::Teardown(pb::TeardownRequest { framework_id }),
            Call::UpdateFramework(mut info) => {
                info.id = framework_id.and_then(|id| FrameworkId::try_from(id).ok());
                Self::UpdateFramework(pb::UpdateFrameworkRequest {
                    framework_info: Some(info.into()),
                })
            }
        }
    }
}

/// An event the master sends a framework.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The subscription succeeded.
    Subscribed {
        /// The framework's id (new, or the one it re-subscribed with).
        framework_id: FrameworkId,
        /// How often heartbeats come; missing about five means the link is dead.
        heartbeat_interval: Duration,
        /// The master's id.
        master_id: String,
    },
    /// New offers.
    Offers(Vec<Offer>),
    /// An offer is withdrawn.
    Rescind(OfferId),
    /// A task's status changed.
    Update(TaskStatus),
    /// An agent was lost.
    Failure {
        /// The agent.
        agent_id: AgentId,
    },
    /// A framework-level error; the subscription ends.
    Error(String),
    /// The link is alive.
    Heartbeat,
}

impl TryFrom<pb::Event> for Event {
    type Error = ProtoError;
    fn try_from(wire: pb::Event) -> Result<Self, ProtoError> {
        use pb::event::Event as E;
        Ok(match required(wire.event, "event")? {
            E::Subscribed(s) => Self::Subscribed {
                framework_id: required_id(s.framework_id, "subscribed.framework_id")?,
                heartbeat_interval: duration_from_secs(s.heartbeat_interval_seconds).ok_or_else(|| {
                    ProtoError::invalid(
                        "subscribed.heartbeat_interval_seconds",
                        format!(
                            "{} is not a non-negative number of seconds",
                            s.heartbeat_interval_seconds
                        ),
                    )
                })?,
                master_id: s.master_id,
            },
            E::Offers(o) => Self::Offers(
                o.offers
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| Offer::try_from(o).map_err(|e| e.within(&format!("offers.offers[{i}]"))))
                    .collect::<Result<_, _>>()?,
            ),
            E::Rescind(r) => Self::Rescind(required_id(r.offer_id, "rescind.offer_id")?),
            E::Update(u) => Self::Update(
                TaskStatus::try_from(required(u.status, "update.status")?).map_err(|e| e.within("update.status"))?,
            ),
            E::Failure(f) => Self::Failure {
                agent_id: required_id(f.agent_id, "failure.agent_id")?,
            },
            E::Error(e) => Self::Error(e.message),
            E::Heartbeat(_) => Self::Heartbeat,
        })
    }
}

impl From<Event> for pb::Event {
    fn from(event: Event) -> Self {
        use pb::event::Event as E;
        let event = match event {
            Event::Subscribed {
                framework_id,
                heartbeat_interval,
                master_id,
            } => E::Subscribed(pb::Subscribed {
                framework_id: Some(framework_id.into()),
                heartbeat_interval_seconds: heartbeat_interval.as_secs_f64(),
                master_id,
            }),
            Event::Offers(offers) => E::Offers(pb::Offers {
                offers: offers.into_iter().map(Into::into).collect(),
            }),
            Event::Rescind(offer_id) => E::Rescind(pb::Rescind {
                offer_id: Some(offer_id.into()),
            }),
            Event::Update(status) => E::Update(pb::Update {
                status: Some(status.into()),
            }),
            Event::Failure { agent_id } => E::Failure(pb::Failure {
                agent_id: Some(agent_id.into()),
            }),
            Event::Error(message) => E::Error(pb::Error { message }),
            Event::Heartbeat => E::Heartbeat(pb::Heartbeat {}),
        };
        Self { event: Some(event) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_without_offers_is_rejected() {
        let err = FrameworkCall::try_from(pb::AcceptRequest {
            framework_id: Some(pb::FrameworkId { value: "f".into() }),
            ..Default::default()
        })
        .expect_err("no offers");
        assert_eq!(err, ProtoError::missing("offer_ids"));
    }

    #[test]
    fn call_without_framework_id_is_rejected() {
        let err = FrameworkCall::try_from(pb::ReviveRequest::default()).expect_err("no id");
        assert_eq!(err, ProtoError::missing("framework_id"));
    }

    #[test]
    fn calls_round_trip_through_the_wire() {
        let framework_id = FrameworkId::new("f").expect("valid");
        let calls = vec![
            Call::Decline {
                offer_ids: vec![OfferId::new("o1").expect("valid")],
                filters: Filters::refuse(Duration::from_secs(30)),
            },
            Call::Revive {
                roles: vec!["a".into()],
            },
            Call::Kill {
                task_id: TaskId::new("t").expect("valid"),
                agent_id: None,
            },
            Call::Reconcile { tasks: vec![] },
            Call::Teardown,
        ];
        for call in calls {
            let fc = FrameworkCall {
                framework_id: framework_id.clone(),
                call,
            };
            let back = match WireCall::from(fc.clone()) {
                WireCall::Decline(w) => FrameworkCall::try_from(w),
                WireCall::Revive(w) => FrameworkCall::try_from(w),
                WireCall::Kill(w) => FrameworkCall::try_from(w),
                WireCall::Reconcile(w) => FrameworkCall::try_from(w),
                WireCall::Teardown(w) => FrameworkCall::try_from(w),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(back, Ok(fc));
        }
    }
}
