//! Offer matching: whether a task fits an offer, taking a task's resources
//! out of an offer (with concrete ports), and placing many tasks over many
//! offers.
//!
//! A [`TaskRequest`] names what a task needs. Resources it names without a
//! reservation (`cpus:1`) may be taken from resources reserved for the
//! offer's role or from unreserved ones, reserved first, as Mesos frameworks
//! usually do; resources it names with a reservation (`cpus(ads):1`) must come
//! from exactly that reservation. Ports are asked for by count and allocated
//! from the lowest free ports of the offer.
//!
//! Everything here is deterministic: offers are visited in the order given,
//! resources in key order.

use agora_proto::{AgentId, Offer, OfferId, RangeSet, ResourceKey, Resources, Scalar};
use std::collections::BTreeSet;

/// What one task needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskRequest {
    /// Scalars (cpus, mem, …), explicit ranges and sets the task needs.
    pub resources: Resources,
    /// How many ports to allocate, from wherever the offer has free ports.
    pub ports: u64,
}

impl TaskRequest {
    /// A request for `resources` and no ports.
    pub const fn new(resources: Resources) -> Self {
        Self { resources, ports: 0 }
    }

    /// Also asks for `ports` ports.
    #[must_use]
    pub const fn with_ports(mut self, ports: u64) -> Self {
        self.ports = ports;
        self
    }

    /// Whether the task fits in `available`.
    pub fn fits(&self, available: &Resources) -> bool {
        self.allocate(available).is_some()
    }

    /// The concrete resources to give the task out of `available`, or `None`
    /// if it does not fit. The result is always
    /// [contained](Resources::contains) in `available`, so it can go in a
    /// `TaskInfo` launched with the offer, and subtracted from `available`.
    pub fn allocate(&self, available: &Resources) -> Option<Resources> {
        let mut pool = available.clone();
        let mut taken = Resources::new();
        let mut take = |pool: &mut Resources, piece: Resources| {
            *pool = pool.saturating_sub(&piece);
            taken.add(&piece);
        };

        // Exact reservations first, so flexible requests cannot starve them.
        let (exact, flexible): (Vec<_>, Vec<_>) = self.resources.scalars().partition(|(k, _)| k.reservation.is_some());
        for (key, want) in exact {
            let have = scalar_at(&pool, key);
            if have < want {
                return None;
            }
            take(&mut pool, single_scalar(key, want));
        }
        for (key, want) in flexible {
            let mut left = want;
            for (candidate, have) in candidates(pool.scalars(), &key.name, |v| v) {
                if left.is_zero() {
                    break;
                }
                let part = if have < left { have } else { left };
                left -= part;
                take(&mut pool, single_scalar(&candidate, part));
            }
            if !left.is_zero() {
                return None;
            }
        }

        let (exact, flexible): (Vec<_>, Vec<_>) = self.resources.ranges().partition(|(k, _)| k.reservation.is_some());
        for (key, want) in exact {
            if !range_at(&pool, key).contains(want) {
                return None;
            }
            take(&mut pool, single_ranges(key, want.clone()));
        }
        for (key, want) in flexible {
            let mut left = want.clone();
            for (candidate, have) in candidates(pool.ranges(), &key.name, RangeSet::clone) {
                let part = left.difference(&left.difference(&have));
                left = left.difference(&have);
                take(&mut pool, single_ranges(&candidate, part));
            }
            if !left.is_empty() {
                return None;
            }
        }

        let (exact, flexible): (Vec<_>, Vec<_>) = self.resources.sets().partition(|(k, _)| k.reservation.is_some());
        for (key, want) in exact {
            if !pool.sets().any(|(k, have)| k == key && have.is_superset(want)) {
                return None;
            }
            take(&mut pool, single_set(key, want.clone()));
        }
        for (key, want) in flexible {
            let mut left = want.clone();
            for (candidate, have) in candidates(pool.sets(), &key.name, BTreeSet::clone) {
                let part: BTreeSet<String> = left.intersection(&have).cloned().collect();
                left.retain(|item| !have.contains(item));
                take(&mut pool, single_set(&candidate, part));
            }
            if !left.is_empty() {
                return None;
            }
        }

        let mut left = self.ports;
        for (candidate, have) in candidates(pool.ranges(), Resources::PORTS, RangeSet::clone) {
            if left == 0 {
                break;
            }
            let n = left.min(have.len());
            let part = have.take_first(n)?;
            left -= n;
            take(&mut pool, single_ranges(&candidate, part));
        }
        if left > 0 {
            return None;
        }
        Some(taken)
    }
}

