//! Hierarchical dominant resource fairness (DRF), Mesos' default policy.
//!
//! Each cycle visits the active agents in a seeded random order. For each
//! agent, roles are ordered by weighted dominant share, then frameworks
//! within a role by dominant share (ties broken by role name and framework
//! id, so the order is deterministic); the first framework that wants the
//! agent's free resources for that role receives all of them as one
//! allocation. Shares are updated after every allocation, so one cycle
//! spreads the cluster across frameworks. A decline filter on (framework,
//! agent, role) blocks an offer while it is in force and the offer is
//! contained in the declined resources.
//!
//! The policy is defined by the straightforward [`ReferenceDrfAllocator`]
//! (`super::reference`); this implementation makes the same decisions with
//! data structures built for 10,000s of agents and 1,000s of frameworks:
//!
//! - ids are interned as dense indices ([`AgentIdx`], [`FrameworkIdx`],
//!   [`RoleIdx`]); id maps are only used at the trait boundary;
//! - dominant shares are cached, and the order of roles and of the eligible
//!   (active, unsuppressed) frameworks of each role are kept in sorted sets
//!   keyed by (share, name), updated when a share changes. When the cluster
//!   total changes (agents come and go) every share changes; the sets are
//!   then rebuilt once, lazily, at the next cycle;
//! - each agent keeps its free resources, whether they reach the minimum,
//!   and whether they hold reservations, up to date on every change, so a
//!   cycle neither clones nor recomputes them per visit;
//! - decline filters live on the agent, keyed by (framework, role) indices;
//!   declined resource sets are shared (`Arc`) between the filters of an
//!   agent, and the containment test against the current offer is cached per
//!   agent until its free resources change. An expiry index gives the next
//!   expiry and purges expired filters without a scan;
//! - an agent on which no framework could take anything is marked
//!   *exhausted* for its current free resources and the current eligibility
//!   epoch (bumped whenever a framework's eligibility changes or a filter is
//!   lifted), so later cycles skip it in O(1) until something changes.
//!
//! [`ReferenceDrfAllocator`]: super::reference::ReferenceDrfAllocator

use super::{
    Allocation, Allocator, FrameworkShare, RoleShare, Used, charge_budget, fit_to_budget, fit_to_limit, fit_to_unmet,
    meets_framework_minimum, unmet_guarantee,
};
use agora_proto::{AgentId, Attributes, FrameworkId, OfferConstraint, QuotaLimit, Resources, Scalar, Timestamp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the DRF allocator.
#[derive(Clone, Debug, PartialEq)]
pub struct DrfConfig {
    /// An agent's free resources are offered only when they reach at least
    /// one of these quantities (Mesos: `cpus:0.01` or `mem:32`).
    pub min_allocatable: Vec<Resources>,
    /// Role weights; roles not listed weigh 1.0.
    pub weights: BTreeMap<String, f64>,
    /// How a cycle hands out free resources.
    pub policy: Policy,
}

/// How an allocation cycle hands out the free resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Today's Mesos: agent by agent, each agent's free resources go to the
    /// framework lowest in DRF order at that moment, so one cycle spreads the
    /// cluster across frameworks.
    #[default]
    FairShare,
    /// Mesos in 2012, as modelled in the Omega paper: each cycle, the free
    /// resources of *every* agent go to the one (role, framework) lowest in
    /// DRF order at the start of the cycle that can take any of them
    /// (decline filters and reservations still apply). The next framework
    /// only sees what remains or is freed later.
    OfferAllToOne,
}

impl Policy {
    /// The name used on the command line and in the docs.
    pub fn name(self) -> &'static str {
        match self {
            Self::FairShare => "fair-share",
            Self::OfferAllToOne => "offer-all-to-one",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fair-share" => Ok(Self::FairShare),
            "offer-all-to-one" => Ok(Self::OfferAllToOne),
            other => Err(format!(
                "unknown allocator policy {other:?} (expected fair-share or offer-all-to-one)"
            )),
        }
    }
}

impl Default for DrfConfig {
    fn default() -> Self {
        let mut cpus = Resources::new();
        cpus.add_scalar("cpus", None, Scalar::from_milli(10));
        let mut mem = Resources::new();
        mem.add_scalar("mem", None, Scalar::from_units(32));
        Self {
            min_allocatable: vec![cpus, mem],
            weights: BTreeMap::new(),
            policy: Policy::FairShare,
        }
    }
}

/// Dense index of an agent id inside the allocator (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct AgentIdx(u32);

/// Dense index of a framework id inside the allocator (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FrameworkIdx(u32);

/// Dense index of a role name inside the allocator (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct RoleIdx(u32);

/// A dominant share, totally ordered (as `f64::total_cmp`).
#[derive(Clone, Copy, Debug, Default)]
struct Share(f64);

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Share {}
impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug)]
struct Filter {
    until: Timestamp,
    /// Shared between the filters of one agent that declined the same set.
    resources: Arc<Resources>,
}

/// An agent currently known to the allocator.
#[derive(Debug)]
struct AgentSlot {
    total: Resources,
    allocated: Resources,
    /// `total - allocated`, kept up to date.
    free: Resources,
    /// `free` reaches `min_allocatable`.
    free_meets_min: bool,
    /// `free` holds no reserved resources, so the offer to any role is `free`.
    free_unreserved: bool,
    /// Changes (to a fresh value of the allocator's counter) whenever `free` does.
    version: u64,
    active: bool,
    /// What each (framework, role) holds here, so removing the agent can
    /// give it back to the right shares.
    /// A few entries per agent: a `Vec` searched linearly beats a map here.
    holders: Vec<((FrameworkIdx, RoleIdx), Resources)>,
    /// Cached `filter.resources.contains(offer to role)` for this `version`.
    contains_cache: Vec<(Arc<Resources>, RoleIdx, bool)>,
    contains_version: u64,
    /// (version, epoch) at which no framework could take anything here.
    exhausted: Option<(u64, u64)>,
    /// Matched against frameworks' offer constraints.
    attributes: Attributes,
}

/// Everything about one agent id; `slot` is `None` while it is not known
/// (decline filters may outlive the agent, as in the reference policy).
#[derive(Debug)]
struct AgentEntry {
    id: AgentId,
    slot: Option<AgentSlot>,
    /// Decline filters on this agent by (framework, role).
    filters: BTreeMap<(FrameworkIdx, RoleIdx), Filter>,
    /// The most recently declined set, to share it between filters.
    last_declined: Option<Arc<Resources>>,
}

#[derive(Debug)]
struct FrameworkEntry {
    id: Arc<FrameworkId>,
    /// Whether the framework is added (charges to an unknown framework are dropped).
    present: bool,
    roles: Vec<RoleIdx>,
    /// The spelling of `roles` as given (suppress with no roles uses it).
    role_names: Vec<String>,
    active: bool,
    suppressed: BTreeSet<RoleIdx>,
    allocated: Resources,
    /// The share it is filed under in the sorters (valid unless `shares_stale`).
    share: Share,
    /// The roles whose sorter holds it.
    in_sorters: Vec<RoleIdx>,
    /// Its decline filters, by (agent, role).
    filters: BTreeSet<(AgentIdx, RoleIdx)>,
    /// Agents it may be offered must match all of these.
    constraints: Vec<OfferConstraint>,
    /// Its own minimum offer per role (empty lists dropped).
    min_allocatable: BTreeMap<String, Vec<Resources>>,
}

