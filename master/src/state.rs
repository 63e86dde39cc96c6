//! What the master core shows of itself: a snapshot of the cluster for the
//! operator API and `/state`, and counters for `/metrics`.

use crate::master::{Master, Task};
use agora_proto::{
    AgentId, AgentInfo, FrameworkId, FrameworkInfo, Offer, Resources, TaskInfo, TaskState, TaskStatus, TaskUsage,
    Timestamp, pb,
};
use agora_proto::{QuotaLimit, quota_limit_to_wire};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Whether an agent can be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Registered and connected; its resources are offered.
    Active,
    /// Its stream closed; waiting for it to re-register.
    Disconnected,
    /// Silent or away too long; its tasks are UNREACHABLE.
    Unreachable,
}

/// Counters since the master started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Framework subscriptions, new and renewed.
    pub subscriptions: u64,
    /// Calls from frameworks.
    pub calls: u64,
    /// Allocation cycles run.
    pub allocation_cycles: u64,
    /// Offers made.
    pub offers_made: u64,
    /// Offers accepted.
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Offers rescinded.
    pub offers_rescinded: u64,
    /// Declines naming offers that no longer exist (a benign race).
    pub declines_of_unknown_offers: u64,
    /// Tasks sent to agents.
    pub tasks_launched: u64,
    /// Tasks refused as invalid (TASK_ERROR).
    pub tasks_invalid: u64,
    /// Tasks dropped because their offers were invalid (TASK_DROPPED).
    pub tasks_dropped: u64,
    /// RESERVE / UNRESERVE operations skipped as invalid (wrong or foreign
    /// role, resources not in the offers).
    pub operations_invalid: u64,
    /// Tasks that ended FINISHED.
    pub tasks_finished: u64,
    /// Tasks that ended FAILED.
    pub tasks_failed: u64,
    /// Tasks that ended KILLED.
    pub tasks_killed: u64,
    /// Tasks that ended otherwise (LOST, GONE, ...).
    pub tasks_ended_otherwise: u64,
    /// Status updates received from agents.
    pub status_updates: u64,
    /// Acknowledgements received from frameworks.
    pub acknowledgements: u64,
    /// Reconciliation requests.
    pub reconciliations: u64,
    /// Agent registrations, new and renewed.
    pub agent_registrations: u64,
    /// Agents marked unreachable.
    pub agents_unreachable: u64,
    /// Agents past their deadline that had to wait for the removal rate limit.
    pub agent_removals_queued: u64,
    /// Agents unreachable for longer than the unreachable timeout: their
    /// tasks are GONE.
    pub agents_gone: u64,
    /// Tasks a returning agent was told to kill because no framework
    /// expects them any more (GONE, or LOST to a framework that is not
    /// partition-aware).
    pub orphan_tasks_killed: u64,
    /// Frameworks removed (torn down or failed over too late).
    pub frameworks_removed: u64,
}

impl Stats {
    pub(crate) fn record_terminal(&mut self, state: TaskState) {
        match state {
            TaskState::Finished => self.tasks_finished += 1,
            TaskState::Failed => self.tasks_failed += 1,
            TaskState::Killed => self.tasks_killed += 1,
            _ => self.tasks_ended_otherwise += 1,
        }
    }
}

/// A task as shown to operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskRecord {
    /// Whose task it is.
    pub framework_id: FrameworkId,
    /// What was launched.
    pub task: TaskInfo,
    /// Its latest state.
    pub state: TaskState,
    /// The latest status received for it.
    pub last_status: Option<TaskStatus>,
    /// The latest usage its agent reported.
    pub usage: Option<TaskUsage>,
}

impl From<&Task> for TaskRecord {
    fn from(task: &Task) -> Self {
        Self {
            framework_id: task.framework_id.clone(),
            task: task.info.clone(),
            state: task.state,
            last_status: task.last_status.clone(),
            usage: task.usage,
        }
    }
}

impl TaskRecord {
    pub(crate) fn ended(framework_id: &FrameworkId, task: TaskInfo, status: TaskStatus) -> Self {
        Self {
            framework_id: framework_id.clone(),
            task,
            state: status.state,
            last_status: Some(status),
            usage: None,
        }
    }
}

