//! The fast [`DrfAllocator`] against the straightforward
//! [`ReferenceDrfAllocator`]: over random sequences of events, both make the
//! same allocations (same order, same resources) and report the same figures.
//! Along the way, no allocation takes a role past its quota limit. Random
//! quota guarantees are part of the sequences; a separate property checks
//! that one cycle serves every guarantee the cluster can cover.

use super::reference::ReferenceDrfAllocator;
use super::{Allocation, Allocator, DrfAllocator, DrfConfig, Used};
use agora_proto::{AgentId, Attributes, FrameworkId, OfferConstraint, QuotaLimit, Resources, Scalar, Timestamp};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::time::Duration;

/// Flat and hierarchical roles; `batch/etl` exists only as a parent.
const ROLES: [&str; 5] = ["*", "web", "batch", "web/api", "batch/etl/nightly"];
const AGENT_SPECS: [&str; 5] = [
    "cpus:4;mem:4096;disk:1000;ports:[31000-31009]",
    "cpus:2;mem:1024",
    "cpus:8;mem:512;cpus(web):2;mem(web):1024",
    "cpus(batch):4;mem(batch):2048;ports(batch):[100-110]",
    "mem:20;cpus:0.005",
];
const USED_SPECS: [&str; 3] = ["cpus:1;mem:512", "cpus:0.5;mem:100;ports:[31000-31001]", "cpus(web):1"];

#[derive(Clone, Debug)]
enum Op {
    AddAgent {
        agent: u8,
        spec: u8,
        used: Option<(u8, u8, u8)>,
    },
    RemoveAgent(u8),
    /// An operator reserves half a cpu of the agent's free unreserved cpus
    /// for `ROLES[role]` (`update_total`), when it has that much free.
    ReserveFree(u8, u8),
    AgentActive(u8, bool),
    AddFramework {
        framework: u8,
        roles: u8,
    },
    RemoveFramework(u8),
    FrameworkActive(u8, bool),
    UpdateRoles(u8, u8),
    /// Recover the `n`-th outstanding allocation, with a filter of that many seconds.
    Recover {
        n: u8,
        refuse: Option<u16>,
        part: bool,
    },
    Suppress(u8, u8),
    Revive(u8, u8),
    Advance(u16),
    Allocate,
    /// Set `ROLES[role]`'s weight to `WEIGHTS[weight]`.
    SetWeight(u8, u8),
    /// Give an agent `ATTRIBUTES[i]`.
    SetAttributes(u8, u8),
    /// Give a framework `CONSTRAINTS[i]`.
    SetConstraints(u8, u8),
    /// Give a framework `MIN_ALLOCATABLE[i]`.
    SetMinAllocatable(u8, u8),
    /// Give `ROLES[role]` the quota limit `QUOTAS[i]` (none for an empty one).
    SetQuota(u8, u8),
    /// Give `ROLES[role]` the quota guarantee `GUARANTEES[i]` (none for an empty one).
    SetGuarantee(u8, u8),
}

/// Quota guarantees as (name, milli) pairs.
const GUARANTEES: [&[(&str, u64)]; 5] = [
    &[],
    &[("cpus", 3000)],
    &[("cpus", 1000), ("mem", 2_048_000)],
    &[("mem", 64_000)],
    &[("disk", 500_000), ("cpus", 500)],
];

fn guarantee(i: u8) -> Option<QuotaLimit> {
    let g: QuotaLimit = GUARANTEES[i as usize]
        .iter()
        .map(|(name, milli)| ((*name).to_owned(), Scalar::from_milli(*milli)))
        .collect();
    (!g.is_empty()).then_some(g)
}

/// Quota limits as (name, milli) pairs; a zero limit is a real limit.
const QUOTAS: [&[(&str, u64)]; 5] = [
    &[],
    &[("cpus", 2000)],
    &[("cpus", 4000), ("mem", 1_024_000)],
    &[("mem", 0)],
    &[("disk", 100_000), ("cpus", 1500)],
];