#[derive(Debug)]
struct RoleEntry {
    name: Arc<str>,
    weight: f64,
    /// What the role itself holds (its sub-roles' allocations are not in it).
    allocated: Resources,
    /// Its parent (`eng` for `eng/backend`).
    parent: Option<RoleIdx>,
    /// What it and its sub-roles hold; `None` while it has no sub-role (it is
    /// then `allocated`: flat roles pay nothing for the hierarchy).
    subtree: Option<Resources>,
    /// Weighted share of its subtree, under which it is filed in its parent's
    /// `children` (or in `role_order` at the top).
    share: Share,
    /// Weighted share of `allocated`, the key of its own entry in `children`
    /// (kept up to date only once it has a sub-role: alone, the entry's
    /// order does not matter).
    own_share: Share,
    /// Its own frameworks' entry and its sub-roles, best first (see [`Node`]).
    children: BTreeSet<Node>,
    /// Its limit leaves no room for the minimum allocatable quantities, so no
    /// offer can reach it or its sub-roles: it is left out of its parent's
    /// `children` (a cycle then skips it without a look, which matters when
    /// thousands of roles sit at quota).
    saturated: bool,
    /// Its eligible frameworks (present, active, not suppressed), best first.
    sorter: BTreeSet<(Share, Arc<FrameworkId>, FrameworkIdx)>,
    /// Its quota limit; offers to it are cut to fit (see [`fit_to_limit`]).
    limit: Option<QuotaLimit>,
    /// Its quota guarantee (see [`Allocator::set_guarantee`]).
    guarantee: Option<QuotaLimit>,
}

/// An entry of the role tree: (weighted share, role name, role, whether it
/// stands for the role's own frameworks rather than its whole subtree).
/// Siblings sort by share, then name; a role's own entry comes before its
/// sub-roles on a tie, its name being their prefix.
type Node = (Share, Arc<str>, RoleIdx, bool);

/// What role `role` and its sub-roles hold.
fn held(role: &RoleEntry) -> &Resources {
    role.subtree.as_ref().unwrap_or(&role.allocated)
}

/// `offer` cut to the limits of role `r` and of each of its ancestors, each
/// against what its subtree holds; `None` when none of them has a limit.
fn fit_to_limits(roles: &[RoleEntry], r: RoleIdx, offer: &Resources) -> Option<Resources> {
    let mut fitted: Option<Resources> = None;
    let mut node = Some(r);
    while let Some(n) = node {
        let role = &roles[n.0 as usize];
        if let Some(limit) = &role.limit {
            fitted = Some(fit_to_limit(limit, held(role), fitted.as_ref().unwrap_or(offer)));
        }
        node = role.parent;
    }
    fitted
}

/// Whether role `r` or one of its ancestors has a quota limit.
fn limited(roles: &[RoleEntry], r: RoleIdx) -> bool {
    let mut node = Some(r);
    while let Some(n) = node {
        let role = &roles[n.0 as usize];
        if role.limit.is_some() {
            return true;
        }
        node = role.parent;
    }
    false
}

/// The roles whose own frameworks are candidates, best first: a depth-first
/// walk of the role tree.
struct RoleWalk<'a> {
    roles: &'a [RoleEntry],
    top: std::collections::btree_set::Iter<'a, Node>,
    /// Open subtrees below the top; empty (no allocation) for flat roles.
    below: Vec<std::collections::btree_set::Iter<'a, Node>>,
}

impl<'a> RoleWalk<'a> {
    fn new(roles: &'a [RoleEntry], role_order: &'a BTreeSet<Node>) -> Self {
        Self {
            roles,
            top: role_order.iter(),
            below: Vec::new(),
        }
    }
}

impl Iterator for RoleWalk<'_> {
    type Item = RoleIdx;

    fn next(&mut self) -> Option<RoleIdx> {
        loop {
            let next = match self.below.last_mut() {
                Some(level) => match level.next() {
                    Some(node) => node,
                    None => {
                        self.below.pop();
                        continue;
                    }
                },
                None => self.top.next()?,
            };
            let &(_, _, r, own) = next;
            let children = &self.roles[r.0 as usize].children;
            // A role without sub-roles has only its own entry: no need to descend.
            if own || children.len() == 1 {
                return Some(r);
            }
            self.below.push(children.iter());
        }
    }
}

/// The hierarchical DRF allocator. See the module documentation.
#[derive(Debug)]
pub struct DrfAllocator {
    config: DrfConfig,
    agent_index: HashMap<AgentId, AgentIdx>,
    agents: Vec<AgentEntry>,
    /// Known agents by id (the order the random shuffle starts from); rebuilt
    /// when agents come or go.
    agent_order: Option<Vec<AgentIdx>>,
    framework_index: HashMap<FrameworkId, FrameworkIdx>,
    frameworks: Vec<FrameworkEntry>,
    role_index: HashMap<String, RoleIdx>,
    roles: Vec<RoleEntry>,
    /// The top-level roles (their subtree entries), best first.
    role_order: BTreeSet<Node>,
    /// The roles with a guarantee; empty: cycles run stage 2 only, with no budget.
    guaranteed: BTreeSet<RoleIdx>,
    /// During stage 2 of a cycle with guarantees: the free scalars left over
    /// the sum of unmet guarantees, by guaranteed name.
    budget: Option<Vec<(String, Scalar)>>,
    /// Every decline filter by expiry.
    expiry: BTreeSet<(Timestamp, AgentIdx, FrameworkIdx, RoleIdx)>,
    total: Resources,
    /// `total`'s scalars summed per name, for shares.
    total_by_name: Vec<(String, Scalar)>,
    /// The total changed: every cached share and sorter is out of date.
    shares_stale: bool,
    /// Bumped when a framework's eligibility changes or a filter is lifted.
    epoch: u64,
    /// Source of agent versions.
    counter: u64,
}

impl DrfAllocator {
    /// An allocator with no agents and no frameworks.
    pub fn new(config: DrfConfig) -> Self {
        Self {
            config,
            agent_index: HashMap::new(),
            agents: Vec::new(),
            agent_order: None,
            framework_index: HashMap::new(),
            frameworks: Vec::new(),
            role_index: HashMap::new(),
            roles: Vec::new(),
            role_order: BTreeSet::new(),
            guaranteed: BTreeSet::new(),
            budget: None,
            expiry: BTreeSet::new(),
            total: Resources::new(),
            total_by_name: Vec::new(),
            shares_stale: false,
            epoch: 0,
            counter: 0,
        }
    }

    fn meets_minimum(min_allocatable: &[Resources], resources: &Resources) -> bool {
        super::meets_minimum(min_allocatable, resources)
    }

