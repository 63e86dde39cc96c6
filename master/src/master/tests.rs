//! Unit tests of the master core, driven in virtual time.

use super::*;
use crate::io::{Input, Output};
use agora_proto::{CommandInfo, RoleQuota, TaskInfo};

/// A master in virtual time, with helpers that play agents and frameworks.
pub(crate) struct Harness {
    pub(crate) master: Master,
    pub(crate) now: Timestamp,
    next_conn: u64,
    /// Every output, in order, since the last `take`.
    pub(crate) outputs: Vec<Output>,
}

pub(crate) fn res(spec: &str) -> Resources {
    spec.parse().expect("valid resource spec")
}

impl Harness {
    pub(crate) fn new() -> Self {
        let config = MasterConfig {
            allocation_interval: Duration::from_millis(100),
            ..MasterConfig::default()
        };
        Self::with_config(config)
    }

    pub(crate) fn with_config(config: MasterConfig) -> Self {
        Self {
            master: Master::new(config, 7),
            now: Timestamp::from_secs(1_000),
            next_conn: 0,
            outputs: Vec::new(),
        }
    }

    fn conn(&mut self) -> ConnectionId {
        self.next_conn += 1;
        ConnectionId(self.next_conn)
    }

    pub(crate) fn handle(&mut self, input: Input) -> Result<(), MasterError> {
        let result = self.master.handle(self.now, input);
        self.drain();
        self.master.check_invariants().expect("invariants hold");
        result
    }

    fn drain(&mut self) {
        while let Some(out) = self.master.poll_output() {
            self.outputs.push(out);
        }
    }

    /// Fires every timer due up to `now + by`, in order.
    pub(crate) fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(t) = self.master.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.handle(Input::Tick).expect("tick never fails");
        }
        self.now = end;
        self.handle(Input::Tick).expect("tick never fails");
    }

    pub(crate) fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    pub(crate) fn add_agent(&mut self, spec: &str) -> (ConnectionId, AgentId) {
        let conn = self.conn();
        self.register_agent(conn, spec, None, vec![])
    }

    pub(crate) fn register_agent(
        &mut self,
        conn: ConnectionId,
        spec: &str,
        agent_id: Option<AgentId>,
        tasks: Vec<RunningTask>,
    ) -> (ConnectionId, AgentId) {
        let info = AgentInfo {
            hostname: format!("host-{}", conn.0),
            resources: res(spec),
            attributes: Default::default(),
        };
        self.handle(Input::Agent {
            conn,
            message: AgentMessage::Register { info, agent_id, tasks },
        })
        .expect("register");
        let id = self
            .outputs
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::ToAgent {
                    conn: c,
                    message: MasterMessage::Registered { agent_id, .. },
                } if *c == conn => Some(agent_id.clone()),
                _ => None,
            })
            .expect("registered");
        (conn, id)
    }

    pub(crate) fn subscribe(&mut self, info: FrameworkInfo) -> (ConnectionId, FrameworkId) {
        let conn = self.conn();
        self.handle(Input::Subscribe { conn, info }).expect("subscribe");
        let id = self
            .outputs
            .iter()
            .find_map(|o| match o {
                Output::ToFramework {
                    conn: c,
                    event: Event::Subscribed { framework_id, .. },
                } if *c == conn => Some(framework_id.clone()),
                _ => None,
            })
            .expect("subscribed");
        (conn, id)
    }

    pub(crate) fn framework(&mut self, name: &str) -> (ConnectionId, FrameworkId) {
        let mut info = FrameworkInfo::new(name);
        info.failover_timeout = Duration::from_secs(60);
        self.subscribe(info)
    }

    pub(crate) fn call(&mut self, framework_id: &FrameworkId, call: Call) -> Result<(), MasterError> {
        self.handle(Input::Call(FrameworkCall {
            framework_id: framework_id.clone(),
            call,
        }))
    }

    /// Offers sent to `conn` since the last `take`, consumed.
    pub(crate) fn offers(&mut self, conn: ConnectionId) -> Vec<Offer> {
        let mut offers = Vec::new();
        self.outputs.retain(|o| match o {
            Output::ToFramework {
                conn: c,
                event: Event::Offers(list),
            } if *c == conn => {
                offers.extend(list.iter().cloned());
                false
            }
            _ => true,
        });
        offers
    }

    pub(crate) fn updates(&mut self, conn: ConnectionId) -> Vec<TaskStatus> {
        let mut updates = Vec::new();
        self.outputs.retain(|o| match o {
            Output::ToFramework {
                conn: c,
                event: Event::Update(s),
            } if *c == conn => {
                updates.push(s.clone());
                false
            }
            _ => true,
        });
        updates
    }

    pub(crate) fn agent_messages(&mut self, conn: ConnectionId) -> Vec<MasterMessage> {
        let mut messages = Vec::new();
        self.outputs.retain(|o| match o {
            Output::ToAgent { conn: c, message } if *c == conn => {
                messages.push(message.clone());
                false
            }
            _ => true,
        });
        messages
    }

    /// The agent reports a state for a task, with a fresh uuid.
    pub(crate) fn agent_update(
        &mut self,
        conn: ConnectionId,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        state: TaskState,
        uuid: u128,
    ) {
        let mut status = TaskStatus::new(task_id.clone(), state, self.now);
        status.uuid = Some(StatusUuid::from_u128(uuid));
        status.source = Some(TaskSource::Agent);
        self.handle(Input::Agent {
            conn,
            message: AgentMessage::StatusUpdate {
                framework_id: framework_id.clone(),
                status,
            },
        })
        .expect("status update");
    }
}

/// A master with one agent of `spec` and one framework `f` holding its offer.
pub(crate) struct Offered {
    pub(crate) agent_conn: ConnectionId,
    pub(crate) agent_id: AgentId,
    pub(crate) conn: ConnectionId,
    pub(crate) framework_id: FrameworkId,
    pub(crate) offer: Offer,
}

impl Harness {
    pub(crate) fn offered(spec: &str) -> (Self, Offered) {
        let mut h = Self::new();
        let (agent_conn, agent_id) = h.add_agent(spec);
        let (conn, framework_id) = h.framework("f");
        h.advance(Duration::from_millis(100));
        let offer = h.offers(conn).remove(0);
        let offered = Offered {
            agent_conn,
            agent_id,
            conn,
            framework_id,
            offer,
        };
        (h, offered)
    }
}

pub(crate) fn task(id: &str, agent_id: &AgentId, spec: &str) -> TaskInfo {
    TaskInfo {
        name: id.to_owned(),
        task_id: TaskId::new(id).expect("valid id"),
        agent_id: agent_id.clone(),
        resources: res(spec),
        command: CommandInfo::shell("sleep 1"),
        kill_grace_period: None,
    }
}

pub(crate) fn launch(offer: &Offer, tasks: Vec<TaskInfo>) -> Call {
    Call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![Operation::Launch(tasks)],
        filters: Filters::default(),
    }
}

#[test]
fn agent_resources_are_offered_to_a_subscribed_framework() {
    let mut h = Harness::new();
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offers = h.offers(conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id, agent_id);
    assert_eq!(offers[0].framework_id, framework_id);
    assert_eq!(offers[0].resources, res("cpus:4;mem:1024"));
}

#[test]
fn subscribe_answers_subscribed_then_heartbeat() {
    let mut h = Harness::new();
    let (conn, _) = h.framework("f");
    let events: Vec<&Event> = h
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::ToFramework { conn: c, event } if *c == conn => Some(event),
            _ => None,
        })
        .collect();
    assert!(matches!(events[0], Event::Subscribed { .. }));
    assert!(matches!(events[1], Event::Heartbeat));
}

#[test]
fn heartbeats_arrive_every_interval() {
    let mut h = Harness::new();
    let (conn, _) = h.framework("f");
    h.take();
    h.advance(Duration::from_secs(46));
    let beats = h
        .take()
        .into_iter()
        .filter(|o| matches!(o, Output::ToFramework { conn: c, event: Event::Heartbeat } if *c == conn))
        .count();
    assert_eq!(beats, 3);
}

#[test]
fn launch_sends_the_task_to_its_agent_and_returns_the_unused_part() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.agent_messages(agent_conn);
    h.call(
        &framework_id,
        launch(&offer, vec![task("t1", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    let messages = h.agent_messages(agent_conn);
    assert!(matches!(&messages[..], [MasterMessage::RunTask { task, .. }] if task.task_id.as_str() == "t1"));
    // The unused part is filtered for 5 s, then offered again.
    h.advance(Duration::from_secs(6));
    let offers = h.offers(conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].resources, res("cpus:3;mem:896"));
}

#[test]
fn declined_agent_is_not_reoffered_before_filter_expires() {
    let mut h = Harness::new();
    h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn).remove(0);
    h.call(
        &framework_id,
        Call::Decline {
            offer_ids: vec![offer.id],
            filters: Filters::refuse(Duration::from_secs(30)),
        },
    )
    .expect("decline");
    h.advance(Duration::from_secs(29));
    assert!(h.offers(conn).is_empty(), "re-offered before the filter expired");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.offers(conn).len(), 1, "not re-offered after the filter expired");
}

