//! Unit tests of the allocator options beyond the default policy.

use super::{Allocation, Allocator, DrfAllocator, DrfConfig, Policy, Used};
use agora_proto::{AgentId, FrameworkId, Resources, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeSet;
use std::time::Duration;

fn res(spec: &str) -> Resources {
    spec.parse().unwrap_or_else(|e| panic!("bad spec {spec}: {e}"))
}

fn agent(i: u8) -> AgentId {
    AgentId::new(format!("a{i}")).expect("valid id")
}

fn fw(name: &str) -> FrameworkId {
    FrameworkId::new(name).expect("valid id")
}

fn star() -> Vec<String> {
    vec!["*".to_owned()]
}

/// Five agents; `b` already runs a task on `a0`, so `a` has the lower share.
fn cluster(policy: Policy) -> DrfAllocator {
    let mut alloc = DrfAllocator::new(DrfConfig {
        policy,
        ..DrfConfig::default()
    });
    alloc.add_framework(&fw("a"), &star(), &[]);
    alloc.add_framework(&fw("b"), &star(), &[]);
    let used = [Used {
        framework_id: fw("b"),
        agent_id: agent(0),
        role: "*".to_owned(),
        resources: res("cpus:1;mem:1024"),
    }];
    alloc.add_agent(&agent(0), &res("cpus:4;mem:4096"), &used);
    for i in 1..5 {
        alloc.add_agent(&agent(i), &res("cpus:4;mem:4096"), &[]);
    }
    alloc
}

fn receivers(allocations: &[Allocation]) -> BTreeSet<String> {
    allocations.iter().map(|a| a.framework_id.to_string()).collect()
}

#[test]
fn policy_names_round_trip() {
    for policy in [Policy::FairShare, Policy::OfferAllToOne] {
        assert_eq!(policy.name().parse::<Policy>(), Ok(policy));
    }
    assert!("round-robin".parse::<Policy>().is_err());
    assert_eq!(DrfConfig::default().policy, Policy::FairShare);
}

#[test]
fn offer_all_to_one_gives_every_agent_to_the_lowest_share() {
    let mut alloc = cluster(Policy::OfferAllToOne);
    let mut rng = StdRng::seed_from_u64(7);
    let now = Timestamp::from_secs(1);
    let allocations = alloc.allocate(now, &mut rng);
    // All five agents' free resources, including what is left on a0, go to `a`.
    assert_eq!(allocations.len(), 5);
    assert_eq!(receivers(&allocations), BTreeSet::from(["a".to_owned()]));
    let agents: BTreeSet<AgentId> = allocations.iter().map(|a| a.agent_id.clone()).collect();
    assert_eq!(agents.len(), 5);
    assert_eq!(alloc.framework_share(&fw("a")).allocated, res("cpus:19;mem:19456"));
    // Nothing is left for `b` in this cycle or the next.
    assert!(alloc.allocate(now, &mut rng).is_empty());

    // `a` declines two agents with a filter: now `b` is lowest and gets both.
    for a in allocations
        .iter()
        .filter(|a| a.agent_id == agent(1) || a.agent_id == agent(2))
    {
        alloc.recover(
            now,
            &a.framework_id,
            &a.agent_id,
            &a.role,
            &a.resources,
            Some(Duration::from_secs(5)),
        );
    }
    let next = alloc.allocate(now, &mut rng);
    assert_eq!(next.len(), 2);
    assert_eq!(receivers(&next), BTreeSet::from(["b".to_owned()]));
}

#[test]
fn offer_all_to_one_skips_to_the_next_framework_when_the_first_is_filtered() {
    let mut alloc = cluster(Policy::OfferAllToOne);
    let mut rng = StdRng::seed_from_u64(3);
    let now = Timestamp::from_secs(1);
    let first = alloc.allocate(now, &mut rng);
    // `a` declines everything for a long time; `b` then receives it all in one cycle.
    for a in &first {
        alloc.recover(
            now,
            &a.framework_id,
            &a.agent_id,
            &a.role,
            &a.resources,
            Some(Duration::from_secs(60)),
        );
    }
    let second = alloc.allocate(now, &mut rng);
    assert_eq!(second.len(), 5);
    assert_eq!(receivers(&second), BTreeSet::from(["b".to_owned()]));
}

#[test]
fn fair_share_spreads_the_same_cluster() {
    let mut alloc = cluster(Policy::FairShare);
    let mut rng = StdRng::seed_from_u64(7);
    let allocations = alloc.allocate(Timestamp::from_secs(1), &mut rng);
    assert_eq!(allocations.len(), 5);
    assert_eq!(
        receivers(&allocations),
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
}

#[test]
fn offer_all_to_one_respects_offer_constraints() {
    let mut alloc = cluster(Policy::OfferAllToOne);
    let rack_r1: agora_proto::Attributes = "rack:r1".parse().expect("valid attributes");
    alloc.set_agent_attributes(&agent(3), &rack_r1);
    alloc.set_framework_constraints(
        &fw("a"),
        &[agora_proto::OfferConstraint {
            attribute: "rack".to_owned(),
            equals: "r1".to_owned(),
        }],
    );
    let mut rng = StdRng::seed_from_u64(7);
    let now = Timestamp::from_secs(1);
    // `a` is lowest and takes what it may (only a3); the others wait for the next cycle.
    let first = alloc.allocate(now, &mut rng);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].framework_id.clone(), first[0].agent_id.clone()),
        (fw("a"), agent(3))
    );
    // Now `b` is lowest (0.05 against a's 0.2) and takes the rest.
    let second = alloc.allocate(now, &mut rng);
    assert_eq!(second.len(), 4);
    assert_eq!(receivers(&second), BTreeSet::from(["b".to_owned()]));
}

