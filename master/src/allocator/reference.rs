//! The first, straightforward DRF allocator, kept as the executable
//! specification of [`DrfAllocator`](super::DrfAllocator).
//!
//! It recomputes and sorts every role and framework for each agent it visits
//! and keys decline filters by cloned ids: simple enough to read as the
//! definition of the policy, and far too slow at scale. The equivalence
//! property test (`allocator::proptests`) checks that the fast allocator makes
//! the same allocations over random event sequences, and
//! `agora bench allocator --reference` measures it in the same run conditions
//! as the fast one. Not for production use.

use super::{
    Allocation, Allocator, DrfConfig, FrameworkShare, RoleShare, Used, ancestors, charge_budget, fit_to_budget,
    fit_to_limit, fit_to_unmet, meets_framework_minimum, parent, unmet_guarantee,
};
use agora_proto::{AgentId, Attributes, FrameworkId, OfferConstraint, QuotaLimit, Resources, Scalar, Timestamp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug)]
struct AgentSlot {
    total: Resources,
    allocated: Resources,
    active: bool,
    /// What each (framework, role) holds here, so removing the agent can
    /// give it back to the right shares.
    holders: BTreeMap<(FrameworkId, String), Resources>,
    attributes: Attributes,
}

#[derive(Debug)]
struct FrameworkSlot {
    roles: Vec<String>,
    active: bool,
    suppressed: BTreeSet<String>,
    allocated: Resources,
    constraints: Vec<OfferConstraint>,
    min_allocatable: BTreeMap<String, Vec<Resources>>,
}

#[derive(Debug, Default)]
struct RoleSlot {
    allocated: Resources,
    frameworks: BTreeSet<FrameworkId>,
}

#[derive(Debug)]
struct Filter {
    until: Timestamp,
    resources: Resources,
}

/// The first, straightforward hierarchical DRF allocator. See the module documentation.
#[derive(Debug)]
pub struct ReferenceDrfAllocator {
    config: DrfConfig,
    agents: BTreeMap<AgentId, AgentSlot>,
    frameworks: BTreeMap<FrameworkId, FrameworkSlot>,
    roles: BTreeMap<String, RoleSlot>,
    /// Decline filters by (framework, agent, role).
    filters: BTreeMap<(FrameworkId, AgentId, String), Filter>,
    /// Quota limits by role.
    quotas: BTreeMap<String, QuotaLimit>,
    /// Quota guarantees by role.
    guarantees: BTreeMap<String, QuotaLimit>,
    total: Resources,
}

impl ReferenceDrfAllocator {
    /// An allocator with no agents and no frameworks.
    pub fn new(config: DrfConfig) -> Self {
        Self {
            config,
            agents: BTreeMap::new(),
            frameworks: BTreeMap::new(),
            roles: BTreeMap::new(),
            filters: BTreeMap::new(),
            quotas: BTreeMap::new(),
            guarantees: BTreeMap::new(),
            total: Resources::new(),
        }
    }

    fn meets_minimum(&self, resources: &Resources) -> bool {
        self.config
            .min_allocatable
            .iter()
            .any(|min| min.scalars().all(|(key, value)| resources.scalar(&key.name) >= value))
    }

    /// Dominant share of `allocated` against the cluster total.
    fn dominant_share(&self, allocated: &Resources) -> f64 {
        let mut share: f64 = 0.0;
        for (key, used) in allocated.scalars() {
            let total = self.total.scalar(&key.name);
            if total > Scalar::ZERO {
                share = share.max(used.milli() as f64 / total.milli() as f64);
            }
        }
        share
    }

    fn weight(&self, role: &str) -> f64 {
        self.config
            .weights
            .get(role)
            .copied()
            .filter(|w| *w > 0.0)
            .unwrap_or(1.0)
    }

