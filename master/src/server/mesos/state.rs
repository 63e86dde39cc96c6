//! Mesos' read-only views of the cluster: `GET /version`, `GET /master/state`
//! (the legacy JSON, resources as `{"cpus": 4, ...}`) and the v1 operator
//! calls (`POST /api/v1`: GET_HEALTH, GET_VERSION, GET_STATE, GET_AGENTS,
//! GET_FRAMEWORKS, GET_TASKS), all built from one [`ClusterState`] snapshot.

use super::events::{self, MESOS_VERSION, MasterInfo, id, legacy_resources, resources};
use crate::{AgentStatus, ClusterState, TaskRecord};
use agora_proto::{Resources, Timestamp};
use serde_json::{Value, json};

/// `GET /version`.
pub(crate) fn version() -> Value {
    json!({
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "agora_version": env!("CARGO_PKG_VERSION"),
    })
}

fn seconds(t: Timestamp) -> f64 {
    t.as_secs_f64()
}

fn nanoseconds(t: Timestamp) -> Value {
    json!({ "nanoseconds": t.as_micros().saturating_mul(1000) })
}

fn legacy_task(t: &TaskRecord) -> Value {
    let statuses: Vec<Value> = t.last_status.iter().map(events::task_status).collect();
    json!({
        "id": t.task.task_id.as_str(),
        "name": t.task.name,
        "framework_id": t.framework_id.as_str(),
        "executor_id": "",
        "slave_id": t.task.agent_id.as_str(),
        "state": t.state.as_str(),
        "resources": legacy_resources(&t.task.resources),
        "statuses": statuses,
    })
}