fn quota(i: u8) -> Option<QuotaLimit> {
    let limit: QuotaLimit = QUOTAS[i as usize]
        .iter()
        .map(|(name, milli)| ((*name).to_owned(), Scalar::from_milli(*milli)))
        .collect();
    (!limit.is_empty()).then_some(limit)
}

/// After a step that handed out `given`: no role holds more of a limited
/// scalar than its limit, unless the step gave it none of that scalar (a
/// limit set below what a role holds revokes nothing; the role is then
/// offered none of it until it is back under the limit).
fn check_quotas(allocator: &dyn Allocator, given: &[Allocation]) {
    for role in allocator.roles() {
        let Some(limit) = &role.quota else { continue };
        for (name, limit) in limit {
            let held = role.allocated.scalar(name);
            if held <= *limit {
                continue;
            }
            let offered: Scalar = given
                .iter()
                .filter(|a| a.role == role.role)
                .map(|a| a.resources.scalar(name))
                .sum();
            assert!(
                offered.is_zero(),
                "role {} holds {held} {name} over its limit {limit} and was just offered {offered} more",
                role.role
            );
        }
    }
}

/// Per-role minimums: (role, alternative quantities).
const MIN_ALLOCATABLE: [&[(&str, &[&str])]; 4] = [
    &[],
    &[("*", &["cpus:2"])],
    &[("*", &["cpus:3", "mem:2048"]), ("web", &["cpus:2;mem:1024"])],
    &[("batch", &["disk:100;cpus:4"]), ("web", &[])],
];

fn min_allocatable(i: u8) -> BTreeMap<String, Vec<Resources>> {
    MIN_ALLOCATABLE[i as usize]
        .iter()
        .map(|(role, quantities)| {
            let quantities = quantities
                .iter()
                .map(|q| q.parse::<Resources>().expect("valid quantity"))
                .collect();
            ((*role).to_owned(), quantities)
        })
        .collect()
}

const ATTRIBUTES: [&str; 3] = ["", "rack:r1", "rack:r2;zone:a"];
const CONSTRAINTS: [&[(&str, &str)]; 4] = [
    &[],
    &[("rack", "r1")],
    &[("rack", "r2")],
    &[("rack", "r2"), ("zone", "a")],
];

fn constraints(i: u8) -> Vec<OfferConstraint> {
    CONSTRAINTS[i as usize]
        .iter()
        .map(|(attribute, equals)| OfferConstraint {
            attribute: (*attribute).to_owned(),
            equals: (*equals).to_owned(),
        })
        .collect()
}

const WEIGHTS: [f64; 4] = [0.5, 1.0, 2.0, 3.0];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..8u8, 0..5u8, proptest::option::of((0..6u8, 0..3u8, 0..5u8)))
            .prop_map(|(agent, spec, used)| Op::AddAgent { agent, spec, used }),
        1 => (0..8u8).prop_map(Op::RemoveAgent),
        1 => (0..8u8, 1..5u8).prop_map(|(a, r)| Op::ReserveFree(a, r)),
        1 => (0..8u8, any::<bool>()).prop_map(|(a, b)| Op::AgentActive(a, b)),
        3 => (0..6u8, 1..32u8).prop_map(|(framework, roles)| Op::AddFramework { framework, roles }),
        1 => (0..6u8).prop_map(Op::RemoveFramework),
        1 => (0..6u8, any::<bool>()).prop_map(|(f, b)| Op::FrameworkActive(f, b)),
        1 => (0..6u8, 1..32u8).prop_map(|(f, r)| Op::UpdateRoles(f, r)),
        6 => (any::<u8>(), proptest::option::of(0..20u16), any::<bool>())
            .prop_map(|(n, refuse, part)| Op::Recover { n, refuse, part }),
        1 => (0..6u8, 0..32u8).prop_map(|(f, r)| Op::Suppress(f, r)),
        1 => (0..6u8, 0..32u8).prop_map(|(f, r)| Op::Revive(f, r)),
        2 => (0..15u16).prop_map(Op::Advance),
        4 => Just(Op::Allocate),
        1 => (0..5u8, 0..4u8).prop_map(|(r, w)| Op::SetWeight(r, w)),
        1 => (0..8u8, 0..3u8).prop_map(|(a, i)| Op::SetAttributes(a, i)),
        1 => (0..6u8, 0..4u8).prop_map(|(f, i)| Op::SetConstraints(f, i)),
        1 => (0..6u8, 0..4u8).prop_map(|(f, i)| Op::SetMinAllocatable(f, i)),
        2 => (0..5u8, 0..5u8).prop_map(|(r, i)| Op::SetQuota(r, i)),
        2 => (0..5u8, 0..5u8).prop_map(|(r, i)| Op::SetGuarantee(r, i)),
    ]
}