    fn charge(&mut self, framework_id: &FrameworkId, agent_id: &AgentId, role: &str, resources: &Resources) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.allocated += resources;
            *agent
                .holders
                .entry((framework_id.clone(), role.to_owned()))
                .or_default() += resources;
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.allocated += resources;
        }
        self.roles.entry(role.to_owned()).or_default().allocated += resources;
    }

    fn discharge(&mut self, framework_id: &FrameworkId, agent_id: &AgentId, role: &str, resources: &Resources) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.allocated -= resources;
            let key = (framework_id.clone(), role.to_owned());
            if let Some(held) = agent.holders.get_mut(&key) {
                *held -= resources;
                if held.is_empty() {
                    agent.holders.remove(&key);
                }
            }
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.allocated -= resources;
        }
        if let Some(slot) = self.roles.get_mut(role) {
            slot.allocated -= resources;
        }
    }

    /// Candidates for an agent, best first: a depth-first walk of the role
    /// tree, siblings by the weighted dominant share of their subtree (a
    /// role's own frameworks being one more sibling, charged with what the
    /// role itself holds), then frameworks by dominant share.
    fn candidates(&self) -> Vec<(String, FrameworkId)> {
        let mut nodes: BTreeSet<&str> = BTreeSet::new();
        for (name, slot) in &self.roles {
            if !slot.frameworks.is_empty() {
                nodes.insert(name);
                nodes.extend(ancestors(name));
            }
        }
        let mut out = Vec::new();
        self.walk(None, &nodes, &mut out);
        out
    }

    /// Appends the candidates under `node` (the root: `None`) to `out`.
    fn walk(&self, node: Option<&str>, nodes: &BTreeSet<&str>, out: &mut Vec<(String, FrameworkId)>) {
        // (weighted share, name, whether it is `node`'s own frameworks)
        let mut entries: Vec<(f64, &str, bool)> = Vec::new();
        if let Some(own) = node {
            let allocated = self.roles.get(own).map(|r| r.allocated.clone()).unwrap_or_default();
            entries.push((self.dominant_share(&allocated) / self.weight(own), own, true));
        }
        for child in nodes.iter().filter(|n| parent(n) == node) {
            entries.push((
                self.dominant_share(&self.held(child)) / self.weight(child),
                child,
                false,
            ));
        }
        // A role's own entry sorts before its sub-roles on a tie: its name is their prefix.
        entries.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        for (_, role, own) in entries {
            if !own {
                self.walk(Some(role), nodes, out);
                continue;
            }
            let Some(slot) = self.roles.get(role) else {
                continue;
            };
            let mut frameworks: Vec<(f64, &FrameworkId)> = slot
                .frameworks
                .iter()
                .filter_map(|id| {
                    let fw = self.frameworks.get(id)?;
                    (fw.active && !fw.suppressed.contains(role)).then(|| (self.dominant_share(&fw.allocated), id))
                })
                .collect();
            frameworks.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            out.extend(frameworks.into_iter().map(|(_, id)| (role.to_owned(), id.clone())));
        }
    }

    /// What `role` and its sub-roles hold.
    fn held(&self, role: &str) -> Resources {
        self.roles
            .iter()
            .filter(|(name, _)| *name == role || name.strip_prefix(role).is_some_and(|rest| rest.starts_with('/')))
            .map(|(_, slot)| &slot.allocated)
            .sum()
    }

    /// What `role` still lacks of its guarantee (empty without one).
    fn unmet(&self, role: &str) -> Vec<(String, Scalar)> {
        self.guarantees
            .get(role)
            .map(|g| unmet_guarantee(g, &self.held(role)))
            .unwrap_or_default()
    }

    /// The stage-2 budget: per guaranteed name, the free scalars of every
    /// agent less the sum of unmet guarantees.
    fn budget(&self) -> Vec<(String, Scalar)> {
        let names: BTreeSet<&String> = self.guarantees.values().flat_map(|g| g.keys()).collect();
        names
            .into_iter()
            .map(|name| {
                let free: Scalar = self
                    .agents
                    .values()
                    .map(|a| (a.total.clone() - &a.allocated).scalar(name))
                    .sum();
                let unmet: Scalar = self
                    .guarantees
                    .iter()
                    .filter_map(|(role, g)| Some(*g.get(name)? - self.held(role).scalar(name)))
                    .sum();
                (name.clone(), free - unmet)
            })
            .collect()
    }

    /// One stage of a cycle over `order`. Stage 1 (`budget` is `None` and
    /// `guaranteed_only`): roles below their guarantee, offers cut to what they
    /// lack. Stage 2: everyone, offers to roles with no unmet guarantee cut
    /// to the budget when there is one.
    fn stage(
        &mut self,
        now: Timestamp,
        order: &[AgentId],
        guaranteed_only: bool,
        mut budget: Option<Vec<(String, Scalar)>>,
        allocations: &mut Vec<Allocation>,
    ) {
        for agent_id in order {
            while let Some(agent) = self.agents.get(agent_id) {
                let free = agent.total.clone() - &agent.allocated;
                if !self.meets_minimum(&free) {
                    break;
                }
                let attributes = &agent.attributes;
                let chosen = self.candidates().into_iter().find_map(|(role, framework_id)| {
                    let unmet = self.unmet(&role);
                    if guaranteed_only && unmet.is_empty() {
                        return None;
                    }
                    let mut offer = free.allocatable_to(&role);
                    if guaranteed_only {
                        let names: BTreeSet<String> =
                            self.guarantees.values().flat_map(|g| g.keys().cloned()).collect();
                        offer = fit_to_unmet(&unmet, &names, &offer);
                    }
                    // A limit bounds the role's whole subtree.
                    for limited in std::iter::once(role.as_str()).chain(ancestors(&role)) {
                        if let Some(limit) = self.quotas.get(limited) {
                            offer = fit_to_limit(limit, &self.held(limited), &offer);
                        }
                    }
                    if let Some(budget) = &budget
                        && unmet.is_empty()
                    {
                        offer = fit_to_budget(budget, &offer);
                    }
                    let allowed = self.frameworks.get(&framework_id).is_some_and(|f| {
                        OfferConstraint::all_match(&f.constraints, attributes)
                            && meets_framework_minimum(&f.min_allocatable, &role, &offer)
                    });
                    (allowed
                        && self.meets_minimum(&offer)
                        && !self.filtered(now, &framework_id, agent_id, &role, &offer))
                    .then_some((role, framework_id, offer, unmet))
                });
                let Some((role, framework_id, resources, unmet)) = chosen else {
                    break;
                };
                if let Some(budget) = budget.as_mut() {
                    charge_budget(budget, &unmet, &resources);
                }
                self.charge(&framework_id, agent_id, &role, &resources);
                allocations.push(Allocation {
                    framework_id,
                    agent_id: agent_id.clone(),
                    role,
                    resources,
                });
            }
        }
    }

    fn filtered(
        &self,
        now: Timestamp,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role: &str,
        offer: &Resources,
    ) -> bool {
        self.filters
            .get(&(framework_id.clone(), agent_id.clone(), role.to_owned()))
            .is_some_and(|f| f.until > now && f.resources.contains(offer))
    }
}