#[test]
fn revive_clears_filters() {
    let mut h = Harness::new();
    h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn).remove(0);
    h.call(
        &framework_id,
        Call::Decline {
            offer_ids: vec![offer.id],
            filters: Filters::refuse(Duration::from_secs(3600)),
        },
    )
    .expect("decline");
    h.advance(Duration::from_secs(1));
    assert!(h.offers(conn).is_empty());
    h.call(&framework_id, Call::Revive { roles: vec![] }).expect("revive");
    h.advance(Duration::from_millis(200));
    assert_eq!(h.offers(conn).len(), 1);
}

#[test]
fn suppressed_framework_gets_no_offers_until_revived() {
    let mut h = Harness::new();
    let (conn, framework_id) = h.framework("f");
    h.call(&framework_id, Call::Suppress { roles: vec![] })
        .expect("suppress");
    h.add_agent("cpus:4;mem:1024");
    h.advance(Duration::from_secs(10));
    assert!(h.offers(conn).is_empty());
    h.call(&framework_id, Call::Revive { roles: vec![] }).expect("revive");
    h.advance(Duration::from_millis(200));
    assert_eq!(h.offers(conn).len(), 1);
}

#[test]
fn stale_offer_drops_the_tasks_with_a_reason() {
    let (
        mut h,
        Offered {
            agent_conn: _,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t1", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    // The same offer again: it is gone now.
    h.call(
        &framework_id,
        launch(&offer, vec![task("t2", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept is queued, not refused");
    let updates = h.updates(conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].task_id.as_str(), "t2");
    assert_eq!(
        updates[0].state,
        TaskState::Lost,
        "not partition-aware: DROPPED shows as LOST"
    );
    assert_eq!(updates[0].reason, Some(TaskReason::InvalidOffers));
    assert!(updates[0].message.contains("no longer valid"), "{}", updates[0].message);
}

#[test]
fn offer_of_another_framework_is_refused_and_left_alone() {
    let mut h = Harness::new();
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (conn_a, _) = h.framework("a");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn_a).remove(0);
    let mut info = FrameworkInfo::new("b");
    info.capabilities.insert(Capability::PartitionAware);
    let (conn_b, b) = h.subscribe(info);
    h.call(&b, launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]))
        .expect("queued");
    let updates = h.updates(conn_b);
    assert_eq!(updates[0].state, TaskState::Dropped);
    assert!(
        updates[0].message.contains("is not an offer to framework"),
        "{}",
        updates[0].message
    );
    assert!(
        h.master.offers.contains_key(&offer.id),
        "a's offer must survive b's misuse"
    );
}

#[test]
fn offers_on_two_agents_in_one_accept_are_refused() {
    let mut h = Harness::new();
    let (_, a1) = h.add_agent("cpus:4;mem:1024");
    h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offers = h.offers(conn);
    assert_eq!(offers.len(), 2);
    h.call(
        &framework_id,
        Call::Accept {
            offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
            operations: vec![Operation::Launch(vec![task("t", &a1, "cpus:1;mem:128")])],
            filters: Filters::default(),
        },
    )
    .expect("queued");
    let updates = h.updates(conn);
    assert_eq!(updates[0].reason, Some(TaskReason::InvalidOffers));
    assert!(updates[0].message.contains("one agent"), "{}", updates[0].message);
    // Both offers came back unfiltered and are offered again.
    h.advance(Duration::from_millis(200));
    assert_eq!(h.offers(conn).len(), 2);
}

#[test]
fn task_larger_than_the_offer_is_a_task_error_and_leaks_nothing() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:2;mem:1024");
    h.agent_messages(agent_conn);
    h.call(
        &framework_id,
        launch(
            &offer,
            vec![
                task("big", &agent_id, "cpus:3;mem:128"),
                task("ok", &agent_id, "cpus:1;mem:128"),
            ],
        ),
    )
    .expect("queued");
    let updates = h.updates(conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Error);
    assert_eq!(updates[0].reason, Some(TaskReason::TaskInvalid));
    assert!(updates[0].message.contains("more resources"), "{}", updates[0].message);
    assert_eq!(h.agent_messages(agent_conn).len(), 1, "only the valid task runs");
    assert_eq!(h.master.allocator.agent_allocated(&agent_id), res("cpus:1;mem:128"));
}

#[test]
fn duplicate_task_ids_are_task_errors() {
    let (
        mut h,
        Offered {
            agent_conn: _,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(
            &offer,
            vec![
                task("t", &agent_id, "cpus:1;mem:128"),
                task("t", &agent_id, "cpus:1;mem:128"),
            ],
        ),
    )
    .expect("queued");
    let updates = h.updates(conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Error);
    assert_eq!(updates[0].message, "Task ID 't' is already in use");
}

#[test]
fn task_for_another_agent_is_a_task_error() {
    let mut h = Harness::new();
    h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn).remove(0);
    let elsewhere = AgentId::new("elsewhere").expect("valid");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &elsewhere, "cpus:1;mem:128")]),
    )
    .expect("queued");
    let updates = h.updates(conn);
    assert_eq!(updates[0].state, TaskState::Error);
    assert!(updates[0].message.contains("does not match"), "{}", updates[0].message);
}

#[test]
fn calls_from_unknown_or_unsubscribed_frameworks_are_refused() {
    let mut h = Harness::new();
    let stranger = FrameworkId::new("stranger").expect("valid");
    assert_eq!(
        h.call(&stranger, Call::Revive { roles: vec![] }),
        Err(MasterError::UnknownFramework(stranger.clone()))
    );
    let (conn, framework_id) = h.framework("f");
    h.handle(Input::FrameworkDisconnected { conn }).expect("disconnect");
    assert_eq!(
        h.call(&framework_id, Call::Revive { roles: vec![] }),
        Err(MasterError::FrameworkNotSubscribed(framework_id.clone()))
    );
    assert!(matches!(
        h.call(
            &framework_id,
            Call::Suppress {
                roles: vec!["nope".into()]
            }
        ),
        Err(MasterError::FrameworkNotSubscribed(_))
    ));
}

#[test]
fn revive_of_a_role_the_framework_does_not_hold_is_refused() {
    let mut h = Harness::new();
    let (_, framework_id) = h.framework("f");
    assert!(matches!(
        h.call(
            &framework_id,
            Call::Revive {
                roles: vec!["other".into()]
            }
        ),
        Err(MasterError::UnknownRole { .. })
    ));
}

#[test]
fn status_updates_are_forwarded_and_acknowledgements_reach_the_agent() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    let task_id = TaskId::new("t").expect("valid");
    h.agent_update(agent_conn, &framework_id, &task_id, TaskState::Running, 1);
    h.agent_update(agent_conn, &framework_id, &task_id, TaskState::Finished, 2);
    let updates = h.updates(conn);
    assert_eq!(
        updates.iter().map(|u| u.state).collect::<Vec<_>>(),
        [TaskState::Running, TaskState::Finished]
    );
    assert_eq!(updates[1].agent_id.as_ref(), Some(&agent_id));
    h.agent_messages(agent_conn);
    h.call(
        &framework_id,
        Call::Acknowledge {
            agent_id: agent_id.clone(),
            task_id: task_id.clone(),
            uuid: StatusUuid::from_u128(2),
        },
    )
    .expect("ack");
    assert!(matches!(
        &h.agent_messages(agent_conn)[..],
        [MasterMessage::Acknowledge { uuid, .. }] if *uuid == StatusUuid::from_u128(2)
    ));
    assert!(
        h.master.frameworks[&framework_id].tasks.is_empty(),
        "acknowledged terminal task is removed"
    );
    assert_eq!(h.master.allocator.agent_allocated(&agent_id), Resources::new());
    assert_eq!(h.master.completed_tasks.len(), 1);
}

#[test]
fn acknowledging_for_an_unknown_agent_is_refused() {
    let mut h = Harness::new();
    let (_, framework_id) = h.framework("f");
    let ghost = AgentId::new("ghost").expect("valid");
    assert_eq!(
        h.call(
            &framework_id,
            Call::Acknowledge {
                agent_id: ghost.clone(),
                task_id: TaskId::new("t").expect("valid"),
                uuid: StatusUuid::from_u128(1),
            }
        ),
        Err(MasterError::UnknownAgent(ghost))
    );
}

