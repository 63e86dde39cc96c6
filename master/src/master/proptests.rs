//! Properties of the offer cycle over random sequences of events.

use super::tests::{Harness, res, task};
use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    AddAgent(u8),
    Subscribe,
    Advance(u16),
    /// Framework `f` launches `n` tasks of `size` on its `o`-th offer.
    Launch {
        f: u8,
        o: u8,
        n: u8,
        size: u8,
    },
    Decline {
        f: u8,
        o: u8,
        refuse: u8,
    },
    /// The agent of task `t` finishes it.
    Finish(u8),
    Kill(u8),
    DisconnectAgent(u8),
    ReregisterAgent(u8),
    DisconnectFramework(u8),
    ResubscribeFramework(u8),
    Revive(u8),
    /// Framework `f` reserves part of its `o`-th offer for the offer's role
    /// (invalid for `*`), launching a task on it when `launch`.
    Reserve {
        f: u8,
        o: u8,
        launch: bool,
    },
    /// Framework `f` unreserves the reserved part of its `o`-th offer.
    Unreserve {
        f: u8,
        o: u8,
    },
    /// An operator reserves `cpus:1;mem:128` (`size` times) on agent `a` for
    /// `ads` (held by every other framework) or `web` (held by none).
    OperatorReserve {
        a: u8,
        ads: bool,
        size: u8,
    },
    /// An operator unreserves one of agent `a`'s dynamic reservations, or
    /// (when it has none) something it does not hold.
    OperatorUnreserve(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u8..3).prop_map(Step::AddAgent),
        1 => Just(Step::Subscribe),
        1 => (1u16..3000).prop_map(Step::Advance),
        1 => (any::<u8>(), any::<u8>(), 0u8..4, 0u8..4).prop_map(|(f, o, n, size)| Step::Launch { f, o, n, size }),
        1 => (any::<u8>(), any::<u8>(), 0u8..3).prop_map(|(f, o, refuse)| Step::Decline { f, o, refuse }),
        1 => any::<u8>().prop_map(Step::Finish),
        1 => any::<u8>().prop_map(Step::Kill),
        1 => any::<u8>().prop_map(Step::DisconnectAgent),
        1 => any::<u8>().prop_map(Step::ReregisterAgent),
        1 => any::<u8>().prop_map(Step::DisconnectFramework),
        1 => any::<u8>().prop_map(Step::ResubscribeFramework),
        1 => any::<u8>().prop_map(Step::Revive),
        3 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(f, o, launch)| Step::Reserve { f, o, launch }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(f, o)| Step::Unreserve { f, o }),
        2 => (any::<u8>(), any::<bool>(), 1u8..4).prop_map(|(a, ads, size)| Step::OperatorReserve { a, ads, size }),
        2 => any::<u8>().prop_map(Step::OperatorUnreserve),
    ]
}

const AGENT_SPECS: [&str; 3] = [
    "cpus:4;mem:4096;ports:[31000-31009]",
    "cpus:2;mem:1024",
    "cpus:8;mem:8192;disk:1000",
];
const TASK_SPECS: [&str; 4] = [
    "cpus:1;mem:128",
    "cpus:0.5;mem:64;ports:[31000-31001]",
    "cpus:3;mem:2048",
    "cpus:16;mem:1",
];

struct World {
    h: Harness,
    /// (conn, id, connected)
    frameworks: Vec<(ConnectionId, FrameworkId, bool)>,
    /// (conn, id, spec, connected)
    agents: Vec<(ConnectionId, AgentId, &'static str, bool)>,
    /// Offers each framework holds, as it saw them.
    offers: BTreeMap<FrameworkId, Vec<Offer>>,
    /// Tasks launched: (framework, task, agent conn index).
    tasks: Vec<(FrameworkId, TaskInfo)>,
    next_task: u64,
    next_conn: u64,
    next_uuid: u128,
}

impl World {
    fn new() -> Self {
        Self {
            h: Harness::new(),
            frameworks: Vec::new(),
            agents: Vec::new(),
            offers: BTreeMap::new(),
            tasks: Vec::new(),
            next_task: 0,
            next_conn: 10_000,
            next_uuid: 0,
        }
    }

