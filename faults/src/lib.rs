//! Seeded fault injection over Agora's pure cores.
//!
//! One seed decides everything: a [`Master`] core, `agents` [`AgentCore`]s
//! on the simulated containerizer, `frameworks` SDK [`Session`]s running a
//! small scheduler, and a modelled network between them, all on virtual
//! time. During the chaos phase the network delays messages (which reorders
//! them across connections), loses them (a lost message breaks its
//! connection, as a reset TCP stream does), duplicates them, agents crash and
//! restart from their checkpoint (encoded to bytes and decoded again, some
//! of their tasks' processes dying meanwhile), agents are partitioned
//! (black-holed: neither side hears a close, and what either side sends on a
//! stream that stays open arrives, in order, only when the partition ends,
//! as TCP retransmits it: a stream never loses a message and goes on),
//! connections are cut, and the
//! master fails over to a new instance that rebuilds its state from the
//! agents' re-registrations and the frameworks' re-subscriptions. A quiet
//! phase without faults follows, in which everything must settle.
//!
//! After every event: the master's own invariants ([`Master::check_invariants`]:
//! no range value in two offers or tasks, nothing beyond an agent's total),
//! no task live on two agents, no agent running more than its total, and
//! nothing delivered from a deposed master. At the end: every task a
//! framework launched either runs on an agent, where the master knows it runs
//! and the framework was told RUNNING, or runs nowhere and the framework was
//! told a terminal state; every status update an agent sent was acknowledged
//! back to an agent and none is pending.

use agora_agent::checkpoint::{self, plan_recovery};
use agora_agent::{
    AgentCore, ContainerId, CoreConfig, Input as AgentInput, Output as AgentOutput, SimulatedContainerizer,
};
use agora_master::durable::Records;
use agora_master::{ConnectionId, Input as MasterInput, Master, MasterConfig, Output as MasterOutput};
use agora_proto::{
    AgentId, AgentInfo, AgentMessage, Call, Capability, CommandInfo, Event, FrameworkCall, FrameworkInfo,
    MasterMessage, Offer, OfferId, Resources, StatusUuid, TaskId, TaskInfo, TaskReason, TaskState, TaskStatus,
    Timestamp,
};
use agora_sdk::{Calls, Scheduler, Session, Subscribed};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A bug re-introduced on purpose, to show the harness catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// A restarting agent loses the unacknowledged updates of its checkpoint.
    DropUnackedOnRestart,
}

impl Bug {
    /// Its name in `AGORA_FAULT_BUG`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DropUnackedOnRestart => "drop-unacked-on-restart",
        }
    }

    /// The bug named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::DropUnackedOnRestart].into_iter().find(|b| b.name() == name)
    }
}

/// One run's settings; everything else follows from `seed`.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// The seed.
    pub seed: u64,
    /// Agents (each `cpus:4;mem:1024;ports:[31000-31003]`).
    pub agents: usize,
    /// Frameworks.
    pub frameworks: usize,
    /// Tasks each framework launches in all.
    pub tasks_per_framework: u32,
    /// How long faults are injected (virtual time).
    pub chaos: Duration,
    /// How long the quiet phase lasts (virtual time).
    pub quiet: Duration,
    /// Whether the master may fail over.
    pub master_failover: bool,
    /// A deliberate bug, if any.
    pub bug: Option<Bug>,
}

impl FaultConfig {
    /// The default run for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            agents: 4,
            frameworks: 2,
            tasks_per_framework: 12,
            chaos: Duration::from_secs(8 * 60),
            quiet: Duration::from_secs(30 * 60),
            master_failover: true,
            bug: None,
        }
    }
}

/// What a successful run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Events handled (each followed by the invariant checks).
    pub events: u64,
    /// Tasks launched by the frameworks.
    pub launched: u64,
    /// Messages lost (each breaking its connection).
    pub lost: u64,
    /// Messages duplicated.
    pub duplicated: u64,
    /// Agent crashes (each followed by a restart from the checkpoint).
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Connections cut.
    pub cuts: u64,
    /// Master failovers.
    pub failovers: u64,
}

/// A broken invariant, with what reproduces it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The deliberate bug of the run, if any.
    pub bug: Option<Bug>,
    /// Virtual time of the failure.
    pub at: Timestamp,
    /// What broke.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bug = self
            .bug
            .map(|b| format!("AGORA_FAULT_BUG={} ", b.name()))
            .unwrap_or_default();
        write!(
            f,
            "fault injection: seed {} failed at t={:.3}s: {}\n  reproduce: {bug}AGORA_FAULT_SEED={} AGORA_FAULT_TRACE=1 cargo test -p agora-faults --test faults one_seed -- --nocapture",
            self.seed,
            self.at.as_secs_f64(),
            self.message,
            self.seed
        )
    }
}

