//! The master state machine: agents, frameworks, offers and tasks.
//!
//! Inputs arrive through [`Master::handle`] with the current time; the work
//! they cause is queued as [`Output`]s for the driver to drain with
//! [`Master::poll_output`]; [`Master::poll_timeout`] says when to call
//! `handle(now, Input::Tick)` next. Nothing here reads a clock, draws
//! unseeded randomness or touches the network.

use crate::allocator::{Allocation, Allocator, DrfAllocator, Used};
use crate::config::MasterConfig;
use crate::durable::DurableKey;
use crate::error::{MasterError, ReservationError, ReservationOperation};
use crate::io::{ConnectionId, Input, Output};
use crate::state::{AgentStatus, Stats, TaskRecord};
use agora_proto::{
    AgentId, AgentInfo, AgentMessage, Call, Capability, Event, Filters, FrameworkCall, FrameworkId, FrameworkInfo,
    MasterMessage, Offer, OfferConstraint, OfferId, Operation, ResourceKey, Resources, RoleQuota, RunningTask,
    SandboxFile, StatusUuid, TaskId, TaskInfo, TaskReason, TaskSource, TaskState, TaskStatus, TaskUsage, Timestamp,
    validate_role, validate_weight,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// How long tasks of a framework that the master learns of only from an
/// agent (after a master restart) are kept while waiting for it to subscribe.
const UNKNOWN_FRAMEWORK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Gone agents remembered (so that they are told to kill their tasks if they
/// come back); the oldest are forgotten first. Mesos'
/// `--registry_max_agent_count` default.
const MAX_GONE_AGENTS: usize = 100_000;

/// A task the master knows of.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Whose task it is.
    pub framework_id: FrameworkId,
    /// What was launched.
    pub info: TaskInfo,
    /// The role its resources are allocated to.
    pub role: String,
    /// Its latest state.
    pub state: TaskState,
    /// The latest status received for it.
    pub last_status: Option<TaskStatus>,
    /// The latest usage its agent reported.
    pub usage: Option<TaskUsage>,
    /// Whether its resources went back to the allocator (it ended).
    resources_recovered: bool,
}

#[derive(Debug)]
pub(crate) struct Framework {
    pub(crate) info: FrameworkInfo,
    pub(crate) conn: Option<ConnectionId>,
    pub(crate) registered_at: Timestamp,
    next_heartbeat: Timestamp,
    failover_deadline: Option<Timestamp>,
    /// When its stream closed, while it is disconnected (kept in the
    /// registry, so its failover timeout runs across master restarts).
    disconnected_at: Option<Timestamp>,
    /// Known only from an agent's report: its `info` is a placeholder, not
    /// worth keeping in the registry.
    from_report: bool,
    pub(crate) tasks: BTreeMap<TaskId, Task>,
    pub(crate) offers: BTreeSet<OfferId>,
}

impl Framework {
    fn partition_aware(&self) -> bool {
        self.info.has(Capability::PartitionAware)
    }
}

#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) info: AgentInfo,
    pub(crate) conn: Option<ConnectionId>,
    pub(crate) status: AgentStatus,
    pub(crate) registered_at: Timestamp,
    /// When it is marked unreachable unless heard from; once unreachable,
    /// when it is gone.
    deadline: Timestamp,
    /// Past its deadline and waiting for the removal rate limit.
    removal_queued: bool,
    /// Tasks it runs that no framework is told of any more (declared GONE,
    /// or LOST to a framework that is not partition-aware): the agent was
    /// told to kill them; their resources stay allocated until they end.
    orphans: BTreeMap<(FrameworkId, TaskId), (String, Resources)>,
    next_ping: Timestamp,
    pub(crate) offers: BTreeSet<OfferId>,
    pub(crate) tasks: BTreeSet<(FrameworkId, TaskId)>,
    /// Its dynamic reservations (RESERVE operations), already part of
    /// `info.resources`; kept when it re-registers.
    pub(crate) reserved: Resources,
    /// Known from the registry after a master restart and not re-registered
    /// since: its resources are unknown (it is not in the allocator) and
    /// `reserved` waits to be re-applied.
    recovered: bool,
}

/// An agent declared gone, remembered.
#[derive(Debug, Default)]
struct GoneAgent {
    /// When.
    at: Timestamp,
    /// Its tasks declared GONE, with their roles.
    tasks: BTreeMap<(FrameworkId, TaskId), String>,
}

/// The master core. See the module documentation.
#[derive(Debug)]
pub struct Master {
    pub(crate) config: MasterConfig,
    pub(crate) allocator: Box<dyn Allocator>,
    rng: StdRng,
    pub(crate) frameworks: BTreeMap<FrameworkId, Framework>,
    removed_frameworks: BTreeSet<FrameworkId>,
    framework_conns: BTreeMap<ConnectionId, FrameworkId>,
    pub(crate) agents: BTreeMap<AgentId, Agent>,
    /// Agent streams; `None` until the stream's agent registers.
    agent_conns: BTreeMap<ConnectionId, Option<AgentId>>,
    pub(crate) offers: BTreeMap<OfferId, Offer>,
    /// With an offer timeout: when each outstanding offer expires, by offer
    /// and by time (the earliest is a timer).
    offer_deadlines: BTreeMap<OfferId, Timestamp>,
    offer_expiry: BTreeSet<(Timestamp, OfferId)>,
    pub(crate) completed_tasks: VecDeque<TaskRecord>,
    /// Sandbox reads waiting for their agent's answer, by request.
    pending_reads: BTreeMap<u64, AgentId>,
    /// Agents past their deadline waiting for the removal rate limit, in
    /// the order they missed it (entries of agents heard from since are
    /// skipped).
    removal_queue: VecDeque<AgentId>,
    /// When the rate limit next allows an agent to be marked unreachable.
    next_removal: Timestamp,
    /// Agents unreachable for longer than `agent_unreachable_timeout`, with
    /// the tasks declared GONE, oldest first.
    gone_agents: BTreeMap<AgentId, GoneAgent>,
    gone_order: VecDeque<AgentId>,
    /// Records of the registry changed since the driver last took them.
    durable_dirty: BTreeSet<DurableKey>,
    /// After a restart, allocation waits for recovered agents to come back.
    recovery: Option<recovery::Hold>,
    outputs: VecDeque<Output>,
    next_seq: u64,
    allocation_pending: bool,
    next_allocation: Timestamp,
    pub(crate) stats: Stats,
}

impl Master {
    /// A master with the DRF allocator. `seed` drives every random choice
    /// (the order agents are visited in), so a run can be replayed.
    pub fn new(config: MasterConfig, seed: u64) -> Self {
        let allocator = Box::new(DrfAllocator::new(config.drf.clone()));
        Self::with_allocator(config, allocator, seed)
    }

    /// A master with the given allocator.
    pub fn with_allocator(config: MasterConfig, allocator: Box<dyn Allocator>, seed: u64) -> Self {
        Self {
            config,
            allocator,
            rng: StdRng::seed_from_u64(seed),
            frameworks: BTreeMap::new(),
            removed_frameworks: BTreeSet::new(),
            framework_conns: BTreeMap::new(),
            agents: BTreeMap::new(),
            agent_conns: BTreeMap::new(),
            offers: BTreeMap::new(),
            offer_deadlines: BTreeMap::new(),
            offer_expiry: BTreeSet::new(),
            completed_tasks: VecDeque::new(),
            pending_reads: BTreeMap::new(),
            removal_queue: VecDeque::new(),
            next_removal: Timestamp::ZERO,
            gone_agents: BTreeMap::new(),
            gone_order: VecDeque::new(),
            durable_dirty: BTreeSet::new(),
            recovery: None,
            outputs: VecDeque::new(),
            next_seq: 0,
            allocation_pending: false,
            next_allocation: Timestamp::ZERO,
            stats: Stats::default(),
        }
    }