    /// Dominant share of `allocated` against the cluster total (as the reference computes it).
    fn dominant_share(total_by_name: &[(String, Scalar)], allocated: &Resources) -> f64 {
        let mut share: f64 = 0.0;
        for (key, used) in allocated.scalars() {
            let total = total_by_name
                .iter()
                .find(|(name, _)| *name == key.name)
                .map_or(Scalar::ZERO, |(_, v)| *v);
            if total > Scalar::ZERO {
                share = share.max(used.milli() as f64 / total.milli() as f64);
            }
        }
        share
    }

    fn set_total(&mut self, total: Resources) {
        let mut by_name: Vec<(String, Scalar)> = Vec::new();
        for name in total.scalar_names() {
            by_name.push((name.to_owned(), total.scalar(name)));
        }
        self.total = total;
        self.total_by_name = by_name;
        self.shares_stale = true;
    }

    fn next_version(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn agent_idx(&mut self, id: &AgentId) -> AgentIdx {
        if let Some(idx) = self.agent_index.get(id) {
            return *idx;
        }
        let idx = AgentIdx(u32::try_from(self.agents.len()).unwrap_or(u32::MAX));
        self.agents.push(AgentEntry {
            id: id.clone(),
            slot: None,
            filters: BTreeMap::new(),
            last_declined: None,
        });
        self.agent_index.insert(id.clone(), idx);
        idx
    }

    fn framework_idx(&mut self, id: &FrameworkId) -> FrameworkIdx {
        if let Some(idx) = self.framework_index.get(id) {
            return *idx;
        }
        let idx = FrameworkIdx(u32::try_from(self.frameworks.len()).unwrap_or(u32::MAX));
        self.frameworks.push(FrameworkEntry {
            id: Arc::new(id.clone()),
            present: false,
            roles: Vec::new(),
            role_names: Vec::new(),
            active: false,
            suppressed: BTreeSet::new(),
            allocated: Resources::new(),
            share: Share::default(),
            in_sorters: Vec::new(),
            filters: BTreeSet::new(),
            constraints: Vec::new(),
            min_allocatable: BTreeMap::new(),
        });
        self.framework_index.insert(id.clone(), idx);
        idx
    }

    fn role_idx(&mut self, name: &str) -> RoleIdx {
        if let Some(idx) = self.role_index.get(name) {
            return *idx;
        }
        // Parents first, so that a role's parent always exists.
        let parent = super::parent(name).map(|p| self.role_idx(p));
        let idx = RoleIdx(u32::try_from(self.roles.len()).unwrap_or(u32::MAX));
        let weight = self
            .config
            .weights
            .get(name)
            .copied()
            .filter(|w| *w > 0.0)
            .unwrap_or(1.0);
        let name: Arc<str> = Arc::from(name);
        // Filed under share 0, which is right while it holds nothing; a charge re-files it.
        let entry = (Share(0.0), name.clone(), idx, false);
        match parent {
            Some(p) => {
                let stale = self.shares_stale;
                let parent = &mut self.roles[p.0 as usize];
                if parent.subtree.is_none() {
                    parent.subtree = Some(parent.allocated.clone());
                    // Its own entry was not kept in order while it was alone.
                    if !stale {
                        let own = Share(Self::dominant_share(&self.total_by_name, &parent.allocated) / parent.weight);
                        Self::refile_own(parent, p, own);
                    }
                }
                parent.children.insert(entry);
            }
            None => {
                self.role_order.insert(entry);
            }
        }
        self.roles.push(RoleEntry {
            name: name.clone(),
            weight,
            allocated: Resources::new(),
            parent,
            subtree: None,
            share: Share(0.0),
            own_share: Share(0.0),
            children: BTreeSet::from([(Share(0.0), name.clone(), idx, true)]),
            sorter: BTreeSet::new(),
            limit: None,
            saturated: false,
            guarantee: None,
        });
        self.role_index.insert(name.to_string(), idx);
        idx
    }

    fn framework(&self, f: FrameworkIdx) -> &FrameworkEntry {
        &self.frameworks[f.0 as usize]
    }

    /// Re-files framework `f` under its current share (no-op while stale).
    fn refresh_framework_share(&mut self, f: FrameworkIdx) {
        if self.shares_stale {
            return;
        }
        let fw = &self.frameworks[f.0 as usize];
        let share = Share(Self::dominant_share(&self.total_by_name, &fw.allocated));
        if share == fw.share {
            return;
        }
        let old = fw.share;
        for r in &fw.in_sorters {
            let sorter = &mut self.roles[r.0 as usize].sorter;
            sorter.remove(&(old, fw.id.clone(), f));
            sorter.insert((share, fw.id.clone(), f));
        }
        self.frameworks[f.0 as usize].share = share;
    }

    /// Re-files role `r`'s own entry, and its subtree's and every
    /// ancestor's, under their current weighted shares (no-op while stale).
    fn refresh_role_share(&mut self, r: RoleIdx) {
        if self.shares_stale {
            return;
        }
        let role = &mut self.roles[r.0 as usize];
        let own = Share(Self::dominant_share(&self.total_by_name, &role.allocated) / role.weight);
        // A role without sub-roles is walked straight to its frameworks (see
        // `RoleWalk`): its own entry, alone in `children`, needs no re-filing
        // (`role_idx` re-files it when a first sub-role arrives).
        if role.subtree.is_some() {
            Self::refile_own(role, r, own);
        }
        // A subtree's holdings changed all the way up.
        let mut node = Some(r);
        while let Some(n) = node {
            let role = &self.roles[n.0 as usize];
            let share = if role.subtree.is_none() && n == r {
                own
            } else {
                Share(Self::dominant_share(&self.total_by_name, held(role)) / role.weight)
            };
            let saturated = role
                .limit
                .as_ref()
                .is_some_and(|limit| Self::limit_saturated(&self.config.min_allocatable, limit, held(role)));
            let parent = role.parent;
            if share != role.share || saturated != role.saturated {
                let (old, was_saturated, name) = (role.share, role.saturated, role.name.clone());
                let siblings = match parent {
                    Some(p) => &mut self.roles[p.0 as usize].children,
                    None => &mut self.role_order,
                };
                if !was_saturated {
                    siblings.remove(&(old, name.clone(), n, false));
                }
                if !saturated {
                    siblings.insert((share, name, n, false));
                }
                let role = &mut self.roles[n.0 as usize];
                role.share = share;
                role.saturated = saturated;
            }
            node = parent;
        }
    }

    /// Files role `r`'s own entry in its `children` under `own`.
    fn refile_own(role: &mut RoleEntry, r: RoleIdx, own: Share) {
        if own != role.own_share {
            role.children.remove(&(role.own_share, role.name.clone(), r, true));
            role.children.insert((own, role.name.clone(), r, true));
            role.own_share = own;
        }
    }

    /// Adds (`add`) or takes `resources` to or from what role `r` holds and
    /// what its subtree and every ancestor's subtree hold, without re-filing.
    fn book_role(&mut self, r: RoleIdx, resources: &Resources, add: bool) {
        let book = |held: &mut Resources| {
            if add {
                *held += resources;
            } else {
                *held -= resources;
            }
        };
        book(&mut self.roles[r.0 as usize].allocated);
        let mut node = Some(r);
        while let Some(n) = node {
            let role = &mut self.roles[n.0 as usize];
            if let Some(subtree) = role.subtree.as_mut() {
                book(subtree);
            }
            node = role.parent;
        }
    }

    /// Whether a role holding `allocated` under `limit` can be offered
    /// nothing that reaches `min_allocatable`: for every minimum quantity,
    /// some positive scalar of it has less headroom left than it asks
    /// (offers are cut to the headroom by [`fit_to_limit`]).
    fn limit_saturated(min_allocatable: &[Resources], limit: &QuotaLimit, allocated: &Resources) -> bool {
        !min_allocatable.is_empty()
            && min_allocatable.iter().all(|min| {
                min.scalars().any(|(key, value)| {
                    value > Scalar::ZERO
                        && limit
                            .get(key.name.as_ref())
                            .is_some_and(|limit| *limit - allocated.scalar(&key.name) < value)
                })
            })
    }

    /// Takes framework `f` out of every sorter.
    fn detach(&mut self, f: FrameworkIdx) {
        let fw = &mut self.frameworks[f.0 as usize];
        for r in std::mem::take(&mut fw.in_sorters) {
            self.roles[r.0 as usize].sorter.remove(&(fw.share, fw.id.clone(), f));
        }
    }

    /// Files framework `f` in the sorter of every role it is eligible for.
    fn attach(&mut self, f: FrameworkIdx) {
        let fw = &mut self.frameworks[f.0 as usize];
        if !(fw.present && fw.active) {
            return;
        }
        for r in &fw.roles {
            if !fw.suppressed.contains(r) {
                self.roles[r.0 as usize].sorter.insert((fw.share, fw.id.clone(), f));
                fw.in_sorters.push(*r);
            }
        }
    }

    /// Eligibility of `f` may have changed.
    fn reattach(&mut self, f: FrameworkIdx) {
        self.detach(f);
        self.attach(f);
        self.epoch += 1;
    }

    /// Recomputes every share and rebuilds every sorter (after the total changed).
    fn rebuild_sorters(&mut self) {
        if !self.shares_stale {
            return;
        }
        for role in &mut self.roles {
            role.sorter.clear();
            role.children.clear();
        }
        self.role_order.clear();
        for i in 0..self.roles.len() {
            let r = RoleIdx(i as u32);
            let role = &mut self.roles[i];
            role.own_share = Share(Self::dominant_share(&self.total_by_name, &role.allocated) / role.weight);
            role.children.insert((role.own_share, role.name.clone(), r, true));
            role.share = Share(Self::dominant_share(&self.total_by_name, held(role)) / role.weight);
            role.saturated = role
                .limit
                .as_ref()
                .is_some_and(|limit| Self::limit_saturated(&self.config.min_allocatable, limit, held(role)));
            if !role.saturated {
                let entry = (role.share, role.name.clone(), r, false);
                match role.parent {
                    Some(p) => self.roles[p.0 as usize].children.insert(entry),
                    None => self.role_order.insert(entry),
                };
            }
        }
        for i in 0..self.frameworks.len() {
            let fw = &mut self.frameworks[i];
            fw.in_sorters.clear();
            fw.share = Share(Self::dominant_share(&self.total_by_name, &fw.allocated));
            self.attach(FrameworkIdx(i as u32));
        }
        self.shares_stale = false;
    }

    /// Recomputes an agent's derived fields after `allocated` changed.
    fn refresh_free(min_allocatable: &[Resources], version: u64, agent: &mut AgentSlot) {
        agent.free = agent.total.clone() - &agent.allocated;
        Self::refresh_free_flags(min_allocatable, version, agent);
    }

    fn refresh_free_flags(min_allocatable: &[Resources], version: u64, agent: &mut AgentSlot) {
        agent.free_meets_min = Self::meets_minimum(min_allocatable, &agent.free);
        agent.free_unreserved = agent.free.scalars().all(|(k, _)| k.reservation.is_none())
            && agent.free.ranges().all(|(k, _)| k.reservation.is_none())
            && agent.free.sets().all(|(k, _)| k.reservation.is_none());
        agent.version = version;
    }

    /// Adds `resources` to what `key` holds on an agent.
    fn hold(
        holders: &mut Vec<((FrameworkIdx, RoleIdx), Resources)>,
        key: (FrameworkIdx, RoleIdx),
        resources: &Resources,
    ) {
        match holders.iter_mut().find(|(k, _)| *k == key) {
            Some((_, held)) => *held += resources,
            None => holders.push((key, resources.clone())),
        }
    }

    fn charge(&mut self, f: FrameworkIdx, a: Option<AgentIdx>, r: RoleIdx, resources: &Resources) {
        if let Some(a) = a {
            let version = self.next_version();
            if let Some(agent) = self.agents[a.0 as usize].slot.as_mut() {
                agent.allocated += resources;
                Self::hold(&mut agent.holders, (f, r), resources);
                Self::refresh_free(&self.config.min_allocatable, version, agent);
            }
        }
        self.charge_shares(f, r, resources);
    }

    /// The framework's and role's part of a charge.
    fn charge_shares(&mut self, f: FrameworkIdx, r: RoleIdx, resources: &Resources) {
        if self.frameworks[f.0 as usize].present {
            self.frameworks[f.0 as usize].allocated += resources;
            self.refresh_framework_share(f);
        }
        self.book_role(r, resources, true);
        self.refresh_role_share(r);
    }

    /// Gives back `resources` (indices of unknown ids are `None`).
    fn discharge(&mut self, f: Option<FrameworkIdx>, a: Option<AgentIdx>, r: Option<RoleIdx>, resources: &Resources) {
        if let Some(a) = a {
            let version = self.next_version();
            if let Some(agent) = self.agents[a.0 as usize].slot.as_mut() {
                // When `resources` is within `allocated` and `allocated` within
                // `total`, nothing saturates: `total - (allocated - resources)`
                // is `free + resources`, without cloning `total`.
                let exact = agent.allocated.contains(resources) && agent.total.contains(&agent.allocated);
                agent.allocated -= resources;
                if exact {
                    agent.free += resources;
                    Self::refresh_free_flags(&self.config.min_allocatable, version, agent);
                    debug_assert_eq!(agent.free, agent.total.clone() - &agent.allocated);
                } else {
                    Self::refresh_free(&self.config.min_allocatable, version, agent);
                }
                if let (Some(f), Some(r)) = (f, r)
                    && let Some(i) = agent.holders.iter().position(|(key, _)| *key == (f, r))
                {
                    agent.holders[i].1 -= resources;
                    if agent.holders[i].1.is_empty() {
                        agent.holders.swap_remove(i);
                    }
                }
            }
        }
        if let Some(f) = f
            && self.frameworks[f.0 as usize].present
        {
            self.frameworks[f.0 as usize].allocated -= resources;
            self.refresh_framework_share(f);
        }
        if let Some(r) = r {
            self.book_role(r, resources, false);
            self.refresh_role_share(r);
            if limited(&self.roles, r) {
                // Headroom grew: agents exhausted for this role may serve it now.
                self.epoch += 1;
            }
        }
    }

    /// Removes the filter of `f` on `a` for `r` from every index.
    fn remove_filter(&mut self, a: AgentIdx, f: FrameworkIdx, r: RoleIdx) {
        if let Some(filter) = self.agents[a.0 as usize].filters.remove(&(f, r)) {
            self.expiry.remove(&(filter.until, a, f, r));
            self.frameworks[f.0 as usize].filters.remove(&(a, r));
            self.epoch += 1;
        }
    }

    /// Picks the framework and role that receive agent `a`'s free resources
    /// now, with the offer when it is not the whole of `free`.
    fn choose(&mut self, a: AgentIdx, now: Timestamp) -> Option<(FrameworkIdx, RoleIdx, Option<Resources>)> {
        let entry = &mut self.agents[a.0 as usize];
        let agent = entry.slot.as_mut()?;
        if !agent.free_meets_min || agent.exhausted == Some((agent.version, self.epoch)) {
            return None;
        }
        if agent.contains_version != agent.version {
            agent.contains_cache.clear();
            agent.contains_version = agent.version;
        }
        for r in RoleWalk::new(&self.roles, &self.role_order) {
            let role = &self.roles[r.0 as usize];
            if role.sorter.is_empty() {
                continue;
            }
            let reserved_offer;
            let offer = if agent.free_unreserved {
                &agent.free
            } else {
                reserved_offer = agent.free.allocatable_to(&role.name);
                if !Self::meets_minimum(&self.config.min_allocatable, &reserved_offer) {
                    continue;
                }
                &reserved_offer
            };
            // Roles without a limit in their chain pay a walk up the tree here.
            let limited_offer;
            let is_limited = limited(&self.roles, r);
            let offer = if is_limited {
                limited_offer = fit_to_limits(&self.roles, r, offer);
                let offer = limited_offer.as_ref().unwrap_or(offer);
                if !Self::meets_minimum(&self.config.min_allocatable, offer) {
                    continue;
                }
                offer
            } else {
                offer
            };
            // Only roles with no unmet guarantee are held to the budget.
            let budget_offer;
            let offer = match &self.budget {
                Some(budget)
                    if role
                        .guarantee
                        .as_ref()
                        .is_none_or(|g| unmet_guarantee(g, held(role)).is_empty()) =>
                {
                    budget_offer = fit_to_budget(budget, offer);
                    if !Self::meets_minimum(&self.config.min_allocatable, &budget_offer) {
                        continue;
                    }
                    &budget_offer
                }
                _ => offer,
            };
            // A limited role's offer (or any offer under a budget) depends on
            // more than this agent's version: the containment cache is bypassed.
            let limited = is_limited || self.budget.is_some();
            for (_, _, f) in &role.sorter {
                let fw = &self.frameworks[f.0 as usize];
                if !fw.constraints.is_empty() && !OfferConstraint::all_match(&fw.constraints, &agent.attributes) {
                    continue;
                }
                if !meets_framework_minimum(&fw.min_allocatable, &role.name, offer) {
                    continue;
                }
                let blocked = entry.filters.get(&(*f, r)).is_some_and(|filter| {
                    filter.until > now
                        && if limited {
                            filter.resources.contains(offer)
                        } else {
                            let cached = agent
                                .contains_cache
                                .iter()
                                .find(|(res, role, _)| *role == r && Arc::ptr_eq(res, &filter.resources));
                            match cached {
                                Some((_, _, contains)) => *contains,
                                None => {
                                    let contains = filter.resources.contains(offer);
                                    if agent.contains_cache.len() < 8 {
                                        agent.contains_cache.push((filter.resources.clone(), r, contains));
                                    }
                                    contains
                                }
                            }
                        }
                });
                if !blocked {
                    let offer = (limited || !agent.free_unreserved).then(|| offer.clone());
                    return Some((*f, r, offer));
                }
            }
        }
        agent.exhausted = Some((agent.version, self.epoch));
        None
    }

    /// Stage 1: the role below its guarantee, and its framework, that receive
    /// part of agent `a`'s free resources now, with the offer (cut to what
    /// the role lacks). Roles in DRF order, as in stage 2.
    fn choose_guaranteed(
        &self,
        a: AgentIdx,
        guaranteed: &BTreeSet<String>,
        now: Timestamp,
    ) -> Option<(FrameworkIdx, RoleIdx, Resources)> {
        let entry = &self.agents[a.0 as usize];
        let agent = entry.slot.as_ref()?;
        if !agent.free_meets_min {
            return None;
        }
        for r in RoleWalk::new(&self.roles, &self.role_order) {
            let role = &self.roles[r.0 as usize];
            let Some(guarantee) = &role.guarantee else {
                continue;
            };
            if role.sorter.is_empty() {
                continue;
            }
            let unmet = unmet_guarantee(guarantee, held(role));
            if unmet.is_empty() {
                continue;
            }
            let mut offer = fit_to_unmet(&unmet, guaranteed, &agent.free.allocatable_to(&role.name));
            if let Some(fitted) = fit_to_limits(&self.roles, r, &offer) {
                offer = fitted;
            }
            if !Self::meets_minimum(&self.config.min_allocatable, &offer) {
                continue;
            }
            for (_, _, f) in &role.sorter {
                let fw = &self.frameworks[f.0 as usize];
                if !fw.constraints.is_empty() && !OfferConstraint::all_match(&fw.constraints, &agent.attributes) {
                    continue;
                }
                if !meets_framework_minimum(&fw.min_allocatable, &role.name, &offer) {
                    continue;
                }
                let blocked = entry
                    .filters
                    .get(&(*f, r))
                    .is_some_and(|filter| filter.until > now && filter.resources.contains(&offer));
                if !blocked {
                    return Some((*f, r, offer));
                }
            }
        }
        None
    }

    /// The stage-2 budget at the start of stage 2: per guaranteed name, the
    /// free scalars of every known agent less the sum of unmet guarantees.
    fn stage2_budget(&self) -> Vec<(String, Scalar)> {
        let mut budget: Vec<(String, Scalar)> = Vec::new();
        for r in &self.guaranteed {
            if let Some(g) = &self.roles[r.0 as usize].guarantee {
                for name in g.keys() {
                    if !budget.iter().any(|(n, _)| n == name) {
                        budget.push((name.clone(), Scalar::ZERO));
                    }
                }
            }
        }
        for (name, left) in &mut budget {
            let free: Scalar = self
                .agents
                .iter()
                .filter_map(|e| e.slot.as_ref())
                .map(|agent| agent.free.scalar(name))
                .sum();
            let unmet: Scalar = self
                .guaranteed
                .iter()
                .filter_map(|r| {
                    let role = &self.roles[r.0 as usize];
                    let g = role.guarantee.as_ref()?;
                    let want = *g.get(name.as_str())?;
                    Some(want - held(role).scalar(name))
                })
                .sum();
            *left = free - unmet;
        }
        budget
    }

    /// Gives framework `f` the offer on agent `a` for role `r` (`None`: all of `free`).
    fn allocate_one(&mut self, f: FrameworkIdx, a: AgentIdx, r: RoleIdx, offer: Option<Resources>) -> Allocation {
        let version = self.next_version();
        let min = &self.config.min_allocatable;
        let entry = &mut self.agents[a.0 as usize];
        let Some(agent) = entry.slot.as_mut() else {
            unreachable!("chosen agents are known")
        };
        let resources = match offer {
            Some(offer) => {
                agent.allocated += &offer;
                Self::refresh_free(min, version, agent);
                offer
            }
            None => {
                // All of `free` goes: `total - (allocated + (total - allocated))` is empty.
                let offer = std::mem::take(&mut agent.free);
                agent.allocated += &offer;
                Self::refresh_free_flags(min, version, agent);
                debug_assert_eq!(agent.free, agent.total.clone() - &agent.allocated);
                offer
            }
        };
        Self::hold(&mut agent.holders, (f, r), &resources);
        let agent_id = entry.id.clone();
        self.charge_shares(f, r, &resources);
        Allocation {
            framework_id: (*self.framework(f).id).clone(),
            agent_id,
            role: self.roles[r.0 as usize].name.to_string(),
            resources,
        }
    }

    /// The offer framework `f` may receive on agent `a` for role `r` now
    /// (`Some(None)`: all of `free`), or `None` when it may receive nothing.
    fn offer_to(&self, a: AgentIdx, f: FrameworkIdx, r: RoleIdx, now: Timestamp) -> Option<Option<Resources>> {
        let entry = &self.agents[a.0 as usize];
        let agent = entry.slot.as_ref()?;
        if !agent.active
            || !agent.free_meets_min
            || !OfferConstraint::all_match(&self.frameworks[f.0 as usize].constraints, &agent.attributes)
        {
            return None;
        }
        let role = &self.roles[r.0 as usize];
        let offer = if agent.free_unreserved {
            None
        } else {
            let offer = agent.free.allocatable_to(&role.name);
            if !Self::meets_minimum(&self.config.min_allocatable, &offer) {
                return None;
            }
            Some(offer)
        };
        let offer = match fit_to_limits(&self.roles, r, offer.as_ref().unwrap_or(&agent.free)) {
            None => offer,
            Some(offer) => {
                if !Self::meets_minimum(&self.config.min_allocatable, &offer) {
                    return None;
                }
                Some(offer)
            }
        };
        let min = &self.frameworks[f.0 as usize].min_allocatable;
        if !meets_framework_minimum(
            min,
            &self.roles[r.0 as usize].name,
            offer.as_ref().unwrap_or(&agent.free),
        ) {
            return None;
        }
        let blocked = entry.filters.get(&(f, r)).is_some_and(|filter| {
            filter.until > now && filter.resources.contains(offer.as_ref().unwrap_or(&agent.free))
        });
        (!blocked).then_some(offer)
    }

    /// One cycle of [`Policy::OfferAllToOne`] over the active agents in `order`.
    fn allocate_all_to_one(&mut self, order: &[AgentIdx], now: Timestamp) -> Vec<Allocation> {
        let anything_free = order.iter().any(|a| {
            self.agents[a.0 as usize]
                .slot
                .as_ref()
                .is_some_and(|agent| agent.free_meets_min)
        });
        if !anything_free {
            return Vec::new();
        }
        // The DRF order as it stands at the start of the cycle.
        let candidates: Vec<(RoleIdx, FrameworkIdx)> = RoleWalk::new(&self.roles, &self.role_order)
            .flat_map(|r| self.roles[r.0 as usize].sorter.iter().map(move |(_, _, f)| (r, *f)))
            .collect();
        let mut allocations = Vec::new();
        for (r, f) in candidates {
            for &a in order {
                if let Some(offer) = self.offer_to(a, f, r, now) {
                    allocations.push(self.allocate_one(f, a, r, offer));
                }
            }
            if !allocations.is_empty() {
                break;
            }
        }
        allocations
    }

    fn set_roles(&mut self, f: FrameworkIdx, roles: &[String]) {
        let mut idxs: Vec<RoleIdx> = roles.iter().map(|r| self.role_idx(r)).collect();
        idxs.sort_unstable();
        idxs.dedup();
        let fw = &mut self.frameworks[f.0 as usize];
        fw.roles = idxs;
        fw.role_names = roles.to_vec();
    }
}

impl Allocator for DrfAllocator {
    fn add_agent(&mut self, agent_id: &AgentId, total: &Resources, used: &[Used]) {
        self.remove_agent(agent_id);
        let a = self.agent_idx(agent_id);
        let version = self.next_version();
        let mut slot = AgentSlot {
            total: total.clone(),
            allocated: Resources::new(),
            free: Resources::new(),
            free_meets_min: false,
            free_unreserved: true,
            version,
            active: true,
            holders: Vec::new(),
            contains_cache: Vec::new(),
            contains_version: 0,
            exhausted: None,
            attributes: Attributes::default(),
        };
        Self::refresh_free(&self.config.min_allocatable, version, &mut slot);
        self.agents[a.0 as usize].slot = Some(slot);
        self.agent_order = None;
        let new_total = self.total.clone() + total;
        self.set_total(new_total);
        for u in used {
            let f = self.framework_idx(&u.framework_id);
            let r = self.role_idx(&u.role);
            self.charge(f, Some(a), r, &u.resources);
        }
    }

