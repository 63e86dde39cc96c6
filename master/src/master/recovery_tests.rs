//! Recovery after a master restart or failover, in virtual time: each rule
//! of `recovery.rs`, with the records going through their JSON form as they
//! do through the registry.

use super::tests::{Harness, launch, res, task};
use super::*;
use crate::durable::{DurableChange, Records};
use crate::io::Input;

fn config() -> MasterConfig {
    MasterConfig {
        allocation_interval: Duration::from_millis(100),
        ..MasterConfig::default()
    }
}

/// What the old master kept, through JSON as a registry stores it.
fn kept(h: &Harness) -> Records {
    let records = h.master.durable_records();
    Records {
        agents: records.agents.into_iter().map(|(k, v)| (k, roundtrip(&v))).collect(),
        frameworks: records
            .frameworks
            .into_iter()
            .map(|(k, v)| (k, roundtrip(&v)))
            .collect(),
        gone: records.gone.into_iter().map(|(k, v)| (k, roundtrip(&v))).collect(),
    }
}

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    let text = serde_json::to_string(value).expect("records encode");
    serde_json::from_str(&text).expect("records decode")
}

/// A new master, restarted `after` the old one's clock, recovered from what
/// the old one kept.
fn restart(old: &Harness, after: Duration) -> Harness {
    restart_with(old, after, config())
}

fn restart_with(old: &Harness, after: Duration, config: MasterConfig) -> Harness {
    let mut h = Harness::with_config(config);
    h.now = old.now + after;
    let records = kept(old);
    h.master.recover(h.now, records);
    h.master.check_invariants().expect("invariants hold after recovery");
    h
}

fn removed(h: &Harness, framework_id: &FrameworkId) -> bool {
    !h.master.frameworks.contains_key(framework_id)
}

#[test]
fn a_failover_deadline_counts_from_the_disconnection_before_the_restart() {
    let mut h = Harness::with_config(config());
    let mut info = FrameworkInfo::new("f");
    info.failover_timeout = Duration::from_secs(600);
    let (conn, framework_id) = h.subscribe(info);
    h.handle(Input::FrameworkDisconnected { conn }).expect("disconnect");
    // The master dies 5 minutes later and comes back 1 minute after that.
    h.advance(Duration::from_secs(300));
    let mut h = restart(&h, Duration::from_secs(60));
    assert!(!removed(&h, &framework_id));
    h.advance(Duration::from_secs(239));
    assert!(!removed(&h, &framework_id), "still within its 10 minutes");
    h.advance(Duration::from_secs(2));
    assert!(removed(&h, &framework_id), "removed 10 minutes after it disconnected");
}

#[test]
fn a_framework_connected_when_the_master_died_gets_its_whole_timeout_from_the_restart() {
    let mut h = Harness::with_config(config());
    let mut info = FrameworkInfo::new("f");
    info.failover_timeout = Duration::from_secs(600);
    let (_, framework_id) = h.subscribe(info.clone());
    let mut h = restart(&h, Duration::from_secs(30));
    // Its disconnection is now on record: a second restart keeps the clock.
    assert!(
        h.master
            .take_durable_changes()
            .iter()
            .any(|c| matches!(c, DurableChange::Framework(id, Some(r)) if *id == framework_id && r.disconnected_at == Some(h.now)))
    );
    h.advance(Duration::from_secs(599));
    assert!(!removed(&h, &framework_id));
    // It re-subscribes in time: connected again, nothing removed.
    info.id = Some(framework_id.clone());
    h.subscribe(info);
    h.advance(Duration::from_secs(10));
    assert!(!removed(&h, &framework_id));
    assert!(h.master.frameworks[&framework_id].conn.is_some());
}