    /// This master's settings.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Feeds one input. An `Err` means the call was refused outright and
    /// changed nothing; the driver reports it to the caller.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<(), MasterError> {
        match input {
            Input::Subscribe { conn, info } => self.subscribe(now, conn, info)?,
            Input::Call(call) => self.call(now, call)?,
            Input::FrameworkDisconnected { conn } => self.framework_disconnected(now, conn),
            Input::Agent { conn, message } => self.agent_message(now, conn, message),
            Input::AgentDisconnected { conn } => self.agent_disconnected(now, conn),
            Input::ReadFile {
                request,
                framework_id,
                task_id,
                file,
                offset,
                max_bytes,
            } => self.read_file(request, framework_id.as_ref(), task_id, file, offset, max_bytes)?,
            Input::KillTask { framework_id, task_id } => self.operator_kill(now, framework_id.as_ref(), task_id)?,
            Input::UpdateWeights(weights) => self.update_weights(&weights)?,
            Input::UpdateQuota(quotas) => self.update_quota(quotas)?,
            Input::ReserveResources { agent_id, resources } => {
                self.operator_reservation(now, agent_id, resources, ReservationOperation::Reserve)?;
            }
            Input::UnreserveResources { agent_id, resources } => {
                self.operator_reservation(now, agent_id, resources, ReservationOperation::Unreserve)?;
            }
            Input::Tick => self.tick(now),
        }
        Ok(())
    }

    /// The next piece of work for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle(now, Input::Tick)` should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        // While allocation is held after a restart, nothing is due before the hold ends.
        let earliest = self.next_allocation.max(self.allocation_hold_until());
        let allocation = self.allocation_pending.then_some(earliest);
        let filters = self.allocator.next_filter_expiry().map(|t| t.max(earliest));
        let frameworks = self.frameworks.values().flat_map(|f| {
            let heartbeat = f.conn.map(|_| f.next_heartbeat);
            [heartbeat, f.failover_deadline]
        });
        let agents = self.agents.values().flat_map(|a| {
            // A queued agent waits for the rate limit, not its deadline.
            let deadline = (!a.removal_queued).then_some(a.deadline);
            match a.status {
                AgentStatus::Active => [Some(a.next_ping), deadline],
                AgentStatus::Disconnected => [None, deadline],
                AgentStatus::Unreachable => [None, Some(a.deadline)],
            }
        });
        let offers = self.offer_expiry.first().map(|(at, _)| *at);
        let removal = (!self.removal_queue.is_empty()).then_some(self.next_removal);
        [allocation, filters, offers, removal]
            .into_iter()
            .chain(frameworks)
            .chain(agents)
            .flatten()
            .min()
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.next_seq += 1;
        format!("{}-{kind}{:04}", self.config.master_id, self.next_seq)
    }

    fn request_allocation(&mut self) {
        self.allocation_pending = true;
    }

    fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    // ----- frameworks -------------------------------------------------------

    fn subscribe(&mut self, now: Timestamp, conn: ConnectionId, mut info: FrameworkInfo) -> Result<(), MasterError> {
        if let Some(existing) = self.framework_conns.get(&conn) {
            return Err(MasterError::ConnectionInUse(existing.clone()));
        }
        let framework_id = match info.id.clone() {
            Some(id) if self.removed_frameworks.contains(&id) => return Err(MasterError::FrameworkRemoved(id)),
            Some(id) => id,
            None => FrameworkId::new(self.next_id("F")).unwrap_or_else(|_| unreachable!("generated ids are valid")),
        };
        info.id = Some(framework_id.clone());
        let heartbeat = now + self.config.heartbeat_interval;

        if let Some(framework) = self.frameworks.get_mut(&framework_id) {
            // Re-subscription: the newest stream wins, the old one is closed.
            if let Some(old) = framework.conn.replace(conn) {
                self.framework_conns.remove(&old);
                self.outputs.push_back(Output::CloseFramework { conn: old });
            }
            let roles_changed = framework.info.roles != info.roles;
            let constraints_changed = framework.info.offer_constraints != info.offer_constraints;
            let min_changed = framework.info.min_allocatable != info.min_allocatable;
            framework.info = info;
            framework.failover_deadline = None;
            framework.disconnected_at = None;
            framework.from_report = false;
            framework.next_heartbeat = heartbeat;
            let roles = framework.info.roles.clone();
            if roles_changed {
                self.allocator.update_framework_roles(&framework_id, &roles);
            }
            if min_changed {
                let min = framework.info.min_allocatable.clone();
                self.allocator.set_framework_min_allocatable(&framework_id, &min);
            }
            if constraints_changed {
                let constraints = framework.info.offer_constraints.clone();
                self.allocator.set_framework_constraints(&framework_id, &constraints);
                self.rescind_unmatched_offers(now, &framework_id);
            }
            self.allocator.set_framework_active(&framework_id, true);
        } else {
            self.allocator.add_framework(&framework_id, &info.roles, &[]);
            self.allocator
                .set_framework_constraints(&framework_id, &info.offer_constraints);
            self.allocator
                .set_framework_min_allocatable(&framework_id, &info.min_allocatable);
            self.frameworks.insert(
                framework_id.clone(),
                Framework {
                    info,
                    conn: Some(conn),
                    registered_at: now,
                    next_heartbeat: heartbeat,
                    failover_deadline: None,
                    disconnected_at: None,
                    from_report: false,
                    tasks: BTreeMap::new(),
                    offers: BTreeSet::new(),
                },
            );
        }
        self.framework_conns.insert(conn, framework_id.clone());
        self.durable_dirty.insert(DurableKey::Framework(framework_id.clone()));
        self.stats.subscriptions += 1;
        self.push(Output::ToFramework {
            conn,
            event: Event::Subscribed {
                framework_id,
                heartbeat_interval: self.config.heartbeat_interval,
                master_id: self.config.master_id.clone(),
            },
        });
        self.push(Output::ToFramework {
            conn,
            event: Event::Heartbeat,
        });
        self.request_allocation();
        Ok(())
    }

    fn subscribed_framework(&self, framework_id: &FrameworkId) -> Result<ConnectionId, MasterError> {
        match self.frameworks.get(framework_id) {
            Some(Framework { conn: Some(conn), .. }) => Ok(*conn),
            Some(_) => Err(MasterError::FrameworkNotSubscribed(framework_id.clone())),
            None if self.removed_frameworks.contains(framework_id) => {
                Err(MasterError::FrameworkRemoved(framework_id.clone()))
            }
            None => Err(MasterError::UnknownFramework(framework_id.clone())),
        }
    }

    fn call(&mut self, now: Timestamp, FrameworkCall { framework_id, call }: FrameworkCall) -> Result<(), MasterError> {
        self.subscribed_framework(&framework_id)?;
        self.stats.calls += 1;
        match call {
            Call::Accept {
                offer_ids,
                operations,
                filters,
            } => self.accept(now, &framework_id, offer_ids, operations, filters),
            Call::Decline { offer_ids, filters } => self.decline(now, &framework_id, &offer_ids, filters),
            Call::Revive { roles } => {
                self.check_roles(&framework_id, &roles)?;
                self.allocator.revive(&framework_id, &roles);
                self.request_allocation();
            }
            Call::Suppress { roles } => {
                self.check_roles(&framework_id, &roles)?;
                self.allocator.suppress(&framework_id, &roles);
            }
            Call::Kill { task_id, agent_id } => self.kill(now, &framework_id, task_id, agent_id),
            Call::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => self.acknowledge(&framework_id, agent_id, task_id, uuid)?,
            Call::Reconcile { tasks } => self.reconcile(now, &framework_id, tasks),
            Call::Teardown => self.remove_framework(now, &framework_id),
            Call::UpdateFramework(info) => self.update_framework(now, &framework_id, info)?,
        }
        Ok(())
    }

    fn check_roles(&self, framework_id: &FrameworkId, roles: &[String]) -> Result<(), MasterError> {
        let held = self
            .frameworks
            .get(framework_id)
            .map(|f| f.info.roles.as_slice())
            .unwrap_or_default();
        match roles.iter().find(|r| !held.contains(r)) {
            Some(role) => Err(MasterError::UnknownRole {
                framework_id: framework_id.clone(),
                role: role.clone(),
            }),
            None => Ok(()),
        }
    }

    fn update_framework(
        &mut self,
        now: Timestamp,
        framework_id: &FrameworkId,
        mut info: FrameworkInfo,
    ) -> Result<(), MasterError> {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(MasterError::UnknownFramework(framework_id.clone()));
        };
        if info.user != framework.info.user && !info.user.is_empty() {
            return Err(MasterError::InvalidUpdate {
                framework_id: framework_id.clone(),
                reason: format!(
                    "the user cannot change (from {:?} to {:?})",
                    framework.info.user, info.user
                ),
            });
        }
        info.id = Some(framework_id.clone());
        info.user.clone_from(&framework.info.user);
        self.durable_dirty.insert(DurableKey::Framework(framework_id.clone()));
        let roles_changed = framework.info.roles != info.roles;
        let constraints_changed = framework.info.offer_constraints != info.offer_constraints;
        let min_changed = framework.info.min_allocatable != info.min_allocatable;
        framework.info = info;
        if min_changed {
            // Outstanding offers stay; the new minimum applies to the next ones.
            let min = framework.info.min_allocatable.clone();
            self.allocator.set_framework_min_allocatable(framework_id, &min);
        }
        if constraints_changed {
            let constraints = framework.info.offer_constraints.clone();
            self.allocator.set_framework_constraints(framework_id, &constraints);
            self.rescind_unmatched_offers(now, framework_id);
            self.request_allocation();
        }
        if min_changed {
            self.request_allocation();
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Ok(());
        };
        if roles_changed {
            let roles = framework.info.roles.clone();
            // Offers made for roles the framework no longer holds are withdrawn.
            let stale: Vec<OfferId> = framework
                .offers
                .iter()
                .filter(|id| self.offers.get(*id).is_some_and(|o| !roles.contains(&o.role)))
                .cloned()
                .collect();
            self.allocator.update_framework_roles(framework_id, &roles);
            for offer_id in stale {
                self.rescind_offer(now, &offer_id);
            }
            self.request_allocation();
        }
        Ok(())
    }

    fn framework_disconnected(&mut self, now: Timestamp, conn: ConnectionId) {
        let Some(framework_id) = self.framework_conns.remove(&conn) else {
            return;
        };
        let Some(framework) = self.frameworks.get_mut(&framework_id) else {
            return;
        };
        if framework.conn != Some(conn) {
            return;
        }
        framework.conn = None;
        let timeout = framework.info.failover_timeout;
        framework.failover_deadline = Some(now + timeout);
        framework.disconnected_at = Some(now);
        self.durable_dirty.insert(DurableKey::Framework(framework_id.clone()));
        let offers: Vec<OfferId> = framework.offers.iter().cloned().collect();
        self.allocator.set_framework_active(&framework_id, false);
        for offer_id in offers {
            self.rescind_offer(now, &offer_id);
        }
        if timeout.is_zero() {
            self.remove_framework(now, &framework_id);
        }
    }

    /// Removes a framework for good: its offers go back, its tasks are killed.
    fn remove_framework(&mut self, now: Timestamp, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        self.durable_dirty.insert(DurableKey::Framework(framework_id.clone()));
        if let Some(conn) = framework.conn {
            self.framework_conns.remove(&conn);
            self.push(Output::CloseFramework { conn });
        }
        for offer_id in &framework.offers {
            self.forget_offer_deadline(offer_id);
            if let Some(offer) = self.offers.remove(offer_id) {
                if let Some(agent) = self.agents.get_mut(&offer.agent_id) {
                    agent.offers.remove(offer_id);
                }
                self.allocator
                    .recover(now, framework_id, &offer.agent_id, &offer.role, &offer.resources, None);
            }
        }
        let mut agents_to_tell = BTreeSet::new();
        for (task_id, mut task) in framework.tasks {
            let agent_id = task.info.agent_id.clone();
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.tasks.remove(&(framework_id.clone(), task_id.clone()));
                if !task.state.is_terminal()
                    && let Some(conn) = agent.conn
                {
                    agents_to_tell.insert(conn);
                }
            }
            if !task.resources_recovered {
                self.allocator
                    .recover(now, framework_id, &agent_id, &task.role, &task.info.resources, None);
                task.resources_recovered = true;
            }
            if !task.state.is_terminal() {
                let mut status = TaskStatus::new(task_id, TaskState::Killed, now);
                status.reason = Some(TaskReason::FrameworkRemoved);
                status.source = Some(TaskSource::Master);
                status.agent_id = Some(agent_id);
                status.message = "Framework removed".to_owned();
                task.state = TaskState::Killed;
                task.last_status = Some(status);
            }
            self.complete(task);
        }
        // Its orphans (tasks being killed that it no longer hears of) go too.
        for (agent_id, agent) in &mut self.agents {
            let mine: Vec<(FrameworkId, TaskId)> = agent
                .orphans
                .keys()
                .filter(|(f, _)| f == framework_id)
                .cloned()
                .collect();
            for key in mine {
                if let Some((role, resources)) = agent.orphans.remove(&key) {
                    self.allocator
                        .recover(now, framework_id, agent_id, &role, &resources, None);
                    if let Some(conn) = agent.conn {
                        agents_to_tell.insert(conn);
                    }
                }
            }
        }
        for conn in agents_to_tell {
            self.push(Output::ToAgent {
                conn,
                message: MasterMessage::ShutdownFramework {
                    framework_id: framework_id.clone(),
                },
            });
        }
        self.allocator.remove_framework(framework_id);
        self.removed_frameworks.insert(framework_id.clone());
        self.stats.frameworks_removed += 1;
        self.request_allocation();
    }

    fn complete(&mut self, task: Task) {
        self.completed_tasks.push_back(TaskRecord::from(&task));
        while self.completed_tasks.len() > self.config.max_completed_tasks {
            self.completed_tasks.pop_front();
        }
    }

    /// Sends a status update to a framework, as the framework understands
    /// it: frameworks that are not partition-aware see LOST for the newer
    /// states.
    fn send_update(&mut self, framework_id: &FrameworkId, mut status: TaskStatus) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let Some(conn) = framework.conn else {
            return;
        };
        if !framework.partition_aware()
            && matches!(
                status.state,
                TaskState::Unreachable
                    | TaskState::Dropped
                    | TaskState::Gone
                    | TaskState::GoneByOperator
                    | TaskState::Unknown
            )
        {
            status.state = TaskState::Lost;
        }
        self.push(Output::ToFramework {
            conn,
            event: Event::Update(status),
        });
    }

    fn master_status(
        now: Timestamp,
        task_id: TaskId,
        state: TaskState,
        reason: TaskReason,
        agent_id: Option<AgentId>,
        message: String,
    ) -> TaskStatus {
        let mut status = TaskStatus::new(task_id, state, now);
        status.reason = Some(reason);
        status.source = Some(TaskSource::Master);
        status.agent_id = agent_id;
        status.message = message;
        status
    }

    // ----- offers -----------------------------------------------------------

    fn make_offers(&mut self, now: Timestamp, allocations: Vec<Allocation>) {
        let mut by_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for allocation in allocations {
            let offer_id = OfferId::new(self.next_id("O")).unwrap_or_else(|_| unreachable!("generated ids are valid"));
            let Some(agent) = self.agents.get_mut(&allocation.agent_id) else {
                continue;
            };
            agent.offers.insert(offer_id.clone());
            let offer = Offer {
                id: offer_id.clone(),
                framework_id: allocation.framework_id.clone(),
                agent_id: allocation.agent_id,
                hostname: agent.info.hostname.clone(),
                resources: allocation.resources,
                attributes: agent.info.attributes.clone(),
                role: allocation.role,
            };
            if let Some(framework) = self.frameworks.get_mut(&allocation.framework_id) {
                framework.offers.insert(offer_id.clone());
            }
            if let Some(timeout) = self.config.offer_timeout {
                let at = now + timeout;
                self.offer_deadlines.insert(offer_id.clone(), at);
                self.offer_expiry.insert((at, offer_id.clone()));
            }
            self.offers.insert(offer_id, offer.clone());
            by_framework.entry(allocation.framework_id).or_default().push(offer);
        }
        for (framework_id, offers) in by_framework {
            self.stats.offers_made += offers.len() as u64;
            match self.frameworks.get(&framework_id).and_then(|f| f.conn) {
                Some(conn) => self.push(Output::ToFramework {
                    conn,
                    event: Event::Offers(offers),
                }),
                None => {
                    // The allocator only serves active frameworks, so this
                    // cannot happen; if it does, nothing must leak.
                    for offer in offers {
                        self.rescind_offer(now, &offer.id);
                    }
                }
            }
        }
    }

    /// Takes an offer out of circulation and returns its resources, telling
    /// the framework if it is connected.
    fn rescind_offer(&mut self, now: Timestamp, offer_id: &OfferId) {
        let Some(offer) = self.remove_offer(offer_id) else {
            return;
        };
        self.allocator.recover(
            now,
            &offer.framework_id,
            &offer.agent_id,
            &offer.role,
            &offer.resources,
            None,
        );
        self.stats.offers_rescinded += 1;
        if let Some(conn) = self.frameworks.get(&offer.framework_id).and_then(|f| f.conn) {
            self.push(Output::ToFramework {
                conn,
                event: Event::Rescind(offer.id),
            });
        }
        self.request_allocation();
    }

    /// Rescinds the framework's offers on agents its offer constraints no
    /// longer accept.
    fn rescind_unmatched_offers(&mut self, now: Timestamp, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let unmatched: Vec<OfferId> = framework
            .offers
            .iter()
            .filter(|id| {
                self.offers
                    .get(*id)
                    .is_some_and(|o| !OfferConstraint::all_match(&framework.info.offer_constraints, &o.attributes))
            })
            .cloned()
            .collect();
        for offer_id in unmatched {
            self.rescind_offer(now, &offer_id);
        }
    }

    fn forget_offer_deadline(&mut self, offer_id: &OfferId) {
        if let Some(at) = self.offer_deadlines.remove(offer_id) {
            self.offer_expiry.remove(&(at, offer_id.clone()));
        }
    }

    fn remove_offer(&mut self, offer_id: &OfferId) -> Option<Offer> {
        self.forget_offer_deadline(offer_id);
        let offer = self.offers.remove(offer_id)?;
        if let Some(framework) = self.frameworks.get_mut(&offer.framework_id) {
            framework.offers.remove(offer_id);
        }
        if let Some(agent) = self.agents.get_mut(&offer.agent_id) {
            agent.offers.remove(offer_id);
        }
        Some(offer)
    }

    fn decline(&mut self, now: Timestamp, framework_id: &FrameworkId, offer_ids: &[OfferId], filters: Filters) {
        for offer_id in offer_ids {
            // Declining an offer that was rescinded meanwhile is a benign race.
            if self
                .offers
                .get(offer_id)
                .is_none_or(|o| &o.framework_id != framework_id)
            {
                self.stats.declines_of_unknown_offers += 1;
                continue;
            }
            if let Some(offer) = self.remove_offer(offer_id) {
                self.allocator.recover(
                    now,
                    framework_id,
                    &offer.agent_id,
                    &offer.role,
                    &offer.resources,
                    Some(filters.refuse),
                );
                self.stats.offers_declined += 1;
            }
        }
        self.request_allocation();
    }

    /// Why the offers of an ACCEPT cannot be used, if they cannot.
    fn invalid_offers(&self, framework_id: &FrameworkId, offer_ids: &[OfferId]) -> Option<String> {
        let mut seen = BTreeSet::new();
        let mut agent: Option<&AgentId> = None;
        for offer_id in offer_ids {
            if !seen.insert(offer_id) {
                return Some(format!("Offer {offer_id} appears more than once in the call"));
            }
            let Some(offer) = self.offers.get(offer_id) else {
                return Some(format!("Offer {offer_id} is no longer valid"));
            };
            if &offer.framework_id != framework_id {
                return Some(format!("Offer {offer_id} is not an offer to framework {framework_id}"));
            }
            match agent {
                Some(first) if first != &offer.agent_id => {
                    return Some(format!(
                        "Offers must all be on one agent; offer {offer_id} is on agent {} and another is on agent {first}",
                        offer.agent_id
                    ));
                }
                _ => agent = Some(&offer.agent_id),
            }
        }
        None
    }

    fn accept(
        &mut self,
        now: Timestamp,
        framework_id: &FrameworkId,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        filters: Filters,
    ) {
        if let Some(reason) = self.invalid_offers(framework_id, &offer_ids) {
            // RESERVE and UNRESERVE have no task to report on; they are dropped.
            let tasks: Vec<TaskInfo> = operations
                .into_iter()
                .flat_map(|op| match op {
                    Operation::Launch(tasks) => tasks,
                    Operation::Reserve(_) | Operation::Unreserve(_) => Vec::new(),
                })
                .collect();
            // Offers of this framework that are still valid go back unfiltered;
            // other frameworks' offers are not touched.
            for offer_id in &offer_ids {
                if self
                    .offers
                    .get(offer_id)
                    .is_some_and(|o| &o.framework_id == framework_id)
                    && let Some(offer) = self.remove_offer(offer_id)
                {
                    self.allocator
                        .recover(now, framework_id, &offer.agent_id, &offer.role, &offer.resources, None);
                }
            }
            for task in tasks {
                self.stats.tasks_dropped += 1;
                let status = Self::master_status(
                    now,
                    task.task_id.clone(),
                    TaskState::Dropped,
                    TaskReason::InvalidOffers,
                    Some(task.agent_id.clone()),
                    reason.clone(),
                );
                self.send_update(framework_id, status.clone());
                self.completed_tasks
                    .push_back(TaskRecord::ended(framework_id, task, status));
            }
            self.request_allocation();
            return;
        }

        // Pool the offered resources by role; tasks take from the pool.
        let mut pool: BTreeMap<String, Resources> = BTreeMap::new();
        let mut agent_id = None;
        for offer_id in &offer_ids {
            if let Some(offer) = self.remove_offer(offer_id) {
                *pool.entry(offer.role).or_default() += &offer.resources;
                agent_id = Some(offer.agent_id);
            }
        }
        let Some(agent_id) = agent_id else {
            return;
        };
        self.stats.offers_accepted += offer_ids.len() as u64;

        let mut launched_ids = BTreeSet::new();
        for operation in operations {
            let tasks = match operation {
                Operation::Launch(tasks) => tasks,
                Operation::Reserve(resources) => {
                    self.apply_reservation(framework_id, &agent_id, &mut pool, &resources, true);
                    continue;
                }
                Operation::Unreserve(resources) => {
                    self.apply_reservation(framework_id, &agent_id, &mut pool, &resources, false);
                    continue;
                }
            };
            self.launch(now, framework_id, &agent_id, tasks, &mut pool, &mut launched_ids);
        }
        for (role, unused) in pool {
            if !unused.is_empty() {
                self.allocator
                    .recover(now, framework_id, &agent_id, &role, &unused, Some(filters.refuse));
            }
        }
        self.request_allocation();
    }

    /// The LAUNCH operations of an ACCEPT: each task takes its resources from
    /// the pool of the role whose offered resources hold them.
    fn launch(
        &mut self,
        now: Timestamp,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        tasks: Vec<TaskInfo>,
        pool: &mut BTreeMap<String, Resources>,
        launched_ids: &mut BTreeSet<TaskId>,
    ) {
        let agent_id = agent_id.clone();
        let agent_conn = self.agents.get(&agent_id).and_then(|a| a.conn);
        for task in tasks {
            let problem = self.validate_task(framework_id, &agent_id, &task, launched_ids, pool);
            let role = match problem {
                Ok(role) => role,
                Err(message) => {
                    self.stats.tasks_invalid += 1;
                    let status = Self::master_status(
                        now,
                        task.task_id.clone(),
                        TaskState::Error,
                        TaskReason::TaskInvalid,
                        Some(agent_id.clone()),
                        message,
                    );
                    self.send_update(framework_id, status.clone());
                    self.completed_tasks
                        .push_back(TaskRecord::ended(framework_id, task, status));
                    continue;
                }
            };
            if let Some(available) = pool.get_mut(&role) {
                *available -= &task.resources;
            }
            launched_ids.insert(task.task_id.clone());
            let Some(agent_conn) = agent_conn else {
                // Offers of a disconnected agent are rescinded, so this is a race
                // inside one call at most; the task never starts.
                let status = Self::master_status(
                    now,
                    task.task_id.clone(),
                    TaskState::Dropped,
                    TaskReason::AgentDisconnected,
                    Some(agent_id.clone()),
                    format!("Agent {agent_id} is disconnected"),
                );
                *pool.entry(role).or_default() += &task.resources;
                self.send_update(framework_id, status.clone());
                self.completed_tasks
                    .push_back(TaskRecord::ended(framework_id, task, status));
                continue;
            };
            self.stats.tasks_launched += 1;
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.tasks.insert((framework_id.clone(), task.task_id.clone()));
            }
            self.push(Output::ToAgent {
                conn: agent_conn,
                message: MasterMessage::RunTask {
                    framework_id: framework_id.clone(),
                    task: task.clone(),
                },
            });
            if let Some(framework) = self.frameworks.get_mut(framework_id) {
                framework.tasks.insert(
                    task.task_id.clone(),
                    Task {
                        framework_id: framework_id.clone(),
                        info: task,
                        role,
                        state: TaskState::Staging,
                        last_status: None,
                        usage: None,
                        resources_recovered: false,
                    },
                );
            }
        }
    }

    /// A RESERVE (`reserve`) or UNRESERVE operation of an ACCEPT. RESERVE:
    /// `resources`, all reserved for one role the framework holds (not `*`),
    /// are taken unreserved from that role's pool and put back reserved;
    /// UNRESERVE is the inverse, for dynamic reservations only (as Mesos).
    /// The agent's total changes likewise and the resources stay allocated
    /// to the framework. An invalid operation has no task to fail: it is
    /// skipped and counted (`operations_invalid`).
    fn apply_reservation(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        pool: &mut BTreeMap<String, Resources>,
        resources: &Resources,
        reserve: bool,
    ) {
        let Some((role, from, to)) = self.check_reservation(framework_id, agent_id, pool, resources, reserve) else {
            self.stats.operations_invalid += 1;
            return;
        };
        if let Some(available) = pool.get_mut(&role) {
            *available = available.clone() - &from + &to;
        }
        self.rekey_agent(agent_id, &from, &to, reserve);
        self.allocator
            .update_allocation(framework_id, agent_id, &role, &from, &to);
    }

    /// Applies a checked RESERVE (`reserve`) or UNRESERVE to the agent's
    /// books: its total trades `from` for `to`, and its dynamic reservations
    /// gain `to` or lose `from`. The allocator is the caller's business.
    fn rekey_agent(&mut self, agent_id: &AgentId, from: &Resources, to: &Resources, reserve: bool) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            self.durable_dirty.insert(DurableKey::Agent(agent_id.clone()));
            agent.info.resources = agent.info.resources.clone() - from + to;
            if reserve {
                agent.reserved += to;
            } else {
                agent.reserved -= from;
            }
        }
    }

    /// For a valid RESERVE / UNRESERVE: the pool role and what turns into what.
    fn check_reservation(
        &self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        pool: &BTreeMap<String, Resources>,
        resources: &Resources,
        reserve: bool,
    ) -> Option<(String, Resources, Resources)> {
        let role = reservation_role(resources).ok()?;
        let holds = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.roles.contains(&role));
        if !holds {
            return None;
        }
        if !reserve {
            // Static reservations (in the agent's own resources) stay.
            check_dynamic(self.agents.get(agent_id)?, resources).ok()?;
        }
        let (from, to) = reservation_change(resources, reserve);
        pool.get(&role)
            .is_some_and(|available| available.contains(&from))
            .then_some((role, from, to))
    }

    /// Checks one task of an ACCEPT, returning the role whose offered
    /// resources it uses, or a message saying what is wrong.
    fn validate_task(
        &self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task: &TaskInfo,
        launched: &BTreeSet<TaskId>,
        pool: &BTreeMap<String, Resources>,
    ) -> Result<String, String> {
        let in_use = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.tasks.contains_key(&task.task_id));
        if in_use || launched.contains(&task.task_id) {
            return Err(format!("Task ID '{}' is already in use", task.task_id));
        }
        if &task.agent_id != agent_id {
            return Err(format!(
                "Task's agent_id {} does not match the agent {agent_id} of the offers",
                task.agent_id
            ));
        }
        if task.resources.is_empty() {
            return Err("Task uses no resources".to_owned());
        }
        if task.resources.cpus() == agora_proto::Scalar::ZERO && task.resources.mem() == agora_proto::Scalar::ZERO {
            return Err(format!("Task uses neither cpus nor mem ({})", task.resources));
        }
        pool.iter()
            .find(|(_, available)| available.contains(&task.resources))
            .map(|(role, _)| role.clone())
            .ok_or_else(|| {
                let available = pool.values().fold(Resources::new(), |acc, r| acc + r);
                format!(
                    "Task uses more resources ({}) than available in the offers ({available})",
                    task.resources
                )
            })
    }

    // ----- tasks ------------------------------------------------------------

    fn kill(&mut self, now: Timestamp, framework_id: &FrameworkId, task_id: TaskId, agent_id: Option<AgentId>) {
        let task = self.frameworks.get(framework_id).and_then(|f| f.tasks.get(&task_id));
        match task {
            Some(task) if !task.state.is_terminal() => {
                let agent_conn = self.agents.get(&task.info.agent_id).and_then(|a| a.conn);
                if let Some(agent_conn) = agent_conn {
                    self.push(Output::ToAgent {
                        conn: agent_conn,
                        message: MasterMessage::KillTask {
                            framework_id: framework_id.clone(),
                            task_id,
                        },
                    });
                }
            }
            Some(_) => {}
            None => {
                let status = Self::master_status(
                    now,
                    task_id,
                    TaskState::Unknown,
                    TaskReason::TaskUnknown,
                    agent_id,
                    "Attempted to kill an unknown task".to_owned(),
                );
                self.send_update(framework_id, status);
            }
        }
    }

    fn acknowledge(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: StatusUuid,
    ) -> Result<(), MasterError> {
        let Some(agent) = self.agents.get(&agent_id) else {
            if self.gone_agents.contains_key(&agent_id) {
                // Nobody is left to tell; the update was the master's own.
                return Ok(());
            }
            return Err(MasterError::UnknownAgent(agent_id));
        };
        if let Some(conn) = agent.conn {
            self.push(Output::ToAgent {
                conn,
                message: MasterMessage::Acknowledge {
                    framework_id: framework_id.clone(),
                    task_id: task_id.clone(),
                    uuid,
                },
            });
        }
        self.stats.acknowledgements += 1;
        let acked_terminal = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&task_id))
            .is_some_and(|t| t.state.is_terminal() && t.last_status.as_ref().and_then(|s| s.uuid) == Some(uuid));
        if acked_terminal
            && let Some(task) = self
                .frameworks
                .get_mut(framework_id)
                .and_then(|f| f.tasks.remove(&task_id))
        {
            if let Some(agent) = self.agents.get_mut(&task.info.agent_id) {
                agent.tasks.remove(&(framework_id.clone(), task_id));
            }
            self.complete(task);
        }
        Ok(())
    }

    fn reconcile(&mut self, now: Timestamp, framework_id: &FrameworkId, tasks: Vec<(TaskId, Option<AgentId>)>) {
        let mut answers = Vec::new();
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if tasks.is_empty() {
            for task in framework.tasks.values() {
                answers.push(self.reconciliation_status(now, task));
            }
        } else {
            for (task_id, agent_id) in tasks {
                let status = match framework.tasks.get(&task_id) {
                    Some(task) => self.reconciliation_status(now, task),
                    None => {
                        let (state, message) = match agent_id.as_ref().and_then(|a| self.agents.get(a)) {
                            // Not back yet after a master restart: its tasks are
                            // unknown until it re-registers (or is declared
                            // unreachable); no answer, the framework asks again,
                            // as Mesos does for agents it is recovering.
                            Some(agent) if agent.recovered && agent.status != AgentStatus::Unreachable => continue,
                            Some(agent) if agent.status == AgentStatus::Unreachable => {
                                (TaskState::Unreachable, "Task is unknown and its agent is unreachable")
                            }
                            Some(_) => (TaskState::Gone, "Task is unknown to the master and its agent"),
                            None if agent_id.as_ref().is_some_and(|a| self.gone_agents.contains_key(a)) => {
                                (TaskState::Gone, "Task is unknown and its agent is gone")
                            }
                            None => (TaskState::Unknown, "Task is unknown to the master"),
                        };
                        Self::master_status(
                            now,
                            task_id,
                            state,
                            TaskReason::Reconciliation,
                            agent_id,
                            message.to_owned(),
                        )
                    }
                };
                answers.push(status);
            }
        }
        self.stats.reconciliations += 1;
        for status in answers {
            self.send_update(framework_id, status);
        }
    }

    fn reconciliation_status(&self, now: Timestamp, task: &Task) -> TaskStatus {
        let mut status = task.last_status.clone().unwrap_or_else(|| {
            let mut s = TaskStatus::new(task.info.task_id.clone(), task.state, now);
            s.agent_id = Some(task.info.agent_id.clone());
            s
        });
        status.state = task.state;
        status.reason = Some(TaskReason::Reconciliation);
        status.source = Some(TaskSource::Master);
        status.uuid = None;
        status.timestamp = now;
        status
    }

    // ----- agents -----------------------------------------------------------

    fn agent_message(&mut self, now: Timestamp, conn: ConnectionId, message: AgentMessage) {
        let registered = self.agent_conns.get(&conn).cloned().flatten();
        match (message, registered) {
            (AgentMessage::Register { info, agent_id, tasks }, _) => {
                self.register_agent(now, conn, info, agent_id, tasks)
            }
            (AgentMessage::StatusUpdate { framework_id, status }, Some(agent_id)) => {
                self.touch_agent(now, &agent_id);
                self.status_update(now, &agent_id, conn, framework_id, status);
            }
            (AgentMessage::Pong, Some(agent_id)) => self.touch_agent(now, &agent_id),
            (AgentMessage::FileData { request_id, result }, Some(agent_id)) => {
                self.touch_agent(now, &agent_id);
                // Only the agent asked may answer.
                if self.pending_reads.get(&request_id) == Some(&agent_id) {
                    self.pending_reads.remove(&request_id);
                    self.push(Output::FileRead {
                        request: request_id,
                        result,
                    });
                }
            }
            (AgentMessage::Usage(reports), Some(agent_id)) => {
                self.touch_agent(now, &agent_id);
                for (framework_id, task_id, usage) in reports {
                    if let Some(task) = self
                        .frameworks
                        .get_mut(&framework_id)
                        .and_then(|f| f.tasks.get_mut(&task_id))
                        && task.info.agent_id == agent_id
                    {
                        task.usage = Some(usage);
                    }
                }
            }
            (_, None) => {
                self.push(Output::ToAgent {
                    conn,
                    message: MasterMessage::Error("the first message on an agent stream must be a registration".into()),
                });
                self.push(Output::CloseAgent { conn });
            }
        }
    }

    fn touch_agent(&mut self, now: Timestamp, agent_id: &AgentId) {
        let timeout = self.config.agent_timeout();
        if let Some(agent) = self.agents.get_mut(agent_id)
            && agent.status != AgentStatus::Unreachable
        {
            agent.deadline = now + timeout;
            // Heard from: a removal waiting for the rate limit is cancelled.
            agent.removal_queued = false;
        }
    }

    fn register_agent(
        &mut self,
        now: Timestamp,
        conn: ConnectionId,
        info: AgentInfo,
        agent_id: Option<AgentId>,
        reported: Vec<RunningTask>,
    ) {
        let agent_id = match agent_id {
            Some(id) => id,
            None => AgentId::new(self.next_id("S")).unwrap_or_else(|_| unreachable!("generated ids are valid")),
        };
        // Whatever this agent had before is rebuilt from what it reports now.
        let previous = self.agents.remove(&agent_id);
        if let Some(previous) = &previous {
            for offer_id in previous.offers.iter().cloned().collect::<Vec<_>>() {
                self.rescind_offer(now, &offer_id);
            }
            if let Some(old) = previous.conn.filter(|c| *c != conn) {
                self.agent_conns.remove(&old);
                self.push(Output::CloseAgent { conn: old });
            }
            self.allocator.remove_agent(&agent_id);
        }
        self.agent_conns.insert(conn, Some(agent_id.clone()));

        let reported_ids: BTreeSet<(FrameworkId, TaskId)> = reported
            .iter()
            .map(|t| (t.framework_id.clone(), t.task.task_id.clone()))
            .collect();
        // Tasks the master had on the agent that the agent no longer runs.
        if let Some(previous) = &previous {
            for (framework_id, task_id) in previous.tasks.difference(&reported_ids) {
                // Its resources were dropped with the agent's old slot in the allocator.
                self.lose_task(
                    now,
                    framework_id,
                    task_id,
                    &agent_id,
                    TaskState::Gone,
                    "The agent re-registered without this task".to_owned(),
                );
            }
        }

        // Tasks no framework expects any more: declared GONE while the agent
        // was away too long, or still orphaned from an earlier registration.
        let mut orphaned: BTreeMap<(FrameworkId, TaskId), String> = match self.gone_agents.remove(&agent_id) {
            Some(gone) => {
                self.durable_dirty.insert(DurableKey::Gone(agent_id.clone()));
                gone.tasks
            }
            None => BTreeMap::new(),
        };
        if let Some(previous) = &previous {
            orphaned.extend(previous.orphans.iter().map(|(k, (role, _))| (k.clone(), role.clone())));
        }
        let was_unreachable = previous.as_ref().is_some_and(|p| p.status == AgentStatus::Unreachable);

        let mut used = Vec::new();
        let mut shutdown = BTreeSet::new();
        let mut recovered_frameworks = BTreeSet::new();
        let mut orphans = BTreeMap::new();
        let mut back = Vec::new();
        for running in reported {
            let RunningTask {
                framework_id,
                task,
                state,
            } = running;
            if self.removed_frameworks.contains(&framework_id) {
                shutdown.insert(framework_id);
                continue;
            }
            let key = (framework_id.clone(), task.task_id.clone());
            let mut orphan_role = orphaned.get(&key).cloned();
            // A framework that is not partition-aware was told LOST, which
            // it takes as final (it may have launched a replacement): the
            // task must not come back to it, so it is killed (Mesos 1.1's
            // rule for such frameworks).
            if orphan_role.is_none()
                && was_unreachable
                && let Some(framework) = self.frameworks.get_mut(&framework_id)
                && !framework.partition_aware()
                && framework
                    .tasks
                    .get(&task.task_id)
                    .is_some_and(|t| t.state == TaskState::Unreachable)
                && let Some(mut lost) = framework.tasks.remove(&task.task_id)
            {
                orphan_role = Some(lost.role.clone());
                lost.state = TaskState::Lost;
                self.complete(lost);
            }
            if let Some(role) = orphan_role {
                if !state.is_terminal() {
                    used.push(Used {
                        framework_id: framework_id.clone(),
                        agent_id: agent_id.clone(),
                        role: role.clone(),
                        resources: task.resources.clone(),
                    });
                    orphans.insert(key, (role, task.resources.clone()));
                }
                continue;
            }
            let framework = self.frameworks.entry(framework_id.clone()).or_insert_with(|| {
                // A framework known only from its agents' reports (after a
                // master restart): keep its tasks while it has time to subscribe.
                recovered_frameworks.insert(framework_id.clone());
                let mut info = FrameworkInfo::new("(recovered from agent report)");
                info.id = Some(framework_id.clone());
                info.failover_timeout = UNKNOWN_FRAMEWORK_TIMEOUT;
                Framework {
                    info,
                    conn: None,
                    registered_at: now,
                    next_heartbeat: now,
                    failover_deadline: Some(now + UNKNOWN_FRAMEWORK_TIMEOUT),
                    disconnected_at: None,
                    from_report: true,
                    tasks: BTreeMap::new(),
                    offers: BTreeSet::new(),
                }
            });
            let role = framework
                .tasks
                .get(&task.task_id)
                .map(|t| t.role.clone())
                .or_else(|| framework.info.roles.first().cloned())
                .unwrap_or_else(|| agora_proto::DEFAULT_ROLE.to_owned());
            let entry = framework.tasks.entry(task.task_id.clone()).or_insert_with(|| Task {
                framework_id: framework_id.clone(),
                info: task.clone(),
                role: role.clone(),
                state,
                last_status: None,
                usage: None,
                resources_recovered: false,
            });
            if entry.state == TaskState::Unreachable && !state.is_terminal() {
                // Told UNREACHABLE, it comes back (its final state, if it
                // ended meanwhile, is on its way from the agent).
                back.push((framework_id.clone(), task.task_id.clone(), state));
            }
            entry.state = state;
            entry.resources_recovered = state.is_terminal();
            if !state.is_terminal() {
                used.push(Used {
                    framework_id: framework_id.clone(),
                    agent_id: agent_id.clone(),
                    role,
                    resources: task.resources.clone(),
                });
            }
        }
        // Recovered frameworks must exist in the allocator to carry their usage.
        for framework_id in &recovered_frameworks {
            if let Some(framework) = self.frameworks.get(framework_id) {
                let roles = framework.info.roles.clone();
                self.allocator.add_framework(framework_id, &roles, &[]);
                self.allocator
                    .set_framework_constraints(framework_id, &framework.info.offer_constraints);
                self.allocator
                    .set_framework_min_allocatable(framework_id, &framework.info.min_allocatable);
                self.allocator.set_framework_active(framework_id, false);
            }
        }

        // Dynamic reservations survive a re-registration, as the agent
        // reports its resources without them (dropped if it shrank).
        let mut info = info;
        let mut reserved = previous.as_ref().map(|p| p.reserved.clone()).unwrap_or_default();
        let base = reserved.with_reservation(None);
        if info.resources.contains(&base) {
            info.resources = info.resources.clone() - &base + &reserved;
        } else {
            reserved = Resources::new();
        }
        self.allocator.add_agent(&agent_id, &info.resources, &used);
        self.allocator.set_agent_attributes(&agent_id, &info.attributes);
        let mut tasks: BTreeSet<(FrameworkId, TaskId)> = reported_ids;
        for framework_id in &shutdown {
            tasks.retain(|(f, _)| f != framework_id);
        }
        tasks.retain(|key| !orphaned.contains_key(key) && !orphans.contains_key(key));
        self.agents.insert(
            agent_id.clone(),
            Agent {
                info,
                conn: Some(conn),
                status: AgentStatus::Active,
                registered_at: previous.as_ref().map_or(now, |p| p.registered_at),
                deadline: now + self.config.agent_timeout(),
                removal_queued: false,
                orphans: orphans.clone(),
                next_ping: now + self.config.agent_ping_interval,
                offers: BTreeSet::new(),
                tasks,
                reserved,
                recovered: false,
            },
        );
        self.durable_dirty.insert(DurableKey::Agent(agent_id.clone()));
        self.agent_back(&agent_id);
        self.stats.agent_registrations += 1;
        self.push(Output::ToAgent {
            conn,
            message: MasterMessage::Registered {
                agent_id: agent_id.clone(),
                ping_interval: self.config.agent_ping_interval,
            },
        });
        for framework_id in shutdown {
            self.push(Output::ToAgent {
                conn,
                message: MasterMessage::ShutdownFramework { framework_id },
            });
        }
        for (framework_id, task_id) in orphans.into_keys() {
            self.stats.orphan_tasks_killed += 1;
            self.push(Output::ToAgent {
                conn,
                message: MasterMessage::KillTask { framework_id, task_id },
            });
        }
        for (framework_id, task_id, state) in back {
            let mut status = Self::master_status(
                now,
                task_id,
                state,
                TaskReason::AgentReregistered,
                Some(agent_id.clone()),
                format!("Agent {agent_id} re-registered"),
            );
            if let Some(task) = self
                .frameworks
                .get_mut(&framework_id)
                .and_then(|f| f.tasks.get_mut(&status.task_id))
            {
                status.timestamp = now;
                task.last_status = Some(status.clone());
            }
            self.send_update(&framework_id, status);
        }
        self.request_allocation();
    }

    fn status_update(
        &mut self,
        now: Timestamp,
        agent_id: &AgentId,
        conn: ConnectionId,
        framework_id: FrameworkId,
        mut status: TaskStatus,
    ) {
        self.stats.status_updates += 1;
        status.agent_id = Some(agent_id.clone());
        let ack_now = |master: &mut Self, status: &TaskStatus| {
            // Nobody will acknowledge this update: do it for them, so the
            // agent stops retrying.
            if let Some(uuid) = status.uuid {
                master.push(Output::ToAgent {
                    conn,
                    message: MasterMessage::Acknowledge {
                        framework_id: framework_id.clone(),
                        task_id: status.task_id.clone(),
                        uuid,
                    },
                });
            }
        };
        let Some(framework) = self.frameworks.get_mut(&framework_id) else {
            ack_now(self, &status);
            return;
        };
        let Some(task) = framework.tasks.get_mut(&status.task_id) else {
            // An orphan that ended gives its resources back; nobody else hears of it.
            if status.state.is_terminal()
                && let Some(agent) = self.agents.get_mut(agent_id)
                && let Some((role, resources)) = agent.orphans.remove(&(framework_id.clone(), status.task_id.clone()))
            {
                self.allocator
                    .recover(now, &framework_id, agent_id, &role, &resources, None);
                self.request_allocation();
            }
            ack_now(self, &status);
            return;
        };
        let newly_terminal = status.state.is_terminal() && !task.resources_recovered;
        task.state = status.state;
        task.last_status = Some(status.clone());
        let (role, resources, task_agent) = (
            task.role.clone(),
            task.info.resources.clone(),
            task.info.agent_id.clone(),
        );
        if newly_terminal {
            task.resources_recovered = true;
            self.allocator
                .recover(now, &framework_id, &task_agent, &role, &resources, None);
            self.stats.record_terminal(status.state);
            self.request_allocation();
        }
        if status.uuid.is_none() && status.state.is_terminal() {
            self.remove_task(&framework_id, &status.task_id);
        }
        self.send_update(&framework_id, status);
    }

    fn remove_task(&mut self, framework_id: &FrameworkId, task_id: &TaskId) {
        let Some(task) = self
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.tasks.remove(task_id))
        else {
            return;
        };
        if let Some(agent) = self.agents.get_mut(&task.info.agent_id) {
            agent.tasks.remove(&(framework_id.clone(), task_id.clone()));
        }
        self.complete(task);
    }

    fn agent_disconnected(&mut self, now: Timestamp, conn: ConnectionId) {
        let Some(registered) = self.agent_conns.remove(&conn) else {
            return;
        };
        let Some(agent_id) = registered else {
            return;
        };
        let timeout = self.config.agent_timeout();
        let Some(agent) = self.agents.get_mut(&agent_id) else {
            return;
        };
        if agent.conn != Some(conn) {
            return;
        }
        agent.conn = None;
        agent.status = AgentStatus::Disconnected;
        agent.deadline = now + timeout;
        let offers: Vec<OfferId> = agent.offers.iter().cloned().collect();
        self.fail_reads(&agent_id);
        self.allocator.set_agent_active(&agent_id, false);
        for offer_id in offers {
            self.rescind_offer(now, &offer_id);
        }
    }

    /// A live task stops running as far as the master knows (`state`: GONE or
    /// UNREACHABLE), its resources having left the allocator with its agent's
    /// slot; its framework is told. Ended tasks are left alone.
    fn lose_task(
        &mut self,
        now: Timestamp,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        agent_id: &AgentId,
        state: TaskState,
        message: String,
    ) {
        let Some(task) = self
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.tasks.get_mut(task_id))
        else {
            return;
        };
        if task.state.is_terminal() {
            return;
        }
        task.resources_recovered = true;
        let status = Self::master_status(
            now,
            task_id.clone(),
            state,
            TaskReason::AgentRemoved,
            Some(agent_id.clone()),
            message,
        );
        task.state = state;
        task.last_status = Some(status.clone());
        self.send_update(framework_id, status);
    }

    /// Agents past their deadline are marked unreachable, as the removal
    /// rate limit allows (the others wait in the queue, in the order they
    /// missed their deadline); unreachable agents past theirs are gone.
    fn remove_silent_agents(&mut self, now: Timestamp) {
        let mut silent: Vec<(Timestamp, AgentId)> = self
            .agents
            .iter()
            .filter(|(_, a)| a.status != AgentStatus::Unreachable && !a.removal_queued && a.deadline <= now)
            .map(|(id, a)| (a.deadline, id.clone()))
            .collect();
        silent.sort();
        match self.config.agent_removal_rate_limit {
            None => {
                for (_, agent_id) in silent {
                    self.mark_unreachable(now, &agent_id);
                }
            }
            Some(limit) => {
                for (_, agent_id) in silent {
                    if let Some(agent) = self.agents.get_mut(&agent_id) {
                        agent.removal_queued = true;
                        self.stats.agent_removals_queued += 1;
                        self.removal_queue.push_back(agent_id);
                    }
                }
                while self.next_removal <= now
                    && let Some(agent_id) = self.removal_queue.pop_front()
                {
                    // Skipped without using a permit if heard from meanwhile.
                    if self.agents.get(&agent_id).is_some_and(|a| a.removal_queued) {
                        self.mark_unreachable(now, &agent_id);
                        self.next_removal = now + limit.spacing();
                    }
                }
            }
        }
        let gone: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| a.status == AgentStatus::Unreachable && a.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for agent_id in gone {
            self.mark_gone(now, &agent_id);
        }
    }

    /// The agent has been unreachable for `agent_unreachable_timeout`: the
    /// master gives up on it. Its tasks are GONE to partition-aware
    /// frameworks (the others were already told LOST, which they take as
    /// final) and forgotten; the agent is remembered only so that, if it
    /// comes back, it is told to kill them.
    fn mark_gone(&mut self, now: Timestamp, agent_id: &AgentId) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        self.durable_dirty.insert(DurableKey::Agent(agent_id.clone()));
        self.durable_dirty.insert(DurableKey::Gone(agent_id.clone()));
        let mut gone: BTreeMap<(FrameworkId, TaskId), String> =
            agent.orphans.into_iter().map(|(k, (role, _))| (k, role)).collect();
        for (framework_id, task_id) in agent.tasks {
            let Some(framework) = self.frameworks.get_mut(&framework_id) else {
                continue;
            };
            let partition_aware = framework.partition_aware();
            let Some(mut task) = framework.tasks.remove(&task_id) else {
                continue;
            };
            if !task.state.is_terminal() {
                gone.insert((framework_id.clone(), task_id.clone()), task.role.clone());
                let status = Self::master_status(
                    now,
                    task_id,
                    TaskState::Gone,
                    TaskReason::AgentRemoved,
                    Some(agent_id.clone()),
                    format!("Agent {agent_id} is gone: unreachable for longer than the agent unreachable timeout"),
                );
                task.state = TaskState::Gone;
                task.last_status = Some(status.clone());
                if partition_aware {
                    self.send_update(&framework_id, status);
                }
            }
            self.complete(task);
        }
        self.stats.agents_gone += 1;
        self.gone_agents
            .insert(agent_id.clone(), GoneAgent { at: now, tasks: gone });
        self.gone_order.push_back(agent_id.clone());
        self.forget_oldest_gone();
    }

    /// Keeps at most [`MAX_GONE_AGENTS`] gone agents, forgetting the oldest.
    fn forget_oldest_gone(&mut self) {
        while self.gone_agents.len() > MAX_GONE_AGENTS
            && let Some(oldest) = self.gone_order.pop_front()
        {
            if self.gone_agents.remove(&oldest).is_some() {
                self.durable_dirty.insert(DurableKey::Gone(oldest));
            }
        }
    }

    /// The agent has been silent or away too long: its offers go, its tasks
    /// become UNREACHABLE (LOST for frameworks that are not partition-aware),
    /// and frameworks hear of the failure. It may still re-register.
    fn mark_unreachable(&mut self, now: Timestamp, agent_id: &AgentId) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        agent.status = AgentStatus::Unreachable;
        agent.removal_queued = false;
        agent.deadline = now + self.config.agent_unreachable_timeout;
        let conn = agent.conn.take();
        let offers: Vec<OfferId> = agent.offers.iter().cloned().collect();
        let tasks: Vec<(FrameworkId, TaskId)> = agent.tasks.iter().cloned().collect();
        if let Some(conn) = conn {
            self.agent_conns.remove(&conn);
            self.push(Output::CloseAgent { conn });
        }
        self.fail_reads(agent_id);
        for offer_id in offers {
            self.rescind_offer(now, &offer_id);
        }
        self.allocator.remove_agent(agent_id);
        self.stats.agents_unreachable += 1;
        for (framework_id, task_id) in tasks {
            self.lose_task(
                now,
                &framework_id,
                &task_id,
                agent_id,
                TaskState::Unreachable,
                format!("Agent {agent_id} is unreachable"),
            );
        }
        let connected: Vec<ConnectionId> = self.frameworks.values().filter_map(|f| f.conn).collect();
        for conn in connected {
            self.push(Output::ToFramework {
                conn,
                event: Event::Failure {
                    agent_id: agent_id.clone(),
                },
            });
        }
    }

    // ----- operators --------------------------------------------------------

    /// Finds a task by id among live tasks, then among recently ended ones;
    /// returns its framework and agent.
    fn locate_task(
        &self,
        framework_id: Option<&FrameworkId>,
        task_id: &TaskId,
    ) -> Result<(FrameworkId, AgentId), MasterError> {
        let live: Vec<(&FrameworkId, &Task)> = self
            .frameworks
            .iter()
            .filter(|(id, _)| framework_id.is_none_or(|f| f == *id))
            .filter_map(|(id, f)| f.tasks.get(task_id).map(|t| (id, t)))
            .collect();
        match live.as_slice() {
            [(id, task)] => return Ok(((*id).clone(), task.info.agent_id.clone())),
            [] => {}
            many => {
                return Err(MasterError::AmbiguousTask {
                    task_id: task_id.clone(),
                    frameworks: many.iter().map(|(id, _)| (*id).clone()).collect(),
                });
            }
        }
        self.completed_tasks
            .iter()
            .rev()
            .find(|t| &t.task.task_id == task_id && framework_id.is_none_or(|f| f == &t.framework_id))
            .map(|t| (t.framework_id.clone(), t.task.agent_id.clone()))
            .ok_or_else(|| MasterError::UnknownTask(task_id.clone()))
    }

    fn read_file(
        &mut self,
        request: u64,
        framework_id: Option<&FrameworkId>,
        task_id: TaskId,
        file: SandboxFile,
        offset: u64,
        max_bytes: u64,
    ) -> Result<(), MasterError> {
        let (framework_id, agent_id) = self.locate_task(framework_id, &task_id)?;
        let Some(conn) = self.agents.get(&agent_id).and_then(|a| a.conn) else {
            self.push(Output::FileRead {
                request,
                result: Err(format!("agent {agent_id} of task {task_id} is not connected")),
            });
            return Ok(());
        };
        self.pending_reads.insert(request, agent_id);
        self.push(Output::ToAgent {
            conn,
            message: MasterMessage::ReadFile {
                request_id: request,
                framework_id,
                task_id,
                file,
                offset,
                max_bytes,
            },
        });
        Ok(())
    }

    /// Reads waiting on an agent that went away will never be answered.
    fn fail_reads(&mut self, agent_id: &AgentId) {
        let failed: Vec<u64> = self
            .pending_reads
            .iter()
            .filter(|(_, a)| *a == agent_id)
            .map(|(r, _)| *r)
            .collect();
        for request in failed {
            self.pending_reads.remove(&request);
            self.push(Output::FileRead {
                request,
                result: Err(format!("agent {agent_id} disconnected before answering")),
            });
        }
    }

    fn operator_kill(
        &mut self,
        now: Timestamp,
        framework_id: Option<&FrameworkId>,
        task_id: TaskId,
    ) -> Result<(), MasterError> {
        let (framework_id, agent_id) = self.locate_task(framework_id, &task_id)?;
        let live = self
            .frameworks
            .get(&framework_id)
            .and_then(|f| f.tasks.get(&task_id))
            .is_some_and(|t| !t.state.is_terminal());
        if live {
            self.kill(now, &framework_id, task_id, Some(agent_id));
        }
        Ok(())
    }

    /// An operator's RESERVE_RESOURCES or UNRESERVE_RESOURCES, as Mesos does
    /// them: the resources must be free on the agent; offers holding what is
    /// missing are rescinded (only when that frees enough), then the agent's
    /// total is re-keyed and the allocator told. Checked in full before
    /// anything changes, so a refused call rescinds nothing.
    fn operator_reservation(
        &mut self,
        now: Timestamp,
        agent_id: AgentId,
        resources: Resources,
        operation: ReservationOperation,
    ) -> Result<(), MasterError> {
        let Some(agent) = self.agents.get(&agent_id) else {
            return Err(MasterError::UnknownAgent(agent_id));
        };
        let reserve = operation == ReservationOperation::Reserve;
        let refuse = |reason: ReservationError| MasterError::Reservation {
            operation,
            agent_id: agent_id.clone(),
            resources: Box::new(resources.clone()),
            reason: Box::new(reason),
        };
        reservation_role(&resources).map_err(refuse)?;
        if agent.status == AgentStatus::Unreachable {
            return Err(refuse(ReservationError::AgentUnreachable));
        }
        // A recovered agent's resources are unknown until it re-registers.
        if agent.recovered {
            return Err(refuse(ReservationError::NotReregistered));
        }
        if !reserve {
            check_dynamic(agent, &resources).map_err(refuse)?;
        }
        let (from, to) = reservation_change(&resources, reserve);
        let free = agent
            .info
            .resources
            .saturating_sub(&self.allocator.agent_allocated(&agent_id));
        let offered: Vec<(OfferId, Resources)> = agent
            .offers
            .iter()
            .filter_map(|id| self.offers.get(id).map(|o| (id.clone(), o.resources.clone())))
            .collect();
        let reachable = offered.iter().fold(free.clone(), |acc, (_, r)| acc + r);
        if !reachable.contains(&from) {
            let wanted = keys(&from);
            return Err(refuse(ReservationError::NotAvailable {
                available: Box::new(reachable.filter(|k| wanted.contains(k))),
                needed: Box::new(from),
            }));
        }

        // Rescind, in offer order, the offers holding something still missing.
        let mut free = free;
        for (offer_id, held) in offered {
            if free.contains(&from) {
                break;
            }
            let missing = keys(&from.saturating_sub(&free));
            if held.filter(|k| missing.contains(k)).is_empty() {
                continue;
            }
            self.rescind_offer(now, &offer_id);
            free += &held;
        }
        self.rekey_agent(&agent_id, &from, &to, reserve);
        // Decline filters on the agent stay, as for any other change of its free resources.
        self.allocator.update_total(&agent_id, &from, &to);
        self.request_allocation();
        Ok(())
    }

    fn update_weights(&mut self, weights: &[(String, f64)]) -> Result<(), MasterError> {
        for (i, (role, weight)) in weights.iter().enumerate() {
            let invalid = |field: &str, reason: String| MasterError::InvalidWeight {
                field: format!("weights[{i}].{field}"),
                reason,
            };
            validate_role(role).map_err(|reason| invalid("role", reason))?;
            validate_weight(*weight).map_err(|reason| invalid("weight", reason))?;
        }
        for (role, weight) in weights {
            self.allocator.set_weight(role, *weight);
            self.config.drf.weights.insert(role.clone(), *weight);
        }
        if !weights.is_empty() {
            self.request_allocation();
        }
        Ok(())
    }

    fn update_quota(&mut self, quotas: Vec<(String, RoleQuota)>) -> Result<(), MasterError> {
        for (i, (role, quota)) in quotas.iter().enumerate() {
            validate_role(role).map_err(|reason| MasterError::InvalidQuota {
                field: format!("quotas[{i}].role"),
                reason,
            })?;
            if let Some((name, g, l)) = quota.guarantee_over_limit() {
                return Err(MasterError::InvalidQuota {
                    field: format!("quotas[{i}].guarantee"),
                    reason: format!("the guarantee of {name} ({g}) exceeds the limit ({l})"),
                });
            }
        }
        let any = !quotas.is_empty();
        for (role, quota) in quotas {
            self.allocator.set_quota(&role, quota.limit);
            self.allocator.set_guarantee(&role, quota.guarantee);
        }
        if any {
            // A looser limit may let a role take more now.
            self.request_allocation();
        }
        Ok(())
    }

    // ----- timers -----------------------------------------------------------

    fn tick(&mut self, now: Timestamp) {
        let expired: Vec<FrameworkId> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.conn.is_none() && f.failover_deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for framework_id in expired {
            self.remove_framework(now, &framework_id);
        }

        self.remove_silent_agents(now);

        let ping_interval = self.config.agent_ping_interval;
        let mut pings = Vec::new();
        for agent in self.agents.values_mut() {
            if let (AgentStatus::Active, Some(conn)) = (agent.status, agent.conn)
                && agent.next_ping <= now
            {
                agent.next_ping = now + ping_interval;
                pings.push(conn);
            }
        }
        for conn in pings {
            self.push(Output::ToAgent {
                conn,
                message: MasterMessage::Ping,
            });
        }

        let heartbeat_interval = self.config.heartbeat_interval;
        let mut heartbeats = Vec::new();
        for framework in self.frameworks.values_mut() {
            if let Some(conn) = framework.conn
                && framework.next_heartbeat <= now
            {
                framework.next_heartbeat = now + heartbeat_interval;
                heartbeats.push(conn);
            }
        }
        for conn in heartbeats {
            self.push(Output::ToFramework {
                conn,
                event: Event::Heartbeat,
            });
        }

        // Offers outstanding past the offer timeout are rescinded (which
        // requests an allocation, so their resources are offered again).
        while let Some((at, offer_id)) = self.offer_expiry.first().cloned()
            && at <= now
        {
            self.rescind_offer(now, &offer_id);
            // In case the offer was already gone: never loop on the same entry.
            self.forget_offer_deadline(&offer_id);
        }

        let filters_expired = self.allocator.next_filter_expiry().is_some_and(|t| t <= now);
        if (self.allocation_pending || filters_expired) && self.next_allocation <= now && !self.allocation_held(now) {
            self.allocate(now);
        }
    }

    fn allocate(&mut self, now: Timestamp) {
        self.allocation_pending = false;
        self.next_allocation = now + self.config.allocation_interval;
        self.stats.allocation_cycles += 1;
        let allocations = self.allocator.allocate(now, &mut self.rng);
        self.make_offers(now, allocations);
    }

    /// Checks the bookkeeping invariants; `Err` says which one broke. Tests
    /// and the simulator call this after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen_offers = BTreeSet::new();
        for (agent_id, agent) in &self.agents {
            if agent.status == AgentStatus::Unreachable {
                continue;
            }
            let mut expected = Resources::new();
            // Sums of range lengths: a union hides overlaps, these do not.
            let mut range_lengths: u64 = 0;
            for offer_id in &agent.offers {
                let offer = self
                    .offers
                    .get(offer_id)
                    .ok_or_else(|| format!("agent {agent_id} lists offer {offer_id}, which does not exist"))?;
                if !seen_offers.insert(offer_id.clone()) {
                    return Err(format!("offer {offer_id} is listed twice"));
                }
                expected += &offer.resources;
                range_lengths += offer.resources.ranges().map(|(_, r)| r.len()).sum::<u64>();
            }
            for (framework_id, task_id) in &agent.tasks {
                if let Some(task) = self.frameworks.get(framework_id).and_then(|f| f.tasks.get(task_id))
                    && !task.resources_recovered
                {
                    expected += &task.info.resources;
                    range_lengths += task.info.resources.ranges().map(|(_, r)| r.len()).sum::<u64>();
                }
            }
            for (_, resources) in agent.orphans.values() {
                expected += resources;
                range_lengths += resources.ranges().map(|(_, r)| r.len()).sum::<u64>();
            }
            if range_lengths != expected.ranges().map(|(_, r)| r.len()).sum::<u64>() {
                return Err(format!(
                    "agent {agent_id}: two offers or tasks hold the same range values"
                ));
            }
            let allocated = self.allocator.agent_allocated(agent_id);
            if allocated != expected {
                return Err(format!(
                    "agent {agent_id}: the allocator holds {allocated} allocated but offers and tasks hold {expected}"
                ));
            }
            if !agent.info.resources.contains(&allocated) {
                return Err(format!(
                    "agent {agent_id}: allocated {allocated} exceeds its total {}",
                    agent.info.resources
                ));
            }
        }
        if self.offer_deadlines.len() != self.offer_expiry.len()
            || self.offer_deadlines.keys().any(|id| !self.offers.contains_key(id))
        {
            return Err("the offer-timeout index lists offers that do not exist".to_owned());
        }
        if seen_offers.len() != self.offers.len() {
            return Err(format!(
                "{} offers outstanding but {} listed by agents",
                self.offers.len(),
                seen_offers.len()
            ));
        }
        for (framework_id, framework) in &self.frameworks {
            for offer_id in &framework.offers {
                match self.offers.get(offer_id) {
                    Some(o) if &o.framework_id == framework_id => {}
                    _ => {
                        return Err(format!(
                            "framework {framework_id} lists offer {offer_id} it does not own"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The one role `resources` are all reserved for: RESERVE and UNRESERVE
/// name reserved resources, as in Mesos, one role per operation.
fn reservation_role(resources: &Resources) -> Result<String, ReservationError> {
    let mut roles = BTreeSet::new();
    for key in keys(resources) {
        match key.role() {
            Some(role) => roles.insert(role.to_owned()),
            None => return Err(ReservationError::NoRole(key.to_string())),
        };
    }
    if roles.len() > 1 {
        return Err(ReservationError::SeveralRoles(roles.into_iter().collect()));
    }
    let role = roles.pop_first().ok_or(ReservationError::Empty)?;
    validate_role(&role).map_err(ReservationError::InvalidRole)?;
    Ok(role)
}

/// Whether an UNRESERVE names only the agent's dynamic reservations (its
/// static ones, from its own resources, cannot be unreserved).
fn check_dynamic(agent: &Agent, resources: &Resources) -> Result<(), ReservationError> {
    if agent.reserved.contains(resources) {
        return Ok(());
    }
    let named = keys(resources);
    let dynamic = agent.reserved.filter(|k| named.contains(k));
    let static_ = agent
        .info
        .resources
        .saturating_sub(&agent.reserved)
        .filter(|k| k.reservation.is_some() && named.contains(k));
    if dynamic.is_empty() && !static_.is_empty() {
        return Err(ReservationError::StaticReservation(static_));
    }
    Err(ReservationError::NotDynamicallyReserved {
        requested: Box::new(resources.clone()),
        reserved: Box::new(agent.reserved.clone()),
    })
}

/// What a RESERVE (`reserve`) or UNRESERVE of `resources` (reserved ones)
/// turns into what: `(from, to)`.
fn reservation_change(resources: &Resources, reserve: bool) -> (Resources, Resources) {
    let unreserved = resources.with_reservation(None);
    if reserve {
        (unreserved, resources.clone())
    } else {
        (resources.clone(), unreserved)
    }
}

/// Every key (name and reservation) `resources` holds.
fn keys(resources: &Resources) -> BTreeSet<ResourceKey> {
    resources
        .scalars()
        .map(|(k, _)| k)
        .chain(resources.ranges().map(|(k, _)| k))
        .chain(resources.sets().map(|(k, _)| k))
        .cloned()
        .collect()
}

mod recovery;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod partition_tests;

#[cfg(test)]
mod recovery_tests;