#[test]
fn kill_is_forwarded_and_an_unknown_task_is_reported() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    h.agent_messages(agent_conn);
    h.call(
        &framework_id,
        Call::Kill {
            task_id: TaskId::new("t").expect("valid"),
            agent_id: None,
        },
    )
    .expect("kill");
    assert!(matches!(
        &h.agent_messages(agent_conn)[..],
        [MasterMessage::KillTask { .. }]
    ));
    h.call(
        &framework_id,
        Call::Kill {
            task_id: TaskId::new("nope").expect("valid"),
            agent_id: None,
        },
    )
    .expect("kill");
    let updates = h.updates(conn);
    assert_eq!(updates[0].state, TaskState::Lost);
    assert_eq!(updates[0].reason, Some(TaskReason::TaskUnknown));
}

#[test]
fn implicit_and_explicit_reconciliation() {
    let mut h = Harness::new();
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    let mut info = FrameworkInfo::new("f");
    info.failover_timeout = Duration::from_secs(60);
    info.capabilities.insert(Capability::PartitionAware);
    let (conn, framework_id) = h.subscribe(info);
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn).remove(0);
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    let t = TaskId::new("t").expect("valid");
    h.agent_update(agent_conn, &framework_id, &t, TaskState::Running, 1);
    h.updates(conn);

    h.call(&framework_id, Call::Reconcile { tasks: vec![] })
        .expect("reconcile");
    let updates = h.updates(conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Running);
    assert_eq!(updates[0].reason, Some(TaskReason::Reconciliation));
    assert_eq!(updates[0].uuid, None, "reconciliation answers are not acknowledged");

    let unknown = TaskId::new("unknown").expect("valid");
    h.call(
        &framework_id,
        Call::Reconcile {
            tasks: vec![
                (t, Some(agent_id.clone())),
                (unknown.clone(), Some(agent_id)),
                (unknown, None),
            ],
        },
    )
    .expect("reconcile");
    let states: Vec<TaskState> = h.updates(conn).iter().map(|u| u.state).collect();
    assert_eq!(states, [TaskState::Running, TaskState::Gone, TaskState::Unknown]);
}

#[test]
fn disconnected_agent_offers_are_rescinded_then_it_becomes_unreachable() {
    let mut h = Harness::new();
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offers = h.offers(conn);
    let offer = offers[0].clone();
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    h.advance(Duration::from_secs(6));
    let reoffer = h.offers(conn).remove(0);
    h.take();
    h.handle(Input::AgentDisconnected { conn: agent_conn })
        .expect("disconnect");
    assert!(
        h.take()
            .iter()
            .any(|o| matches!(o, Output::ToFramework { event: Event::Rescind(id), .. } if *id == reoffer.id))
    );
    h.advance(Duration::from_secs(76));
    let events = h.take();
    assert!(events.iter().any(|o| matches!(
        o,
        Output::ToFramework { event: Event::Update(s), .. } if s.state == TaskState::Lost
    )));
    assert!(events.iter().any(|o| matches!(
        o,
        Output::ToFramework {
            event: Event::Failure { .. },
            ..
        }
    )));
    assert_eq!(h.master.state().agents[0].status, AgentStatus::Unreachable);
}

#[test]
fn silent_agent_becomes_unreachable_after_missed_pings() {
    let mut h = Harness::new();
    let (agent_conn, _) = h.add_agent("cpus:4;mem:1024");
    h.advance(Duration::from_secs(60));
    assert!(
        h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::Ping))
    );
    assert_eq!(h.master.state().agents[0].status, AgentStatus::Active);
    h.advance(Duration::from_secs(20));
    assert_eq!(h.master.state().agents[0].status, AgentStatus::Unreachable);
}

#[test]
fn answering_pings_keeps_an_agent_alive() {
    let mut h = Harness::new();
    let (agent_conn, _) = h.add_agent("cpus:4;mem:1024");
    for _ in 0..20 {
        h.advance(Duration::from_secs(15));
        h.handle(Input::Agent {
            conn: agent_conn,
            message: AgentMessage::Pong,
        })
        .expect("pong");
    }
    assert_eq!(h.master.state().agents[0].status, AgentStatus::Active);
}

#[test]
fn agent_reregisters_with_its_tasks_and_their_resources_stay_allocated() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            conn: _,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    let t = task("t", &agent_id, "cpus:1;mem:128");
    h.call(&framework_id, launch(&offer, vec![t.clone()])).expect("accept");
    h.handle(Input::AgentDisconnected { conn: agent_conn })
        .expect("disconnect");
    let running = RunningTask {
        framework_id: framework_id.clone(),
        task: t,
        state: TaskState::Running,
    };
    let new_conn = ConnectionId(999);
    let (_, id) = h.register_agent(new_conn, "cpus:4;mem:1024", Some(agent_id.clone()), vec![running]);
    assert_eq!(id, agent_id);
    assert_eq!(
        h.master.allocator.agent_allocated(&agent_id).cpus(),
        res("cpus:1").cpus() + h.offered_cpus(&agent_id)
    );
    assert_eq!(
        h.master.frameworks[&framework_id].tasks[&TaskId::new("t").expect("valid")].state,
        TaskState::Running
    );
}

impl Harness {
    fn offered_cpus(&self, agent_id: &AgentId) -> agora_proto::Scalar {
        self.master.agents[agent_id]
            .offers
            .iter()
            .map(|id| self.master.offers[id].resources.cpus())
            .fold(agora_proto::Scalar::ZERO, |a, b| a + b)
    }
}

#[test]
fn framework_failover_within_timeout_keeps_tasks_and_after_it_kills_them() {
    // Agents that never answer pings would be lost before the framework is.
    let mut h = Harness::with_config(MasterConfig {
        allocation_interval: Duration::from_millis(100),
        agent_ping_interval: Duration::from_secs(600),
        ..MasterConfig::default()
    });
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn).remove(0);
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    h.handle(Input::FrameworkDisconnected { conn }).expect("disconnect");
    h.advance(Duration::from_secs(30));
    let mut info = FrameworkInfo::new("f");
    info.id = Some(framework_id.clone());
    info.failover_timeout = Duration::from_secs(60);
    let (conn2, id2) = h.subscribe(info);
    assert_eq!(id2, framework_id);
    assert_eq!(h.master.frameworks[&framework_id].tasks.len(), 1);
    h.handle(Input::FrameworkDisconnected { conn: conn2 })
        .expect("disconnect");
    h.agent_messages(agent_conn);
    h.advance(Duration::from_secs(61));
    assert!(
        h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::ShutdownFramework { framework_id: f } if *f == framework_id))
    );
    assert!(!h.master.frameworks.contains_key(&framework_id));
    assert_eq!(h.master.allocator.agent_allocated(&agent_id), Resources::new());
    let mut info = FrameworkInfo::new("f");
    info.id = Some(framework_id.clone());
    assert_eq!(
        h.handle(Input::Subscribe {
            conn: ConnectionId(77),
            info
        }),
        Err(MasterError::FrameworkRemoved(framework_id))
    );
}

#[test]
fn resubscription_replaces_and_closes_the_old_stream() {
    let mut h = Harness::new();
    let (conn, framework_id) = h.framework("f");
    let mut info = FrameworkInfo::new("f");
    info.id = Some(framework_id.clone());
    info.failover_timeout = Duration::from_secs(60);
    let (conn2, _) = h.subscribe(info);
    assert!(h.take().contains(&Output::CloseFramework { conn }));
    // The old stream closing later must not disconnect the new one.
    h.handle(Input::FrameworkDisconnected { conn }).expect("late close");
    assert!(h.call(&framework_id, Call::Revive { roles: vec![] }).is_ok());
    let _ = conn2;
}

#[test]
fn teardown_kills_tasks_and_frees_everything() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            conn,
            framework_id,
            offer,
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    h.call(&framework_id, Call::Teardown).expect("teardown");
    assert!(h.take().contains(&Output::CloseFramework { conn }));
    assert_eq!(h.master.allocator.agent_allocated(&agent_id), Resources::new());
    // The agent's late KILLED update is acknowledged by the master itself.
    h.agent_update(
        agent_conn,
        &framework_id,
        &TaskId::new("t").expect("valid"),
        TaskState::Killed,
        9,
    );
    assert!(matches!(
        &h.agent_messages(agent_conn)[..],
        [.., MasterMessage::Acknowledge { .. }]
    ));
}