fn res(spec: &str) -> Resources {
    spec.parse().unwrap_or_else(|e| panic!("bad spec {spec}: {e}"))
}

fn agent_id(i: u8) -> AgentId {
    AgentId::new(format!("a{i}")).expect("valid id")
}

fn framework_id(i: u8) -> FrameworkId {
    FrameworkId::new(format!("f{i}")).expect("valid id")
}

/// Roles from a bit mask (bit i: `ROLES[i]`); 0 means none.
fn roles(mask: u8) -> Vec<String> {
    ROLES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, r)| (*r).to_owned())
        .collect()
}

fn check_same(fast: &DrfAllocator, reference: &ReferenceDrfAllocator, now: Timestamp) {
    assert_eq!(fast.cluster_total(), reference.cluster_total());
    assert_eq!(fast.next_filter_expiry(), reference.next_filter_expiry());
    assert_eq!(fast.active_filters(now), reference.active_filters(now));
    for i in 0..8 {
        assert_eq!(
            fast.agent_allocated(&agent_id(i)),
            reference.agent_allocated(&agent_id(i))
        );
    }
    for i in 0..6 {
        assert_eq!(
            fast.framework_share(&framework_id(i)),
            reference.framework_share(&framework_id(i))
        );
    }
}

/// The decline filters in force, as the property states them: after a
/// framework declines resources on an agent for a role with a filter, an
/// offer to it there for that role is blocked until the filter expires while
/// the offer is within what it declined (declines while a filter is in force
/// widen it and keep the later expiry); reviving the role, removing the
/// framework or the agent lifts it.
#[derive(Default)]
struct Declined(BTreeMap<(FrameworkId, AgentId, String), (Timestamp, Resources)>);

impl Declined {
    fn decline(&mut self, now: Timestamp, a: &Allocation, resources: &Resources, refuse: Duration) {
        if refuse.is_zero() || resources.is_empty() {
            return;
        }
        let key = (a.framework_id.clone(), a.agent_id.clone(), a.role.clone());
        let until = now + refuse;
        match self.0.get_mut(&key) {
            Some((old, declined)) if *old > now => {
                *old = (*old).max(until);
                *declined += resources;
            }
            _ => {
                self.0.insert(key, (until, resources.clone()));
            }
        }
    }

    fn lift(&mut self, keep: impl Fn(&FrameworkId, &AgentId, &str) -> bool) {
        self.0.retain(|(f, a, r), _| keep(f, a, r));
    }

    /// No allocation of a cycle at `now` breaks a filter in force.
    fn check(&self, now: Timestamp, given: &[Allocation]) {
        for a in given {
            let key = (a.framework_id.clone(), a.agent_id.clone(), a.role.clone());
            if let Some((until, declined)) = self.0.get(&key) {
                assert!(
                    *until <= now || !declined.contains(&a.resources),
                    "{} offered {} on {} for {} at {now:?}, within what it declined ({declined}) until {until:?}",
                    a.framework_id,
                    a.resources,
                    a.agent_id,
                    a.role
                );
            }
        }
    }
}