    fn collect_offers(&mut self) {
        for (conn, id, _) in self.frameworks.clone() {
            let new = self.h.offers(conn);
            for offer in &new {
                let foreign = offer.resources.filter(|k| k.role().is_some_and(|r| r != offer.role));
                assert!(
                    foreign.is_empty(),
                    "offer {} to role {} holds {foreign}, reserved for another role",
                    offer.id,
                    offer.role
                );
            }
            self.offers.entry(id).or_default().extend(new);
        }
        for out in self.h.take() {
            if let Output::ToFramework {
                event: Event::Rescind(offer_id),
                ..
            } = out
            {
                for list in self.offers.values_mut() {
                    list.retain(|o| o.id != offer_id);
                }
            }
        }
    }

    fn pick<T: Clone>(list: &[T], i: u8) -> Option<T> {
        (!list.is_empty()).then(|| list[usize::from(i) % list.len()].clone())
    }

    /// A connected framework's `o`-th offer.
    fn pick_offer(&self, f: u8, o: u8) -> Option<(FrameworkId, Offer)> {
        let Some((_, framework_id, true)) = Self::pick(&self.frameworks, f) else {
            return None;
        };
        let offer = Self::pick(self.offers.get(&framework_id).map_or(&[][..], |v| v), o)?;
        Some((framework_id, offer))
    }

    fn accept(&mut self, framework_id: &FrameworkId, offer: &Offer, operations: Vec<Operation>) {
        self.h
            .call(
                framework_id,
                Call::Accept {
                    offer_ids: vec![offer.id.clone()],
                    operations,
                    filters: Filters::refuse(Duration::from_secs(1)),
                },
            )
            .expect("accept from a subscribed framework");
        if let Some(list) = self.offers.get_mut(framework_id) {
            list.retain(|x| x.id != offer.id);
        }
    }

