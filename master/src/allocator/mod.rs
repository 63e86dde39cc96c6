//! The allocator decides who is offered what. The master core tells it about
//! agents, frameworks and resources coming back; on each cycle it returns
//! [`Allocation`]s, which the master turns into offers.
//!
//! Every resource the allocator hands out stays *allocated* to that framework
//! (offered or used by tasks) until the master [`Allocator::recover`]s it, so
//! offered resources count towards dominant shares, as in Mesos.

mod drf;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod proptests;
#[doc(hidden)]
pub mod reference;

pub use drf::{DrfAllocator, DrfConfig, Policy};

use agora_proto::{AgentId, Attributes, FrameworkId, OfferConstraint, QuotaLimit, Resources, Scalar, Timestamp};
use rand::rngs::StdRng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The ancestors of a hierarchical role, nearest first: `eng/backend/api`
/// gives `eng/backend`, then `eng`.
pub(crate) fn ancestors(role: &str) -> impl Iterator<Item = &str> {
    let mut rest = role;
    std::iter::from_fn(move || {
        let slash = rest.rfind('/')?;
        rest = &rest[..slash];
        Some(rest)
    })
}

/// The parent of a hierarchical role (`eng` for `eng/backend`).
pub(crate) fn parent(role: &str) -> Option<&str> {
    ancestors(role).next()
}

/// Resources of one agent given to one framework for one role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Who receives them.
    pub framework_id: FrameworkId,
    /// Where they are.
    pub agent_id: AgentId,
    /// The role they are allocated to.
    pub role: String,
    /// What is given.
    pub resources: Resources,
}

/// Resources a framework already uses on an agent under a role, reported
/// when either of them (re-)appears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    /// The framework.
    pub framework_id: FrameworkId,
    /// The agent.
    pub agent_id: AgentId,
    /// The role.
    pub role: String,
    /// The resources.
    pub resources: Resources,
}

/// Per-framework figures for the operator API and metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameworkShare {
    /// Everything allocated to it (offered or used).
    pub allocated: Resources,
    /// Its dominant share of the cluster, in [0, 1].
    pub dominant_share: f64,
}

/// Per-role figures for the operator API.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleShare {
    /// The role.
    pub role: String,
    /// Its weight (1.0 unless set).
    pub weight: f64,
    /// Everything allocated to it (offered or used).
    pub allocated: Resources,
    /// Its dominant share of the cluster, in [0, 1], before weighting.
    pub dominant_share: f64,
    /// Its quota limit, when it has one.
    pub quota: Option<QuotaLimit>,
    /// Its quota guarantee, when it has one.
    pub guarantee: Option<QuotaLimit>,
}

/// Whether `resources` hold at least one of the `min` quantities (scalars
/// compared by name, reservations ignored).
pub(crate) fn meets_minimum(min: &[Resources], resources: &Resources) -> bool {
    min.iter()
        .any(|min| min.scalars().all(|(key, value)| resources.scalar(&key.name) >= value))
}

/// `offer` shrunk so that a role holding `allocated` stays within `limit`:
/// each limited scalar is cut to the role's headroom (reservations of one
/// name are kept in key order; a scalar with no headroom is left out);
/// everything else is kept as is.
pub(crate) fn fit_to_limit(limit: &QuotaLimit, allocated: &Resources, offer: &Resources) -> Resources {
    let mut headroom: Vec<(&str, Scalar)> = limit
        .iter()
        .map(|(name, limit)| (name.as_str(), *limit - allocated.scalar(name)))
        .collect();
    let mut fitted = offer.filter(|key| !limit.contains_key(key.name.as_ref()));
    for (key, value) in offer.scalars() {
        if let Some((_, room)) = headroom.iter_mut().find(|(name, _)| *name == key.name) {
            let take = value.min(*room);
            *room -= take;
            fitted.add_scalar(&key.name, key.role(), take);
        }
    }
    fitted
}

/// What a role holding `allocated` still lacks of its `guarantee`, by name
/// (names it already covers are left out).
pub(crate) fn unmet_guarantee(guarantee: &QuotaLimit, allocated: &Resources) -> Vec<(String, Scalar)> {
    guarantee
        .iter()
        .filter_map(|(name, want)| {
            let held = allocated.scalar(name);
            (held < *want).then(|| (name.clone(), *want - held))
        })
        .collect()
}