impl From<Resources> for TaskRequest {
    fn from(resources: Resources) -> Self {
        Self::new(resources)
    }
}

/// The entries of `name` with their values owned (so the pool can change
/// while they are used), reserved ones first (Mesos frameworks use up their
/// reservations before shared resources), then in key order.
fn candidates<'a, V: 'a, O>(
    entries: impl Iterator<Item = (&'a ResourceKey, V)>,
    name: &str,
    own: impl Fn(V) -> O,
) -> Vec<(ResourceKey, O)> {
    let mut found: Vec<(ResourceKey, O)> = entries
        .filter(|(k, _)| k.name == name)
        .map(|(k, v)| (k.clone(), own(v)))
        .collect();
    found.sort_by_key(|(k, _)| k.reservation.is_none());
    found
}

fn scalar_at(pool: &Resources, key: &ResourceKey) -> Scalar {
    pool.scalars().find(|(k, _)| *k == key).map_or(Scalar::ZERO, |(_, v)| v)
}

fn range_at(pool: &Resources, key: &ResourceKey) -> RangeSet {
    pool.ranges()
        .find(|(k, _)| *k == key)
        .map(|(_, r)| r.clone())
        .unwrap_or_default()
}

fn single_scalar(key: &ResourceKey, value: Scalar) -> Resources {
    Resources::new().with_scalar(&key.name, key.role(), value)
}

fn single_ranges(key: &ResourceKey, ranges: RangeSet) -> Resources {
    Resources::new().with_ranges(&key.name, key.role(), ranges)
}

fn single_set(key: &ResourceKey, items: BTreeSet<String>) -> Resources {
    Resources::new().with_set(&key.name, key.role(), items)
}

/// How [`place`] spreads tasks over agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Each task goes to the first offer group it fits in: packs agents.
    #[default]
    FirstFit,
    /// Round-robin over offer groups, starting after the group that took the
    /// previous task: spreads tasks across agents.
    Spread,
}

/// One task placed by [`place`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedTask {
    /// Index of the task in the requests given to [`place`].
    pub request: usize,
    /// The concrete resources it gets (with allocated ports), contained in
    /// the plan's offers.
    pub resources: Resources,
}

/// Tasks to launch with one ACCEPT: offers on one agent (and for one role).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchPlan {
    /// The agent of every offer in the plan.
    pub agent_id: AgentId,
    /// The role the offers are allocated to.
    pub role: String,
    /// The offers to accept together.
    pub offer_ids: Vec<OfferId>,
    /// The tasks, in request order.
    pub tasks: Vec<PlacedTask>,
    /// What the tasks leave of the offers (declined by the ACCEPT's filters).
    pub remaining: Resources,
}

/// The result of [`place`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// One plan per offer group that got at least one task.
    pub plans: Vec<LaunchPlan>,
    /// Offers no task was placed on: decline them.
    pub unused: Vec<OfferId>,
    /// Indices of requests that fit nowhere, ascending.
    pub unplaced: Vec<usize>,
}

impl Placement {
    /// How many tasks were placed.
    pub fn placed(&self) -> usize {
        self.plans.iter().map(|p| p.tasks.len()).sum()
    }
}

#[derive(Debug)]
struct Group {
    agent_id: AgentId,
    role: String,
    offer_ids: Vec<OfferId>,
    remaining: Resources,
    tasks: Vec<PlacedTask>,
}