impl Allocator for ReferenceDrfAllocator {
    fn add_agent(&mut self, agent_id: &AgentId, total: &Resources, used: &[Used]) {
        self.remove_agent(agent_id);
        self.total += total;
        self.agents.insert(
            agent_id.clone(),
            AgentSlot {
                total: total.clone(),
                allocated: Resources::new(),
                active: true,
                holders: BTreeMap::new(),
                attributes: Attributes::default(),
            },
        );
        for u in used {
            self.charge(&u.framework_id, agent_id, &u.role, &u.resources);
        }
    }

    fn remove_agent(&mut self, agent_id: &AgentId) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        self.total -= &agent.total;
        for ((framework_id, role), held) in &agent.holders {
            if let Some(framework) = self.frameworks.get_mut(framework_id) {
                framework.allocated -= held;
            }
            if let Some(slot) = self.roles.get_mut(role) {
                slot.allocated -= held;
            }
        }
        self.filters.retain(|(_, a, _), _| a != agent_id);
    }

    fn set_agent_attributes(&mut self, agent_id: &AgentId, attributes: &Attributes) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.attributes = attributes.clone();
        }
    }

    fn set_agent_active(&mut self, agent_id: &AgentId, active: bool) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.active = active;
        }
    }

    fn add_framework(&mut self, framework_id: &FrameworkId, roles: &[String], used: &[Used]) {
        self.frameworks.insert(
            framework_id.clone(),
            FrameworkSlot {
                roles: roles.to_vec(),
                active: true,
                suppressed: BTreeSet::new(),
                allocated: Resources::new(),
                constraints: Vec::new(),
                min_allocatable: BTreeMap::new(),
            },
        );
        for role in roles {
            self.roles
                .entry(role.clone())
                .or_default()
                .frameworks
                .insert(framework_id.clone());
        }
        for u in used {
            self.charge(framework_id, &u.agent_id, &u.role, &u.resources);
        }
    }

    fn remove_framework(&mut self, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        for role in &framework.roles {
            if let Some(slot) = self.roles.get_mut(role) {
                slot.frameworks.remove(framework_id);
            }
        }
        self.filters.retain(|(f, _, _), _| f != framework_id);
    }

    fn set_framework_active(&mut self, framework_id: &FrameworkId, active: bool) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.active = active;
        }
    }

    fn set_framework_constraints(&mut self, framework_id: &FrameworkId, constraints: &[OfferConstraint]) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.constraints = constraints.to_vec();
        }
    }

    fn set_framework_min_allocatable(&mut self, framework_id: &FrameworkId, min: &BTreeMap<String, Vec<Resources>>) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.min_allocatable = min.clone();
        }
    }

    fn update_framework_roles(&mut self, framework_id: &FrameworkId, roles: &[String]) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let old = std::mem::replace(&mut framework.roles, roles.to_vec());
        framework.suppressed.retain(|r| roles.contains(r));
        for role in &old {
            if let Some(slot) = self.roles.get_mut(role) {
                slot.frameworks.remove(framework_id);
            }
        }
        for role in roles {
            self.roles
                .entry(role.clone())
                .or_default()
                .frameworks
                .insert(framework_id.clone());
        }
    }

    fn update_allocation(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role: &str,
        from: &Resources,
        to: &Resources,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        agent.total = agent.total.clone() - from + to;
        self.total = std::mem::take(&mut self.total) - from + to;
        self.discharge(framework_id, agent_id, role, from);
        self.charge(framework_id, agent_id, role, to);
    }

    fn update_total(&mut self, agent_id: &AgentId, from: &Resources, to: &Resources) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        agent.total = agent.total.clone() - from + to;
        self.total = std::mem::take(&mut self.total) - from + to;
    }

    fn recover(
        &mut self,
        now: Timestamp,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role: &str,
        resources: &Resources,
        refuse: Option<Duration>,
    ) {
        self.discharge(framework_id, agent_id, role, resources);
        let Some(refuse) = refuse.filter(|r| !r.is_zero()) else {
            return;
        };
        if resources.is_empty() || !self.frameworks.contains_key(framework_id) {
            return;
        }
        let until = now + refuse;
        let key = (framework_id.clone(), agent_id.clone(), role.to_owned());
        match self.filters.get_mut(&key) {
            // A second decline widens the filter to both sets and keeps the later expiry.
            Some(filter) if filter.until > now => {
                filter.resources += resources;
                filter.until = filter.until.max(until);
            }
            _ => {
                self.filters.insert(
                    key,
                    Filter {
                        until,
                        resources: resources.clone(),
                    },
                );
            }
        }
    }

    fn suppress(&mut self, framework_id: &FrameworkId, roles: &[String]) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let roles = if roles.is_empty() { &framework.roles } else { roles };
            framework.suppressed.extend(roles.iter().cloned());
        }
    }

    fn revive(&mut self, framework_id: &FrameworkId, roles: &[String]) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            if roles.is_empty() {
                framework.suppressed.clear();
            } else {
                framework.suppressed.retain(|r| !roles.contains(r));
            }
        }
        self.filters
            .retain(|(f, _, role), _| f != framework_id || !(roles.is_empty() || roles.contains(role)));
    }

    fn allocate(&mut self, now: Timestamp, rng: &mut StdRng) -> Vec<Allocation> {
        self.filters.retain(|_, f| f.until > now);
        let mut order: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| a.active)
            .map(|(id, _)| id.clone())
            .collect();
        order.shuffle(rng);

        let mut allocations = Vec::new();
        if self.guarantees.is_empty() {
            self.stage(now, &order, false, None, &mut allocations);
        } else {
            self.stage(now, &order, true, None, &mut allocations);
            let budget = self.budget();
            self.stage(now, &order, false, Some(budget), &mut allocations);
        }
        allocations
    }

    fn next_filter_expiry(&self) -> Option<Timestamp> {
        self.filters.values().map(|f| f.until).min()
    }

    fn set_weight(&mut self, role: &str, weight: f64) {
        self.config.weights.insert(role.to_owned(), weight);
    }

    fn set_quota(&mut self, role: &str, limit: Option<QuotaLimit>) {
        match limit {
            Some(limit) => self.quotas.insert(role.to_owned(), limit),
            None => self.quotas.remove(role),
        };
    }

    fn set_guarantee(&mut self, role: &str, guarantee: Option<QuotaLimit>) {
        match guarantee {
            Some(guarantee) => self.guarantees.insert(role.to_owned(), guarantee),
            None => self.guarantees.remove(role),
        };
    }

    fn roles(&self) -> Vec<RoleShare> {
        let mut names: BTreeSet<&str> = self.roles.keys().map(String::as_str).collect();
        names.extend(self.config.weights.keys().map(String::as_str));
        names.extend(self.quotas.keys().map(String::as_str));
        names.extend(self.guarantees.keys().map(String::as_str));
        for f in self.frameworks.values() {
            names.extend(f.roles.iter().map(String::as_str));
        }
        let parents: Vec<&str> = names.iter().flat_map(|name| ancestors(name)).collect();
        names.extend(parents);
        names
            .into_iter()
            .map(|name| {
                let allocated = self.held(name);
                RoleShare {
                    role: name.to_owned(),
                    weight: self.weight(name),
                    dominant_share: self.dominant_share(&allocated),
                    allocated,
                    quota: self.quotas.get(name).cloned(),
                    guarantee: self.guarantees.get(name).cloned(),
                }
            })
            .collect()
    }

    fn framework_share(&self, framework_id: &FrameworkId) -> FrameworkShare {
        self.frameworks
            .get(framework_id)
            .map(|f| FrameworkShare {
                dominant_share: self.dominant_share(&f.allocated),
                allocated: f.allocated.clone(),
            })
            .unwrap_or_default()
    }

    fn cluster_total(&self) -> Resources {
        self.total.clone()
    }

    fn agent_allocated(&self, agent_id: &AgentId) -> Resources {
        self.agents
            .get(agent_id)
            .map(|a| a.allocated.clone())
            .unwrap_or_default()
    }

    fn active_filters(&self, now: Timestamp) -> usize {
        self.filters.values().filter(|f| f.until > now).count()
    }
}