impl std::error::Error for Failure {}

/// Runs one seed.
pub fn run(config: &FaultConfig) -> Result<Report, Failure> {
    let mut world = World::new(config.clone());
    match world.run() {
        Ok(()) => Ok(world.report),
        Err(message) => Err(Failure {
            seed: config.seed,
            bug: config.bug,
            at: world.now,
            message,
        }),
    }
}

// ----- the framework --------------------------------------------------------

const TASK_RESOURCES: &str = "cpus:1;mem:128";
const PORTS: std::ops::Range<u64> = 31000..31004;

/// Launches `max` tasks, one per offer, each sleeping a while (some for a
/// day, some failing at once), and remembers the last state it was told.
#[derive(Debug)]
struct Sched {
    rng: StdRng,
    next: u32,
    max: u32,
    seen_offers: BTreeSet<OfferId>,
    /// The task's agent and the last state the framework was told.
    tasks: BTreeMap<TaskId, (AgentId, Option<TaskState>)>,
}

impl Sched {
    fn command(&mut self) -> CommandInfo {
        match self.rng.random_range(0..10) {
            0 => CommandInfo::shell("false"),
            1..=3 => CommandInfo::shell("sleep 1d"),
            _ => CommandInfo::shell(format!("sleep {}", self.rng.random_range(5..300))),
        }
    }
}

impl Scheduler for Sched {
    fn subscribed(&mut self, calls: &mut Calls, _info: &Subscribed) {
        // Explicit reconciliation of what it does not know to be over.
        let open = self.open_tasks();
        if !open.is_empty() {
            calls.reconcile(open);
        }
    }

    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let need: Resources = TASK_RESOURCES.parse().unwrap_or_default();
        for offer in offers {
            if !self.seen_offers.insert(offer.id.clone()) {
                continue;
            }
            let port = PORTS.clone().find_map(|p| {
                let with_port: Resources = format!("{TASK_RESOURCES};ports:[{p}-{p}]").parse().ok()?;
                offer.resources.contains(&with_port).then_some(with_port)
            });
            match port {
                Some(resources) if self.next < self.max && offer.resources.contains(&need) => {
                    self.next += 1;
                    let task_id = TaskId::new(format!("t{}", self.next)).unwrap_or_else(|_| unreachable!());
                    let task = TaskInfo {
                        name: task_id.to_string(),
                        task_id: task_id.clone(),
                        agent_id: offer.agent_id.clone(),
                        resources,
                        command: self.command(),
                        kill_grace_period: None,
                    };
                    self.tasks.insert(task_id, (offer.agent_id.clone(), None));
                    calls.launch(vec![offer.id], vec![task]);
                }
                // Done launching: do not ask again for a while.
                _ if self.next >= self.max => calls.decline(
                    vec![offer.id],
                    agora_proto::Filters {
                        refuse: Duration::from_secs(600),
                    },
                ),
                _ => calls.decline(vec![offer.id], agora_proto::Filters::default()),
            }
        }
    }

    fn status_update(&mut self, _calls: &mut Calls, status: &TaskStatus) {
        if let Some((agent, state)) = self.tasks.get_mut(&status.task_id) {
            if let Some(a) = &status.agent_id {
                *agent = a.clone();
            }
            *state = Some(status.state);
        }
    }
}

impl Sched {
    fn open_tasks(&self) -> Vec<(TaskId, Option<AgentId>)> {
        self.tasks
            .iter()
            .filter(|(_, (_, s))| !s.is_some_and(TaskState::is_terminal))
            .map(|(t, (a, _))| (t.clone(), Some(a.clone())))
            .collect()
    }
}

// ----- the world ------------------------------------------------------------

/// A run that handles more events than this is stuck (a timer that never
/// clears, say): about 100 times a normal run.
const MAX_EVENTS: u64 = 500_000;

