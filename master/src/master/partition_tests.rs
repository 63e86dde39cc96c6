//! Partitions: unreachable agents coming back, agents gone for good, and the
//! removal rate limit, in virtual time.

use super::tests::{self, Harness, launch, task};
use super::*;
use crate::config::RateLimit;
use crate::io::Input;

/// One agent running task `t` of a framework (partition-aware or not).
struct Partitioned {
    h: Harness,
    agent_conn: ConnectionId,
    agent_id: AgentId,
    conn: ConnectionId,
    framework_id: FrameworkId,
    task: TaskInfo,
}

fn running_task(config: MasterConfig, partition_aware: bool) -> Partitioned {
    let mut h = Harness::with_config(config);
    let (agent_conn, agent_id) = h.add_agent("cpus:4;mem:1024");
    let mut info = FrameworkInfo::new("f");
    info.failover_timeout = Duration::from_secs(3600);
    if partition_aware {
        info.capabilities.insert(Capability::PartitionAware);
    }
    let (conn, framework_id) = h.subscribe(info);
    h.advance(Duration::from_secs(1));
    let offer = h.offers(conn).remove(0);
    let t = task("t", &agent_id, "cpus:1;mem:128");
    h.call(&framework_id, launch(&offer, vec![t.clone()])).expect("accept");
    h.agent_update(agent_conn, &framework_id, &t.task_id, TaskState::Running, 1);
    h.take();
    Partitioned {
        h,
        agent_conn,
        agent_id,
        conn,
        framework_id,
        task: t,
    }
}

fn config() -> MasterConfig {
    MasterConfig {
        allocation_interval: Duration::from_millis(100),
        ..MasterConfig::default()
    }
}

impl Partitioned {
    /// The agent goes silent until it is unreachable (75 s by default).
    fn partition(&mut self) {
        self.h
            .handle(Input::AgentDisconnected { conn: self.agent_conn })
            .expect("disconnect");
        self.h.advance(Duration::from_secs(80));
    }

    /// The agent comes back on a new stream reporting `t` running.
    fn come_back(&mut self) -> ConnectionId {
        let conn = ConnectionId(9_000 + self.agent_conn.0);
        let running = RunningTask {
            framework_id: self.framework_id.clone(),
            task: self.task.clone(),
            state: TaskState::Running,
        };
        let (_, id) = self
            .h
            .register_agent(conn, "cpus:4;mem:1024", Some(self.agent_id.clone()), vec![running]);
        assert_eq!(id, self.agent_id);
        conn
    }

    fn task_state(&self) -> Option<TaskState> {
        self.h.master.frameworks[&self.framework_id]
            .tasks
            .get(&self.task.task_id)
            .map(|t| t.state)
    }
}

#[test]
fn unreachable_task_comes_back_running_with_the_agent_reregistered_reason() {
    let mut p = running_task(config(), true);
    p.partition();
    let updates = p.h.updates(p.conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Unreachable);
    assert_eq!(updates[0].reason, Some(TaskReason::AgentRemoved));

    let agent_conn = p.come_back();
    let updates = p.h.updates(p.conn);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].state, TaskState::Running);
    assert_eq!(updates[0].reason, Some(TaskReason::AgentReregistered));
    assert_eq!(updates[0].source, Some(TaskSource::Master));
    assert_eq!(
        updates[0].uuid, None,
        "the master's own update needs no acknowledgement"
    );
    assert_eq!(p.task_state(), Some(TaskState::Running));
    assert!(
        !p.h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::KillTask { .. })),
        "a partition-aware framework's task keeps running"
    );
    // Reconciliation agrees.
    p.h.call(&p.framework_id, Call::Reconcile { tasks: vec![] })
        .expect("reconcile");
    assert_eq!(p.h.updates(p.conn)[0].state, TaskState::Running);
}

#[test]
fn a_task_told_lost_is_killed_when_its_agent_comes_back() {
    let mut p = running_task(config(), false);
    p.partition();
    let updates = p.h.updates(p.conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Lost);

    let agent_conn = p.come_back();
    assert!(p.h.updates(p.conn).is_empty(), "LOST was final: nothing more is said");
    assert_eq!(p.task_state(), None);
    let messages = p.h.agent_messages(agent_conn);
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, MasterMessage::KillTask { task_id, .. } if *task_id == p.task.task_id)),
        "{messages:?}"
    );
    // Its resources stay allocated until it ends, then come back silently.
    assert_eq!(
        p.h.master.allocator.agent_allocated(&p.agent_id).cpus(),
        res_cpus("cpus:1")
    );
    p.h.agent_update(agent_conn, &p.framework_id, &p.task.task_id, TaskState::Killed, 2);
    assert!(p.h.updates(p.conn).is_empty());
    assert!(
        p.h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::Acknowledge { .. })),
        "the master acknowledges the orphan's final update itself"
    );
    p.h.advance(Duration::from_secs(1));
    let offers = p.h.offers(p.conn);
    assert_eq!(
        offers.iter().map(|o| o.resources.cpus()).sum::<agora_proto::Scalar>(),
        res_cpus("cpus:4")
    );
}