    fn remove_agent(&mut self, agent_id: &AgentId) {
        let Some(a) = self.agent_index.get(agent_id).copied() else {
            return;
        };
        let Some(agent) = self.agents[a.0 as usize].slot.take() else {
            return;
        };
        self.agent_order = None;
        let new_total = std::mem::take(&mut self.total) - &agent.total;
        self.set_total(new_total);
        for ((f, r), held) in &agent.holders {
            let fw = &mut self.frameworks[f.0 as usize];
            if fw.present {
                fw.allocated -= held;
            }
            self.book_role(*r, held, false);
            if limited(&self.roles, *r) {
                self.epoch += 1;
            }
        }
        let keys: Vec<(FrameworkIdx, RoleIdx)> = self.agents[a.0 as usize].filters.keys().copied().collect();
        for (f, r) in keys {
            self.remove_filter(a, f, r);
        }
    }

    fn set_agent_attributes(&mut self, agent_id: &AgentId, attributes: &Attributes) {
        if let Some(a) = self.agent_index.get(agent_id)
            && let Some(agent) = self.agents[a.0 as usize].slot.as_mut()
        {
            agent.attributes = attributes.clone();
            // Frameworks it did not match before may match it now.
            agent.exhausted = None;
        }
    }

    fn set_agent_active(&mut self, agent_id: &AgentId, active: bool) {
        if let Some(a) = self.agent_index.get(agent_id)
            && let Some(agent) = self.agents[a.0 as usize].slot.as_mut()
        {
            agent.active = active;
        }
    }