#[derive(Clone, Debug)]
enum Msg {
    ToMaster {
        conn: ConnectionId,
        input: MasterInput,
    },
    ToAgent {
        conn: ConnectionId,
        message: MasterMessage,
    },
    ToFramework {
        conn: ConnectionId,
        event: Event,
    },
    /// The far end closed `conn`: tell whoever holds it now.
    Closed {
        conn: ConnectionId,
        to_master: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Agent(usize),
    Framework(usize),
}

#[derive(Debug)]
struct Conn {
    peer: Peer,
    epoch: u64,
    open: bool,
}

struct AgentSlot {
    info: AgentInfo,
    core: Option<AgentCore<SimulatedContainerizer>>,
    conn: Option<ConnectionId>,
    next_connect: Option<Timestamp>,
    partitioned_until: Timestamp,
    restart_at: Option<Timestamp>,
    /// The checkpoint bytes left by the crashed agent.
    checkpoint: Option<Vec<u8>>,
    incarnation: u64,
}

struct FrameworkSlot {
    session: Session<Sched>,
    conn: Option<ConnectionId>,
    next_connect: Option<Timestamp>,
}

struct World {
    config: FaultConfig,
    rng: StdRng,
    now: Timestamp,
    master: Master,
    /// What the master's registry holds: its records, written after every
    /// input (the server writes when its queue drains), recovered by the
    /// next master at a failover.
    registry: Records,
    epoch: u64,
    agents: Vec<AgentSlot>,
    frameworks: Vec<FrameworkSlot>,
    conns: BTreeMap<ConnectionId, Conn>,
    next_conn: u64,
    net: BTreeMap<(Timestamp, u64), Msg>,
    seq: u64,
    /// Per connection and direction, when its last message arrives (FIFO).
    last_arrival: BTreeMap<(ConnectionId, bool), Timestamp>,
    next_fault: Timestamp,
    next_reconcile: Timestamp,
    chaos_end: Timestamp,
    end: Timestamp,
    sent: BTreeMap<StatusUuid, String>,
    acked: BTreeSet<StatusUuid>,
    report: Report,
    trace: bool,
}

fn master_config(epoch: u64) -> MasterConfig {
    MasterConfig {
        master_id: format!("m{epoch}"),
        offer_timeout: Some(Duration::from_secs(30)),
        ..MasterConfig::default()
    }
}

impl World {
    fn new(config: FaultConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let start = Timestamp::from_secs(1_000);
        let agents = (0..config.agents)
            .map(|i| AgentSlot {
                info: AgentInfo {
                    hostname: format!("h{i}"),
                    resources: format!("cpus:4;mem:1024;ports:[{}-{}]", PORTS.start, PORTS.end - 1)
                        .parse()
                        .unwrap_or_default(),
                    attributes: Default::default(),
                },
                core: None,
                conn: None,
                next_connect: None,
                partitioned_until: start,
                restart_at: Some(start),
                checkpoint: None,
                incarnation: 0,
            })
            .collect();
        let frameworks = (0..config.frameworks)
            .map(|i| {
                let mut info = FrameworkInfo::new(format!("fw{i}"));
                info.failover_timeout = Duration::from_secs(7 * 86_400);
                if i % 2 == 1 {
                    info.capabilities.insert(Capability::PartitionAware);
                }
                let sched = Sched {
                    rng: StdRng::seed_from_u64(rng.random()),
                    next: 0,
                    max: config.tasks_per_framework,
                    seen_offers: BTreeSet::new(),
                    tasks: BTreeMap::new(),
                };
                FrameworkSlot {
                    session: Session::new(sched, info),
                    conn: None,
                    next_connect: Some(start),
                }
            })
            .collect();
        Self {
            chaos_end: start + config.chaos,
            end: start + config.chaos + config.quiet,
            master: Master::new(master_config(1), rng.random()),
            registry: Records::default(),
            config,
            rng,
            now: start,
            epoch: 1,
            agents,
            frameworks,
            conns: BTreeMap::new(),
            next_conn: 0,
            net: BTreeMap::new(),
            seq: 0,
            last_arrival: BTreeMap::new(),
            next_fault: start + Duration::from_secs(20),
            next_reconcile: start + Duration::from_secs(60),
            sent: BTreeMap::new(),
            acked: BTreeSet::new(),
            report: Report::default(),
            trace: std::env::var_os("AGORA_FAULT_TRACE").is_some(),
        }
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("[{:>10.3}] {}", self.now.as_secs_f64(), what());
        }
    }