#[test]
fn first_agent_message_must_be_a_registration() {
    let mut h = Harness::new();
    let conn = ConnectionId(42);
    h.handle(Input::Agent {
        conn,
        message: AgentMessage::Pong,
    })
    .expect("handled");
    let out = h.take();
    assert!(matches!(&out[0], Output::ToAgent { message: MasterMessage::Error(m), .. } if m.contains("registration")));
    assert_eq!(out[1], Output::CloseAgent { conn });
}

#[test]
fn two_equal_frameworks_converge_to_equal_shares() {
    let mut h = Harness::new();
    for _ in 0..10 {
        h.add_agent("cpus:4;mem:4096");
    }
    let (ca, a) = h.framework("a");
    let (cb, b) = h.framework("b");
    let mut launched = 0;
    for round in 0..40 {
        h.advance(Duration::from_millis(200));
        for (conn, framework_id) in [(ca, a.clone()), (cb, b.clone())] {
            for offer in h.offers(conn) {
                // Each framework takes one task of cpus:1 per offer and declines the rest.
                let t = task(
                    &format!("{framework_id}-{round}-{launched}"),
                    &offer.agent_id,
                    "cpus:1;mem:512",
                );
                launched += 1;
                h.call(&framework_id, launch(&offer, vec![t])).expect("accept");
            }
        }
    }
    let state = h.master.state();
    let share = |id: &FrameworkId| {
        state
            .frameworks
            .iter()
            .find(|f| &f.id == id)
            .map(|f| f.allocated.cpus().as_f64())
            .unwrap_or(0.0)
    };
    let (sa, sb) = (share(&a), share(&b));
    assert!(sa + sb >= 38.0, "cluster should be nearly full: {sa} + {sb}");
    assert!(
        (sa - sb).abs() <= 1.0,
        "shares differ by more than one task: {sa} vs {sb}"
    );
}

#[test]
fn sandbox_reads_go_to_the_task_agent_and_answers_come_back() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            framework_id,
            offer,
            ..
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    h.agent_messages(agent_conn);
    let task_id = TaskId::new("t").expect("valid");
    h.handle(Input::ReadFile {
        request: 7,
        framework_id: None,
        task_id: task_id.clone(),
        file: SandboxFile::Stdout,
        offset: 0,
        max_bytes: 100,
    })
    .expect("read");
    assert!(matches!(
        &h.agent_messages(agent_conn)[..],
        [MasterMessage::ReadFile {
            request_id: 7,
            file: SandboxFile::Stdout,
            ..
        }]
    ));
    let chunk = agora_proto::FileChunk {
        data: b"hello\n".to_vec(),
        offset: 0,
        size: 6,
    };
    // An answer from another agent for the same request is ignored.
    let (other_conn, _) = h.add_agent("cpus:1;mem:64");
    h.handle(Input::Agent {
        conn: other_conn,
        message: AgentMessage::FileData {
            request_id: 7,
            result: Err("spoofed".into()),
        },
    })
    .expect("ignored");
    h.handle(Input::Agent {
        conn: agent_conn,
        message: AgentMessage::FileData {
            request_id: 7,
            result: Ok(chunk.clone()),
        },
    })
    .expect("answer");
    let answers: Vec<Output> = h
        .take()
        .into_iter()
        .filter(|o| matches!(o, Output::FileRead { .. }))
        .collect();
    assert_eq!(
        answers,
        [Output::FileRead {
            request: 7,
            result: Ok(chunk)
        }]
    );
}

#[test]
fn a_read_pending_on_an_agent_that_disconnects_fails() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            framework_id,
            offer,
            ..
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    h.handle(Input::ReadFile {
        request: 1,
        framework_id: None,
        task_id: TaskId::new("t").expect("valid"),
        file: SandboxFile::Stderr,
        offset: 0,
        max_bytes: 10,
    })
    .expect("read");
    h.take();
    h.handle(Input::AgentDisconnected { conn: agent_conn })
        .expect("disconnect");
    assert!(
        h.take()
            .iter()
            .any(|o| matches!(o, Output::FileRead { request: 1, result: Err(m) } if m.contains("disconnected")))
    );
}

#[test]
fn reads_and_kills_of_unknown_tasks_are_refused() {
    let mut h = Harness::new();
    let ghost = TaskId::new("ghost").expect("valid");
    assert_eq!(
        h.handle(Input::ReadFile {
            request: 1,
            framework_id: None,
            task_id: ghost.clone(),
            file: SandboxFile::Stdout,
            offset: 0,
            max_bytes: 1,
        }),
        Err(MasterError::UnknownTask(ghost.clone()))
    );
    assert_eq!(
        h.handle(Input::KillTask {
            framework_id: None,
            task_id: ghost.clone(),
        }),
        Err(MasterError::UnknownTask(ghost))
    );
}

#[test]
fn operator_kill_reaches_the_agent_and_ambiguous_ids_need_a_framework() {
    let mut h = Harness::new();
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:4096");
    let (ca, a) = h.framework("a");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(ca).remove(0);
    h.call(&a, launch(&offer, vec![task("same", &agent_id, "cpus:1;mem:128")]))
        .expect("accept");
    let (cb, b) = h.framework("b");
    h.advance(Duration::from_secs(6));
    let offer = h.offers(cb).remove(0);
    h.call(&b, launch(&offer, vec![task("same", &agent_id, "cpus:1;mem:128")]))
        .expect("accept");
    h.agent_messages(agent_conn);
    let same = TaskId::new("same").expect("valid");
    assert!(matches!(
        h.handle(Input::KillTask {
            framework_id: None,
            task_id: same.clone()
        }),
        Err(MasterError::AmbiguousTask { .. })
    ));
    h.handle(Input::KillTask {
        framework_id: Some(b.clone()),
        task_id: same,
    })
    .expect("kill");
    assert!(matches!(
        &h.agent_messages(agent_conn)[..],
        [MasterMessage::KillTask { framework_id, .. }] if *framework_id == b
    ));
}

#[test]
fn usage_reports_show_in_the_state() {
    let (
        mut h,
        Offered {
            agent_conn,
            agent_id,
            framework_id,
            offer,
            ..
        },
    ) = Harness::offered("cpus:4;mem:1024");
    h.call(
        &framework_id,
        launch(&offer, vec![task("t", &agent_id, "cpus:1;mem:128")]),
    )
    .expect("accept");
    let usage = TaskUsage {
        cpu_seconds: 1.5,
        mem_bytes: 1 << 20,
        pids: 3,
        timestamp: h.now,
    };
    h.handle(Input::Agent {
        conn: agent_conn,
        message: AgentMessage::Usage(vec![(framework_id, TaskId::new("t").expect("valid"), usage)]),
    })
    .expect("usage");
    assert_eq!(h.master.state().tasks[0].usage, Some(usage));
}

/// Two frameworks that launch one task per offer and return the rest
/// unfiltered, `b` subscribing a cycle after `a`; returns their task counts.
fn greedy_pair(reference: bool) -> (usize, usize, Vec<String>) {
    let config = MasterConfig {
        allocation_interval: Duration::from_millis(20),
        ..MasterConfig::default()
    };
    let mut h = Harness::with_config(config.clone());
    if reference {
        h.master = Master::with_allocator(
            config.clone(),
            Box::new(crate::allocator::reference::ReferenceDrfAllocator::new(
                config.drf.clone(),
            )),
            7,
        );
    }
    h.add_agent("cpus:8;mem:2048");
    h.add_agent("cpus:8;mem:2048");
    let (ca, a) = h.framework("a");
    h.advance(Duration::from_millis(20));
    let mut counts = [0usize; 2];
    let mut log = Vec::new();
    let mut frameworks = vec![(ca, a.clone())];
    for round in 0..100 {
        if round == 1 {
            frameworks.push(h.framework("b"));
        }
        for (i, (conn, id)) in frameworks.clone().into_iter().enumerate() {
            for offer in h.offers(conn) {
                log.push(format!(
                    "round {round}: {i} offered {} on {}",
                    offer.resources, offer.agent_id
                ));
                if offer.resources.cpus() >= agora_proto::Scalar::from_units(1) {
                    counts[i] += 1;
                    let t = task(&format!("{i}-{}", counts[i]), &offer.agent_id, "cpus:1;mem:256");
                    h.call(
                        &id,
                        Call::Accept {
                            offer_ids: vec![offer.id.clone()],
                            operations: vec![Operation::Launch(vec![t])],
                            filters: Filters::refuse(Duration::ZERO),
                        },
                    )
                    .expect("accept");
                } else {
                    h.call(
                        &id,
                        Call::Decline {
                            offer_ids: vec![offer.id.clone()],
                            filters: Filters::refuse(Duration::from_secs(3600)),
                        },
                    )
                    .expect("decline");
                }
            }
        }
        h.advance(Duration::from_millis(20));
    }
    (counts[0], counts[1], log)
}