fn run(ops: &[Op], seed: u64) {
    let mut config = DrfConfig::default();
    config.weights.insert("web".to_owned(), 2.0);
    let mut fast = DrfAllocator::new(config.clone());
    let mut reference = ReferenceDrfAllocator::new(config);
    let (mut rng_fast, mut rng_ref) = (StdRng::seed_from_u64(seed), StdRng::seed_from_u64(seed));
    let mut now = Timestamp::from_secs(1);
    let mut outstanding: Vec<Allocation> = Vec::new();
    // Frameworks currently added, so that a framework is only added when absent
    // (re-adding a present id is not something the master does).
    let mut present: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    // Agents' totals, for the operator's reservations.
    let mut totals: BTreeMap<u8, Resources> = BTreeMap::new();
    let mut declined = Declined::default();
    for op in ops {
        let mut given: Vec<Allocation> = Vec::new();
        match op {
            Op::AddAgent { agent, spec, used } => {
                let used: Vec<Used> = used
                    .iter()
                    .map(|(f, u, r)| Used {
                        framework_id: framework_id(*f),
                        agent_id: agent_id(*agent),
                        role: ROLES[*r as usize].to_owned(),
                        resources: res(USED_SPECS[*u as usize]),
                    })
                    .collect();
                let total = res(AGENT_SPECS[*spec as usize]);
                totals.insert(*agent, total.clone());
                declined.lift(|_, a, _| *a != agent_id(*agent));
                fast.add_agent(&agent_id(*agent), &total, &used);
                reference.add_agent(&agent_id(*agent), &total, &used);
                outstanding.retain(|a| a.agent_id != agent_id(*agent));
            }
            Op::ReserveFree(a, r) => {
                let Some(total) = totals.get_mut(a) else { continue };
                let from = res("cpus:0.5");
                let free = total.clone() - &fast.agent_allocated(&agent_id(*a));
                if !free.contains(&from) {
                    continue;
                }
                let to = from.with_reservation(Some(ROLES[*r as usize]));
                *total = total.clone() - &from + &to;
                fast.update_total(&agent_id(*a), &from, &to);
                reference.update_total(&agent_id(*a), &from, &to);
            }
            Op::RemoveAgent(a) => {
                totals.remove(a);
                declined.lift(|_, id, _| *id != agent_id(*a));
                fast.remove_agent(&agent_id(*a));
                reference.remove_agent(&agent_id(*a));
                outstanding.retain(|x| x.agent_id != agent_id(*a));
            }
            Op::AgentActive(a, b) => {
                fast.set_agent_active(&agent_id(*a), *b);
                reference.set_agent_active(&agent_id(*a), *b);
            }
            Op::AddFramework { framework, roles: mask } => {
                if present.contains_key(framework) {
                    continue;
                }
                let rs = roles(*mask);
                fast.add_framework(&framework_id(*framework), &rs, &[]);
                reference.add_framework(&framework_id(*framework), &rs, &[]);
                present.insert(*framework, rs);
            }
            Op::RemoveFramework(f) => {
                // The master recovers a framework's allocations before removing it.
                let (mine, rest): (Vec<_>, Vec<_>) =
                    outstanding.drain(..).partition(|a| a.framework_id == framework_id(*f));
                outstanding = rest;
                for a in mine {
                    fast.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, None);
                    reference.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, None);
                }
                fast.remove_framework(&framework_id(*f));
                reference.remove_framework(&framework_id(*f));
                present.remove(f);
                declined.lift(|id, _, _| *id != framework_id(*f));
            }
            Op::FrameworkActive(f, b) => {
                fast.set_framework_active(&framework_id(*f), *b);
                reference.set_framework_active(&framework_id(*f), *b);
            }
            Op::UpdateRoles(f, mask) => {
                let rs = roles(*mask);
                fast.update_framework_roles(&framework_id(*f), &rs);
                reference.update_framework_roles(&framework_id(*f), &rs);
                if let Some(old) = present.get_mut(f) {
                    *old = rs;
                }
            }
            Op::Recover { n, refuse, part } => {
                if outstanding.is_empty() {
                    continue;
                }
                let a = outstanding.remove(*n as usize % outstanding.len());
                let refuse = refuse.map(|s| Duration::from_secs(u64::from(s)));
                let present_now = present.keys().any(|f| framework_id(*f) == a.framework_id);
                if *part {
                    // Half of the scalars come back (a partial accept), the rest stays.
                    let back = a.resources.filter(|k| k.name != "cpus");
                    let kept = a.resources.clone() - &back;
                    fast.recover(now, &a.framework_id, &a.agent_id, &a.role, &back, refuse);
                    reference.recover(now, &a.framework_id, &a.agent_id, &a.role, &back, refuse);
                    if present_now {
                        declined.decline(now, &a, &back, refuse.unwrap_or_default());
                    }
                    if !kept.is_empty() {
                        outstanding.push(Allocation { resources: kept, ..a });
                    }
                } else {
                    fast.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, refuse);
                    reference.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, refuse);
                    if present_now {
                        declined.decline(now, &a, &a.resources, refuse.unwrap_or_default());
                    }
                }
            }
            Op::Suppress(f, mask) => {
                let rs = roles(*mask);
                fast.suppress(&framework_id(*f), &rs);
                reference.suppress(&framework_id(*f), &rs);
            }
            Op::Revive(f, mask) => {
                let rs = roles(*mask);
                fast.revive(&framework_id(*f), &rs);
                reference.revive(&framework_id(*f), &rs);
                declined
                    .lift(|id, _, role| *id != framework_id(*f) || !(rs.is_empty() || rs.iter().any(|r| r == role)));
            }
            Op::Advance(s) => now += Duration::from_secs(u64::from(*s)),
            Op::SetAttributes(a, i) => {
                let attributes: Attributes = ATTRIBUTES[*i as usize].parse().expect("valid attributes");
                fast.set_agent_attributes(&agent_id(*a), &attributes);
                reference.set_agent_attributes(&agent_id(*a), &attributes);
            }
            Op::SetConstraints(f, i) => {
                fast.set_framework_constraints(&framework_id(*f), &constraints(*i));
                reference.set_framework_constraints(&framework_id(*f), &constraints(*i));
            }
            Op::SetMinAllocatable(f, i) => {
                fast.set_framework_min_allocatable(&framework_id(*f), &min_allocatable(*i));
                reference.set_framework_min_allocatable(&framework_id(*f), &min_allocatable(*i));
            }
            Op::SetQuota(r, i) => {
                fast.set_quota(ROLES[*r as usize], quota(*i));
                reference.set_quota(ROLES[*r as usize], quota(*i));
            }
            Op::SetGuarantee(r, i) => {
                fast.set_guarantee(ROLES[*r as usize], guarantee(*i));
                reference.set_guarantee(ROLES[*r as usize], guarantee(*i));
            }
            Op::SetWeight(r, w) => {
                fast.set_weight(ROLES[*r as usize], WEIGHTS[*w as usize]);
                reference.set_weight(ROLES[*r as usize], WEIGHTS[*w as usize]);
            }
            Op::Allocate => {
                let got = fast.allocate(now, &mut rng_fast);
                let want = reference.allocate(now, &mut rng_ref);
                assert_eq!(got, want, "allocations differ at {now:?}");
                declined.check(now, &got);
                given.clone_from(&got);
                outstanding.extend(got);
            }
        }
        check_same(&fast, &reference, now);
        check_quotas(&fast, &given);
        check_quotas(&reference, &given);
    }
}