    fn chaos(&self) -> bool {
        self.now < self.chaos_end
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(next) = self.next_time()
            && next <= self.end
        {
            self.now = self.now.max(next);
            self.step()?;
            self.report.events += 1;
            if self.report.events > MAX_EVENTS {
                return Err(format!("no progress: over {MAX_EVENTS} events"));
            }
            self.check()?;
        }
        self.now = self.end;
        self.final_check()
    }

    fn next_time(&self) -> Option<Timestamp> {
        let mut times = vec![self.next_reconcile];
        times.extend(self.net.keys().next().map(|k| k.0));
        times.extend(self.master.poll_timeout());
        if self.chaos() {
            times.push(self.next_fault);
        }
        for a in &self.agents {
            times.extend(a.restart_at);
            if let Some(core) = &a.core {
                times.extend(core.poll_timeout());
                times.extend(a.next_connect.map(|t| t.max(a.partitioned_until)));
            }
        }
        for f in &self.frameworks {
            times.extend(f.next_connect);
            if f.conn.is_some() {
                times.extend(f.session.heartbeat_deadline());
            }
        }
        times.into_iter().min()
    }

    /// Handles the first thing due at `now`.
    fn step(&mut self) -> Result<(), String> {
        let now = self.now;
        if let Some((&key, _)) = self.net.iter().next()
            && key.0 <= now
        {
            let msg = self.net.remove(&key).unwrap_or_else(|| unreachable!());
            return self.deliver(msg);
        }
        if self.master.poll_timeout().is_some_and(|t| t <= now) {
            return self.master_input(MasterInput::Tick);
        }
        for i in 0..self.agents.len() {
            if self.agents[i].restart_at.is_some_and(|t| t <= now) {
                self.restart_agent(i)?;
                return Ok(());
            }
            let Some(core) = &self.agents[i].core else { continue };
            if core.poll_timeout().is_some_and(|t| t <= now) {
                return self.agent_input(i, AgentInput::Tick);
            }
            if self.agents[i].next_connect.is_some_and(|t| t <= now) && self.agents[i].partitioned_until <= now {
                self.agents[i].next_connect = None;
                let conn = self.open(Peer::Agent(i));
                self.agents[i].conn = Some(conn);
                return self.agent_input(i, AgentInput::Connected);
            }
        }
        for j in 0..self.frameworks.len() {
            if self.frameworks[j].next_connect.is_some_and(|t| t <= now) {
                self.frameworks[j].next_connect = None;
                let conn = self.open(Peer::Framework(j));
                self.frameworks[j].conn = Some(conn);
                let info = self.frameworks[j].session.framework_info().clone();
                self.send(
                    conn,
                    true,
                    Msg::ToMaster {
                        conn,
                        input: MasterInput::Subscribe { conn, info },
                    },
                );
                return Ok(());
            }
            if self.frameworks[j].conn.is_some() && self.frameworks[j].session.heartbeat_expired(now) {
                let conn = self.frameworks[j].conn.take().unwrap_or_else(|| unreachable!());
                self.frameworks[j].session.disconnected();
                self.frameworks[j].next_connect = Some(now + Duration::from_secs(1));
                self.close(conn, true);
                return Ok(());
            }
        }
        if self.chaos() && self.next_fault <= now {
            self.next_fault = now + Duration::from_millis(self.rng.random_range(2_000..30_000));
            return self.fault();
        }
        if self.next_reconcile <= now {
            self.next_reconcile = now + Duration::from_secs(60);
            for j in 0..self.frameworks.len() {
                let f = &self.frameworks[j];
                let (Some(conn), Some(id)) = (f.conn, f.session.framework_id().cloned()) else {
                    continue;
                };
                if !f.session.is_subscribed() {
                    continue;
                }
                // Explicit for the tasks it does not know to be over, then
                // implicit (every task the master knows): a task reported
                // LOST whose agent came back is RUNNING again.
                let open = f.session.scheduler().open_tasks();
                for tasks in [open, Vec::new()] {
                    let call = FrameworkCall {
                        framework_id: id.clone(),
                        call: Call::Reconcile { tasks },
                    };
                    self.send(
                        conn,
                        true,
                        Msg::ToMaster {
                            conn,
                            input: MasterInput::Call(call),
                        },
                    );
                }
            }
            return Ok(());
        }
        Ok(())
    }

    // ----- the network ------------------------------------------------------

    fn open(&mut self, peer: Peer) -> ConnectionId {
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        self.conns.insert(
            conn,
            Conn {
                peer,
                epoch: self.epoch,
                open: true,
            },
        );
        conn
    }