/// Places `requests` over `offers`.
///
/// Offers are grouped by agent and role, in order of first appearance: Mesos
/// requires every offer of one ACCEPT to be on the same agent, and the offers
/// of a group pool their resources. Each request, in order, goes to one group
/// chosen by `strategy`; a request that fits in no group is left unplaced and
/// later (smaller) requests are still tried. Never over-commits: every plan's
/// tasks together are contained in the plan's offers.
pub fn place(offers: &[Offer], requests: &[TaskRequest], strategy: Strategy) -> Placement {
    let mut groups: Vec<Group> = Vec::new();
    for offer in offers {
        match groups
            .iter_mut()
            .find(|g| g.agent_id == offer.agent_id && g.role == offer.role)
        {
            Some(group) => {
                group.offer_ids.push(offer.id.clone());
                group.remaining.add(&offer.resources);
            }
            None => groups.push(Group {
                agent_id: offer.agent_id.clone(),
                role: offer.role.clone(),
                offer_ids: vec![offer.id.clone()],
                remaining: offer.resources.clone(),
                tasks: Vec::new(),
            }),
        }
    }

    let mut unplaced = Vec::new();
    let mut cursor = 0;
    let mut last_unplaced: Option<&TaskRequest> = None;
    for (index, request) in requests.iter().enumerate() {
        // Groups only shrink, so a request equal to one that fit nowhere
        // cannot fit now; this keeps large uniform batches linear.
        if last_unplaced == Some(request) {
            unplaced.push(index);
            continue;
        }
        let start = match strategy {
            Strategy::FirstFit => 0,
            Strategy::Spread => cursor,
        };
        let count = groups.len();
        let found = (0..count).map(|i| (start + i) % count).find_map(|g| {
            let resources = request.allocate(&groups[g].remaining)?;
            Some((g, resources))
        });
        match found {
            Some((g, resources)) => {
                let group = &mut groups[g];
                group.remaining = group.remaining.saturating_sub(&resources);
                group.tasks.push(PlacedTask {
                    request: index,
                    resources,
                });
                cursor = (g + 1) % count;
            }
            None => {
                unplaced.push(index);
                last_unplaced = Some(request);
            }
        }
    }

    let mut placement = Placement {
        unplaced,
        ..Placement::default()
    };
    for group in groups {
        if group.tasks.is_empty() {
            placement.unused.extend(group.offer_ids);
        } else {
            placement.plans.push(LaunchPlan {
                agent_id: group.agent_id,
                role: group.role,
                offer_ids: group.offer_ids,
                tasks: group.tasks,
                remaining: group.remaining,
            });
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::FrameworkId;
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};
    use proptest::strategy::Strategy as Gen;

    fn res(spec: &str) -> Resources {
        spec.parse().expect("valid resources")
    }

    fn offer(id: &str, agent: &str, spec: &str) -> Offer {
        Offer {
            id: OfferId::new(id).expect("id"),
            framework_id: FrameworkId::new("fw").expect("id"),
            agent_id: AgentId::new(agent).expect("id"),
            hostname: agent.to_owned(),
            resources: res(spec),
            attributes: Default::default(),
            role: "*".to_owned(),
        }
    }

    #[test]
    fn fits_and_allocates_scalars() {
        let req = TaskRequest::new(res("cpus:1;mem:128"));
        assert!(req.fits(&res("cpus:2;mem:256")));
        assert!(req.fits(&res("cpus:1;mem:128")));
        assert!(!req.fits(&res("cpus:0.999;mem:256")));
        assert!(!req.fits(&res("mem:256")));
        assert_eq!(
            req.allocate(&res("cpus:2;mem:256;disk:10")),
            Some(res("cpus:1;mem:128"))
        );
    }

    #[test]
    fn allocates_lowest_free_ports() {
        let req = TaskRequest::new(res("cpus:0.5")).with_ports(3);
        let got = req
            .allocate(&res("cpus:1;ports:[31000-31001,31005-31010]"))
            .expect("fits");
        assert_eq!(got, res("cpus:0.5;ports:[31000-31001,31005-31005]"));
        assert!(!req.fits(&res("cpus:1;ports:[31000-31001]")));
        assert!(TaskRequest::default().with_ports(0).fits(&Resources::new()));
    }

    #[test]
    fn unreserved_requests_use_reservations_first() {
        let offered = res("cpus(ads):1;cpus:2;mem:64");
        let got = TaskRequest::new(res("cpus:1.5;mem:64"))
            .allocate(&offered)
            .expect("fits");
        assert_eq!(got, res("cpus(ads):1;cpus:0.5;mem:64"));
        assert!(offered.contains(&got));
    }

    #[test]
    fn reserved_requests_need_that_reservation() {
        let req = TaskRequest::new(res("cpus(ads):1"));
        assert!(!req.fits(&res("cpus:4")));
        assert!(req.fits(&res("cpus(ads):1")));
        // The exact part is served before the flexible one can eat it.
        let both = TaskRequest::new(res("cpus(ads):1;cpus:1"));
        assert_eq!(
            both.allocate(&res("cpus(ads):1;cpus:1")),
            Some(res("cpus(ads):1;cpus:1"))
        );
        assert!(!both.fits(&res("cpus(ads):1.5")));
    }

    #[test]
    fn explicit_ranges_and_sets() {
        let req = TaskRequest::new(res("ports:[8080-8081];zones:{a}"));
        assert!(req.fits(&res("ports:[8000-9000];zones:{a,b}")));
        assert!(!req.fits(&res("ports:[8081-9000];zones:{a,b}")));
        assert!(!req.fits(&res("ports:[8000-9000];zones:{b}")));
        // Split over a reservation and the unreserved pool.
        let got = req
            .allocate(&res("ports(ads):[8080-8080];ports:[8081-8081];zones:{a}"))
            .expect("fits");
        assert_eq!(got, res("ports(ads):[8080-8080];ports:[8081-8081];zones:{a}"));
        // Counted ports do not reuse explicitly requested ones.
        let got = TaskRequest::new(res("ports:[1-1]"))
            .with_ports(1)
            .allocate(&res("ports:[1-2]"))
            .expect("fits");
        assert_eq!(got, res("ports:[1-2]"));
    }

    #[test]
    fn first_fit_packs_and_spread_round_robins() {
        let offers = [
            offer("o1", "a1", "cpus:4;mem:1024"),
            offer("o2", "a2", "cpus:4;mem:1024"),
            offer("o3", "a3", "cpus:4;mem:1024"),
        ];
        let requests = vec![TaskRequest::new(res("cpus:1;mem:100")); 4];
        let packed = place(&offers, &requests, Strategy::FirstFit);
        assert_eq!(packed.plans.len(), 1);
        assert_eq!(packed.plans[0].tasks.len(), 4);
        assert_eq!(packed.plans[0].remaining, res("mem:624"));
        assert_eq!(
            packed.unused,
            vec![OfferId::new("o2").expect("id"), OfferId::new("o3").expect("id")]
        );

        let spread = place(&offers, &requests, Strategy::Spread);
        let per_agent: Vec<(String, Vec<usize>)> = spread
            .plans
            .iter()
            .map(|p| (p.agent_id.to_string(), p.tasks.iter().map(|t| t.request).collect()))
            .collect();
        assert_eq!(
            per_agent,
            vec![
                ("a1".to_owned(), vec![0, 3]),
                ("a2".to_owned(), vec![1]),
                ("a3".to_owned(), vec![2])
            ]
        );
        assert!(spread.unused.is_empty() && spread.unplaced.is_empty());
    }

    #[test]
    fn offers_on_one_agent_are_pooled_into_one_accept() {
        let offers = [
            offer("o1", "a1", "cpus:1;mem:64"),
            offer("o2", "a2", "cpus:0.5;mem:64"),
            offer("o3", "a1", "cpus:1;mem:64"),
        ];
        let placement = place(&offers, &[TaskRequest::new(res("cpus:2;mem:128"))], Strategy::FirstFit);
        assert_eq!(placement.plans.len(), 1);
        let plan = &placement.plans[0];
        assert_eq!(plan.agent_id, AgentId::new("a1").expect("id"));
        assert_eq!(
            plan.offer_ids,
            vec![OfferId::new("o1").expect("id"), OfferId::new("o3").expect("id")]
        );
        assert_eq!(placement.unused, vec![OfferId::new("o2").expect("id")]);
    }

    #[test]
    fn what_does_not_fit_is_reported_and_smaller_tasks_still_placed() {
        let offers = [offer("o1", "a1", "cpus:1;mem:64")];
        let requests = [
            TaskRequest::new(res("cpus:2")),
            TaskRequest::new(res("cpus:2")),
            TaskRequest::new(res("cpus:1")),
        ];
        let placement = place(&offers, &requests, Strategy::Spread);
        assert_eq!(placement.unplaced, vec![0, 1]);
        assert_eq!(placement.placed(), 1);
        assert_eq!(place(&[], &requests, Strategy::Spread).unplaced, vec![0, 1, 2]);
    }

    fn arb_offer() -> impl Gen<Value = (u8, u64, u64, Vec<(u64, u64)>, bool)> {
        (
            0u8..3,
            0u64..4000,
            0u64..2048,
            prop::collection::vec((0u64..60, 0u64..5), 0..3),
            any::<bool>(),
        )
    }

    fn arb_request() -> impl Gen<Value = (u64, u64, u64)> {
        (0u64..2500, 0u64..700, 0u64..4)
    }

    proptest! {
        #[test]
        fn placement_never_overcommits(
            raw_offers in prop::collection::vec(arb_offer(), 0..8),
            raw_requests in prop::collection::vec(arb_request(), 0..20),
            spread in any::<bool>(),
        ) {
            let offers: Vec<Offer> = raw_offers
                .iter()
                .enumerate()
                .map(|(i, (agent, cpus, mem, ports, reserved))| {
                    let mut o = offer(&format!("o{i}"), &format!("a{agent}"), "");
                    let role = reserved.then_some("ads");
                    o.resources.add_scalar("cpus", role, Scalar::from_milli(*cpus));
                    o.resources.add_scalar("mem", None, Scalar::from_milli(*mem * 1000));
                    let mut set = RangeSet::new();
                    for (begin, len) in ports {
                        // Distinct offers on one agent never share ports.
                        let base = 1000 * (i as u64 + 1);
                        set.insert(base + begin, base + begin + len);
                    }
                    o.resources.add_ranges("ports", None, set);
                    o
                })
                .collect();
            let requests: Vec<TaskRequest> = raw_requests
                .iter()
                .map(|(cpus, mem, ports)| {
                    TaskRequest::new(
                        Resources::new()
                            .with_scalar("cpus", None, Scalar::from_milli(*cpus))
                            .with_scalar("mem", None, Scalar::from_milli(*mem * 1000)),
                    )
                    .with_ports(*ports)
                })
                .collect();
            let strategy = if spread { Strategy::Spread } else { Strategy::FirstFit };
            let placement = place(&offers, &requests, strategy);

            let mut seen_offers = BTreeSet::new();
            let mut seen_requests = BTreeSet::new();
            for plan in &placement.plans {
                let mut pool = Resources::new();
                for id in &plan.offer_ids {
                    let o = offers.iter().find(|o| &o.id == id).expect("known offer");
                    prop_assert_eq!(&o.agent_id, &plan.agent_id, "one agent per accept");
                    prop_assert!(seen_offers.insert(id.clone()), "offer used twice");
                    pool.add(&o.resources);
                }
                let mut used = Resources::new();
                let mut port_count = 0;
                for task in &plan.tasks {
                    prop_assert!(pool.contains(&task.resources), "task not within its offers");
                    let r = &requests[task.request];
                    prop_assert_eq!(task.resources.cpus(), r.resources.cpus());
                    prop_assert_eq!(task.resources.mem(), r.resources.mem());
                    prop_assert_eq!(task.resources.ports().len(), r.ports);
                    prop_assert!(seen_requests.insert(task.request), "task placed twice");
                    port_count += task.resources.ports().len();
                    used.add(&task.resources);
                }
                prop_assert!(pool.contains(&used), "plan over-commits its offers");
                prop_assert_eq!(used.ports().len(), port_count, "a port given to two tasks");
                prop_assert_eq!(&plan.remaining, &pool.saturating_sub(&used));
            }
            for id in &placement.unused {
                prop_assert!(seen_offers.insert(id.clone()), "unused offer also in a plan");
            }
            prop_assert_eq!(seen_offers.len(), offers.len(), "every offer is used or unused");
            for &i in &placement.unplaced {
                prop_assert!(seen_requests.insert(i), "unplaced task also placed");
            }
            prop_assert_eq!(seen_requests.len(), requests.len());
        }
    }
}