/// `GET /master/state`: Mesos' legacy JSON.
pub(crate) fn master_state(state: &ClusterState, master: &MasterInfo, started: Timestamp) -> Value {
    let slaves: Vec<Value> = state
        .agents
        .iter()
        .map(|a| {
            let used = a.allocated.saturating_sub(&a.offered);
            let unreserved = a.info.resources.unreserved();
            let reserved = a.info.resources.saturating_sub(&unreserved);
            json!({
                "id": a.id.as_str(),
                "pid": format!("slave({})@{}", a.id, a.info.hostname),
                "hostname": a.info.hostname,
                "registered_time": seconds(a.registered_at),
                "resources": legacy_resources(&a.info.resources),
                "used_resources": legacy_resources(&used),
                "offered_resources": legacy_resources(&a.offered),
                "reserved_resources": legacy_resources(&reserved),
                "unreserved_resources": legacy_resources(&unreserved),
                "attributes": a.info.attributes.0,
                "active": a.status == AgentStatus::Active,
                "version": MESOS_VERSION,
            })
        })
        .collect();
    let frameworks: Vec<Value> = state
        .frameworks
        .iter()
        .map(|f| {
            let tasks: Vec<Value> = state
                .tasks
                .iter()
                .filter(|t| t.framework_id == f.id && !t.state.is_terminal())
                .map(legacy_task)
                .collect();
            let completed: Vec<Value> = state
                .tasks
                .iter()
                .chain(&state.completed_tasks)
                .filter(|t| t.framework_id == f.id && t.state.is_terminal())
                .map(legacy_task)
                .collect();
            let offers: Vec<Value> = state
                .offers
                .iter()
                .filter(|o| o.framework_id == f.id)
                .map(|o| {
                    json!({
                        "id": o.id.as_str(),
                        "framework_id": o.framework_id.as_str(),
                        "slave_id": o.agent_id.as_str(),
                        "resources": legacy_resources(&o.resources),
                    })
                })
                .collect();
            let used = f.allocated.saturating_sub(&f.offered);
            json!({
                "id": f.id.as_str(),
                "name": f.info.name,
                "user": f.info.user,
                "hostname": f.info.hostname,
                "active": f.connected,
                "connected": f.connected,
                "recovered": false,
                "role": f.info.roles.first(),
                "roles": f.info.roles,
                "failover_timeout": f.info.failover_timeout.as_secs_f64(),
                "checkpoint": false,
                "registered_time": seconds(f.registered_at),
                "used_resources": legacy_resources(&used),
                "offered_resources": legacy_resources(&f.offered),
                "resources": legacy_resources(&f.allocated),
                "tasks": tasks,
                "completed_tasks": completed,
                "offers": offers,
                "executors": [],
            })
        })
        .collect();
    let active = state.agents.iter().filter(|a| a.status == AgentStatus::Active).count();
    let unreachable = state
        .agents
        .iter()
        .filter(|a| a.status == AgentStatus::Unreachable)
        .count();
    let host = master.addr.ip().to_string();
    json!({
        "version": MESOS_VERSION,
        "id": master.id,
        "pid": master.pid(),
        "hostname": host,
        "start_time": seconds(started),
        "elected_time": seconds(started),
        "leader": master.pid(),
        "leader_info": master.to_json(),
        "activated_slaves": active,
        "deactivated_slaves": state.agents.len() - active - unreachable,
        "unreachable_slaves": unreachable,
        "slaves": slaves,
        "frameworks": frameworks,
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}

fn v1_task(t: &TaskRecord) -> Value {
    let statuses: Vec<Value> = t.last_status.iter().map(events::task_status).collect();
    json!({
        "name": t.task.name,
        "task_id": id(t.task.task_id.as_str()),
        "framework_id": id(t.framework_id.as_str()),
        "agent_id": id(t.task.agent_id.as_str()),
        "state": t.state.as_str(),
        "resources": resources(&t.task.resources, None),
        "statuses": statuses,
    })
}

fn get_agents(state: &ClusterState) -> Value {
    let agents: Vec<Value> = state
        .agents
        .iter()
        .filter(|a| a.status != AgentStatus::Unreachable)
        .map(|a| {
            json!({
                "agent_info": {
                    "id": id(a.id.as_str()),
                    "hostname": a.info.hostname,
                    "resources": resources(&a.info.resources, None),
                    "attributes": events::attributes(&a.info.attributes),
                },
                "active": a.status == AgentStatus::Active,
                "version": MESOS_VERSION,
                "registered_time": nanoseconds(a.registered_at),
                "total_resources": resources(&a.info.resources, None),
                "allocated_resources": resources(&a.allocated.saturating_sub(&a.offered), None),
                "offered_resources": resources(&a.offered, None),
            })
        })
        .collect();
    let recovered: Vec<Value> = Vec::new();
    json!({ "agents": agents, "recovered_agents": recovered })
}

fn get_frameworks(state: &ClusterState) -> Value {
    let frameworks: Vec<Value> = state
        .frameworks
        .iter()
        .map(|f| {
            json!({
                "framework_info": {
                    "id": id(f.id.as_str()),
                    "name": f.info.name,
                    "user": f.info.user,
                    "roles": f.info.roles,
                    "hostname": f.info.hostname,
                    "failover_timeout": f.info.failover_timeout.as_secs_f64(),
                },
                "active": f.connected,
                "connected": f.connected,
                "recovered": false,
                "registered_time": nanoseconds(f.registered_at),
                "allocated_resources": resources(&f.allocated.saturating_sub(&f.offered), None),
                "offered_resources": resources(&f.offered, None),
            })
        })
        .collect();
    let completed: Vec<Value> = Vec::new();
    json!({ "frameworks": frameworks, "completed_frameworks": completed })
}

fn get_tasks(state: &ClusterState) -> Value {
    let (ended, live): (Vec<&TaskRecord>, Vec<&TaskRecord>) = state.tasks.iter().partition(|t| t.state.is_terminal());
    let unreachable: Vec<Value> = live
        .iter()
        .filter(|t| t.state == agora_proto::TaskState::Unreachable)
        .map(|t| v1_task(t))
        .collect();
    let tasks: Vec<Value> = live
        .iter()
        .filter(|t| t.state != agora_proto::TaskState::Unreachable)
        .map(|t| v1_task(t))
        .collect();
    let completed: Vec<Value> = ended.into_iter().chain(&state.completed_tasks).map(v1_task).collect();
    json!({
        "tasks": tasks,
        "completed_tasks": completed,
        "unreachable_tasks": unreachable,
        "pending_tasks": [],
        "orphan_tasks": [],
    })
}

/// An operator call this module answers (`GET_<variant>`), by its `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperatorCall {
    Health,
    Version,
    State,
    Agents,
    Frameworks,
    Tasks,
}

impl OperatorCall {
    /// The call named by `kind`, if it is one Agora answers.
    pub(crate) fn from_type(kind: &str) -> Option<Self> {
        Some(match kind {
            "GET_HEALTH" => Self::Health,
            "GET_VERSION" => Self::Version,
            "GET_STATE" => Self::State,
            "GET_AGENTS" => Self::Agents,
            "GET_FRAMEWORKS" => Self::Frameworks,
            "GET_TASKS" => Self::Tasks,
            _ => return None,
        })
    }

    /// Whether answering needs a snapshot of the cluster.
    pub(crate) fn needs_state(self) -> bool {
        !matches!(self, Self::Health | Self::Version)
    }

    /// The response body (`{"type": ..., "get_...": {...}}`).
    pub(crate) fn answer(self, state: Option<&ClusterState>) -> Value {
        let empty = ClusterState {
            master_id: String::new(),
            total: Resources::new(),
            agents: Vec::new(),
            frameworks: Vec::new(),
            tasks: Vec::new(),
            completed_tasks: Vec::new(),
            offers: Vec::new(),
            stats: crate::Stats::default(),
        };
        let state = state.unwrap_or(&empty);
        match self {
            Self::Health => json!({"type": "GET_HEALTH", "get_health": {"healthy": true}}),
            Self::Version => json!({"type": "GET_VERSION", "get_version": {"version_info": version()}}),
            Self::State => json!({
                "type": "GET_STATE",
                "get_state": {
                    "get_agents": get_agents(state),
                    "get_frameworks": get_frameworks(state),
                    "get_executors": {"executors": [], "orphan_executors": []},
                    "get_tasks": get_tasks(state),
                }
            }),
            Self::Agents => json!({"type": "GET_AGENTS", "get_agents": get_agents(state)}),
            Self::Frameworks => json!({"type": "GET_FRAMEWORKS", "get_frameworks": get_frameworks(state)}),
            Self::Tasks => json!({"type": "GET_TASKS", "get_tasks": get_tasks(state)}),
        }
    }
}