    fn partitioned(&self, conn: ConnectionId) -> bool {
        self.partition_end(conn).is_some()
    }

    /// When the partition `conn` is in ends, if it is in one.
    fn partition_end(&self, conn: ConnectionId) -> Option<Timestamp> {
        match self.conns.get(&conn).map(|c| c.peer) {
            Some(Peer::Agent(i)) => Some(self.agents[i].partitioned_until).filter(|&until| until > self.now),
            _ => None,
        }
    }

    /// Holds a message that reached a partitioned stream until the partition
    /// ends (the retransmission that gets through); `true` if it was held.
    fn held_by_partition(&mut self, msg: &Msg) -> bool {
        let (Msg::ToMaster { conn, .. } | Msg::ToAgent { conn, .. }) = msg else {
            return false;
        };
        // A closed stream carries nothing more: that is decided on delivery.
        if !self.conns.get(conn).is_some_and(|c| c.open) {
            return false;
        }
        let Some(until) = self.partition_end(*conn) else {
            return false;
        };
        // Same time, rising sequence: the stream's order is kept.
        self.seq += 1;
        self.net.insert((until, self.seq), msg.clone());
        true
    }

    /// Sends `msg` on `conn` towards the master (`to_master`) or the peer.
    fn send(&mut self, conn: ConnectionId, to_master: bool, msg: Msg) {
        if !self.conns.get(&conn).is_some_and(|c| c.open) {
            return;
        }
        let chaos = self.chaos();
        if chaos && self.rng.random_bool(0.01) {
            self.trace(|| format!("lost on {conn}: {msg:?}"));
            self.report.lost += 1;
            // A reset stream: both ends see it end.
            self.close(conn, !to_master);
            self.seq += 1;
            self.net.insert(
                (self.now + Duration::from_millis(5), self.seq),
                Msg::Closed { conn, to_master },
            );
            return;
        }
        let mut latency = Duration::from_micros(self.rng.random_range(500..50_000));
        if chaos && self.rng.random_bool(0.02) {
            latency += Duration::from_millis(self.rng.random_range(100..3_000));
        }
        let at = self
            .last_arrival
            .get(&(conn, to_master))
            .copied()
            .unwrap_or(Timestamp::ZERO)
            .max(self.now + latency);
        self.last_arrival.insert((conn, to_master), at);
        if chaos && duplicable(&msg) && self.rng.random_bool(0.02) {
            self.report.duplicated += 1;
            let copy = msg.clone();
            self.seq += 1;
            self.net.insert((at, self.seq), copy);
        }
        self.seq += 1;
        self.net.insert((at, self.seq), msg);
    }