#[test]
fn a_zero_failover_timeout_still_waits_the_agent_timeout_after_a_restart() {
    let mut h = Harness::with_config(config());
    let (_, framework_id) = h.subscribe(FrameworkInfo::new("f"));
    let mut h = restart(&h, Duration::from_secs(1));
    h.advance(Duration::from_secs(74));
    assert!(!removed(&h, &framework_id));
    h.advance(Duration::from_secs(2));
    assert!(removed(&h, &framework_id));
}

/// Five agents and a framework; the master restarts; the framework is back.
fn five_agents_restarted(config: MasterConfig) -> (Harness, Vec<AgentId>, ConnectionId) {
    let mut h = Harness::with_config(config.clone());
    let agents: Vec<AgentId> = (0..5).map(|_| h.add_agent("cpus:4;mem:1024").1).collect();
    let mut info = FrameworkInfo::new("f");
    info.failover_timeout = Duration::from_secs(600);
    let (_, framework_id) = h.subscribe(info.clone());
    let mut h = restart_with(&h, Duration::from_secs(5), config);
    assert!(h.master.recovering());
    info.id = Some(framework_id);
    let (conn, _) = h.subscribe(info);
    (h, agents, conn)
}

fn come_back(h: &mut Harness, agent_id: &AgentId, n: u64) {
    let (_, id) = h.register_agent(ConnectionId(500 + n), "cpus:4;mem:1024", Some(agent_id.clone()), vec![]);
    assert_eq!(&id, agent_id);
}

#[test]
fn allocation_is_held_until_the_fraction_of_agents_is_back() {
    let (mut h, agents, conn) = five_agents_restarted(config());
    // 0.8 of 5 is 4.
    for (n, agent_id) in agents.iter().take(3).enumerate() {
        come_back(&mut h, agent_id, n as u64);
        h.advance(Duration::from_secs(1));
        assert!(h.offers(conn).is_empty(), "no offer with {} of 5 agents back", n + 1);
    }
    come_back(&mut h, &agents[3], 3);
    assert!(!h.master.recovering());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.offers(conn).len(), 4, "the four agents back are offered");
}

#[test]
fn allocation_is_released_by_the_recovery_timeout() {
    let config = MasterConfig {
        recovery_timeout: Duration::from_secs(30),
        ..config()
    };
    let (mut h, agents, conn) = five_agents_restarted(config);
    come_back(&mut h, &agents[0], 0);
    h.advance(Duration::from_secs(29));
    assert!(h.offers(conn).is_empty());
    assert!(h.master.poll_timeout().is_some(), "the end of the hold is a timer");
    h.advance(Duration::from_secs(2));
    assert!(!h.master.recovering());
    assert_eq!(h.offers(conn).len(), 1);
}

#[test]
fn recovered_agents_that_do_not_come_back_become_unreachable_then_gone() {
    let (mut h, agents, _) = five_agents_restarted(config());
    h.advance(Duration::from_secs(76));
    assert!(
        agents
            .iter()
            .all(|a| h.master.agents[a].status == AgentStatus::Unreachable)
    );
    h.advance(Duration::from_secs(15 * 60));
    assert!(agents.iter().all(|a| !h.master.agents.contains_key(a)));
    assert!(agents.iter().all(|a| h.master.gone_agents.contains_key(a)));
}

#[test]
fn dynamic_reservations_are_reapplied_when_a_recovered_agent_comes_back() {
    let mut h = Harness::with_config(config());
    let (_, agent_id) = h.add_agent("cpus:4;mem:1024");
    h.handle(Input::ReserveResources {
        agent_id: agent_id.clone(),
        resources: res("cpus(web):2"),
    })
    .expect("reserve");
    let mut h = restart(&h, Duration::from_secs(5));
    // Not back yet: its resources are unknown, so it cannot be changed.
    let refused = h.handle(Input::UnreserveResources {
        agent_id: agent_id.clone(),
        resources: res("cpus(web):2"),
    });
    assert!(matches!(refused, Err(MasterError::Reservation { .. })), "{refused:?}");
    come_back(&mut h, &agent_id, 0);
    let agent = &h.master.agents[&agent_id];
    assert_eq!(agent.reserved, res("cpus(web):2"));
    assert_eq!(agent.info.resources, res("cpus:2;cpus(web):2;mem:1024"));
    // The framework of that role is offered the reservation.
    let mut info = FrameworkInfo::new("web");
    info.roles = vec!["web".to_owned()];
    let (conn, _) = h.subscribe(info);
    h.advance(Duration::from_secs(1));
    let offers = h.offers(conn);
    assert!(
        offers.iter().any(|o| o.resources.contains(&res("cpus(web):2"))),
        "{offers:?}"
    );
}