    fn add_framework(&mut self, framework_id: &FrameworkId, roles: &[String], used: &[Used]) {
        let f = self.framework_idx(framework_id);
        self.detach(f);
        self.set_roles(f, roles);
        let fw = &mut self.frameworks[f.0 as usize];
        fw.present = true;
        fw.active = true;
        fw.suppressed.clear();
        fw.allocated = Resources::new();
        fw.share = Share(0.0);
        fw.constraints.clear();
        fw.min_allocatable.clear();
        self.attach(f);
        self.epoch += 1;
        for u in used {
            let a = self.agent_index.get(&u.agent_id).copied();
            let r = self.role_idx(&u.role);
            self.charge(f, a, r, &u.resources);
        }
    }

    fn remove_framework(&mut self, framework_id: &FrameworkId) {
        let Some(f) = self.framework_index.get(framework_id).copied() else {
            return;
        };
        if !self.frameworks[f.0 as usize].present {
            return;
        }
        self.detach(f);
        let fw = &mut self.frameworks[f.0 as usize];
        fw.present = false;
        fw.roles.clear();
        fw.role_names.clear();
        fw.suppressed.clear();
        fw.allocated = Resources::new();
        fw.constraints.clear();
        fw.min_allocatable.clear();
        let filters: Vec<(AgentIdx, RoleIdx)> = fw.filters.iter().copied().collect();
        for (a, r) in filters {
            self.remove_filter(a, f, r);
        }
        self.epoch += 1;
    }