fn res_cpus(spec: &str) -> agora_proto::Scalar {
    tests::res(spec).cpus()
}

#[test]
fn after_the_unreachable_timeout_tasks_are_gone_and_killed_on_return() {
    let mut p = running_task(
        MasterConfig {
            agent_unreachable_timeout: Duration::from_secs(600),
            ..config()
        },
        true,
    );
    p.partition();
    assert_eq!(p.h.updates(p.conn)[0].state, TaskState::Unreachable);
    p.h.advance(Duration::from_secs(590));
    assert!(p.h.updates(p.conn).is_empty(), "not gone before the timeout");
    assert_eq!(p.task_state(), Some(TaskState::Unreachable));

    p.h.advance(Duration::from_secs(10));
    let updates = p.h.updates(p.conn);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].state, TaskState::Gone);
    assert_eq!(updates[0].reason, Some(TaskReason::AgentRemoved));
    assert_eq!(p.task_state(), None);
    assert!(p.h.master.agents.is_empty(), "a gone agent is no longer listed");
    assert_eq!(p.h.master.stats().agents_gone, 1);
    // Explicit reconciliation names the agent: the task is gone.
    p.h.call(
        &p.framework_id,
        Call::Reconcile {
            tasks: vec![(p.task.task_id.clone(), Some(p.agent_id.clone()))],
        },
    )
    .expect("reconcile");
    assert_eq!(p.h.updates(p.conn)[0].state, TaskState::Gone);

    // It comes back with the same id: accepted, told to kill the task, and
    // the framework hears nothing more of it.
    let agent_conn = p.come_back();
    let messages = p.h.agent_messages(agent_conn);
    assert!(matches!(messages[0], MasterMessage::Registered { .. }), "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, MasterMessage::KillTask { task_id, .. } if *task_id == p.task.task_id))
    );
    assert!(p.h.updates(p.conn).is_empty());
    assert_eq!(p.task_state(), None);
    assert_eq!(p.h.master.stats().orphan_tasks_killed, 1);
    p.h.agent_update(agent_conn, &p.framework_id, &p.task.task_id, TaskState::Killed, 2);
    assert!(p.h.updates(p.conn).is_empty());
    assert!(p.h.master.agents[&p.agent_id].orphans.is_empty());
    assert_eq!(
        p.h.master.allocator.agent_allocated(&p.agent_id).cpus(),
        res_cpus("cpus:0")
    );
}

#[test]
fn gone_tasks_of_a_framework_that_is_not_partition_aware_are_not_reported_twice() {
    let mut p = running_task(
        MasterConfig {
            agent_unreachable_timeout: Duration::from_secs(600),
            ..config()
        },
        false,
    );
    p.partition();
    assert_eq!(p.h.updates(p.conn)[0].state, TaskState::Lost);
    p.h.advance(Duration::from_secs(600));
    assert!(p.h.updates(p.conn).is_empty());
    assert_eq!(p.task_state(), None);
}

#[test]
fn an_agent_unreachable_again_before_its_orphans_end_keeps_them_orphaned() {
    let mut p = running_task(config(), false);
    p.partition();
    let first = p.come_back();
    assert_eq!(p.h.master.agents[&p.agent_id].orphans.len(), 1);
    p.h.take();
    p.h.handle(Input::AgentDisconnected { conn: first })
        .expect("disconnect");
    p.h.advance(Duration::from_secs(80));
    assert!(p.h.updates(p.conn).is_empty(), "the framework already took it as LOST");
    let second = p.come_back();
    assert!(
        p.h.agent_messages(second)
            .iter()
            .any(|m| matches!(m, MasterMessage::KillTask { .. }))
    );
    assert!(p.h.updates(p.conn).is_empty());
}

/// `n` agents that all go silent at the same time.
fn silent_agents(config: MasterConfig, n: usize) -> (Harness, Vec<AgentId>) {
    let mut h = Harness::with_config(config);
    let ids = (0..n).map(|_| h.add_agent("cpus:1;mem:128").1).collect();
    (h, ids)
}