#[test]
fn a_gone_agent_stays_gone_after_a_restart() {
    let mut h = Harness::with_config(config());
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    let mut info = FrameworkInfo::new("f");
    info.failover_timeout = Duration::from_secs(7200);
    info.capabilities.insert(Capability::PartitionAware);
    let (conn, framework_id) = h.subscribe(info.clone());
    h.advance(Duration::from_secs(1));
    let offer = h.offers(conn).remove(0);
    let t = task("t", &agent_id, "cpus:1;mem:128");
    h.call(&framework_id, launch(&offer, vec![t.clone()])).expect("accept");
    h.agent_update(agent_conn, &framework_id, &t.task_id, TaskState::Running, 1);
    h.handle(Input::AgentDisconnected { conn: agent_conn })
        .expect("disconnect");
    h.advance(Duration::from_secs(80 + 15 * 60));
    assert!(h.master.gone_agents.contains_key(&agent_id));

    let mut h = restart(&h, Duration::from_secs(5));
    assert!(!h.master.recovering(), "no agent to wait for");
    info.id = Some(framework_id.clone());
    let (conn, _) = h.subscribe(info);
    h.call(
        &framework_id,
        Call::Reconcile {
            tasks: vec![(t.task_id.clone(), Some(agent_id.clone()))],
        },
    )
    .expect("reconcile");
    let updates = h.updates(conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Gone);
    // It comes back still running the task: accepted, told to kill it.
    let running = RunningTask {
        framework_id: framework_id.clone(),
        task: t.clone(),
        state: TaskState::Running,
    };
    let back = ConnectionId(900);
    h.register_agent(back, "cpus:4;mem:1024", Some(agent_id.clone()), vec![running]);
    let messages = h.agent_messages(back);
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, MasterMessage::KillTask { task_id, .. } if *task_id == t.task_id)),
        "{messages:?}"
    );
    // No longer gone, and the registry is told so.
    let changes = h.master.take_durable_changes();
    assert!(
        changes.contains(&DurableChange::Gone(agent_id.clone(), None)),
        "{changes:?}"
    );
}

#[test]
fn reconciliation_of_a_task_on_an_agent_not_back_yet_is_not_answered() {
    let (mut h, agents, conn) = five_agents_restarted(config());
    let framework_id = h.master.frameworks.keys().next().cloned().expect("a framework");
    h.call(
        &framework_id,
        Call::Reconcile {
            tasks: vec![(TaskId::new("t").expect("valid id"), Some(agents[0].clone()))],
        },
    )
    .expect("reconcile");
    assert!(h.updates(conn).is_empty());
}

#[test]
fn changes_are_taken_once_per_record_however_often_it_changed() {
    let mut h = Harness::with_config(config());
    let agents: Vec<AgentId> = (0..1000).map(|_| h.add_agent("cpus:1;mem:64").1).collect();
    h.handle(Input::ReserveResources {
        agent_id: agents[0].clone(),
        resources: res("cpus(web):1"),
    })
    .expect("reserve");
    let changes = h.master.take_durable_changes();
    assert_eq!(changes.len(), 1000);
    assert!(h.master.take_durable_changes().is_empty());
    let mut records = Records::default();
    records.apply(changes);
    assert_eq!(records, h.master.durable_records());
    assert_eq!(records.agents[&agents[0]].reserved, res("cpus(web):1"));
}