/// Stage 1 of a cycle: `offer` cut to the guaranteed scalars the role still
/// lacks (reservations of one name kept in key order); of the names some
/// role has a guarantee for (`guaranteed`), nothing else is kept; resources
/// of other names (scalars, ranges, sets) are kept whole.
pub(crate) fn fit_to_unmet(unmet: &[(String, Scalar)], guaranteed: &BTreeSet<String>, offer: &Resources) -> Resources {
    let mut room: Vec<(&str, Scalar)> = unmet.iter().map(|(name, v)| (name.as_str(), *v)).collect();
    let mut fitted = offer.filter(|key| !guaranteed.contains(key.name.as_ref()));
    for (key, value) in offer.scalars() {
        if let Some((_, left)) = room.iter_mut().find(|(name, _)| *name == key.name) {
            let take = value.min(*left);
            if take > Scalar::ZERO {
                *left -= take;
                fitted.add_scalar(&key.name, key.role(), take);
            }
        }
    }
    fitted
}

/// Stage 2 of a cycle: `offer` to a role with no unmet guarantee, cut so
/// that the scalars named in `budget` (free resources left over the sum of
/// unmet guarantees) stay covered; a negative budget counts as zero.
pub(crate) fn fit_to_budget(budget: &[(String, Scalar)], offer: &Resources) -> Resources {
    let mut room: Vec<(&str, Scalar)> = budget
        .iter()
        .map(|(name, v)| (name.as_str(), (*v).max(Scalar::ZERO)))
        .collect();
    let mut fitted = offer.filter(|key| !budget.iter().any(|(name, _)| *name == key.name));
    for (key, value) in offer.scalars() {
        if let Some((_, left)) = room.iter_mut().find(|(name, _)| *name == key.name) {
            let take = value.min(*left);
            if take > Scalar::ZERO {
                *left -= take;
                fitted.add_scalar(&key.name, key.role(), take);
            }
        }
    }
    fitted
}

/// The stage-2 budget after `given` went to a role that lacked `unmet`: only
/// what exceeds the role's own unmet guarantee eats into the headroom.
pub(crate) fn charge_budget(budget: &mut [(String, Scalar)], unmet: &[(String, Scalar)], given: &Resources) {
    for (name, left) in budget.iter_mut() {
        let taken = given.scalar(name);
        let own = unmet
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Scalar::ZERO, |(_, v)| (*v).min(taken));
        *left -= taken - own;
    }
}

/// Whether a framework with these per-role minimums may be offered `offer` for `role`.
pub(crate) fn meets_framework_minimum(
    min_allocatable: &BTreeMap<String, Vec<Resources>>,
    role: &str,
    offer: &Resources,
) -> bool {
    min_allocatable.is_empty()
        || min_allocatable
            .get(role)
            .is_none_or(|min| min.is_empty() || meets_minimum(min, offer))
}

/// A pluggable allocation policy. Implementations are pure: time and
/// randomness are arguments, iteration is deterministic.
pub trait Allocator: std::fmt::Debug + Send {
    /// A new agent with `total` resources, some of which may already be used.
    fn add_agent(&mut self, agent_id: &AgentId, total: &Resources, used: &[Used]);
    /// The agent is gone; everything on it is forgotten.
    fn remove_agent(&mut self, agent_id: &AgentId);
    /// The agent's attributes, matched against frameworks' offer constraints
    /// (none until set; set again after every `add_agent`).
    fn set_agent_attributes(&mut self, agent_id: &AgentId, attributes: &Attributes);
    /// Whether the agent's free resources may be offered (false while it is disconnected).
    fn set_agent_active(&mut self, agent_id: &AgentId, active: bool);

    /// A new framework with its roles and what it already uses.
    fn add_framework(&mut self, framework_id: &FrameworkId, roles: &[String], used: &[Used]);
    /// The framework is gone; its allocations must have been recovered first.
    fn remove_framework(&mut self, framework_id: &FrameworkId);
    /// Whether the framework receives offers (false while it is disconnected).
    fn set_framework_active(&mut self, framework_id: &FrameworkId, active: bool);
    /// The framework is only offered agents whose attributes match all of
    /// these (none until set; set again after every `add_framework`).
    fn set_framework_constraints(&mut self, framework_id: &FrameworkId, constraints: &[OfferConstraint]);
    /// The framework is offered an agent for a role listed here only when the
    /// offer holds at least one of the role's quantities (scalars compared by
    /// name, reservations ignored), on top of the global minimum; an empty
    /// list means no minimum of its own (none until set; set again after
    /// every `add_framework`). Mesos' `offer_filters.min_allocatable_resources`.
    fn set_framework_min_allocatable(&mut self, framework_id: &FrameworkId, min: &BTreeMap<String, Vec<Resources>>);
    /// The framework's roles changed.
    fn update_framework_roles(&mut self, framework_id: &FrameworkId, roles: &[String]);