    /// Feeds an operator's reservation call; a refused one must change
    /// nothing (the harness checks the books either way).
    fn operator(&mut self, input: Input) {
        let snapshot = |m: &Master| {
            let agents: Vec<(Resources, Resources)> = m
                .agents
                .values()
                .map(|a| (a.info.resources.clone(), a.reserved.clone()))
                .collect();
            (
                agents,
                m.offers.keys().cloned().collect::<Vec<_>>(),
                m.allocator.cluster_total(),
            )
        };
        let before = snapshot(&self.h.master);
        if self.h.handle(input).is_err() {
            assert_eq!(
                before,
                snapshot(&self.h.master),
                "a refused reservation changed the master"
            );
        }
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::AddAgent(kind) => {
                let spec = AGENT_SPECS[usize::from(kind)];
                let (conn, id) = self.h.add_agent(spec);
                self.agents.push((conn, id, spec, true));
            }
            Step::Subscribe => {
                // Every other framework holds role `ads`, which it may reserve for.
                let mut info = FrameworkInfo::new(format!("f{}", self.frameworks.len()));
                info.failover_timeout = Duration::from_secs(60);
                if self.frameworks.len().is_multiple_of(2) {
                    info.roles = vec!["ads".to_owned()];
                }
                let (conn, id) = self.h.subscribe(info);
                self.frameworks.push((conn, id, true));
            }
            Step::Advance(ms) => self.h.advance(Duration::from_millis(u64::from(ms))),
            Step::Launch { f, o, n, size } => {
                let Some((_, framework_id, true)) = Self::pick(&self.frameworks, f) else {
                    return;
                };
                let Some(offer) = Self::pick(self.offers.get(&framework_id).map_or(&[][..], |v| v), o) else {
                    return;
                };
                let tasks: Vec<TaskInfo> = (0..n)
                    .map(|_| {
                        self.next_task += 1;
                        task(
                            &format!("t{}", self.next_task),
                            &offer.agent_id,
                            TASK_SPECS[usize::from(size)],
                        )
                    })
                    .collect();
                self.h
                    .call(
                        &framework_id,
                        Call::Accept {
                            offer_ids: vec![offer.id.clone()],
                            operations: vec![Operation::Launch(tasks.clone())],
                            filters: Filters::refuse(Duration::from_secs(1)),
                        },
                    )
                    .expect("accept from a subscribed framework");
                if let Some(list) = self.offers.get_mut(&framework_id) {
                    list.retain(|x| x.id != offer.id);
                }
                self.tasks.extend(tasks.into_iter().map(|t| (framework_id.clone(), t)));
            }
            Step::Decline { f, o, refuse } => {
                let Some((_, framework_id, true)) = Self::pick(&self.frameworks, f) else {
                    return;
                };
                let Some(offer) = Self::pick(self.offers.get(&framework_id).map_or(&[][..], |v| v), o) else {
                    return;
                };
                self.h
                    .call(
                        &framework_id,
                        Call::Decline {
                            offer_ids: vec![offer.id.clone()],
                            filters: Filters::refuse(Duration::from_secs(u64::from(refuse))),
                        },
                    )
                    .expect("decline");
                if let Some(list) = self.offers.get_mut(&framework_id) {
                    list.retain(|x| x.id != offer.id);
                }
            }
            Step::Finish(t) | Step::Kill(t) => {
                let Some((framework_id, info)) = Self::pick(&self.tasks, t) else {
                    return;
                };
                let Some((conn, _, _, true)) = self.agents.iter().find(|a| a.1 == info.agent_id).cloned() else {
                    return;
                };
                let state = if matches!(step, Step::Finish(_)) {
                    TaskState::Finished
                } else {
                    TaskState::Killed
                };
                self.next_uuid += 1;
                self.h
                    .agent_update(conn, &framework_id, &info.task_id, state, self.next_uuid);
            }
            Step::DisconnectAgent(a) => {
                let Some(i) = (!self.agents.is_empty()).then(|| usize::from(a) % self.agents.len()) else {
                    return;
                };
                if self.agents[i].3 {
                    self.h
                        .handle(Input::AgentDisconnected { conn: self.agents[i].0 })
                        .expect("disconnect");
                    self.agents[i].3 = false;
                }
            }
            Step::ReregisterAgent(a) => {
                let Some(i) = (!self.agents.is_empty()).then(|| usize::from(a) % self.agents.len()) else {
                    return;
                };
                let (_, agent_id, spec, _) = self.agents[i].clone();
                // It still runs the tasks the master sent it that have not ended.
                let running: Vec<RunningTask> = self
                    .h
                    .master
                    .frameworks
                    .iter()
                    .flat_map(|(fid, f)| f.tasks.values().map(move |t| (fid, t)))
                    .filter(|(_, t)| t.info.agent_id == agent_id && !t.state.is_terminal())
                    .map(|(fid, t)| RunningTask {
                        framework_id: fid.clone(),
                        task: t.info.clone(),
                        state: TaskState::Running,
                    })
                    .collect();
                self.next_conn += 1;
                let conn = ConnectionId(self.next_conn);
                self.h.register_agent(conn, spec, Some(agent_id), running);
                self.agents[i].0 = conn;
                self.agents[i].3 = true;
            }
            Step::DisconnectFramework(f) => {
                let Some(i) = (!self.frameworks.is_empty()).then(|| usize::from(f) % self.frameworks.len()) else {
                    return;
                };
                if self.frameworks[i].2 {
                    self.h
                        .handle(Input::FrameworkDisconnected {
                            conn: self.frameworks[i].0,
                        })
                        .expect("disconnect");
                    self.frameworks[i].2 = false;
                    self.offers.remove(&self.frameworks[i].1);
                }
            }
            Step::ResubscribeFramework(f) => {
                let Some(i) = (!self.frameworks.is_empty()).then(|| usize::from(f) % self.frameworks.len()) else {
                    return;
                };
                let (_, id, connected) = self.frameworks[i].clone();
                if connected || !self.h.master.frameworks.contains_key(&id) {
                    return;
                }
                let mut info = FrameworkInfo::new("again");
                info.roles = self.h.master.frameworks[&id].info.roles.clone();
                info.id = Some(id);
                info.failover_timeout = Duration::from_secs(60);
                let (conn, _) = self.h.subscribe(info);
                self.frameworks[i].0 = conn;
                self.frameworks[i].2 = true;
            }
            Step::Reserve { f, o, launch } => {
                let Some((framework_id, offer)) = self.pick_offer(f, o) else {
                    return;
                };
                let role = offer.role.as_str();
                let mut operations = vec![Operation::Reserve(res("cpus:1;mem:128").with_reservation(Some(role)))];
                if launch {
                    self.next_task += 1;
                    let mut t = task(&format!("t{}", self.next_task), &offer.agent_id, "cpus:0.5;mem:64");
                    t.resources = t.resources.with_reservation(Some(role));
                    self.tasks.push((framework_id.clone(), t.clone()));
                    operations.push(Operation::Launch(vec![t]));
                }
                self.accept(&framework_id, &offer, operations);
            }
            Step::Unreserve { f, o } => {
                let Some((framework_id, offer)) = self.pick_offer(f, o) else {
                    return;
                };
                let reserved = offer.resources.filter(|k| k.reservation.is_some());
                let reserved = if reserved.is_empty() {
                    res("cpus(ads):1")
                } else {
                    reserved
                };
                self.accept(&framework_id, &offer, vec![Operation::Unreserve(reserved)]);
            }
            Step::OperatorReserve { a, ads, size } => {
                let Some((_, agent_id, _, _)) = Self::pick(&self.agents, a) else {
                    return;
                };
                let role = if ads { "ads" } else { "web" };
                let unit = res("cpus:1;mem:128").with_reservation(Some(role));
                let resources = (0..size).fold(Resources::new(), |acc, _| acc + &unit);
                self.operator(Input::ReserveResources { agent_id, resources });
            }
            Step::OperatorUnreserve(a) => {
                let Some((_, agent_id, _, _)) = Self::pick(&self.agents, a) else {
                    return;
                };
                let reserved = self.h.master.agents[&agent_id].reserved.clone();
                // One role's dynamic reservations, or something never reserved.
                let resources = reserved
                    .scalars()
                    .next()
                    .and_then(|(k, _)| k.role())
                    .map_or_else(|| res("cpus(ads):1"), |role| reserved.reserved(role));
                self.operator(Input::UnreserveResources { agent_id, resources });
            }
            Step::Revive(f) => {
                if let Some((_, id, true)) = Self::pick(&self.frameworks, f) {
                    self.h.call(&id, Call::Revive { roles: vec![] }).expect("revive");
                }
            }
        }
        self.collect_offers();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// After every step: the allocator's books match the offers and tasks,
    /// no range value is in two offers or tasks, nothing exceeds an agent's
    /// total (all checked by `check_invariants`, which the harness runs
    /// after every input). At the end, once every task has ended and every
    /// offer is declined, the free resources equal the cluster total.
    #[test]
    fn offer_cycle_keeps_the_books_and_frees_everything(steps in proptest::collection::vec(step(), 1..60)) {
        let mut w = World::new();
        w.run(Step::AddAgent(0));
        w.run(Step::Subscribe);
        w.run(Step::Subscribe);
        for s in steps {
            w.run(s);
        }
        // Bring every agent back and end every task.
        for i in 0..w.agents.len() {
            if !w.agents[i].3 {
                w.run(Step::ReregisterAgent(i as u8));
            }
        }
        let live: Vec<(FrameworkId, TaskId, AgentId)> = w
            .h
            .master
            .frameworks
            .iter()
            .flat_map(|(fid, f)| f.tasks.values().map(move |t| (fid.clone(), t.info.task_id.clone(), t.info.agent_id.clone())))
            .collect();
        for (framework_id, task_id, agent_id) in live {
            let conn = w.agents.iter().find(|a| a.1 == agent_id).map(|a| a.0);
            if let Some(conn) = conn {
                w.next_uuid += 1;
                w.h.agent_update(conn, &framework_id, &task_id, TaskState::Finished, w.next_uuid);
            }
        }
        // Every framework goes away; its offers come back.
        for (_, id, _) in w.frameworks.clone() {
            if w.h.master.frameworks.contains_key(&id) && w.h.master.frameworks[&id].conn.is_some() {
                w.h.call(&id, Call::Teardown).expect("teardown");
            }
        }
        for (_, id, _) in w.frameworks.clone() {
            if let Some(f) = w.h.master.frameworks.get(&id) {
                prop_assert!(f.conn.is_none());
            }
        }
        // Disconnected frameworks hold no offers (they were rescinded) and
        // every task has ended, so nothing may remain allocated anywhere.
        let mut total = Resources::new();
        for (agent_id, agent) in &w.h.master.agents {
            prop_assert_eq!(agent.status, AgentStatus::Active);
            let allocated = w.h.master.allocator.agent_allocated(agent_id);
            prop_assert!(allocated.is_empty(), "agent {} still has {} allocated", agent_id, allocated);
            total += res(w.agents.iter().find(|a| &a.1 == agent_id).map_or("", |a| a.2));
        }
        // Reservations only re-key resources.
        prop_assert_eq!(w.h.master.allocator.cluster_total().with_reservation(None), total);
    }
}