#[test]
fn greedy_frameworks_end_within_one_task_and_match_the_reference_allocator() {
    let (a, b, log) = greedy_pair(false);
    let (ra, rb, rlog) = greedy_pair(true);
    assert_eq!((a, b), (ra, rb), "new {log:#?}\nreference {rlog:#?}");
    assert!(a.abs_diff(b) <= 1, "{a} vs {b}: {log:#?}");
}

#[test]
fn weight_updates_are_checked_and_name_the_field() {
    let mut h = Harness::new();
    let err = h
        .handle(Input::UpdateWeights(vec![
            ("web".to_owned(), 2.0),
            ("batch".to_owned(), 0.0),
        ]))
        .expect_err("a zero weight is refused");
    assert!(
        matches!(&err, MasterError::InvalidWeight { field, .. } if field == "weights[1].weight"),
        "{err}"
    );
    let err = h
        .handle(Input::UpdateWeights(vec![("bad role".to_owned(), 2.0)]))
        .expect_err("a bad role is refused");
    assert!(
        matches!(&err, MasterError::InvalidWeight { field, .. } if field == "weights[0].role"),
        "{err}"
    );
    // Refused as a whole: "web" did not get its weight.
    assert!(h.master.roles().iter().all(|r| r.weight == 1.0));
    h.handle(Input::UpdateWeights(vec![("web".to_owned(), 2.5)]))
        .expect("valid");
    let roles = h.master.roles();
    assert_eq!(roles.len(), 1);
    assert_eq!((roles[0].role.as_str(), roles[0].weight), ("web", 2.5));
    assert_eq!(h.master.config().drf.weights.get("web"), Some(&2.5));
}

/// Two always-hungry frameworks in roles `web` (weight 2, set at run time)
/// and `batch`: `web` ends with twice `batch`'s dominant share.
#[test]
fn a_role_with_weight_two_gets_twice_the_share() {
    let config = MasterConfig {
        allocation_interval: Duration::from_millis(20),
        ..MasterConfig::default()
    };
    let mut h = Harness::with_config(config);
    for _ in 0..4 {
        h.add_agent("cpus:8;mem:8192");
    }
    let mut frameworks = Vec::new();
    for role in ["web", "batch"] {
        let mut info = FrameworkInfo::new(role);
        info.roles = vec![role.to_owned()];
        frameworks.push(h.subscribe(info));
    }
    h.handle(Input::UpdateWeights(vec![("web".to_owned(), 2.0)]))
        .expect("valid weights");
    let mut launched = 0;
    for _ in 0..200 {
        h.advance(Duration::from_millis(20));
        for (conn, id) in frameworks.clone() {
            for offer in h.offers(conn) {
                let (operations, refuse) = if offer.resources.cpus() >= agora_proto::Scalar::from_units(1) {
                    launched += 1;
                    let t = task(&format!("t{launched}"), &offer.agent_id, "cpus:1;mem:256");
                    (vec![Operation::Launch(vec![t])], Duration::ZERO)
                } else {
                    (vec![], Duration::from_secs(3600))
                };
                h.call(
                    &id,
                    Call::Accept {
                        offer_ids: vec![offer.id.clone()],
                        operations,
                        filters: Filters::refuse(refuse),
                    },
                )
                .expect("accept");
            }
        }
    }
    assert_eq!(launched, 32, "the cluster's cpus are all used");
    let roles = h.master.roles();
    let share = |name: &str| {
        let r = roles.iter().find(|r| r.role == name).expect("role known");
        (r.weight, r.dominant_share, r.frameworks.clone())
    };
    let (web_weight, web, web_frameworks) = share("web");
    let (batch_weight, batch, batch_frameworks) = share("batch");
    assert_eq!((web_weight, batch_weight), (2.0, 1.0));
    assert_eq!(web_frameworks, vec![frameworks[0].1.clone()]);
    assert_eq!(batch_frameworks, vec![frameworks[1].1.clone()]);
    // 32 tasks of one cpu: web ~21.3, batch ~10.7; within one task of 2:1.
    assert!(
        (web - 2.0 * batch).abs() <= 2.0 / 32.0 + 1e-9,
        "web {web} batch {batch}"
    );
    assert!((web + batch - 1.0).abs() < 1e-9, "web {web} batch {batch}");
}

/// A role limited to `cpus:2` with an always-hungry framework on an 8-cpu
/// cluster never holds more than 2 cpus; another role's framework gets the rest.
#[test]
fn a_quota_limit_caps_what_a_role_holds() {
    let config = MasterConfig {
        allocation_interval: Duration::from_millis(20),
        ..MasterConfig::default()
    };
    let mut h = Harness::with_config(config);
    let err = h
        .handle(Input::UpdateQuota(vec![("bad role".to_owned(), RoleQuota::default())]))
        .expect_err("a bad role is refused");
    assert!(
        matches!(&err, MasterError::InvalidQuota { field, .. } if field == "quotas[0].role"),
        "{err}"
    );
    let limit: agora_proto::QuotaLimit = [("cpus".to_owned(), agora_proto::Scalar::from_units(2))].into();
    let quota = RoleQuota {
        limit: Some(limit.clone()),
        guarantee: None,
    };
    h.handle(Input::UpdateQuota(vec![("limited".to_owned(), quota)]))
        .expect("valid quota");
    h.add_agent("cpus:4;mem:4096");
    h.add_agent("cpus:4;mem:4096");
    let mut frameworks = Vec::new();
    for role in ["limited", "other"] {
        let mut info = FrameworkInfo::new(role);
        info.roles = vec![role.to_owned()];
        frameworks.push(h.subscribe(info));
    }
    let cpus = |h: &Harness, name: &str| {
        h.master
            .roles()
            .iter()
            .find(|r| r.role == name)
            .map_or(agora_proto::Scalar::ZERO, |r| r.allocated.cpus())
    };
    let mut launched = [0usize; 2];
    for _ in 0..100 {
        h.advance(Duration::from_millis(20));
        assert!(cpus(&h, "limited") <= agora_proto::Scalar::from_units(2));
        for (i, (conn, id)) in frameworks.clone().into_iter().enumerate() {
            for offer in h.offers(conn) {
                // A limited role is still offered the scalars it has room for
                // (here mem), so an offer may hold cpus but no mem.
                let (operations, refuse) = if offer.resources.cpus() >= agora_proto::Scalar::from_units(1)
                    && offer.resources.mem() >= agora_proto::Scalar::from_units(256)
                {
                    launched[i] += 1;
                    let t = task(&format!("t{i}-{}", launched[i]), &offer.agent_id, "cpus:1;mem:256");
                    (vec![Operation::Launch(vec![t])], Duration::ZERO)
                } else {
                    (vec![], Duration::from_secs(3600))
                };
                h.call(
                    &id,
                    Call::Accept {
                        offer_ids: vec![offer.id.clone()],
                        operations,
                        filters: Filters::refuse(refuse),
                    },
                )
                .expect("accept");
                assert!(cpus(&h, "limited") <= agora_proto::Scalar::from_units(2));
            }
        }
    }
    assert_eq!(launched, [2, 6], "limited holds 2 cpus, other the remaining 6");
    assert_eq!(h.master.state().tasks.len(), 8, "every launch was valid");
    let roles = h.master.roles();
    let limited = roles.iter().find(|r| r.role == "limited").expect("role known");
    assert_eq!(limited.quota, Some(limit));
    // Removing the quota lifts the cap (nothing is left to take here, though).
    h.handle(Input::UpdateQuota(vec![("limited".to_owned(), RoleQuota::default())]))
        .expect("valid removal");
    let roles = h.master.roles();
    assert_eq!(roles.iter().find(|r| r.role == "limited").expect("known").quota, None);
}