impl From<TaskRecord> for pb::TaskRecord {
    fn from(t: TaskRecord) -> Self {
        Self {
            framework_id: Some(t.framework_id.into()),
            task: Some(t.task.into()),
            state: t.state.into(),
            last_status: t.last_status.map(Into::into),
            usage: t.usage.map(Into::into),
        }
    }
}

/// An agent as shown to operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentView {
    /// Its id.
    pub id: AgentId,
    /// What it reported.
    pub info: AgentInfo,
    /// Whether it can be used.
    pub status: AgentStatus,
    /// When it first registered.
    pub registered_at: Timestamp,
    /// Resources offered or used by tasks.
    pub allocated: Resources,
    /// Resources in outstanding offers.
    pub offered: Resources,
}

/// A framework as shown to operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameworkView {
    /// Its id.
    pub id: FrameworkId,
    /// Its description.
    pub info: FrameworkInfo,
    /// Whether its event stream is open.
    pub connected: bool,
    /// When it first subscribed.
    pub registered_at: Timestamp,
    /// Resources offered to it or used by its tasks.
    pub allocated: Resources,
    /// Resources in its outstanding offers.
    pub offered: Resources,
    /// Its dominant share of the cluster.
    pub dominant_share: f64,
    /// Its tasks that have not ended, or ended without acknowledgement yet.
    pub active_tasks: usize,
}

/// A role as shown to operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleView {
    /// Its name.
    pub role: String,
    /// Its weight.
    pub weight: f64,
    /// Resources offered or used under it.
    pub allocated: Resources,
    /// Its dominant share of the cluster, before weighting.
    pub dominant_share: f64,
    /// The frameworks that hold it.
    pub frameworks: Vec<FrameworkId>,
    /// Its quota limit, when it has one.
    pub quota: Option<QuotaLimit>,
    /// Its quota guarantee, when it has one.
    pub guarantee: Option<QuotaLimit>,
    /// Resources reserved for it on agents that are not unreachable, static
    /// and dynamic.
    pub reserved: Resources,
}

impl From<RoleView> for pb::RoleInfo {
    fn from(r: RoleView) -> Self {
        Self {
            role: r.role,
            weight: r.weight,
            allocated: (&r.allocated).into(),
            dominant_share: r.dominant_share,
            frameworks: r.frameworks.into_iter().map(Into::into).collect(),
            quota: r.quota.as_ref().map(quota_limit_to_wire).unwrap_or_default(),
            guarantee: r.guarantee.as_ref().map(quota_limit_to_wire).unwrap_or_default(),
            reserved: (&r.reserved).into(),
        }
    }
}

/// The whole cluster as the master sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterState {
    /// The master's id.
    pub master_id: String,
    /// Every agent's resources added up.
    pub total: Resources,
    /// Agents.
    pub agents: Vec<AgentView>,
    /// Frameworks.
    pub frameworks: Vec<FrameworkView>,
    /// Tasks the master tracks.
    pub tasks: Vec<TaskRecord>,
    /// Recently ended tasks.
    pub completed_tasks: Vec<TaskRecord>,
    /// Outstanding offers.
    pub offers: Vec<Offer>,
    /// Counters.
    pub stats: Stats,
}

impl Master {
    /// The number of decline filters in force at `now`.
    pub fn active_filters(&self, now: Timestamp) -> usize {
        self.allocator.active_filters(now)
    }