    /// Closes `conn`; the other side (the master when `tell_master`, else
    /// the peer) hears of it unless partitioned.
    fn close(&mut self, conn: ConnectionId, tell_master: bool) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if !c.open {
            return;
        }
        c.open = false;
        if self.partitioned(conn) {
            return;
        }
        self.seq += 1;
        let at = self.now + Duration::from_millis(5);
        self.net.insert(
            (at, self.seq),
            Msg::Closed {
                conn,
                to_master: tell_master,
            },
        );
    }

    fn deliver(&mut self, msg: Msg) -> Result<(), String> {
        if self.held_by_partition(&msg) {
            return Ok(());
        }
        self.trace(|| format!("deliver {msg:?}"));
        match msg {
            Msg::Closed { conn, to_master } => {
                let Some(c) = self.conns.get(&conn) else { return Ok(()) };
                let peer = c.peer;
                if to_master {
                    if c.epoch != self.epoch {
                        return Ok(());
                    }
                    let input = match peer {
                        Peer::Agent(_) => MasterInput::AgentDisconnected { conn },
                        Peer::Framework(_) => MasterInput::FrameworkDisconnected { conn },
                    };
                    self.master_input(input)
                } else {
                    match peer {
                        Peer::Agent(i) if self.agents[i].conn == Some(conn) => {
                            self.agents[i].conn = None;
                            if self.agents[i].core.is_some() {
                                self.agents[i].next_connect = Some(self.now + Duration::from_secs(1));
                                self.agent_input(i, AgentInput::Disconnected)?;
                            }
                            Ok(())
                        }
                        Peer::Framework(j) if self.frameworks[j].conn == Some(conn) => {
                            self.frameworks[j].conn = None;
                            self.frameworks[j].session.disconnected();
                            self.frameworks[j].next_connect = Some(self.now + Duration::from_secs(1));
                            Ok(())
                        }
                        _ => Ok(()),
                    }
                }
            }
            Msg::ToMaster { conn, input } => {
                let Some(c) = self.conns.get(&conn) else { return Ok(()) };
                if !c.open {
                    return Ok(());
                }
                if c.epoch != self.epoch {
                    // A stream to a deposed master: it cannot reach the new one.
                    return Ok(());
                }
                self.master_input(input)
            }
            Msg::ToAgent { conn, message } => {
                let Some(c) = self.conns.get(&conn) else { return Ok(()) };
                if !c.open {
                    return Ok(());
                }
                if c.epoch != self.epoch {
                    return Err(format!(
                        "a message from deposed master epoch {} reached an agent",
                        c.epoch
                    ));
                }
                let Peer::Agent(i) = c.peer else { return Ok(()) };
                if self.agents[i].conn != Some(conn) || self.agents[i].core.is_none() {
                    return Ok(());
                }
                if let MasterMessage::Acknowledge { uuid, .. } = &message {
                    self.acked.insert(*uuid);
                }
                self.agent_input(i, AgentInput::Master(message))
            }
            Msg::ToFramework { conn, event } => {
                let Some(c) = self.conns.get(&conn) else { return Ok(()) };
                if !c.open {
                    return Ok(());
                }
                if c.epoch != self.epoch {
                    return Err(format!(
                        "an event from deposed master epoch {} reached a framework",
                        c.epoch
                    ));
                }
                let Peer::Framework(j) = c.peer else { return Ok(()) };
                if self.frameworks[j].conn != Some(conn) {
                    return Ok(());
                }
                if let Event::Error(message) = &event {
                    return Err(format!("framework {j} got an error: {message}"));
                }
                let calls = self.frameworks[j].session.handle(self.now, event);
                for call in calls {
                    if matches!(call.call, Call::Accept { .. }) {
                        self.report.launched += 1;
                    }
                    self.send(
                        conn,
                        true,
                        Msg::ToMaster {
                            conn,
                            input: MasterInput::Call(call),
                        },
                    );
                }
                Ok(())
            }
        }
    }

    // ----- the cores --------------------------------------------------------

    fn master_input(&mut self, input: MasterInput) -> Result<(), String> {
        // Refusals (calls of an unsubscribed framework, say) are normal here.
        let _ = self.master.handle(self.now, input);
        while let Some(output) = self.master.poll_output() {
            match output {
                MasterOutput::ToFramework { conn, event } => self.send(conn, false, Msg::ToFramework { conn, event }),
                MasterOutput::ToAgent { conn, message } => self.send(conn, false, Msg::ToAgent { conn, message }),
                MasterOutput::CloseFramework { conn } | MasterOutput::CloseAgent { conn } => self.close(conn, false),
                _ => {}
            }
        }
        self.registry.apply(self.master.take_durable_changes());
        Ok(())
    }

    fn agent_input(&mut self, i: usize, input: AgentInput) -> Result<(), String> {
        let now = self.now;
        let Some(core) = self.agents[i].core.as_mut() else {
            return Ok(());
        };
        core.handle(now, input);
        let mut outputs = Vec::new();
        while let Some(output) = core.poll_output() {
            outputs.push(output);
        }
        for output in outputs {
            match output {
                AgentOutput::Send(message) => {
                    if let AgentMessage::StatusUpdate { framework_id, status } = &message
                        && status.reason != Some(TaskReason::FrameworkRemoved)
                        && let Some(uuid) = status.uuid
                    {
                        self.sent.entry(uuid).or_insert_with(|| {
                            format!("{} of {framework_id}/{} on agent {i}", status.state, status.task_id)
                        });
                    }
                    if let Some(conn) = self.agents[i].conn {
                        self.send(
                            conn,
                            true,
                            Msg::ToMaster {
                                conn,
                                input: MasterInput::Agent { conn, message },
                            },
                        );
                    }
                }
                AgentOutput::Reconnect(_) => {
                    if let Some(conn) = self.agents[i].conn.take() {
                        self.close(conn, true);
                    }
                    self.agents[i].next_connect = Some(now + Duration::from_secs(2));
                    if let Some(core) = self.agents[i].core.as_mut() {
                        core.handle(now, AgentInput::Disconnected);
                        while core.poll_output().is_some() {}
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn crash_agent(&mut self, i: usize) {
        let Some(core) = self.agents[i].core.take() else { return };
        self.trace(|| format!("crash agent {i}"));
        self.report.crashes += 1;
        self.agents[i].incarnation += 1;
        let mut checkpoint = core.checkpoint();
        checkpoint.boot_id = "boot".to_owned();
        checkpoint.incarnation = self.agents[i].incarnation;
        if self.config.bug == Some(Bug::DropUnackedOnRestart) {
            checkpoint.updates.clear();
        }
        self.agents[i].checkpoint = Some(checkpoint::encode(&checkpoint));
        if let Some(conn) = self.agents[i].conn.take() {
            // The process died: its stream closes (unless partitioned).
            self.close(conn, true);
        }
        self.agents[i].next_connect = None;
        self.agents[i].restart_at = Some(self.now + Duration::from_millis(self.rng.random_range(500..40_000)));
    }

    fn restart_agent(&mut self, i: usize) -> Result<(), String> {
        self.agents[i].restart_at = None;
        let checkpoint = match self.agents[i].checkpoint.take() {
            Some(bytes) => Some(checkpoint::decode(&bytes, Path::new("mem")).map_err(|e| e.to_string())?),
            None => None,
        };
        // Some of the tasks' processes end while the agent is down.
        let alive: BTreeMap<u32, u64> = checkpoint
            .iter()
            .flat_map(|c| c.tasks.iter())
            .filter_map(|t| t.container.as_ref())
            .filter(|_| !self.rng.random_bool(0.2))
            .map(|r| (r.pid, r.start_time))
            .collect();
        let plan = plan_recovery(checkpoint, "boot", |pid| alive.get(&pid).copied());
        let mut core = AgentCore::new(
            CoreConfig::new(self.agents[i].info.clone()),
            SimulatedContainerizer::new(),
            self.rng.random(),
        );
        core.recover(self.now, plan);
        self.agents[i].core = Some(core);
        self.agents[i].next_connect = Some(self.now);
        self.agent_input(i, AgentInput::Tick)
    }

    fn fault(&mut self) -> Result<(), String> {
        let n = self.agents.len();
        let roll = self.rng.random_range(0..100);
        self.trace(|| format!("fault {roll}"));
        match roll {
            0..35 => {
                let i = self.rng.random_range(0..n);
                self.crash_agent(i);
            }
            35..60 => {
                let i = self.rng.random_range(0..n);
                self.report.partitions += 1;
                let until = self.now + Duration::from_secs(self.rng.random_range(5..120));
                self.agents[i].partitioned_until = self.agents[i].partitioned_until.max(until);
            }
            60..90 => {
                let open: Vec<ConnectionId> = self.conns.iter().filter(|(_, c)| c.open).map(|(k, _)| *k).collect();
                if !open.is_empty() {
                    self.report.cuts += 1;
                    let conn = open[self.rng.random_range(0..open.len())];
                    let to_master = self.rng.random_bool(0.5);
                    // The closing side learns it at once.
                    self.close(conn, to_master);
                    self.close_local(conn, !to_master)?;
                }
            }
            _ if self.config.master_failover => self.failover()?,
            _ => {}
        }
        Ok(())
    }

    /// The side that closed `conn` learns it at once.
    fn close_local(&mut self, conn: ConnectionId, master_side: bool) -> Result<(), String> {
        self.seq += 1;
        self.net.insert(
            (self.now, self.seq),
            Msg::Closed {
                conn,
                to_master: master_side,
            },
        );
        Ok(())
    }

    /// The leader dies; a new master takes over, recovering the registry the
    /// old one wrote. Every stream to the old one breaks.
    fn failover(&mut self) -> Result<(), String> {
        self.report.failovers += 1;
        self.epoch += 1;
        self.master = Master::new(master_config(self.epoch), self.rng.random());
        self.master.recover(self.now, self.registry.clone());
        let open: Vec<ConnectionId> = self.conns.iter().filter(|(_, c)| c.open).map(|(k, _)| *k).collect();
        for conn in open {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.open = false;
            }
            if !self.partitioned(conn) {
                self.close_local(conn, false)?;
            }
        }
        Ok(())
    }

    // ----- invariants -------------------------------------------------------

    fn check(&self) -> Result<(), String> {
        self.master
            .check_invariants()
            .map_err(|e| format!("master invariant: {e}"))?;
        let mut live: BTreeMap<ContainerId, usize> = BTreeMap::new();
        for (i, a) in self.agents.iter().enumerate() {
            let Some(core) = &a.core else { continue };
            let mut used = Resources::new();
            for t in core.running_tasks() {
                if t.state.is_terminal() {
                    continue;
                }
                used += &t.task.resources;
                let id = ContainerId::new(t.framework_id.clone(), t.task.task_id.clone());
                if let Some(other) = live.insert(id.clone(), i) {
                    return Err(format!("task {id} live on agents {other} and {i}"));
                }
            }
            if !a.info.resources.contains(&used) {
                return Err(format!("agent {i} runs {used}, beyond its total {}", a.info.resources));
            }
        }
        // A task its framework was told is over for good does not run (LOST,
        // UNREACHABLE and UNKNOWN may come back).
        for f in &self.frameworks {
            let Some(fid) = f.session.framework_id() else { continue };
            for (task_id, (_, told)) in &f.session.scheduler().tasks {
                let Some(state) = *told else { continue };
                let final_ = state.is_terminal() && state != TaskState::Lost;
                let id = ContainerId::new(fid.clone(), task_id.clone());
                if final_ && let Some(i) = live.get(&id) {
                    return Err(format!(
                        "task {id} runs on agent {i} after its framework was told {state}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn final_check(&self) -> Result<(), String> {
        let state = self.master.state();
        let master_tasks: BTreeMap<(String, String), (AgentId, TaskState)> = state
            .tasks
            .iter()
            .map(|t| {
                (
                    (t.framework_id.to_string(), t.task.task_id.to_string()),
                    (t.task.agent_id.clone(), t.state),
                )
            })
            .collect();
        let mut live: BTreeMap<(String, String), AgentId> = BTreeMap::new();
        for (i, a) in self.agents.iter().enumerate() {
            let core = a.core.as_ref().ok_or_else(|| format!("agent {i} still down"))?;
            if core.pending_updates() != 0 {
                return Err(format!(
                    "agent {i} has {} unacknowledged updates",
                    core.pending_updates()
                ));
            }
            let id = core
                .agent_id()
                .cloned()
                .ok_or_else(|| format!("agent {i} not registered"))?;
            for t in core.running_tasks() {
                if !t.state.is_terminal() {
                    live.insert((t.framework_id.to_string(), t.task.task_id.to_string()), id.clone());
                }
            }
        }
        for (uuid, what) in &self.sent {
            if !self.acked.contains(uuid) {
                return Err(format!("update {uuid} ({what}) was never acknowledged"));
            }
        }
        for (j, f) in self.frameworks.iter().enumerate() {
            let Some(fid) = f.session.framework_id() else {
                return Err(format!("framework {j} never subscribed"));
            };
            for (task_id, (_, told)) in &f.session.scheduler().tasks {
                let key = (fid.to_string(), task_id.to_string());
                match (live.get(&key), master_tasks.get(&key)) {
                    (Some(agent), Some((m_agent, m_state))) => {
                        if agent != m_agent || *m_state != TaskState::Running {
                            return Err(format!(
                                "task {fid}/{task_id} runs on {agent} but the master has it {m_state} on {m_agent}"
                            ));
                        }
                        if *told != Some(TaskState::Running) {
                            return Err(format!("task {fid}/{task_id} runs but its framework was told {told:?}"));
                        }
                    }
                    (Some(agent), None) => {
                        return Err(format!("task {fid}/{task_id} runs on {agent} unknown to the master"));
                    }
                    (None, m) => {
                        if let Some((_, s)) = m
                            && !s.is_terminal()
                        {
                            return Err(format!("the master has {fid}/{task_id} {s} but no agent runs it"));
                        }
                        if !told.is_some_and(TaskState::is_terminal) {
                            return Err(format!(
                                "task {fid}/{task_id} runs nowhere but its framework was told {told:?}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Duplicating these is harmless by protocol (retries, acknowledgements,
/// pings); a duplicated ACCEPT or SUBSCRIBE is not something a stream does.
fn duplicable(msg: &Msg) -> bool {
    match msg {
        Msg::ToMaster { input, .. } => match input {
            MasterInput::Agent { message, .. } => !matches!(message, AgentMessage::Register { .. }),
            MasterInput::Call(call) => matches!(call.call, Call::Acknowledge { .. } | Call::Reconcile { .. }),
            _ => false,
        },
        Msg::ToAgent { message, .. } => !matches!(message, MasterMessage::Registered { .. }),
        Msg::ToFramework { event, .. } => matches!(event, Event::Update(_) | Event::Heartbeat),
        Msg::Closed { .. } => false,
    }
}