/// Role `g` guaranteed `cpus:6` on an 8-cpu cluster, with a hungry framework
/// in another role that subscribed first (and launches on everything it is
/// offered): the headroom keeps 6 cpus free for `g`, which ends with at
/// least 6 cpus once its framework subscribes.
#[test]
fn a_quota_guarantee_is_served_before_a_hungry_role() {
    let config = MasterConfig {
        allocation_interval: Duration::from_millis(20),
        ..MasterConfig::default()
    };
    let mut h = Harness::with_config(config);
    let six: agora_proto::QuotaLimit = [("cpus".to_owned(), agora_proto::Scalar::from_units(6))].into();
    let four: agora_proto::QuotaLimit = [("cpus".to_owned(), agora_proto::Scalar::from_units(4))].into();
    let err = h
        .handle(Input::UpdateQuota(vec![(
            "g".to_owned(),
            RoleQuota {
                limit: Some(four),
                guarantee: Some(six.clone()),
            },
        )]))
        .expect_err("a guarantee over the limit is refused");
    assert!(
        matches!(&err, MasterError::InvalidQuota { field, .. } if field == "quotas[0].guarantee"),
        "{err}"
    );
    let quota = RoleQuota {
        limit: None,
        guarantee: Some(six.clone()),
    };
    h.handle(Input::UpdateQuota(vec![("g".to_owned(), quota)]))
        .expect("valid quota");
    for _ in 0..4 {
        h.add_agent("cpus:2;mem:2048");
    }
    let mut hungry_info = FrameworkInfo::new("hungry");
    hungry_info.roles = vec!["other".to_owned()];
    let hungry = h.subscribe(hungry_info);
    let cpus = |h: &Harness, name: &str| {
        h.master
            .roles()
            .iter()
            .find(|r| r.role == name)
            .map_or(agora_proto::Scalar::ZERO, |r| r.allocated.cpus())
    };
    let mut launched = 0;
    let mut g = None;
    for round in 0..50 {
        h.advance(Duration::from_millis(20));
        if round == 10 {
            let mut info = FrameworkInfo::new("guaranteed");
            info.roles = vec!["g".to_owned()];
            g = Some(h.subscribe(info));
        }
        let mut frameworks = vec![hungry.clone()];
        frameworks.extend(g.clone());
        for (conn, id) in frameworks {
            for offer in h.offers(conn) {
                // Launch one `cpus:1;mem:256` task per whole cpu offered.
                let n = (offer.resources.cpus().milli() / 1000).min(offer.resources.mem().milli() / 256_000);
                let tasks: Vec<TaskInfo> = (0..n)
                    .map(|_| {
                        launched += 1;
                        task(&format!("t{launched}"), &offer.agent_id, "cpus:1;mem:256")
                    })
                    .collect();
                let operations = if tasks.is_empty() {
                    vec![]
                } else {
                    vec![Operation::Launch(tasks)]
                };
                h.call(
                    &id,
                    Call::Accept {
                        offer_ids: vec![offer.id.clone()],
                        operations,
                        filters: Filters::refuse(Duration::ZERO),
                    },
                )
                .expect("accept");
            }
        }
        assert!(
            cpus(&h, "other") <= agora_proto::Scalar::from_units(2),
            "the hungry role leaves the guaranteed headroom"
        );
    }
    assert!(
        cpus(&h, "g") >= agora_proto::Scalar::from_units(6),
        "g holds its guarantee"
    );
    let roles = h.master.roles();
    assert_eq!(
        roles.iter().find(|r| r.role == "g").expect("known").guarantee,
        Some(six)
    );
}

fn rescinds(h: &mut Harness, conn: ConnectionId) -> Vec<OfferId> {
    let mut ids = Vec::new();
    h.outputs.retain(|o| match o {
        Output::ToFramework {
            conn: c,
            event: Event::Rescind(id),
        } if *c == conn => {
            ids.push(id.clone());
            false
        }
        _ => true,
    });
    ids
}

#[test]
fn offers_outstanding_past_the_offer_timeout_are_rescinded_and_offered_again() {
    let mut h = Harness::with_config(MasterConfig {
        allocation_interval: Duration::from_millis(100),
        offer_timeout: Some(Duration::from_secs(5)),
        ..MasterConfig::default()
    });
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (conn, framework_id) = h.framework("f");
    // The first cycle runs at once: the offer is made now.
    let offered_at = h.now;
    h.advance(Duration::from_millis(100));
    let first = h.offers(conn);
    assert_eq!(first.len(), 1);
    assert!(
        h.master
            .poll_timeout()
            .is_some_and(|t| t <= offered_at + Duration::from_secs(5))
    );

    h.advance(Duration::from_millis(4_800));
    assert!(rescinds(&mut h, conn).is_empty(), "not yet expired");
    h.advance(Duration::from_millis(200));
    assert_eq!(rescinds(&mut h, conn), vec![first[0].id.clone()]);
    assert_eq!(h.master.stats().offers_rescinded, 1);
    // The resources came back and were offered again, under a fresh id.
    let second = h.offers(conn);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first[0].id);
    assert_eq!(second[0].resources, first[0].resources);

    // An accepted offer is gone and cannot expire; what it left is offered
    // (and times out) again.
    h.call(
        &framework_id,
        launch(&second[0], vec![task("t", &agent_id, "cpus:4;mem:1024")]),
    )
    .expect("accept");
    assert!(h.master.offer_expiry.is_empty() && h.master.offer_deadlines.is_empty());
    h.advance(Duration::from_secs(30));
    assert!(rescinds(&mut h, conn).is_empty());
    assert_eq!(h.master.stats().offers_rescinded, 1);
    assert!(h.master.offers.is_empty());
}

#[test]
fn offers_never_expire_without_an_offer_timeout() {
    let (mut h, Offered { conn, .. }) = Harness::offered("cpus:4;mem:1024");
    assert_eq!(h.master.config().offer_timeout, None);
    // Within the agent timeout (75 s), so the agent stays reachable.
    h.advance(Duration::from_secs(60));
    assert!(rescinds(&mut h, conn).is_empty());
    assert_eq!(h.master.offers.len(), 1);
    assert!(h.master.offer_expiry.is_empty());
}

fn add_agent_with_attributes(h: &mut Harness, spec: &str, attributes: &str) -> AgentId {
    let conn = h.conn();
    let info = AgentInfo {
        hostname: format!("host-{}", conn.0),
        resources: res(spec),
        attributes: attributes.parse().expect("valid attributes"),
    };
    h.handle(Input::Agent {
        conn,
        message: AgentMessage::Register {
            info,
            agent_id: None,
            tasks: vec![],
        },
    })
    .expect("register");
    h.outputs
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::ToAgent {
                conn: c,
                message: MasterMessage::Registered { agent_id, .. },
            } if *c == conn => Some(agent_id.clone()),
            _ => None,
        })
        .expect("registered")
}

fn rack(value: &str) -> Vec<OfferConstraint> {
    vec![OfferConstraint {
        attribute: "rack".to_owned(),
        equals: value.to_owned(),
    }]
}

#[test]
fn frameworks_are_only_offered_agents_matching_their_constraints() {
    let mut h = Harness::new();
    let r1 = add_agent_with_attributes(&mut h, "cpus:4;mem:1024", "rack:r1;zone:a");
    let r2 = add_agent_with_attributes(&mut h, "cpus:4;mem:1024", "rack:r2");
    let _bare = add_agent_with_attributes(&mut h, "cpus:4;mem:1024", "");
    let mut info = FrameworkInfo::new("picky");
    info.offer_constraints = rack("r1");
    let (conn, framework_id) = h.subscribe(info.clone());
    h.advance(Duration::from_millis(100));
    let offers = h.offers(conn);
    assert_eq!(
        offers.iter().map(|o| o.agent_id.clone()).collect::<Vec<_>>(),
        vec![r1.clone()]
    );

    // Moving to rack r2 withdraws the r1 offer and offers r2 instead.
    info.id = Some(framework_id.clone());
    info.offer_constraints = rack("r2");
    h.call(&framework_id, Call::UpdateFramework(info.clone()))
        .expect("update");
    assert_eq!(rescinds(&mut h, conn), vec![offers[0].id.clone()]);
    h.advance(Duration::from_millis(100));
    let offers = h.offers(conn);
    assert_eq!(offers.iter().map(|o| o.agent_id.clone()).collect::<Vec<_>>(), vec![r2]);

    // Without constraints it gets the rest, the agent without attributes included.
    info.offer_constraints.clear();
    h.call(&framework_id, Call::UpdateFramework(info)).expect("update");
    assert!(rescinds(&mut h, conn).is_empty());
    h.advance(Duration::from_millis(100));
    assert_eq!(h.offers(conn).len(), 2);
}

#[test]
fn a_framework_is_only_offered_agents_meeting_its_own_minimum() {
    let mut h = Harness::new();
    let (_, small) = h.add_agent("cpus:1;mem:1024");
    let mut info = FrameworkInfo::new("picky");
    info.min_allocatable.insert("*".to_owned(), vec![res("cpus:2")]);
    let (picky, picky_id) = h.subscribe(info.clone());
    h.advance(Duration::from_millis(100));
    assert!(h.offers(picky).is_empty(), "1 cpu is below its minimum of 2");

    let (other, other_id) = h.framework("other");
    h.advance(Duration::from_millis(100));
    let offers = h.offers(other);
    assert_eq!(
        offers.iter().map(|o| o.agent_id.clone()).collect::<Vec<_>>(),
        vec![small]
    );

    let (_, big) = h.add_agent("cpus:4;mem:1024");
    h.advance(Duration::from_millis(100));
    let offers = h.offers(picky);
    assert_eq!(offers.iter().map(|o| o.agent_id.clone()).collect::<Vec<_>>(), vec![big]);

    // Another role's minimum does not apply to `*`; an update takes effect.
    h.call(&other_id, Call::Suppress { roles: vec![] }).expect("suppress");
    info.id = Some(picky_id.clone());
    info.min_allocatable = [("web".to_owned(), vec![res("cpus:100")])].into();
    h.call(&picky_id, Call::UpdateFramework(info)).expect("update");
    let (_, third) = h.add_agent("cpus:1;mem:1024");
    h.advance(Duration::from_millis(100));
    let got: Vec<AgentId> = h.offers(picky).iter().map(|o| o.agent_id.clone()).collect();
    assert_eq!(got, vec![third]);
}