    fn set_framework_active(&mut self, framework_id: &FrameworkId, active: bool) {
        if let Some(f) = self.framework_index.get(framework_id).copied()
            && self.frameworks[f.0 as usize].present
        {
            self.frameworks[f.0 as usize].active = active;
            self.reattach(f);
        }
    }

    fn set_framework_constraints(&mut self, framework_id: &FrameworkId, constraints: &[OfferConstraint]) {
        if let Some(f) = self.framework_index.get(framework_id).copied()
            && self.frameworks[f.0 as usize].present
        {
            self.frameworks[f.0 as usize].constraints = constraints.to_vec();
            // Looser constraints make it eligible for more agents.
            self.epoch += 1;
        }
    }

    fn set_framework_min_allocatable(&mut self, framework_id: &FrameworkId, min: &BTreeMap<String, Vec<Resources>>) {
        if let Some(f) = self.framework_index.get(framework_id).copied()
            && self.frameworks[f.0 as usize].present
        {
            self.frameworks[f.0 as usize].min_allocatable = min
                .iter()
                .filter(|(_, quantities)| !quantities.is_empty())
                .map(|(role, quantities)| (role.clone(), quantities.clone()))
                .collect();
            // A lower minimum makes it eligible for more agents.
            self.epoch += 1;
        }
    }