/// Twelve one-cpu agents, each allocation a whole agent, nothing given back:
/// `ads` and the `eng` subtree split the cluster, then `eng/backend` and
/// `eng/frontend` split `eng`'s half, as hierarchical DRF means.
#[test]
fn hierarchical_roles_share_by_subtree() {
    let mut alloc = DrfAllocator::new(DrfConfig::default());
    for (framework, role) in [
        ("ads-1", "ads"),
        ("backend-1", "eng/backend"),
        ("frontend-1", "eng/frontend"),
    ] {
        alloc.add_framework(&fw(framework), &[role.to_owned()], &[]);
    }
    for i in 0..12 {
        alloc.add_agent(&agent(i), &res("cpus:1;mem:1024"), &[]);
    }
    let allocations = alloc.allocate(Timestamp::from_secs(1), &mut StdRng::seed_from_u64(3));
    assert_eq!(allocations.len(), 12);
    let count = |role: &str| allocations.iter().filter(|a| a.role == role).count();
    assert_eq!((count("ads"), count("eng/backend"), count("eng/frontend")), (6, 3, 3));
    let roles = alloc.roles();
    let eng = roles
        .iter()
        .find(|r| r.role == "eng")
        .expect("the parent role is listed");
    assert_eq!(
        eng.allocated,
        res("cpus:6;mem:6144"),
        "a role's allocation includes its sub-roles'"
    );
    assert!((eng.dominant_share - 0.5).abs() < 1e-9);
}

/// A limit on `eng` bounds `eng/backend` and `eng/frontend` together.
#[test]
fn a_parent_limit_bounds_its_subtree() {
    let mut alloc = DrfAllocator::new(DrfConfig::default());
    for (framework, role) in [("backend-1", "eng/backend"), ("frontend-1", "eng/frontend")] {
        alloc.add_framework(&fw(framework), &[role.to_owned()], &[]);
    }
    for i in 0..8 {
        alloc.add_agent(&agent(i), &res("cpus:1;mem:1024"), &[]);
    }
    let limit = [("cpus".to_owned(), res("cpus:3").cpus())].into_iter().collect();
    alloc.set_quota("eng", Some(limit));
    let allocations = alloc.allocate(Timestamp::from_secs(1), &mut StdRng::seed_from_u64(3));
    let cpus: Resources = allocations.iter().map(|a| a.resources.clone()).sum();
    assert_eq!(cpus.cpus(), res("cpus:3").cpus(), "{allocations:?}");
}