fn role_framework(h: &mut Harness, role: &str) -> (ConnectionId, FrameworkId) {
    let mut info = FrameworkInfo::new(role);
    info.roles = vec![role.to_owned()];
    h.subscribe(info)
}

fn accept(offer: &Offer, operations: Vec<Operation>) -> Call {
    Call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations,
        filters: Filters::refuse(Duration::ZERO),
    }
}

#[test]
fn reserved_resources_are_offered_only_to_their_role_until_unreserved() {
    let mut h = Harness::new();
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (ads_conn, ads) = role_framework(&mut h, "ads");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(ads_conn).remove(0);
    assert_eq!(offer.role, "ads");
    // Reserve half, then launch on the reserved part in the same ACCEPT.
    h.call(
        &ads,
        accept(
            &offer,
            vec![
                Operation::Reserve(res("cpus(ads):2;mem(ads):256")),
                Operation::Launch(vec![task("t1", &agent_id, "cpus(ads):1;mem(ads):128")]),
            ],
        ),
    )
    .expect("accept");
    assert_eq!(h.master.stats().operations_invalid, 0);
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:2;mem:768;cpus(ads):2;mem(ads):256")
    );
    assert!(
        h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::RunTask { task, .. } if task.task_id.as_str() == "t1"))
    );
    h.call(&ads, Call::Suppress { roles: vec![] }).expect("suppress");
    h.advance(Duration::from_millis(100));
    for o in h.offers(ads_conn) {
        h.call(
            &ads,
            Call::Decline {
                offer_ids: vec![o.id],
                filters: Filters::refuse(Duration::ZERO),
            },
        )
        .expect("decline");
    }

    // Another role is offered the unreserved part only.
    let (web_conn, web) = role_framework(&mut h, "web");
    h.advance(Duration::from_millis(100));
    let web_offers = h.offers(web_conn);
    assert_eq!(web_offers.len(), 1);
    assert_eq!(web_offers[0].resources, res("cpus:2;mem:768"));

    // The ads framework gets the rest of its reservation back.
    h.call(&ads, Call::Revive { roles: vec![] }).expect("revive");
    h.advance(Duration::from_millis(100));
    let ads_offer = h.offers(ads_conn).remove(0);
    assert_eq!(ads_offer.resources, res("cpus(ads):1;mem(ads):128"));

    // Unreserving makes it available to others.
    h.call(
        &ads,
        accept(&ads_offer, vec![Operation::Unreserve(res("cpus(ads):1;mem(ads):128"))]),
    )
    .expect("unreserve");
    h.call(&ads, Call::Suppress { roles: vec![] }).expect("suppress");
    assert_eq!(h.master.stats().operations_invalid, 0);
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:3;mem:896;cpus(ads):1;mem(ads):128")
    );
    h.call(
        &web,
        Call::Decline {
            offer_ids: vec![web_offers[0].id.clone()],
            filters: Filters::refuse(Duration::ZERO),
        },
    )
    .expect("decline");
    h.advance(Duration::from_millis(100));
    let web_offers = h.offers(web_conn);
    assert_eq!(web_offers.len(), 1);
    assert_eq!(web_offers[0].resources, res("cpus:3;mem:896"));

    // The agent reports its resources without the reservation when it
    // re-registers; the master keeps it.
    let running = RunningTask {
        framework_id: ads.clone(),
        task: task("t1", &agent_id, "cpus(ads):1;mem(ads):128"),
        state: TaskState::Running,
    };
    h.register_agent(
        ConnectionId(99),
        "cpus:4;mem:1024",
        Some(agent_id.clone()),
        vec![running],
    );
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:3;mem:896;cpus(ads):1;mem(ads):128")
    );
}

#[test]
fn invalid_reservations_change_nothing_and_are_counted() {
    let mut h = Harness::new();
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024;cpus(web):1");
    let (web_conn, web) = role_framework(&mut h, "web");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(web_conn).remove(0);
    h.call(
        &web,
        accept(
            &offer,
            vec![
                // A role the framework does not hold.
                Operation::Reserve(res("cpus(ads):1")),
                // Unreserved: no role to reserve for.
                Operation::Reserve(res("cpus:1")),
                // More than offered.
                Operation::Reserve(res("cpus(web):8")),
                // A static reservation.
                Operation::Unreserve(res("cpus(web):1")),
                // More than reserved.
                Operation::Unreserve(res("cpus(web):2")),
                Operation::Launch(vec![task("t1", &agent_id, "cpus:1;mem:128")]),
            ],
        ),
    )
    .expect("accept proceeds");
    assert_eq!(h.master.stats().operations_invalid, 5);
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:4;mem:1024;cpus(web):1")
    );
    assert_eq!(h.master.allocator.cluster_total(), res("cpus:4;mem:1024;cpus(web):1"));
    assert!(
        h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::RunTask { task, .. } if task.task_id.as_str() == "t1"))
    );
}

fn reserve(h: &mut Harness, agent_id: &AgentId, spec: &str) -> Result<(), MasterError> {
    h.handle(Input::ReserveResources {
        agent_id: agent_id.clone(),
        resources: res(spec),
    })
}

fn unreserve(h: &mut Harness, agent_id: &AgentId, spec: &str) -> Result<(), MasterError> {
    h.handle(Input::UnreserveResources {
        agent_id: agent_id.clone(),
        resources: res(spec),
    })
}

/// The reason of a refused operator reservation.
fn reservation_reason(result: Result<(), MasterError>) -> ReservationError {
    match result {
        Err(MasterError::Reservation { reason, .. }) => *reason,
        other => panic!("expected a refused reservation, got {other:?}"),
    }
}

#[test]
fn operator_reservations_are_offered_only_to_their_role_until_unreserved() {
    let mut h = Harness::new();
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024");
    reserve(&mut h, &agent_id, "cpus(ads):2;mem(ads):512").expect("reserve");
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:2;mem:512;cpus(ads):2;mem(ads):512")
    );
    assert_eq!(
        h.master.allocator.cluster_total(),
        res("cpus:2;mem:512;cpus(ads):2;mem(ads):512")
    );

    // Another role is offered the unreserved part only.
    let (web_conn, web) = role_framework(&mut h, "web");
    h.advance(Duration::from_millis(100));
    let web_offers = h.offers(web_conn);
    assert_eq!(web_offers.len(), 1);
    assert_eq!(web_offers[0].resources, res("cpus:2;mem:512"));
    h.call(&web, Call::Suppress { roles: vec![] }).expect("suppress");

    // The role gets its reservation.
    let (ads_conn, _) = role_framework(&mut h, "ads");
    h.advance(Duration::from_millis(100));
    let ads_offers = h.offers(ads_conn);
    assert_eq!(ads_offers.len(), 1);
    assert_eq!(ads_offers[0].resources, res("cpus(ads):2;mem(ads):512"));
    let roles = h.master.roles();
    let ads_role = roles.iter().find(|r| r.role == "ads").expect("ads listed");
    assert_eq!(ads_role.reserved, res("cpus(ads):2;mem(ads):512"));

    // Unreserving part of it rescinds the offer holding it; the rest is
    // offered again to `ads`, and the unreserved part goes to whoever asks.
    unreserve(&mut h, &agent_id, "cpus(ads):1;mem(ads):256").expect("unreserve");
    assert_eq!(rescinds(&mut h, ads_conn), vec![ads_offers[0].id.clone()]);
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:3;mem:768;cpus(ads):1;mem(ads):256")
    );
    assert_eq!(h.master.agents[&agent_id].reserved, res("cpus(ads):1;mem(ads):256"));
    h.advance(Duration::from_millis(100));
    let ads_offers = h.offers(ads_conn);
    assert_eq!(ads_offers.len(), 1);
    assert_eq!(ads_offers[0].resources, res("cpus(ads):1;mem(ads):256;cpus:1;mem:256"));
}