    /// Resources allocated to a framework come back (declined, unused part of
    /// an accept, ended task, rescinded offer). With `refuse`, they are not
    /// offered to that framework on that agent again before `now + refuse`.
    fn recover(
        &mut self,
        now: Timestamp,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role: &str,
        resources: &Resources,
        refuse: Option<Duration>,
    );

    /// Resources `from` allocated to the framework on the agent for `role`
    /// become `to` (same quantities, other reservations): the agent's total
    /// trades `from` for `to` and the allocation stays with the framework.
    /// Dynamic RESERVE / UNRESERVE; the caller checks that `from` is
    /// allocated there. Unknown ids: nothing happens.
    fn update_allocation(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role: &str,
        from: &Resources,
        to: &Resources,
    );

    /// The agent's unallocated resources `from` become `to` (same
    /// quantities, other reservations): its total trades `from` for `to`.
    /// An operator's dynamic RESERVE / UNRESERVE; the caller checks that
    /// `from` is free there. Decline filters stay. Unknown agent: nothing happens.
    fn update_total(&mut self, agent_id: &AgentId, from: &Resources, to: &Resources);

    /// Stop offering to the framework for these roles (all when empty).
    fn suppress(&mut self, framework_id: &FrameworkId, roles: &[String]);
    /// Resume offers for these roles (all when empty) and clear its filters.
    fn revive(&mut self, framework_id: &FrameworkId, roles: &[String]);

    /// Sets a role's weight (finite and > 0); roles are ordered by dominant
    /// share divided by weight. Roles are hierarchical (`eng/backend` is a
    /// sub-role of `eng`): siblings are ordered by the weighted share of
    /// everything allocated in their subtree, and a role's own frameworks
    /// compete with its sub-roles as one more sibling, weighted by the role's
    /// weight and charged with what the role itself holds.
    fn set_weight(&mut self, role: &str, weight: f64);

    /// Sets (`Some`) or removes (`None`) a role's quota limit: the scalars
    /// allocated to the role and its sub-roles (offered or used, on every
    /// agent, reservations included) are never offered beyond it, by name. A limit below what the
    /// role holds revokes nothing; the role is then offered none of that
    /// scalar until it is back under the limit.
    fn set_quota(&mut self, role: &str, limit: Option<QuotaLimit>);

    /// Sets (`Some`) or removes (`None`) a role's quota guarantee (at most
    /// its limit, checked by the caller), met by what the role and its
    /// sub-roles hold. Each cycle then runs in two
    /// stages, as Mesos' hierarchical allocator: stage 1 offers, agent by
    /// agent in the cycle's order, only to roles below their guarantee, each
    /// offer cut to the guaranteed scalars the role still lacks, plus the
    /// resources of names no role has a guarantee for ([`fit_to_unmet`]); stage 2 offers as without guarantees, except that
    /// an offer to a role with no unmet guarantee is cut so that the free
    /// scalars of the cluster (every known agent) still cover the sum of all
    /// unmet guarantees ([`fit_to_budget`], the budget computed when stage 2
    /// starts and charged as it allocates, see [`charge_budget`]). Without
    /// any guarantee, a cycle is stage 2 with no budget.
    fn set_guarantee(&mut self, role: &str, guarantee: Option<QuotaLimit>);

    /// Runs one allocation cycle.
    fn allocate(&mut self, now: Timestamp, rng: &mut StdRng) -> Vec<Allocation>;

    /// The earliest time a decline filter expires, when a new cycle may find
    /// something to offer.
    fn next_filter_expiry(&self) -> Option<Timestamp>;

    /// Figures for one framework.
    fn framework_share(&self, framework_id: &FrameworkId) -> FrameworkShare;
    /// Figures for every role the allocator knows (held by a framework,
    /// allocated to, or given a weight), by name; a role's allocation and
    /// share include its sub-roles'.
    fn roles(&self) -> Vec<RoleShare>;
    /// The sum of every agent's resources.
    fn cluster_total(&self) -> Resources;
    /// Resources allocated on an agent (offered or used).
    fn agent_allocated(&self, agent_id: &AgentId) -> Resources;
    /// The number of decline filters in force.
    fn active_filters(&self, now: Timestamp) -> usize;
}