fn unreachable_count(h: &Harness) -> usize {
    h.master
        .agents
        .values()
        .filter(|a| a.status == AgentStatus::Unreachable)
        .count()
}

#[test]
fn without_a_rate_limit_all_silent_agents_are_removed_at_once() {
    let (mut h, _) = silent_agents(config(), 5);
    h.advance(Duration::from_secs(76));
    assert_eq!(unreachable_count(&h), 5);
    assert_eq!(h.master.stats().agent_removals_queued, 0);
}

#[test]
fn the_removal_rate_limit_spaces_removals_in_the_order_agents_went_silent() {
    let limit = RateLimit {
        permits: 1,
        per: Duration::from_secs(60),
    };
    let (mut h, ids) = silent_agents(
        MasterConfig {
            agent_removal_rate_limit: Some(limit),
            ..config()
        },
        3,
    );
    let start = h.now;
    // All three miss their deadline at start + 75 s: one is removed, the
    // others wait a minute each.
    h.advance(Duration::from_secs(75));
    assert_eq!(unreachable_count(&h), 1);
    assert_eq!(h.master.stats().agent_removals_queued, 3);
    // The master wakes for the next permit, not in a busy loop.
    assert_eq!(
        h.master.poll_timeout().map(|t| t <= start + Duration::from_secs(135)),
        Some(true)
    );
    h.advance(Duration::from_secs(59));
    assert_eq!(unreachable_count(&h), 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(unreachable_count(&h), 2);
    h.advance(Duration::from_secs(60));
    assert_eq!(unreachable_count(&h), 3);
    assert!(
        ids.iter()
            .all(|id| h.master.agents[id].status == AgentStatus::Unreachable)
    );
    assert_eq!(h.master.stats().agents_unreachable, 3);
}

#[test]
fn an_agent_heard_from_while_queued_is_not_removed_and_uses_no_permit() {
    let limit = RateLimit {
        permits: 1,
        per: Duration::from_secs(60),
    };
    let mut h = Harness::with_config(MasterConfig {
        agent_removal_rate_limit: Some(limit),
        ..config()
    });
    let (_, a) = h.add_agent("cpus:1;mem:128");
    let (b_conn, b) = h.add_agent("cpus:1;mem:128");
    let (_, c) = h.add_agent("cpus:1;mem:128");
    h.advance(Duration::from_secs(75));
    assert_eq!(unreachable_count(&h), 1);
    // Equal deadlines go in id order: a first, then b and c wait.
    assert_eq!(h.master.agents[&a].status, AgentStatus::Unreachable);
    // b answers while it waits: its removal is cancelled.
    h.handle(Input::Agent {
        conn: b_conn,
        message: AgentMessage::Pong,
    })
    .expect("pong");
    h.advance(Duration::from_secs(60));
    assert_eq!(h.master.agents[&b].status, AgentStatus::Active);
    assert_eq!(
        h.master.agents[&c].status,
        AgentStatus::Unreachable,
        "the permit went to c"
    );
}

#[test]
fn a_queued_agent_that_reregisters_is_not_removed() {
    let limit = RateLimit {
        permits: 1,
        per: Duration::from_secs(60),
    };
    let (mut h, ids) = silent_agents(
        MasterConfig {
            agent_removal_rate_limit: Some(limit),
            ..config()
        },
        2,
    );
    h.advance(Duration::from_secs(75));
    let waiting = ids
        .iter()
        .find(|id| h.master.agents[*id].status != AgentStatus::Unreachable)
        .cloned()
        .expect("one waits");
    h.register_agent(ConnectionId(777), "cpus:1;mem:128", Some(waiting.clone()), vec![]);
    // The permit comes at 135 s, the agent's new deadline is 150 s.
    h.advance(Duration::from_secs(65));
    assert!(h.master.removal_queue.is_empty());
    assert_eq!(h.master.agents[&waiting].status, AgentStatus::Active);
}

#[test]
fn a_framework_removed_while_its_task_is_an_orphan_frees_it() {
    let mut p = running_task(config(), false);
    p.partition();
    let agent_conn = p.come_back();
    assert_eq!(p.h.master.agents[&p.agent_id].orphans.len(), 1);
    p.h.take();
    p.h.call(&p.framework_id, Call::Teardown).expect("teardown");
    assert!(p.h.master.agents[&p.agent_id].orphans.is_empty());
    assert!(
        p.h.agent_messages(agent_conn)
            .iter()
            .any(|m| matches!(m, MasterMessage::ShutdownFramework { .. }))
    );
    assert_eq!(
        p.h.master.allocator.agent_allocated(&p.agent_id).cpus(),
        res_cpus("cpus:0")
    );
}