    fn update_framework_roles(&mut self, framework_id: &FrameworkId, roles: &[String]) {
        let Some(f) = self.framework_index.get(framework_id).copied() else {
            return;
        };
        if !self.frameworks[f.0 as usize].present {
            return;
        }
        self.detach(f);
        self.set_roles(f, roles);
        let fw = &mut self.frameworks[f.0 as usize];
        let keep = fw.roles.clone();
        fw.suppressed.retain(|r| keep.contains(r));
        self.attach(f);
        self.epoch += 1;
    }

    fn update_allocation(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role: &str,
        from: &Resources,
        to: &Resources,
    ) {
        let (Some(f), Some(a), Some(r)) = (
            self.framework_index.get(framework_id).copied(),
            self.agent_index.get(agent_id).copied(),
            self.role_index.get(role).copied(),
        ) else {
            return;
        };
        if self.agents[a.0 as usize].slot.is_none() {
            return;
        }
        self.discharge(Some(f), Some(a), Some(r), from);
        if let Some(agent) = self.agents[a.0 as usize].slot.as_mut() {
            agent.total = agent.total.clone() - from + to;
            agent.exhausted = None;
        }
        let new_total = std::mem::take(&mut self.total) - from + to;
        self.set_total(new_total);
        // Refreshes the agent's free resources against its new total.
        self.charge(f, Some(a), r, to);
        self.epoch += 1;
    }

    fn update_total(&mut self, agent_id: &AgentId, from: &Resources, to: &Resources) {
        let Some(a) = self.agent_index.get(agent_id).copied() else {
            return;
        };
        let version = self.next_version();
        let Some(agent) = self.agents[a.0 as usize].slot.as_mut() else {
            return;
        };
        agent.total = agent.total.clone() - from + to;
        agent.exhausted = None;
        Self::refresh_free(&self.config.min_allocatable, version, agent);
        let new_total = std::mem::take(&mut self.total) - from + to;
        self.set_total(new_total);
        self.epoch += 1;
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
        let f = self.framework_index.get(framework_id).copied();
        let a = self.agent_index.get(agent_id).copied();
        let r = self.role_index.get(role).copied();
        self.discharge(f, a, r, resources);
        let Some(refuse) = refuse.filter(|r| !r.is_zero()) else {
            return;
        };
        let Some(f) = f else {
            return;
        };
        if resources.is_empty() || !self.frameworks[f.0 as usize].present {
            return;
        }
        let until = now + refuse;
        let a = a.unwrap_or_else(|| self.agent_idx(agent_id));
        let r = r.unwrap_or_else(|| self.role_idx(role));
        let entry = &mut self.agents[a.0 as usize];
        let old = entry
            .filters
            .get(&(f, r))
            .map(|filter| (filter.until, filter.until > now));
        // A second decline widens the filter to both sets and keeps the later expiry.
        let (new_until, widened) = match old {
            Some((old_until, true)) => (old_until.max(until), true),
            _ => (until, false),
        };
        let declined: Option<Resources> = match (widened, entry.filters.get(&(f, r))) {
            (true, Some(filter)) => {
                let mut wider = (*filter.resources).clone();
                wider += resources;
                Some(wider)
            }
            _ => None,
        };
        let declined_ref = declined.as_ref().unwrap_or(resources);
        // Share the declined set with the agent's previous filter when equal
        // (the usual case: many frameworks decline the same free resources).
        let shared = match &entry.last_declined {
            Some(last) if **last == *declined_ref => last.clone(),
            _ => {
                let fresh = Arc::new(declined.unwrap_or_else(|| resources.clone()));
                entry.last_declined = Some(fresh.clone());
                fresh
            }
        };
        let old_until = old.map(|(until, _)| until);
        entry.filters.insert(
            (f, r),
            Filter {
                until: new_until,
                resources: shared,
            },
        );
        if let Some(old) = old_until {
            self.expiry.remove(&(old, a, f, r));
            if !widened {
                // An expired filter replaced by a possibly narrower one.
                self.epoch += 1;
            }
        }
        self.expiry.insert((new_until, a, f, r));
        self.frameworks[f.0 as usize].filters.insert((a, r));
    }