#[test]
fn operator_reservation_rescinds_offers_only_as_far_as_needed() {
    let mut h = Harness::new();
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024");
    let (web_conn, web) = role_framework(&mut h, "web");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(web_conn).remove(0);
    // A task holds 1 cpu; the other 3 are offered back in a new offer.
    h.call(
        &web,
        accept(
            &offer,
            vec![Operation::Launch(vec![task("t1", &agent_id, "cpus:1;mem:128")])],
        ),
    )
    .expect("launch");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(web_conn).remove(0);
    assert_eq!(offer.resources, res("cpus:3;mem:896"));
    let rescinded_before = h.master.stats().offers_rescinded;

    // More than free plus offered: refused, and the offer is left alone.
    let reason = reservation_reason(reserve(&mut h, &agent_id, "cpus(ads):4"));
    assert_eq!(
        reason,
        ReservationError::NotAvailable {
            needed: Box::new(res("cpus:4")),
            available: Box::new(res("cpus:3")),
        }
    );
    assert!(rescinds(&mut h, web_conn).is_empty());
    assert!(h.master.offers.contains_key(&offer.id));
    assert_eq!(h.master.agents[&agent_id].info.resources, res("cpus:4;mem:1024"));

    // What the offer holds can be reserved: the offer is rescinded first.
    reserve(&mut h, &agent_id, "cpus(ads):2;mem(ads):512").expect("reserve");
    assert_eq!(rescinds(&mut h, web_conn), vec![offer.id.clone()]);
    assert_eq!(h.master.stats().offers_rescinded, rescinded_before + 1);
    assert_eq!(
        h.master.agents[&agent_id].info.resources,
        res("cpus:2;mem:512;cpus(ads):2;mem(ads):512")
    );
    // The web role gets what is left unreserved, not the reservation.
    h.advance(Duration::from_millis(100));
    let offers = h.offers(web_conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].resources, res("cpus:1;mem:384"));

    // Free resources need no rescind.
    h.call(
        &web,
        Call::Decline {
            offer_ids: vec![offers[0].id.clone()],
            filters: Filters::refuse(Duration::from_secs(60)),
        },
    )
    .expect("decline");
    let rescinded_before = h.master.stats().offers_rescinded;
    reserve(&mut h, &agent_id, "cpus(ads):1").expect("reserve the declined cpu");
    assert_eq!(h.master.stats().offers_rescinded, rescinded_before);
    // The decline filter outlives the reservation: what is left (mem:384)
    // is within what `web` declined, so it is not offered to `web` again.
    h.advance(Duration::from_millis(100));
    assert!(h.offers(web_conn).is_empty());
}

#[test]
fn operator_reservations_of_a_disconnected_agent_survive_its_return() {
    let mut h = Harness::new();
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    h.handle(Input::AgentDisconnected { conn: agent_conn })
        .expect("disconnect");
    reserve(&mut h, &agent_id, "cpus(ads):1").expect("a disconnected agent can be reserved on");
    // Still inactive in the allocator: nothing is offered.
    let (ads_conn, _) = role_framework(&mut h, "ads");
    h.advance(Duration::from_millis(100));
    assert!(h.offers(ads_conn).is_empty());
    h.register_agent(ConnectionId(77), "cpus:4;mem:1024", Some(agent_id.clone()), vec![]);
    h.advance(Duration::from_millis(100));
    let offers = h.offers(ads_conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].resources, res("cpus:3;mem:1024;cpus(ads):1"));
}

#[test]
fn operator_reservation_errors_say_what_is_wrong_and_change_nothing() {
    let mut h = Harness::new();
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024;cpus(web):1");
    let (web_conn, web) = role_framework(&mut h, "web");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(web_conn).remove(0);
    h.call(&web, launch(&offer, vec![task("t1", &agent_id, "cpus:3;mem:128")]))
        .expect("launch");
    reserve(&mut h, &agent_id, "cpus(ads):1").expect("the last free cpu");
    let before = (
        h.master.agents[&agent_id].info.resources.clone(),
        h.master.agents[&agent_id].reserved.clone(),
        h.master.allocator.cluster_total(),
        h.master.offers.keys().cloned().collect::<Vec<_>>(),
        h.master.stats().clone(),
    );
    h.take();

    let unknown = AgentId::new("nope").expect("valid id");
    assert_eq!(
        reserve(&mut h, &unknown, "cpus(ads):1"),
        Err(MasterError::UnknownAgent(unknown.clone()))
    );
    assert_eq!(
        reservation_reason(reserve(&mut h, &agent_id, "cpus:1")),
        ReservationError::NoRole("cpus".to_owned())
    );
    assert_eq!(
        reservation_reason(h.handle(Input::ReserveResources {
            agent_id: agent_id.clone(),
            resources: Resources::new(),
        })),
        ReservationError::Empty
    );
    assert_eq!(
        reservation_reason(reserve(&mut h, &agent_id, "cpus(ads):1;mem(web):1")),
        ReservationError::SeveralRoles(vec!["ads".to_owned(), "web".to_owned()])
    );
    assert!(matches!(
        reservation_reason(reserve(&mut h, &agent_id, "cpus(-x):1")),
        ReservationError::InvalidRole(_)
    ));
    // Tasks hold the other cpus.
    let err = reserve(&mut h, &agent_id, "cpus(ads):1").expect_err("no cpu left");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reserve cpus(ads):1 on agent {agent_id}: cpus:1 must be free on the agent \
             (not used by tasks), but none of it is"
        )
    );
    // Static reservations stay; only what was reserved can be unreserved.
    assert_eq!(
        reservation_reason(unreserve(&mut h, &agent_id, "cpus(web):1")),
        ReservationError::StaticReservation(res("cpus(web):1"))
    );
    assert_eq!(
        reservation_reason(unreserve(&mut h, &agent_id, "cpus(ads):2")),
        ReservationError::NotDynamicallyReserved {
            requested: Box::new(res("cpus(ads):2")),
            reserved: Box::new(res("cpus(ads):1")),
        }
    );
    assert_eq!(
        reservation_reason(unreserve(&mut h, &agent_id, "mem(ads):1")),
        ReservationError::NotDynamicallyReserved {
            requested: Box::new(res("mem(ads):1")),
            reserved: Box::new(res("cpus(ads):1")),
        }
    );
    let after = (
        h.master.agents[&agent_id].info.resources.clone(),
        h.master.agents[&agent_id].reserved.clone(),
        h.master.allocator.cluster_total(),
        h.master.offers.keys().cloned().collect::<Vec<_>>(),
        h.master.stats().clone(),
    );
    assert_eq!(before, after);
    assert!(h.take().is_empty(), "a refused call sends nothing");

    // An unreachable agent cannot be changed.
    h.advance(Duration::from_secs(10 * 60));
    assert_eq!(h.master.agents[&agent_id].status, AgentStatus::Unreachable);
    assert_eq!(
        reservation_reason(unreserve(&mut h, &agent_id, "cpus(ads):1")),
        ReservationError::AgentUnreachable
    );
}

#[test]
fn roles_without_frameworks_allocations_reservations_weight_or_quota_are_not_listed() {
    let mut h = Harness::new();
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024;cpus(static):1");
    let (conn, batch) = role_framework(&mut h, "batch");
    h.advance(Duration::from_millis(100));
    let offer = h.offers(conn).remove(0);
    h.call(&batch, launch(&offer, vec![task("t1", &agent_id, "cpus:1;mem:64")]))
        .expect("launch");
    h.handle(Input::UpdateWeights(vec![("heavy".to_owned(), 2.0)]))
        .expect("weight");
    h.handle(Input::UpdateQuota(vec![(
        "capped".to_owned(),
        RoleQuota {
            limit: Some([("cpus".to_owned(), agora_proto::Scalar::from_f64(1.0).expect("scalar"))].into()),
            guarantee: None,
        },
    )]))
    .expect("quota");
    reserve(&mut h, &agent_id, "mem(reserved):64").expect("reserve");
    let names = |h: &Harness| h.master.roles().into_iter().map(|r| r.role).collect::<Vec<_>>();
    assert_eq!(names(&h), ["batch", "capped", "heavy", "reserved", "static"]);

    // The framework leaves, and its task's resources come back.
    h.call(&batch, Call::Teardown).expect("teardown");
    assert_eq!(names(&h), ["capped", "heavy", "reserved", "static"]);
    // Quota removed, reservation given back: only the weight and the
    // static reservation keep a role listed.
    h.handle(Input::UpdateQuota(vec![("capped".to_owned(), RoleQuota::default())]))
        .expect("quota removed");
    unreserve(&mut h, &agent_id, "mem(reserved):64").expect("unreserve");
    assert_eq!(names(&h), ["heavy", "static"]);
}