/// The guarantee property. Start: a fresh allocator; `agents` unreserved
/// agents (whole cpus, mem in multiples of 32 MB, so every remainder reaches
/// the minimum allocatable quantities), all active; one framework per role,
/// active, unsuppressed, with no filter, constraint or minimum of its own;
/// roles with guarantees (whole cpus, mem in multiples of 32 MB), limits of
/// at least the guarantee or none, and weights. When, for every scalar name,
/// the cluster's total covers the sum of the guarantees, then after one
/// cycle, with every framework accepting everything (nothing recovered),
/// every role holds at least its guarantee, in both allocators, which agree.
/// A guaranteed role: (cpus, mem in 32 MB, limit above the guarantee by
/// (cpus, mem in 32 MB) or none, `WEIGHTS` index).
type GuaranteedRole = (u8, u16, Option<(u8, u16)>, u8);

fn check_guarantees_met(agents: &[(u8, u16)], roles: &[GuaranteedRole], seed: u64) {
    let mut fast = DrfAllocator::new(DrfConfig::default());
    let mut reference = ReferenceDrfAllocator::new(DrfConfig::default());
    let mut total = Resources::new();
    for (i, (cpus, mem32)) in agents.iter().enumerate() {
        let r = res(&format!("cpus:{cpus};mem:{};disk:100", u32::from(*mem32) * 32));
        total += &r;
        fast.add_agent(&agent_id(i as u8), &r, &[]);
        reference.add_agent(&agent_id(i as u8), &r, &[]);
    }
    let mut wanted: Vec<(String, QuotaLimit)> = Vec::new();
    let (mut sum_cpus, mut sum_mem) = (Scalar::ZERO, Scalar::ZERO);
    for (i, (cpus, mem32, extra, weight)) in roles.iter().enumerate() {
        let role = format!("g{i}");
        let g: QuotaLimit = [
            ("cpus".to_owned(), Scalar::from_units(u64::from(*cpus))),
            ("mem".to_owned(), Scalar::from_units(u64::from(*mem32) * 32)),
        ]
        .into_iter()
        .collect();
        sum_cpus += g["cpus"];
        sum_mem += g["mem"];
        if let Some((more_cpus, more_mem32)) = extra {
            let limit: QuotaLimit = [
                ("cpus".to_owned(), g["cpus"] + Scalar::from_units(u64::from(*more_cpus))),
                (
                    "mem".to_owned(),
                    g["mem"] + Scalar::from_units(u64::from(*more_mem32) * 32),
                ),
            ]
            .into_iter()
            .collect();
            fast.set_quota(&role, Some(limit.clone()));
            reference.set_quota(&role, Some(limit));
        }
        fast.set_guarantee(&role, Some(g.clone()));
        reference.set_guarantee(&role, Some(g.clone()));
        fast.set_weight(&role, WEIGHTS[*weight as usize]);
        reference.set_weight(&role, WEIGHTS[*weight as usize]);
        fast.add_framework(&framework_id(i as u8), std::slice::from_ref(&role), &[]);
        reference.add_framework(&framework_id(i as u8), std::slice::from_ref(&role), &[]);
        wanted.push((role, g));
    }
    // A hungry framework in a role with no guarantee, added first in id order.
    fast.add_framework(&framework_id(200), &["*".to_owned()], &[]);
    reference.add_framework(&framework_id(200), &["*".to_owned()], &[]);
    let covered = total.scalar("cpus") >= sum_cpus && total.scalar("mem") >= sum_mem;
    let now = Timestamp::from_secs(1);
    let got = fast.allocate(now, &mut StdRng::seed_from_u64(seed));
    let want = reference.allocate(now, &mut StdRng::seed_from_u64(seed));
    assert_eq!(got, want);
    check_same(&fast, &reference, now);
    if !covered {
        return;
    }
    let held: BTreeMap<String, Resources> = fast.roles().into_iter().map(|r| (r.role, r.allocated)).collect();
    for (role, g) in &wanted {
        for (name, want) in g {
            let has = held.get(role).map(|r| r.scalar(name)).unwrap_or_default();
            assert!(has >= *want, "role {role} holds {has} {name}, guaranteed {want}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_cycle_meets_covered_guarantees(
        agents in proptest::collection::vec((1..5u8, 1..64u16), 1..12),
        roles in proptest::collection::vec((0..4u8, 0..40u16, proptest::option::of((0..3u8, 0..20u16)), 0..3u8), 0..6),
        seed in any::<u64>(),
    ) {
        check_guarantees_met(&agents, &roles, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_allocator_matches_the_reference(ops in proptest::collection::vec(op(), 1..80), seed in any::<u64>()) {
        run(&ops, seed);
    }
}

/// Many frameworks declining everything with long filters: the exhausted-agent
/// skip and the shared filter sets must not change a decision.
#[test]
fn decline_rounds_match_the_reference() {
    let mut fast = DrfAllocator::new(DrfConfig::default());
    let mut reference = ReferenceDrfAllocator::new(DrfConfig::default());
    let (mut rng_fast, mut rng_ref) = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(7));
    for f in 0..5 {
        fast.add_framework(&framework_id(f), &["*".to_owned()], &[]);
        reference.add_framework(&framework_id(f), &["*".to_owned()], &[]);
    }
    for a in 0..20 {
        let total = res(AGENT_SPECS[0]);
        let used = [Used {
            framework_id: framework_id(a % 5),
            agent_id: agent_id(a),
            role: "*".to_owned(),
            resources: res(USED_SPECS[1]),
        }];
        fast.add_agent(&agent_id(a), &total, &used);
        reference.add_agent(&agent_id(a), &total, &used);
    }
    let mut now = Timestamp::from_secs(1);
    for round in 0..14 {
        let got = fast.allocate(now, &mut rng_fast);
        let want = reference.allocate(now, &mut rng_ref);
        assert_eq!(got, want, "round {round}");
        for a in &got {
            let refuse = Some(Duration::from_secs(if round == 8 { 3 } else { 3600 }));
            fast.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, refuse);
            reference.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, refuse);
        }
        if round == 11 {
            fast.revive(&framework_id(2), &[]);
            reference.revive(&framework_id(2), &[]);
        }
        now += Duration::from_secs(1);
        check_same(&fast, &reference, now);
    }
}

/// Equally weighted, unconstrained, always-hungry frameworks in one role:
/// every cycle each framework launches one task (`cpus:1;mem:1024`) on each
/// offer it gets and gives the rest back unfiltered, until the cluster is
/// full. They end with dominant shares within one task of each other.
fn check_hungry_frameworks_share_evenly(frameworks: u8, agents: &[u8], seed: u64) {
    let mut allocator = DrfAllocator::new(DrfConfig::default());
    for f in 0..frameworks {
        allocator.add_framework(&framework_id(f), &["*".to_owned()], &[]);
    }
    let mut cpus = 0u64;
    for (i, size) in agents.iter().enumerate() {
        let size = u64::from(*size);
        cpus += size;
        let total = res(&format!("cpus:{size};mem:{}", size * 1024));
        allocator.add_agent(&agent_id(i as u8), &total, &[]);
    }
    let task = res("cpus:1;mem:1024");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut now = Timestamp::from_secs(1);
    let mut tasks = vec![0u64; usize::from(frameworks)];
    for _ in 0..=cpus {
        let got = allocator.allocate(now, &mut rng);
        if got.is_empty() {
            break;
        }
        for a in got {
            let rest = a.resources.clone() - &task;
            allocator.recover(now, &a.framework_id, &a.agent_id, &a.role, &rest, None);
            let f = (0..frameworks).position(|f| framework_id(f) == a.framework_id);
            tasks[f.expect("a known framework")] += 1;
        }
        now += Duration::from_secs(1);
    }
    assert_eq!(tasks.iter().sum::<u64>(), cpus, "the cluster fills up: {tasks:?}");
    let shares: Vec<f64> = (0..frameworks)
        .map(|f| allocator.framework_share(&framework_id(f)).dominant_share)
        .collect();
    let (low, high) = shares
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    let one_task = 1.0 / cpus as f64;
    assert!(
        high - low <= one_task + 1e-9,
        "shares {shares:?} (tasks {tasks:?}) differ by more than one task ({one_task})"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hungry_frameworks_end_within_one_task(
        frameworks in 2..7u8,
        agents in proptest::collection::vec(1..9u8, 1..10),
        seed in any::<u64>(),
    ) {
        check_hungry_frameworks_share_evenly(frameworks, &agents, seed);
    }
}