    fn suppress(&mut self, framework_id: &FrameworkId, roles: &[String]) {
        let Some(f) = self.framework_index.get(framework_id).copied() else {
            return;
        };
        if !self.frameworks[f.0 as usize].present {
            return;
        }
        let names = if roles.is_empty() {
            self.frameworks[f.0 as usize].role_names.clone()
        } else {
            roles.to_vec()
        };
        for name in &names {
            let r = self.role_idx(name);
            self.frameworks[f.0 as usize].suppressed.insert(r);
        }
        self.reattach(f);
    }

    fn revive(&mut self, framework_id: &FrameworkId, roles: &[String]) {
        let Some(f) = self.framework_index.get(framework_id).copied() else {
            return;
        };
        let selected: Option<Vec<RoleIdx>> =
            (!roles.is_empty()).then(|| roles.iter().filter_map(|r| self.role_index.get(r).copied()).collect());
        let fw = &mut self.frameworks[f.0 as usize];
        if fw.present {
            match &selected {
                None => fw.suppressed.clear(),
                Some(rs) => fw.suppressed.retain(|r| !rs.contains(r)),
            }
        }
        let filters: Vec<(AgentIdx, RoleIdx)> = fw
            .filters
            .iter()
            .copied()
            .filter(|(_, r)| selected.as_ref().is_none_or(|rs| rs.contains(r)))
            .collect();
        for (a, r) in filters {
            self.remove_filter(a, f, r);
        }
        if self.frameworks[f.0 as usize].present {
            self.reattach(f);
        }
    }

    fn allocate(&mut self, now: Timestamp, rng: &mut StdRng) -> Vec<Allocation> {
        while let Some(&(until, a, f, r)) = self.expiry.first() {
            if until > now {
                break;
            }
            self.remove_filter(a, f, r);
        }
        self.rebuild_sorters();
        let agents = &self.agents;
        let order = self.agent_order.get_or_insert_with(|| {
            let mut known: Vec<AgentIdx> = (0..agents.len())
                .filter(|i| agents[*i].slot.is_some())
                .map(|i| AgentIdx(i as u32))
                .collect();
            known.sort_unstable_by(|x, y| agents[x.0 as usize].id.cmp(&agents[y.0 as usize].id));
            known
        });
        let mut order: Vec<AgentIdx> = {
            let mut active = Vec::with_capacity(order.len());
            active.extend(
                order
                    .iter()
                    .copied()
                    .filter(|a| agents[a.0 as usize].slot.as_ref().is_some_and(|s| s.active)),
            );
            active
        };
        order.shuffle(rng);
        if self.config.policy == Policy::OfferAllToOne {
            return self.allocate_all_to_one(&order, now);
        }

        let mut allocations = Vec::with_capacity(order.len());
        if self.guaranteed.is_empty() {
            for a in order {
                while let Some((f, r, offer)) = self.choose(a, now) {
                    allocations.push(self.allocate_one(f, a, r, offer));
                }
            }
            return allocations;
        }
        // Stage 1: roles below their guarantee.
        let guaranteed: BTreeSet<String> = self
            .guaranteed
            .iter()
            .filter_map(|r| self.roles[r.0 as usize].guarantee.as_ref())
            .flat_map(|g| g.keys().cloned())
            .collect();
        for &a in &order {
            while let Some((f, r, offer)) = self.choose_guaranteed(a, &guaranteed, now) {
                allocations.push(self.allocate_one(f, a, r, Some(offer)));
            }
        }
        // Stage 2: everyone, keeping the headroom. The budget changes what an
        // agent can give: exhaustion marks from earlier cycles do not hold.
        self.epoch += 1;
        self.budget = Some(self.stage2_budget());
        for a in order {
            while let Some((f, r, offer)) = self.choose(a, now) {
                let role = &self.roles[r.0 as usize];
                let unmet = role
                    .guarantee
                    .as_ref()
                    .map(|g| unmet_guarantee(g, held(role)))
                    .unwrap_or_default();
                let allocation = self.allocate_one(f, a, r, offer);
                if let Some(budget) = self.budget.as_mut() {
                    charge_budget(budget, &unmet, &allocation.resources);
                }
                allocations.push(allocation);
            }
        }
        self.budget = None;
        self.epoch += 1;
        allocations
    }

    fn set_weight(&mut self, role: &str, weight: f64) {
        let weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            1.0
        };
        self.config.weights.insert(role.to_owned(), weight);
        let r = self.role_idx(role);
        self.roles[r.0 as usize].weight = weight;
        // Re-file the role under its new weighted share (when shares are
        // stale, the next cycle's rebuild uses the new weight).
        self.refresh_role_share(r);
    }

    fn set_quota(&mut self, role: &str, limit: Option<QuotaLimit>) {
        let r = self.role_idx(role);
        self.roles[r.0 as usize].limit = limit;
        self.refresh_role_share(r);
        // A looser limit may make exhausted agents useful to the role again.
        self.epoch += 1;
    }

    fn set_guarantee(&mut self, role: &str, guarantee: Option<QuotaLimit>) {
        let r = self.role_idx(role);
        if guarantee.is_some() {
            self.guaranteed.insert(r);
        } else {
            self.guaranteed.remove(&r);
        }
        self.roles[r.0 as usize].guarantee = guarantee;
        self.epoch += 1;
    }

    fn next_filter_expiry(&self) -> Option<Timestamp> {
        self.expiry.first().map(|(until, ..)| *until)
    }

    fn roles(&self) -> Vec<RoleShare> {
        let mut roles: Vec<RoleShare> = self
            .roles
            .iter()
            .map(|role| RoleShare {
                role: role.name.to_string(),
                weight: role.weight,
                dominant_share: Self::dominant_share(&self.total_by_name, held(role)),
                allocated: held(role).clone(),
                quota: role.limit.clone(),
                guarantee: role.guarantee.clone(),
            })
            .collect();
        roles.sort_by(|a, b| a.role.cmp(&b.role));
        roles
    }

    fn framework_share(&self, framework_id: &FrameworkId) -> FrameworkShare {
        self.framework_index
            .get(framework_id)
            .map(|f| self.framework(*f))
            .filter(|fw| fw.present)
            .map(|fw| FrameworkShare {
                dominant_share: Self::dominant_share(&self.total_by_name, &fw.allocated),
                allocated: fw.allocated.clone(),
            })
            .unwrap_or_default()
    }

    fn cluster_total(&self) -> Resources {
        self.total.clone()
    }

    fn agent_allocated(&self, agent_id: &AgentId) -> Resources {
        self.agent_index
            .get(agent_id)
            .and_then(|a| self.agents[a.0 as usize].slot.as_ref())
            .map(|a| a.allocated.clone())
            .unwrap_or_default()
    }

    fn active_filters(&self, now: Timestamp) -> usize {
        self.expiry.iter().filter(|(until, ..)| *until > now).count()
    }
}