    /// The roles in use, by name, as Mesos lists them: held by a framework,
    /// allocated to, reserved for on an agent, or given a weight, a quota
    /// limit or a guarantee. A role the allocator still knows of but that
    /// has none of these (its frameworks and resources are gone) is left out.
    pub fn roles(&self) -> Vec<RoleView> {
        let mut reserved: BTreeMap<String, Resources> = BTreeMap::new();
        for agent in self.agents.values().filter(|a| a.status != AgentStatus::Unreachable) {
            let roles: BTreeSet<&str> = agent
                .info
                .resources
                .scalars()
                .map(|(k, _)| k)
                .chain(agent.info.resources.ranges().map(|(k, _)| k))
                .chain(agent.info.resources.sets().map(|(k, _)| k))
                .filter_map(|k| k.role())
                .collect();
            for role in roles {
                *reserved.entry(role.to_owned()).or_default() += agent.info.resources.reserved(role);
            }
        }
        let holders = |role: &str| -> Vec<FrameworkId> {
            self.frameworks
                .iter()
                .filter(|(_, f)| f.info.roles.iter().any(|r| r == role))
                .map(|(id, _)| id.clone())
                .collect()
        };
        let mut views: Vec<RoleView> = self
            .allocator
            .roles()
            .into_iter()
            .map(|r| RoleView {
                frameworks: holders(&r.role),
                reserved: reserved.remove(&r.role).unwrap_or_default(),
                role: r.role,
                weight: r.weight,
                allocated: r.allocated,
                dominant_share: r.dominant_share,
                quota: r.quota,
                guarantee: r.guarantee,
            })
            .filter(|r| {
                !r.frameworks.is_empty()
                    || !r.allocated.is_empty()
                    || !r.reserved.is_empty()
                    || r.quota.is_some()
                    || r.guarantee.is_some()
                    || self.config.drf.weights.contains_key(&r.role)
            })
            .collect();
        // Roles only reserved for have never been seen by the allocator.
        for (role, reserved) in reserved {
            views.push(RoleView {
                frameworks: holders(&role),
                weight: self.config.drf.weights.get(&role).copied().unwrap_or(1.0),
                allocated: Resources::new(),
                dominant_share: 0.0,
                quota: None,
                guarantee: None,
                reserved,
                role,
            });
        }
        views.sort_by(|a, b| a.role.cmp(&b.role));
        views
    }

    /// A snapshot of the cluster.
    pub fn state(&self) -> ClusterState {
        let offered = |ids: &mut dyn Iterator<Item = &agora_proto::OfferId>| {
            ids.filter_map(|id| self.offers.get(id))
                .fold(Resources::new(), |acc, o| acc + &o.resources)
        };
        ClusterState {
            master_id: self.config.master_id.clone(),
            total: self.allocator.cluster_total(),
            agents: self
                .agents
                .iter()
                .map(|(id, a)| AgentView {
                    id: id.clone(),
                    info: a.info.clone(),
                    status: a.status,
                    registered_at: a.registered_at,
                    allocated: self.allocator.agent_allocated(id),
                    offered: offered(&mut a.offers.iter()),
                })
                .collect(),
            frameworks: self
                .frameworks
                .iter()
                .map(|(id, f)| {
                    let share = self.allocator.framework_share(id);
                    FrameworkView {
                        id: id.clone(),
                        info: f.info.clone(),
                        connected: f.conn.is_some(),
                        registered_at: f.registered_at,
                        allocated: share.allocated,
                        offered: offered(&mut f.offers.iter()),
                        dominant_share: share.dominant_share,
                        active_tasks: f.tasks.len(),
                    }
                })
                .collect(),
            tasks: self
                .frameworks
                .values()
                .flat_map(|f| f.tasks.values().map(TaskRecord::from))
                .collect(),
            completed_tasks: self.completed_tasks.iter().cloned().collect(),
            offers: self.offers.values().cloned().collect(),
            stats: self.stats.clone(),
        }
    }
}

impl From<ClusterState> for pb::ClusterState {
    fn from(s: ClusterState) -> Self {
        Self {
            master_id: s.master_id,
            total: (&s.total).into(),
            agents: s
                .agents
                .into_iter()
                .map(|a| pb::AgentState {
                    id: Some(a.id.into()),
                    total: (&a.info.resources).into(),
                    info: Some(a.info.into()),
                    active: a.status == AgentStatus::Active,
                    allocated: (&a.allocated).into(),
                    offered: (&a.offered).into(),
                })
                .collect(),
            frameworks: s
                .frameworks
                .into_iter()
                .map(|f| pb::FrameworkState {
                    id: Some(f.id.into()),
                    info: Some(f.info.into()),
                    connected: f.connected,
                    active: f.connected,
                    allocated: (&f.allocated).into(),
                    offered: (&f.offered).into(),
                    dominant_share: f.dominant_share,
                })
                .collect(),
            tasks: s.tasks.into_iter().map(Into::into).collect(),
            completed_tasks: s.completed_tasks.into_iter().map(Into::into).collect(),
            offers: s.offers.into_iter().map(Into::into).collect(),
        }
    }
}
