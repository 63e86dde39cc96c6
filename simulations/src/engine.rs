//! The engine: one event loop on virtual time that drives the real master
//! core, modelled agents, a modelled network and SDK frameworks.
//!
//! Every message crosses the network as an event delayed by the configured
//! distribution; messages on one connection keep their order. A framework
//! handles one event at a time: while it decides (the modelled decision
//! time), later events wait in its inbox and its calls (accepts, declines)
//! reach the master only when the decision is over, so the offers it holds
//! stay out of the pool, as in the real system.
//!
//! The master is ticked at the earliest time it could need a tick: after an
//! input, at `max(now, last allocation + allocation_interval)` (the only
//! timer an input can bring forward once pings and heartbeats are pushed
//! beyond the run), and after a tick, at `poll_timeout()`. `poll_timeout` and
//! `Tick` scan every agent, so calling them once per input would dominate
//! the run; this calls each at most about once per allocation interval.

use crate::agent::{AgentModel, RunningTask, command_duration};
use crate::config::{DecisionMode, SimConfig};
use crate::dist::Distribution;
use crate::error::SimError;
use crate::framework::{JobFramework, SimFramework};
use crate::metrics::{DAY_SECS, FrameworkReport, MasterCounters, Report, Sample};
use crate::queue::EventQueue;
use crate::scheduler::{Job, JobQueueConfig, JobQueueScheduler, JobRecord};
use agora_master::{ConnectionId, DrfConfig, Input, Master, MasterConfig, Output};
use agora_proto::{
    AgentInfo, AgentMessage, Event, FrameworkCall, FrameworkId, FrameworkInfo, MasterMessage, Resources, Scalar,
    StatusUuid, TaskSource, TaskState, TaskStatus, Timestamp,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::time::Duration;

/// Something that happens at an instant.
#[derive(Debug)]
enum Ev {
    /// A message reaches the master.
    ToMaster(Box<Input>),
    /// A message reaches an agent.
    ToAgent(usize, Box<MasterMessage>),
    /// An event reaches a framework.
    ToFramework(usize, Box<Event>),
    /// A framework finished deciding and takes its next event.
    FrameworkReady(usize),
    /// A task's run time is over.
    TaskEnd { agent: usize, token: u64 },
    /// The next generated job of a framework arrives.
    JobArrival(usize),
    /// A job given in advance (pre-fill, trace) arrives.
    Submit(usize, Box<Job>),
    /// The master's timer.
    MasterTick,
    /// Record utilization and shares.
    Sample,
}

/// What a framework's inbox holds.
#[derive(Debug)]
enum Inbox {
    Event(Event),
    Submit(Job),
}

#[derive(Debug)]
struct Slot {
    name: String,
    driver: Box<dyn SimFramework>,
    id: Option<FrameworkId>,
    inbox: VecDeque<Inbox>,
    busy: bool,
    /// Whether its jobs count in the report (the pre-fill framework's do not).
    reported: bool,
    decision: DecisionMode,
    measured_factor: f64,
    busy_by_day: Vec<f64>,
    callbacks: u64,
    offers_received: u64,
    /// Generated jobs, with their own random stream.
    generator: Option<(crate::config::JobKind, StdRng)>,
    used: (u64, u64),
}

/// A simulation ready to run. Build it with [`Simulation::new`], add
/// frameworks or jobs if needed, then [`run`](Self::run) it.
#[derive(Debug)]
pub struct Simulation {
    config: SimConfig,
    now: Timestamp,
    end: Timestamp,
    queue: EventQueue<Ev>,
    master: Master,
    agents: Vec<AgentModel>,
    slots: Vec<Slot>,
    net_rng: StdRng,
    delay: Distribution,
    /// Last delivery time per connection, towards the master and from it.
    link_up: Vec<Timestamp>,
    link_down: Vec<Timestamp>,
    wake: Option<Timestamp>,
    last_allocation: Option<Timestamp>,
    allocation_interval: Duration,
    next_token: u64,
    next_uuid: u128,
    used: (u64, u64),
    total: (u64, u64),
    samples: Vec<Sample>,
    events: u64,
    calls_refused: u64,
    check: bool,
}

/// Derives independent seeds from the run's seed (SplitMix64).
pub(crate) fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

fn milli(v: f64) -> u64 {
    Scalar::from_f64(v).map_or(0, Scalar::milli)
}

impl Simulation {
    /// A simulation of `config`: its machines, its frameworks (each a
    /// [`JobQueueScheduler`]), and a pre-fill framework if asked.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let policy = config.policy()?;
        // Pings, heartbeats and failovers are pushed beyond the run: the
        // model has no failures, and they would cost an event per agent.
        let beyond = secs(config.duration * 2.0 + DAY_SECS);
        let master_config = MasterConfig {
            master_id: "sim".to_owned(),
            heartbeat_interval: beyond,
            agent_ping_interval: beyond,
            allocation_interval: secs(config.master.allocation_interval),
            drf: DrfConfig {
                policy,
                ..DrfConfig::default()
            },
            offer_timeout: config.master.offer_timeout.map(secs),
            ..MasterConfig::default()
        };
        let machines = config.cluster.machines as usize;
        let mut sim = Self {
            now: Timestamp::ZERO,
            end: Timestamp::ZERO + secs(config.duration),
            queue: EventQueue::new(),
            master: Master::new(master_config, derive_seed(config.seed, 1)),
            agents: (0..machines).map(|_| AgentModel::default()).collect(),
            slots: Vec::new(),
            net_rng: StdRng::seed_from_u64(derive_seed(config.seed, 2)),
            delay: config.network.delay.clone(),
            link_up: vec![Timestamp::ZERO; machines],
            link_down: vec![Timestamp::ZERO; machines],
            wake: None,
            last_allocation: None,
            allocation_interval: secs(config.master.allocation_interval),
            next_token: 0,
            next_uuid: 0,
            used: (0, 0),
            total: (
                milli(config.cluster.cpus) * machines as u64,
                milli(config.cluster.mem) * machines as u64,
            ),
            samples: Vec::new(),
            events: 0,
            calls_refused: 0,
            check: false,
            config,
        };
        let resources = Resources::new()
            .with_scalar(
                "cpus",
                None,
                Scalar::from_f64(sim.config.cluster.cpus).unwrap_or(Scalar::ZERO),
            )
            .with_scalar(
                "mem",
                None,
                Scalar::from_f64(sim.config.cluster.mem).unwrap_or(Scalar::ZERO),
            );
        for i in 0..machines {
            let info = AgentInfo {
                hostname: format!("m{i}"),
                resources: resources.clone(),
                attributes: Default::default(),
            };
            let message = AgentMessage::Register {
                info,
                agent_id: None,
                tasks: Vec::new(),
            };
            sim.send_to_master(
                i,
                Input::Agent {
                    conn: ConnectionId(i as u64),
                    message,
                },
            );
        }
        sim.add_prefill();
        for (i, f) in sim.config.frameworks.clone().into_iter().enumerate() {
            let scheduler = JobQueueScheduler::new(JobQueueConfig {
                t_job: secs(f.t_job),
                t_task: secs(f.t_task),
                retry_interval: secs(f.retry_interval),
                max_attempts_without_progress: f.max_attempts_without_progress,
                max_attempts: f.max_attempts,
                seed: derive_seed(sim.config.seed, 100 + i as u64),
            });
            let mut info = FrameworkInfo::new(f.name.clone());
            info.roles = vec![f.name.clone()];
            let slot = sim.add_framework_slot(&f.name, Box::new(JobFramework::new(scheduler, info)), true);
            let s = &mut sim.slots[slot];
            s.decision = f.decision;
            s.measured_factor = f.measured_factor;
            if let Some(kind) = f.jobs {
                let rng = StdRng::seed_from_u64(derive_seed(sim.config.seed, 200 + i as u64));
                s.generator = Some((kind, rng));
                sim.schedule_arrival(slot);
            }
        }
        let first_sample = Timestamp::ZERO;
        sim.queue.push(first_sample, Ev::Sample);
        Ok(sim)
    }

    /// Checks the master's invariants after every input, and that no master
    /// timer is missed (slow; for tests).
    #[must_use]
    pub const fn checked(mut self) -> Self {
        self.check = true;
        self
    }

    /// Adds a framework driven by any SDK scheduler (see
    /// [`SdkFramework`](crate::framework::SdkFramework)); it subscribes at
    /// time zero. Returns its index.
    pub fn add_framework(&mut self, name: &str, framework: Box<dyn SimFramework>) -> usize {
        self.add_framework_slot(name, framework, true)
    }

    /// Submits `job` to framework `index` at `job.submitted`.
    pub fn submit_at(&mut self, index: usize, job: Job) {
        self.queue.push(job.submitted, Ev::Submit(index, Box::new(job)));
    }

    /// The index of the framework called `name`.
    pub fn framework_index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Cpus and memory (MB) of one machine.
    pub const fn machine_size(&self) -> (f64, f64) {
        (self.config.cluster.cpus, self.config.cluster.mem)
    }

    /// The framework at `index`, to inspect after a run.
    pub fn framework(&self, index: usize) -> Option<&dyn SimFramework> {
        self.slots.get(index).map(|s| s.driver.as_ref())
    }

    fn add_framework_slot(&mut self, name: &str, driver: Box<dyn SimFramework>, reported: bool) -> usize {
        let index = self.slots.len();
        let info = driver.info();
        self.slots.push(Slot {
            name: name.to_owned(),
            driver,
            id: None,
            inbox: VecDeque::new(),
            busy: false,
            reported,
            decision: DecisionMode::Modelled,
            measured_factor: 1.0,
            busy_by_day: Vec::new(),
            callbacks: 0,
            offers_received: 0,
            generator: None,
            used: (0, 0),
        });
        self.link_up.push(Timestamp::ZERO);
        self.link_down.push(Timestamp::ZERO);
        let conn = self.framework_conn(index);
        self.send_to_master(conn.0 as usize, Input::Subscribe { conn, info });
        index
    }

    /// A framework that fills the cluster to `cluster.prefill` at the start.
    fn add_prefill(&mut self) {
        let c = &self.config.cluster;
        if c.prefill <= 0.0 {
            return;
        }
        let tasks = (c.prefill * f64::from(c.machines) * c.cpus / c.prefill_task_cpus).floor() as u32;
        let per_machine = ((c.cpus / c.prefill_task_cpus).floor() as u32).max(1);
        let (cpus, mem) = (c.prefill_task_cpus, c.prefill_task_mem);
        let lifetime = c.prefill_duration.clone();
        let forever = self.config.duration * 10.0 + DAY_SECS;
        let scheduler = JobQueueScheduler::new(JobQueueConfig {
            t_job: Duration::ZERO,
            t_task: Duration::ZERO,
            retry_interval: Duration::from_secs(1),
            max_attempts_without_progress: u32::MAX,
            max_attempts: u32::MAX,
            seed: derive_seed(self.config.seed, 3),
        });
        let mut info = FrameworkInfo::new("prefill");
        info.roles = vec!["prefill".to_owned()];
        let slot = self.add_framework_slot("prefill", Box::new(JobFramework::new(scheduler, info)), false);
        let mut rng = StdRng::seed_from_u64(derive_seed(self.config.seed, 4));
        // One job when tasks live forever; one per machine's worth when
        // durations are drawn, so that they end at different times.
        let chunk = if lifetime.is_some() { per_machine } else { tasks.max(1) };
        let mut left = tasks;
        while left > 0 {
            let n = left.min(chunk);
            left -= n;
            let duration = lifetime.as_ref().map_or(forever, |d| d.sample(&mut rng));
            self.submit_at(
                slot,
                Job {
                    submitted: Timestamp::ZERO,
                    tasks: n,
                    duration,
                    cpus,
                    mem,
                },
            );
        }
    }

    fn framework_conn(&self, index: usize) -> ConnectionId {
        ConnectionId((self.agents.len() + index) as u64)
    }

    fn schedule_arrival(&mut self, slot: usize) {
        let Some((kind, rng)) = self.slots[slot].generator.as_mut() else {
            return;
        };
        let gap = kind.inter_arrival.sample(rng);
        self.queue.push(self.now + secs(gap), Ev::JobArrival(slot));
    }

    fn delay(&mut self) -> Duration {
        match &self.delay {
            Distribution::Constant { value } => secs(*value),
            d => secs(d.sample(&mut self.net_rng)),
        }
    }

    /// Sends over connection `link` towards the master, leaving at `at`.
    fn send_to_master_at(&mut self, link: usize, at: Timestamp, input: Input) {
        let arrive = (at + self.delay()).max(self.link_up[link]);
        self.link_up[link] = arrive;
        self.queue.push(arrive, Ev::ToMaster(Box::new(input)));
    }

    fn send_to_master(&mut self, link: usize, input: Input) {
        self.send_to_master_at(link, self.now, input);
    }

    fn send_from_master(&mut self, link: usize, ev: Ev) {
        let arrive = (self.now + self.delay()).max(self.link_down[link]);
        self.link_down[link] = arrive;
        self.queue.push(arrive, ev);
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Result<Report, SimError> {
        self.run_until_end()?;
        Ok(self.report())
    }

    /// Runs to the end, keeping the simulation for inspection.
    pub fn run_until_end(&mut self) -> Result<(), SimError> {
        while let Some(at) = self.queue.peek_time() {
            if at > self.end {
                break;
            }
            let Some((at, ev)) = self.queue.pop() else { break };
            self.now = at;
            self.events += 1;
            self.dispatch(ev)?;
        }
        self.now = self.end;
        self.sample();
        Ok(())
    }

    /// Events processed so far.
    pub const fn events(&self) -> u64 {
        self.events
    }

    fn dispatch(&mut self, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::ToMaster(input) => self.master_input(*input)?,
            Ev::MasterTick => self.master_tick()?,
            Ev::ToAgent(agent, message) => self.agent_receives(agent, *message),
            Ev::ToFramework(slot, event) => {
                if let Event::Offers(offers) = event.as_ref() {
                    self.slots[slot].offers_received += offers.len() as u64;
                }
                self.slots[slot].inbox.push_back(Inbox::Event(*event));
                self.run_framework(slot);
            }
            Ev::FrameworkReady(slot) => {
                self.slots[slot].busy = false;
                self.run_framework(slot);
            }
            Ev::TaskEnd { agent, token } => self.task_ends(agent, token),
            Ev::JobArrival(slot) => {
                if let Some((kind, rng)) = self.slots[slot].generator.as_mut() {
                    let job = Job {
                        submitted: self.now,
                        tasks: kind.tasks.sample(rng).ceil().max(1.0).min(f64::from(u32::MAX)) as u32,
                        duration: kind.duration.sample(rng),
                        cpus: kind.cpus.sample(rng),
                        mem: kind.mem.sample(rng),
                    };
                    self.slots[slot].inbox.push_back(Inbox::Submit(job));
                    self.run_framework(slot);
                }
                self.schedule_arrival(slot);
            }
            Ev::Submit(slot, job) => {
                self.slots[slot].inbox.push_back(Inbox::Submit(*job));
                self.run_framework(slot);
            }
            Ev::Sample => {
                self.sample();
                let next = self.now + secs(self.config.sample_interval);
                if next < self.end {
                    self.queue.push(next, Ev::Sample);
                }
            }
        }
        Ok(())
    }

    // ----- master -----------------------------------------------------------

    fn master_input(&mut self, input: Input) -> Result<(), SimError> {
        if self.master.handle(self.now, input).is_err() {
            self.calls_refused += 1;
        }
        self.drain_master();
        let target = self
            .last_allocation
            .map_or(self.now, |t| (t + self.allocation_interval).max(self.now));
        if self.wake.is_none_or(|w| w > target) {
            self.set_wake(target);
        }
        self.check_master()
    }

    fn master_tick(&mut self) -> Result<(), SimError> {
        if self.wake != Some(self.now) {
            return Ok(()); // superseded by an earlier wake
        }
        self.wake = None;
        let cycles = self.master.stats().allocation_cycles;
        // A tick never fails.
        let _ = self.master.handle(self.now, Input::Tick);
        if self.master.stats().allocation_cycles > cycles {
            self.last_allocation = Some(self.now);
        }
        self.drain_master();
        if let Some(at) = self.master.poll_timeout() {
            self.set_wake(at.max(self.now + Duration::from_micros(1)));
        }
        self.check_master()
    }

    fn set_wake(&mut self, at: Timestamp) {
        self.wake = Some(at);
        self.queue.push(at, Ev::MasterTick);
    }

    fn check_master(&self) -> Result<(), SimError> {
        if !self.check {
            return Ok(());
        }
        let invariant = |reason: String| SimError::Invariant {
            at_secs: self.now.as_secs_f64(),
            reason,
        };
        self.master.check_invariants().map_err(invariant)?;
        if let Some(due) = self.master.poll_timeout()
            && self.wake.is_none_or(|w| w > due.max(self.now))
        {
            return Err(invariant(format!(
                "the engine would miss the master's timer at {:.6}s (next wake {:?})",
                due.as_secs_f64(),
                self.wake
            )));
        }
        Ok(())
    }

    fn drain_master(&mut self) {
        let agents = self.agents.len();
        while let Some(output) = self.master.poll_output() {
            match output {
                Output::ToFramework { conn, event } => {
                    let link = conn.0 as usize;
                    let Some(slot) = link.checked_sub(agents) else { continue };
                    if let Event::Subscribed { framework_id, .. } = &event
                        && let Some(s) = self.slots.get_mut(slot)
                    {
                        s.id = Some(framework_id.clone());
                    }
                    self.send_from_master(link, Ev::ToFramework(slot, Box::new(event)));
                }
                Output::ToAgent { conn, message } => {
                    let link = conn.0 as usize;
                    if link < agents {
                        self.send_from_master(link, Ev::ToAgent(link, Box::new(message)));
                    }
                }
                // Closed streams, file reads: nothing to model.
                _ => {}
            }
        }
    }

    // ----- agents -----------------------------------------------------------

    fn agent_receives(&mut self, agent: usize, message: MasterMessage) {
        match message {
            MasterMessage::Registered { agent_id, .. } => self.agents[agent].agent_id = Some(agent_id),
            MasterMessage::RunTask { framework_id, task } => {
                let duration = command_duration(&task.command.value);
                let token = self.next_token;
                self.next_token += 1;
                let framework = self.slots.iter().position(|s| s.id.as_ref() == Some(&framework_id));
                let used = (task.resources.cpus().milli(), task.resources.mem().milli());
                self.add_usage(framework, used, true);
                self.agents[agent].tasks.push(RunningTask {
                    token,
                    framework_id: framework_id.clone(),
                    task_id: task.task_id.clone(),
                    framework,
                    cpus: used.0,
                    mem: used.1,
                });
                self.queue.push(self.now + secs(duration), Ev::TaskEnd { agent, token });
                self.status_update(agent, framework_id, task.task_id, TaskState::Running);
            }
            MasterMessage::KillTask { framework_id, task_id } => {
                if let Some(task) = self.agents[agent].take_by_id(&framework_id, &task_id) {
                    self.add_usage(task.framework, (task.cpus, task.mem), false);
                    self.status_update(agent, task.framework_id, task.task_id, TaskState::Killed);
                } else {
                    self.status_update(agent, framework_id, task_id, TaskState::Dropped);
                }
            }
            MasterMessage::ShutdownFramework { framework_id } => {
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.agents[agent].tasks)
                    .into_iter()
                    .partition(|t| t.framework_id == framework_id);
                self.agents[agent].tasks = kept;
                for task in gone {
                    self.add_usage(task.framework, (task.cpus, task.mem), false);
                }
            }
            MasterMessage::Ping => self.send_to_master(
                agent,
                Input::Agent {
                    conn: ConnectionId(agent as u64),
                    message: AgentMessage::Pong,
                },
            ),
            // The modelled network loses nothing, so there is nothing to
            // retry and acknowledgements need no bookkeeping.
            MasterMessage::Acknowledge { .. } | MasterMessage::ReadFile { .. } | MasterMessage::Error(_) => {}
        }
    }

    fn task_ends(&mut self, agent: usize, token: u64) {
        if let Some(task) = self.agents[agent].take_by_token(token) {
            self.add_usage(task.framework, (task.cpus, task.mem), false);
            self.status_update(agent, task.framework_id, task.task_id, TaskState::Finished);
        }
    }

    fn add_usage(&mut self, framework: Option<usize>, (cpus, mem): (u64, u64), add: bool) {
        let apply = |u: &mut (u64, u64)| {
            if add {
                u.0 += cpus;
                u.1 += mem;
            } else {
                u.0 = u.0.saturating_sub(cpus);
                u.1 = u.1.saturating_sub(mem);
            }
        };
        apply(&mut self.used);
        if let Some(slot) = framework.and_then(|f| self.slots.get_mut(f)) {
            apply(&mut slot.used);
        }
    }

    fn status_update(
        &mut self,
        agent: usize,
        framework_id: FrameworkId,
        task_id: agora_proto::TaskId,
        state: TaskState,
    ) {
        self.next_uuid += 1;
        let mut status = TaskStatus::new(task_id, state, self.now);
        status.uuid = Some(StatusUuid::from_u128(self.next_uuid));
        status.source = Some(TaskSource::Agent);
        status.agent_id = self.agents[agent].agent_id.clone();
        self.send_to_master(
            agent,
            Input::Agent {
                conn: ConnectionId(agent as u64),
                message: AgentMessage::StatusUpdate { framework_id, status },
            },
        );
    }

    // ----- frameworks -------------------------------------------------------

    /// Runs the framework's queued callbacks until one takes time.
    fn run_framework(&mut self, slot: usize) {
        while !self.slots[slot].busy {
            let Some(item) = self.slots[slot].inbox.pop_front() else {
                return;
            };
            let now = self.now;
            let s = &mut self.slots[slot];
            let decision = match s.decision {
                DecisionMode::Modelled => match item {
                    Inbox::Event(event) => s.driver.handle(now, event),
                    Inbox::Submit(job) => s.driver.submit(now, job),
                },
                DecisionMode::Measured => {
                    // Measured decision time is wall-clock by definition; the
                    // run is then not reproducible, as documented.
                    #[allow(clippy::disallowed_methods)]
                    let started = std::time::Instant::now();
                    let mut d = match item {
                        Inbox::Event(event) => s.driver.handle(now, event),
                        Inbox::Submit(job) => s.driver.submit(now, job),
                    };
                    d.time = started.elapsed().mul_f64(s.measured_factor);
                    d
                }
            };
            s.callbacks += 1;
            let done = now + decision.time;
            if !decision.time.is_zero() {
                // Busy time counts inside the run only, split across days.
                let mut from = now.as_secs_f64();
                let to = done.min(self.end).as_secs_f64();
                while from < to {
                    let day = (from / DAY_SECS) as usize;
                    let day_end = ((day + 1) as f64 * DAY_SECS).min(to);
                    if s.busy_by_day.len() <= day {
                        s.busy_by_day.resize(day + 1, 0.0);
                    }
                    s.busy_by_day[day] += day_end - from;
                    from = day_end;
                }
            }
            let link = self.framework_conn(slot).0 as usize;
            for call in decision.calls {
                self.send_call(link, done, call);
            }
            if done > now {
                self.slots[slot].busy = true;
                self.queue.push(done, Ev::FrameworkReady(slot));
            }
        }
    }

    fn send_call(&mut self, link: usize, at: Timestamp, call: FrameworkCall) {
        self.send_to_master_at(link, at, Input::Call(call));
    }

    // ----- metrics ----------------------------------------------------------

    fn sample(&mut self) {
        let frac = |v: u64, total: u64| if total == 0 { 0.0 } else { v as f64 / total as f64 };
        let roles = self.master.roles();
        let mut shares = Vec::with_capacity(self.slots.len());
        let mut cpu_offered_by = Vec::with_capacity(self.slots.len());
        let (mut offered_cpu, mut offered_mem) = (0u64, 0u64);
        for s in &self.slots {
            let role = roles.iter().find(|r| r.role == s.name);
            let allocated = role.map_or((0, 0), |r| (r.allocated.cpus().milli(), r.allocated.mem().milli()));
            // Allocated to the role but not used by a running task: held in
            // offers (or by a task still in flight to its agent).
            let held = (
                allocated.0.saturating_sub(s.used.0),
                allocated.1.saturating_sub(s.used.1),
            );
            offered_cpu += held.0;
            offered_mem += held.1;
            shares.push(role.map_or(0.0, |r| r.dominant_share));
            cpu_offered_by.push(frac(held.0, self.total.0));
        }
        self.samples.push(Sample {
            t: self.now.as_secs_f64(),
            cpu_used: frac(self.used.0, self.total.0),
            mem_used: frac(self.used.1, self.total.1),
            cpu_offered: frac(offered_cpu, self.total.0),
            mem_offered: frac(offered_mem, self.total.1),
            shares,
            cpu_offered_by,
        });
    }

    /// The report of what ran so far.
    pub fn report(&self) -> Report {
        let mean = |f: fn(&Sample) -> f64| {
            if self.samples.is_empty() {
                0.0
            } else {
                self.samples.iter().map(f).sum::<f64>() / self.samples.len() as f64
            }
        };
        let stats = self.master.stats();
        let frameworks = self
            .slots
            .iter()
            .filter(|s| s.reported)
            .map(|s| {
                // Jobs that arrived while the framework was still busy count
                // as submitted and never attempted.
                let mut records = s.driver.job_records().to_vec();
                records.extend(s.inbox.iter().filter_map(|item| match item {
                    Inbox::Submit(job) => Some(JobRecord {
                        submitted: job.submitted,
                        first_attempt: None,
                        fully_scheduled: None,
                        attempts: 0,
                        attempts_without_progress: 0,
                        tasks: job.tasks,
                        placed: 0,
                        launched: 0,
                        abandoned: false,
                    }),
                    Inbox::Event(_) => None,
                }));
                let mut r = FrameworkReport::from_records(&s.name, &records, &s.busy_by_day, self.config.duration);
                r.callbacks = s.callbacks;
                r.offers_received = s.offers_received;
                r.tasks_failed = s
                    .driver
                    .as_any()
                    .downcast_ref::<JobFramework>()
                    .map_or(0, |j| j.scheduler().tasks_failed());
                r
            })
            .collect();
        Report {
            name: self.config.name.clone(),
            seed: self.config.seed,
            duration: self.config.duration,
            machines: self.config.cluster.machines,
            policy: self.config.master.policy.clone(),
            events: self.events,
            frameworks,
            mean_cpu_used: mean(|s| s.cpu_used),
            mean_mem_used: mean(|s| s.mem_used),
            mean_cpu_offered: mean(|s| s.cpu_offered),
            mean_mem_offered: mean(|s| s.mem_offered),
            master: MasterCounters {
                allocation_cycles: stats.allocation_cycles,
                offers_made: stats.offers_made,
                offers_accepted: stats.offers_accepted,
                offers_declined: stats.offers_declined,
                offers_rescinded: stats.offers_rescinded,
                tasks_launched: stats.tasks_launched,
                tasks_finished: stats.tasks_finished,
                calls: stats.calls,
                calls_refused: self.calls_refused,
            },
            samples: self.samples.clone(),
            sample_frameworks: self.slots.iter().map(|s| s.name.clone()).collect(),
        }
    }
}
