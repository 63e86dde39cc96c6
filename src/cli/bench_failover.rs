//! `agora bench failover`: how long a new master takes to get the whole
//! cluster back (issue 6, "failover at scale, measured").
//!
//! Two real master servers run in this process, each on a tokio runtime of
//! its own, on 127.0.0.1 with the same work dir (registry). N
//! emulated agents (the real agent link, simulated containerizer) run in a
//! child process (`agora bench failover-agents`, hidden), because 10,000
//! agents need 10,000 client sockets besides the master's 10,000 and the
//! hard `RLIMIT_NOFILE` here is 20,000 per process. F frameworks run the
//! SDK's `Service` under the real driver in this process. Every agent and
//! framework is given both addresses, [old, new], and finds the new master
//! through its own reconnection logic.
//!
//! Once every task runs, the old master's runtime is dropped
//! (`shutdown_background`): its core loop and every connection task die at
//! once and their sockets close, which is what the peers see of a `kill -9`.
//! The new master starts at the kill, as a standby elected at that instant
//! does (the election itself, an etcd lease, is not part of this figure): it
//! binds its address (chosen at the start, so the clients know it), loads
//! the registry the old master wrote, recovers and serves. The clock starts
//! at the kill.
//! The new master is watched through its operator API (`WatchEvents`:
//! one event per agent registration and per framework subscription, cheap
//! for the master); the frameworks report their re-subscription and the
//! reconciliation answers; one `/metrics` scrape at the end checks the new
//! master's own counts (agents, frameworks, tasks).
#![allow(clippy::disallowed_methods)] // a benchmark driver: it reads the clock

use crate::cli::local::temp_work_dir;
use agora_agent::{AgentConfig, ContainerizerKind};
use agora_master::MasterConfig;
use agora_master::server::{self, MasterServer, ServerConfig};
use agora_proto::{CommandInfo, FrameworkInfo, Offer, Resources, Scalar, TaskState, TaskStatus, pb};
use agora_sdk::driver::{Backoff, Driver, DriverConfig};
use agora_sdk::frameworks::{Service, ServiceConfig, TaskTemplate};
use agora_sdk::{Calls, Scheduler, Subscribed, TaskRequest};
use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// Each task's share: small, so that many fit on one emulated agent.
const TASK_CPUS_MILLI: u64 = 100;
const TASK_MEM_MIB: u64 = 32;
/// Tasks run far longer than any benchmark (simulated: no process).
const TASK_COMMAND: &str = "sleep 1d";
/// How often this process looks at its own progress counters (in memory).
const POLL: Duration = Duration::from_millis(5);
/// Agents started per batch in the child, and the pause between batches:
/// 10,000 connections at once would overflow the listen backlog and cost
/// SYN retransmissions (1 s each) during setup, which is not measured.
const START_BATCH: usize = 250;
const START_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, clap::Args)]
pub(crate) struct FailoverArgs {
    /// Emulated agents (simulated containerizer), in a child process.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Long-running tasks, spread evenly over the frameworks; the agents are
    /// sized so that they exactly fit.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Frameworks (the SDK's `Service` under the real driver).
    #[arg(long, default_value_t = 10)]
    frameworks: usize,
    /// The masters' allocation interval (the master's default).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    allocation_interval: Duration,
    /// The agents' first reconnection delay (their default: 100 ms, halved at
    /// random by jitter, doubling on each failure).
    #[arg(long, value_parser = humantime::parse_duration)]
    agent_backoff: Option<Duration>,
    /// The frameworks' first reconnection delay (the driver's default: 500 ms,
    /// the wait drawn in its upper half).
    #[arg(long, value_parser = humantime::parse_duration)]
    framework_backoff: Option<Duration>,
    /// Give up on a phase (setup, launch, failover) after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The agents' side (`agora bench failover-agents`), started by `failover`.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentsArgs {
    /// The master addresses every agent is given, in order.
    #[arg(long, value_delimiter = ',', required = true)]
    masters: Vec<String>,
    /// How many agents.
    #[arg(long)]
    agents: usize,
    /// What each agent offers.
    #[arg(long)]
    resources: Resources,
    /// The agents' first reconnection delay.
    #[arg(long, value_parser = humantime::parse_duration)]
    backoff: Option<Duration>,
    /// The agents' shared work directory (the simulated containerizer writes nothing).
    #[arg(long)]
    work_dir: PathBuf,
}

/// What one run measured; `--json` prints it as is. Times in seconds.
#[derive(Debug, Serialize)]
struct FailoverReport {
    agents: usize,
    tasks: usize,
    frameworks: usize,
    /// From starting the agents to every agent registered with the old master.
    agents_registered: f64,
    /// From starting the frameworks to every task RUNNING (their view).
    launch: f64,
    /// How long binding the new master took after the kill (socket, registry load).
    new_master_bind: f64,
    /// From the kill to the first agent back on the new master.
    first_agent_back: f64,
    /// Kill to every agent re-registered, and the percentiles of their times.
    all_agents_back: f64,
    /// Whether some agents re-registered before the watch was open, so that
    /// `all_agents_back` is the end of the `/metrics` scrape that saw every
    /// agent active (an upper bound) and the percentiles cover only the
    /// agents the watch saw.
    agents_back_by_scrape: bool,
    agents_back_p50: f64,
    agents_back_p90: f64,
    agents_back_p99: f64,
    /// Kill to every framework re-subscribed (the new master's SUBSCRIBED).
    all_frameworks_back: f64,
    /// Kill to the first framework re-subscribed.
    first_framework_back: f64,
    /// Kill to every task reported RUNNING to its framework by the new master
    /// (reconciliation answers); `None` when some were answered otherwise.
    all_tasks_reconciled: Option<f64>,
    /// Reconciliation answers after the failover that were not RUNNING (a
    /// task the new master does not know; tasks of agents not back yet get
    /// no answer at all).
    reconciled_not_running: usize,
    /// Reconciliation answers after the failover that were RUNNING.
    reconciled_running: usize,
    /// Kill to the end of the `/metrics` scrape that saw every agent,
    /// framework and task on the new master.
    verified: f64,
    /// What the new master counted at the end.
    master_agents_active: u64,
    master_frameworks_connected: u64,
    master_tasks: u64,
    /// CPU time and run-queue wait (runnable, but no core free) during the
    /// failover (kill to every agent and framework back), seconds, from
    /// `/proc/*/task/*/schedstat`: the new master's threads, the agents'
    /// process, and the rest of this process (the frameworks, the watch).
    new_master_cpu: f64,
    new_master_waiting: f64,
    agents_cpu: f64,
    agents_waiting: f64,
    frameworks_cpu: f64,
    /// The load average over the last minute when the run ended (other
    /// work on the machine; 2 cores).
    load_average: f64,
    /// One `/metrics` scrape of the old master with every task running (it
    /// takes a full snapshot of the core: a known cost at this size).
    metrics_scrape: f64,
    /// Peak resident memory, MiB: this process (two masters, frameworks) and
    /// the agents' process.
    peak_rss_masters_mib: f64,
    peak_rss_agents_mib: f64,
}

pub(crate) async fn run(args: FailoverArgs) -> anyhow::Result<ExitCode> {
    if args.agents == 0 || args.frameworks == 0 || args.tasks == 0 {
        bail!("--agents, --tasks and --frameworks must be at least 1");
    }
    raise_nofile_limit();
    let work_dir = temp_work_dir("agora-bench-failover");
    std::fs::create_dir_all(&work_dir).with_context(|| format!("cannot create {}", work_dir.display()))?;
    let result = measure(&args, &work_dir).await;
    let _ = std::fs::remove_dir_all(&work_dir);
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// A runtime that is dropped without waiting for its tasks, as a killed
/// process would be (and as tokio requires inside an async context).
#[derive(Debug)]
struct Abandoned(Option<Runtime>);

impl Abandoned {
    fn kill(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.kill();
    }
}

impl std::ops::Deref for Abandoned {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        // Only `kill` empties it, and nothing uses it after that.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("a killed runtime is not used"))
    }
}

/// A runtime of its own per master, so that dropping it kills everything the
/// master runs (core loop, connection tasks, sockets) at once.
fn master_runtime(name: &str) -> anyhow::Result<Abandoned> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map(|runtime| Abandoned(Some(runtime)))
        .with_context(|| format!("cannot start the {name} runtime"))
}

fn master_config(allocation_interval: Duration, work_dir: PathBuf, id: &str, seed: u64) -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        master: MasterConfig {
            master_id: id.to_owned(),
            allocation_interval,
            ..MasterConfig::default()
        },
        seed,
        work_dir: Some(work_dir),
        etcd: None,
    }
}

/// Binds a master on `runtime` (its listener belongs to that runtime's reactor).
async fn bind_on(runtime: &Runtime, config: ServerConfig) -> anyhow::Result<MasterServer> {
    runtime
        .spawn(server::bind(config))
        .await
        .context("binding the master crashed")?
        .context("cannot start a master")
}

/// The agents' child process; killed when dropped.
#[derive(Debug)]
struct AgentsProcess(Child);

impl Drop for AgentsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn measure(args: &FailoverArgs, work_dir: &std::path::Path) -> anyhow::Result<FailoverReport> {
    let registry = work_dir.join("master");
    let mut old_runtime = master_runtime("old-master")?;
    let mut new_runtime = master_runtime("new-master")?;
    let old = bind_on(
        &old_runtime,
        master_config(args.allocation_interval, registry.clone(), "old", 1),
    )
    .await?;
    // The new master's address is fixed now (the clients are given it) but
    // it binds only at the kill: it must load the registry the old master
    // wrote, as an elected standby does.
    let new_addr = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .context("cannot reserve a port for the new master")?;
    let old_addr = old.local_addr();
    old_runtime.spawn(old.run(std::future::pending()));
    let masters = [old_addr.to_string(), new_addr.to_string()];

    // Agents sized so that the tasks fill them exactly: nothing is left to
    // offer, so the failover is not mixed with offer traffic.
    let per_agent = args.tasks.div_ceil(args.agents) as u64;
    let agent_resources = Resources::new()
        .with_scalar(Resources::CPUS, None, Scalar::from_milli(TASK_CPUS_MILLI * per_agent))
        .with_scalar(Resources::MEM, None, Scalar::from_units(TASK_MEM_MIB * per_agent));
    if !args.json {
        eprintln!(
            "old master {old_addr}, new master {new_addr}; starting {} agents ({agent_resources} each)...",
            args.agents
        );
    }
    let agents_started = Instant::now();
    let mut agents = spawn_agents(args, &masters, &agent_resources, work_dir)?;
    let deadline = Deadline::new(args.timeout, "every agent registered with the old master");
    let mut said = Instant::now();
    loop {
        let active = scrape(old_addr).await?.agents_active;
        if active >= args.agents as u64 {
            break;
        }
        if !args.json && said.elapsed() > Duration::from_secs(5) {
            eprintln!("  {active} agents registered");
            said = Instant::now();
        }
        check_alive(&mut agents.0)?;
        deadline.wait().await?;
    }
    let agents_registered = agents_started.elapsed();

    if !args.json {
        eprintln!(
            "{} agents registered in {:.2} s; {} frameworks launching {} tasks...",
            args.agents,
            agents_registered.as_secs_f64(),
            args.frameworks,
            args.tasks
        );
    }
    let probes: Vec<Arc<Mutex<Progress>>> = (0..args.frameworks)
        .map(|_| Arc::new(Mutex::new(Progress::default())))
        .collect();
    let launch_started = Instant::now();
    let mut drivers = Vec::new();
    for (f, probe) in probes.iter().enumerate() {
        let instances = args.tasks / args.frameworks + usize::from(f < args.tasks % args.frameworks);
        let request = TaskRequest::new(
            Resources::new()
                .with_scalar(Resources::CPUS, None, Scalar::from_milli(TASK_CPUS_MILLI))
                .with_scalar(Resources::MEM, None, Scalar::from_units(TASK_MEM_MIB)),
        );
        let template = TaskTemplate::new(format!("f{f}"), CommandInfo::shell(TASK_COMMAND), request);
        let service = Service::new(ServiceConfig::new(instances, template))?;
        let mut info = FrameworkInfo::new(format!("failover-bench-{f}"));
        // The new master must find the framework still there to fail over to.
        info.failover_timeout = Duration::from_secs(600);
        let mut config = DriverConfig::new(masters.clone(), info);
        if let Some(initial) = args.framework_backoff {
            config.backoff = Backoff {
                initial,
                ..Backoff::DEFAULT
            };
        }
        config.jitter_seed = Some(f as u64);
        let mut driver = Driver::new(config, Probed::new(service, instances, Arc::clone(probe)))?;
        drivers.push(tokio::spawn(async move { driver.run().await }));
    }
    let deadline = Deadline::new(args.timeout, "every task RUNNING");
    loop {
        let running = probes.iter().map(|p| lock(p).running.len()).sum::<usize>();
        if running >= args.tasks {
            break;
        }
        if !args.json && said.elapsed() > Duration::from_secs(5) {
            eprintln!("  {running} tasks running");
            said = Instant::now();
        }
        check_alive(&mut agents.0)?;
        deadline.wait().await?;
    }
    let launch = launch_started.elapsed();
    if !args.json {
        eprintln!("{} tasks running in {:.2} s", args.tasks, launch.as_secs_f64());
    }
    // Every RUNNING acknowledged, so no agent has updates to resend; the
    // scrape's own time is the cost of observing through `/metrics`.
    let deadline = Deadline::new(args.timeout, "every status update acknowledged");
    let metrics_scrape = loop {
        let started = Instant::now();
        let counts = scrape(old_addr).await?;
        let took = started.elapsed();
        if counts.acknowledgements >= counts.status_updates && counts.tasks >= args.tasks as u64 {
            break took;
        }
        deadline.wait().await?;
    };

    for probe in &probes {
        lock(probe).failed_over = true;
    }
    if !args.json {
        eprintln!("killing the old master...");
    }
    let before = Cpu::read(agents.0.id());
    let killed = Instant::now();
    old_runtime.kill();
    // The new master starts at the kill (an election at that instant): it
    // binds, loads the registry the old master wrote (agents, frameworks)
    // and serves. Clients that try it before it listens are refused and
    // retry after their backoff, as with a standby that is not elected yet.
    let bind_started = Instant::now();
    let mut new_config = master_config(args.allocation_interval, registry, "new", 2);
    new_config.listen = new_addr;
    let new = bind_on(&new_runtime, new_config).await?;
    let new_master_bind = bind_started.elapsed();
    let (stop_new, new_stopped) = tokio::sync::oneshot::channel::<()>();
    let new_serving = new_runtime.spawn(new.run(async move {
        let _ = new_stopped.await;
    }));
    // Opened within milliseconds, before the agents' first retry (50 ms at
    // the earliest); the final scrape checks the counts anyway.
    let watch = Watch::open(new_addr).await?;

    let mut all_agents = None;
    let mut agents_back_by_scrape = false;
    let mut all_frameworks = None;
    let mut all_reconciled = None;
    let mut cpu = None;
    let deadline = killed + args.timeout;
    // Agents that re-registered before the watch was open are not in it:
    // once the watch has seen nothing new for a while (the burst is over, so
    // the scrape does not slow it), one `/metrics` scrape tells whether every
    // agent is active; then "all agents back" is that scrape's end, an upper
    // bound, and `agents_back_by_scrape` says so.
    let mut last_count = (0, Instant::now());
    loop {
        let (mut agents_back, _) = watch.counts();
        if agents_back != last_count.0 {
            last_count = (agents_back, Instant::now());
        } else if all_agents.is_none() && last_count.1.elapsed() > Duration::from_millis(500) {
            last_count.1 = Instant::now();
            if scrape(new_addr)
                .await
                .is_ok_and(|c| c.agents_active >= args.agents as u64)
            {
                agents_back_by_scrape = true;
                agents_back = args.agents;
            }
        }
        let frameworks_back = probes.iter().filter(|p| lock(p).resubscribed.is_some()).count();
        let reconciled: usize = probes.iter().map(|p| lock(p).reconciled.len()).sum();
        let now = Instant::now();
        if all_agents.is_none() && agents_back >= args.agents {
            all_agents = Some(now);
        }
        if all_frameworks.is_none() && frameworks_back >= args.frameworks {
            all_frameworks = Some(now);
        }
        if all_reconciled.is_none() && reconciled >= args.tasks {
            all_reconciled = Some(now);
        }
        let settled = all_reconciled.is_some()
            // Answers other than RUNNING, and questions about tasks whose
            // agent was not back yet (the master does not answer those, as
            // Mesos does not; the SDK asks again at its next periodic
            // reconciliation), leave the figure incomplete: give up on it
            // after a short grace.
            || all_agents.zip(all_frameworks).is_some_and(|(a, f)| now > a.max(f) + Duration::from_secs(2));
        if all_agents.is_some() && all_frameworks.is_some() && cpu.is_none() {
            cpu = Some(Cpu::read(agents.0.id()).since(&before));
        }
        if all_agents.is_some() && all_frameworks.is_some() && settled {
            break;
        }
        if now > deadline {
            bail!(
                "after {:?}: {agents_back}/{} agents and {frameworks_back}/{} frameworks back, {reconciled}/{} tasks reconciled",
                args.timeout,
                args.agents,
                args.frameworks,
                args.tasks
            );
        }
        check_alive(&mut agents.0)?;
        tokio::time::sleep(POLL).await;
    }
    let counts = scrape(new_addr).await?;
    let verified = killed.elapsed();
    if counts.agents_active < args.agents as u64
        || counts.frameworks_connected < args.frameworks as u64
        || counts.tasks < args.tasks as u64
    {
        bail!(
            "the new master counts {} agents, {} frameworks, {} tasks; expected {}, {}, {}",
            counts.agents_active,
            counts.frameworks_connected,
            counts.tasks,
            args.agents,
            args.frameworks,
            args.tasks
        );
    }

    let since = |t: Instant| t.saturating_duration_since(killed).as_secs_f64();
    let agent_times = watch.agent_times(killed);
    let framework_times: Vec<f64> = probes.iter().filter_map(|p| lock(p).resubscribed).map(since).collect();
    let percentile = |p: f64| {
        let i = ((agent_times.len() as f64 * p).ceil() as usize).clamp(1, agent_times.len().max(1)) - 1;
        agent_times.get(i).copied().unwrap_or_default()
    };
    let cpu = cpu.unwrap_or_default();
    let peak_rss_agents_mib = peak_rss_mib(Some(agents.0.id())).unwrap_or_default();
    let peak_rss_masters_mib = peak_rss_mib(None).unwrap_or_default();
    let report = FailoverReport {
        agents: args.agents,
        tasks: args.tasks,
        frameworks: args.frameworks,
        agents_registered: agents_registered.as_secs_f64(),
        launch: launch.as_secs_f64(),
        new_master_bind: new_master_bind.as_secs_f64(),
        first_agent_back: agent_times.first().copied().unwrap_or_default(),
        all_agents_back: all_agents.map(since).unwrap_or_default(),
        agents_back_by_scrape,
        agents_back_p50: percentile(0.5),
        agents_back_p90: percentile(0.9),
        agents_back_p99: percentile(0.99),
        all_frameworks_back: all_frameworks.map(since).unwrap_or_default(),
        first_framework_back: framework_times.iter().copied().fold(f64::INFINITY, f64::min),
        all_tasks_reconciled: all_reconciled.map(since),
        reconciled_not_running: probes.iter().map(|p| lock(p).reconciled_not_running).sum(),
        reconciled_running: probes.iter().map(|p| lock(p).reconciled.len()).sum(),
        verified: verified.as_secs_f64(),
        master_agents_active: counts.agents_active,
        master_frameworks_connected: counts.frameworks_connected,
        master_tasks: counts.tasks,
        metrics_scrape: metrics_scrape.as_secs_f64(),
        new_master_cpu: cpu.new_master.run,
        new_master_waiting: cpu.new_master.wait,
        agents_cpu: cpu.agents.run,
        agents_waiting: cpu.agents.wait,
        frameworks_cpu: cpu.rest.run,
        load_average: load_average().unwrap_or_default(),
        peak_rss_masters_mib,
        peak_rss_agents_mib,
    };

    drop(agents);
    for driver in &drivers {
        driver.abort();
    }
    let _ = stop_new.send(());
    let _ = tokio::time::timeout(server::SHUTDOWN_GRACE, new_serving).await;
    new_runtime.kill();
    Ok(report)
}

fn print_table(r: &FailoverReport) {
    use crate::table::{Align, Table};
    let mut table = Table::new(&[
        ("AGENTS", Align::Right),
        ("TASKS", Align::Right),
        ("FRAMEWORKS", Align::Right),
        ("LAUNCH", Align::Right),
        ("AGENTS BACK", Align::Right),
        ("FRAMEWORKS BACK", Align::Right),
        ("TASKS RECONCILED", Align::Right),
        ("VERIFIED", Align::Right),
        ("PEAK RSS", Align::Right),
    ]);
    table.row(vec![
        r.agents.to_string(),
        r.tasks.to_string(),
        r.frameworks.to_string(),
        format!("{:.2} s", r.launch),
        format!("{:.3} s", r.all_agents_back),
        format!("{:.3} s", r.all_frameworks_back),
        r.all_tasks_reconciled.map_or_else(
            || {
                format!(
                    "({} of {} RUNNING, {} other)",
                    r.reconciled_running, r.tasks, r.reconciled_not_running
                )
            },
            |t| format!("{t:.3} s"),
        ),
        format!("{:.3} s", r.verified),
        format!("{:.0} + {:.0} MiB", r.peak_rss_masters_mib, r.peak_rss_agents_mib),
    ]);
    print!("{}", table.render());
    println!(
        "failover, from the kill: first agent back {:.3} s; agents back p50 {:.3} / p90 {:.3} / p99 {:.3} / all {:.3} s{}; \
         frameworks back first {:.3} / all {:.3} s",
        r.first_agent_back,
        r.agents_back_p50,
        r.agents_back_p90,
        r.agents_back_p99,
        r.all_agents_back,
        if r.agents_back_by_scrape {
            " (some agents were back before the watch opened: percentiles of those it saw, all = the /metrics scrape that saw every agent, an upper bound)"
        } else {
            ""
        },
        r.first_framework_back,
        r.all_frameworks_back
    );
    println!(
        "new master: {} agents active, {} frameworks connected, {} tasks (bound and registry loaded {:.3} s after the kill); \
         setup: agents registered in {:.2} s; one /metrics scrape with every task running: {:.3} s",
        r.master_agents_active,
        r.master_frameworks_connected,
        r.master_tasks,
        r.new_master_bind,
        r.agents_registered,
        r.metrics_scrape
    );
    println!(
        "during the failover: new master {:.2} s CPU + {:.2} s waiting for a core; agents {:.2} s CPU + {:.2} s waiting; \
         frameworks and watch {:.2} s CPU (load average {:.1} on 2 cores)",
        r.new_master_cpu, r.new_master_waiting, r.agents_cpu, r.agents_waiting, r.frameworks_cpu, r.load_average
    );
    println!(
        "peak RSS: {:.0} MiB (masters and frameworks), {:.0} MiB (agents)",
        r.peak_rss_masters_mib, r.peak_rss_agents_mib
    );
}

/// A phase's time limit.
#[derive(Debug)]
struct Deadline {
    at: Instant,
    timeout: Duration,
    what: &'static str,
}

impl Deadline {
    fn new(timeout: Duration, what: &'static str) -> Self {
        Self {
            at: Instant::now() + timeout,
            timeout,
            what,
        }
    }

    /// Sleeps before the next look, or fails once the time is up.
    async fn wait(&self) -> anyhow::Result<()> {
        if Instant::now() > self.at {
            bail!("not {} within {:?}", self.what, self.timeout);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }
}

fn check_alive(child: &mut Child) -> anyhow::Result<()> {
    match child.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => Err(anyhow!("the agents' process ended: {status}")),
        Err(e) => Err(anyhow!("cannot check the agents' process: {e}")),
    }
}

fn spawn_agents(
    args: &FailoverArgs,
    masters: &[String],
    resources: &Resources,
    work_dir: &std::path::Path,
) -> anyhow::Result<AgentsProcess> {
    let exe = std::env::current_exe().context("cannot find this executable to start the agents")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["bench", "failover-agents", "--masters", &masters.join(",")])
        .args(["--agents", &args.agents.to_string()])
        .args(["--resources", &resources.to_string()])
        .arg("--work-dir")
        .arg(work_dir.join("agents"));
    if let Some(backoff) = args.agent_backoff {
        command.args(["--backoff", &humantime::format_duration(backoff).to_string()]);
    }
    // 10,000 agents each warn that they lost the master: not worth the
    // terminal's time unless asked for.
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "error");
    }
    // The child ends when its stdin closes, should this process die first.
    let child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the agents' process")?;
    Ok(AgentsProcess(child))
}

/// `agora bench failover-agents`: runs the agents until stdin closes.
pub(crate) async fn run_agents(args: AgentsArgs) -> anyhow::Result<ExitCode> {
    raise_nofile_limit();
    std::fs::create_dir_all(&args.work_dir).with_context(|| format!("cannot create {}", args.work_dir.display()))?;
    // Ends the process as the parent goes: a dead master's agents are not
    // worth a graceful stop.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let (_stop, stopped) = tokio::sync::watch::channel(());
    for i in 0..args.agents {
        let mut config = AgentConfig::new(args.masters.clone(), args.resources.clone());
        config.containerizer = ContainerizerKind::Simulated;
        config.work_dir.clone_from(&args.work_dir);
        config.hostname = Some(format!("agent-{i}"));
        config.seed = Some(i as u64);
        config.checkpoint = false;
        if let Some(initial) = args.backoff {
            config.reconnect.initial = initial;
        }
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            if let Err(error) = agora_agent::run(config, shutdown).await {
                eprintln!("agent {i}: {error}");
            }
        });
        if (i + 1) % START_BATCH == 0 {
            tokio::time::sleep(START_PAUSE).await;
        }
    }
    std::future::pending::<()>().await;
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit on open files to the hard one: a master with
/// 10,000 agents holds 10,000 sockets.
fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("warning: cannot raise the open files limit from {soft} to {hard}: {error}");
    }
}

/// Peak resident memory (`VmHWM`) of a process (`None`: this one), in MiB.
fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The load average over the last minute.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Scheduler time of a group of threads, seconds.
#[derive(Clone, Copy, Debug, Default)]
struct Sched {
    /// On a core.
    run: f64,
    /// Runnable, waiting for a core.
    wait: f64,
}

impl Sched {
    fn minus(self, earlier: Self) -> Self {
        Self {
            run: self.run - earlier.run,
            wait: self.wait - earlier.wait,
        }
    }
}

/// Where the CPU went: the new master's threads, the rest of this process,
/// the agents' process. Threads that ended (the old master's) drop out,
/// which is why the rest leaves the old master's threads out too.
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    new_master: Sched,
    rest: Sched,
    agents: Sched,
}

impl Cpu {
    fn read(agents_pid: u32) -> Self {
        let mut cpu = Self::default();
        for (comm, sched) in threads("self") {
            let group = if comm.starts_with("new-master") {
                &mut cpu.new_master
            } else if comm.starts_with("old-master") {
                continue;
            } else {
                &mut cpu.rest
            };
            group.run += sched.run;
            group.wait += sched.wait;
        }
        for (_, sched) in threads(&agents_pid.to_string()) {
            cpu.agents.run += sched.run;
            cpu.agents.wait += sched.wait;
        }
        cpu
    }

    fn since(self, earlier: &Self) -> Self {
        Self {
            new_master: self.new_master.minus(earlier.new_master),
            rest: self.rest.minus(earlier.rest),
            agents: self.agents.minus(earlier.agents),
        }
    }
}

/// Each thread of process `pid` (`self` for this one): its name and its
/// scheduler times (`schedstat`: nanoseconds on a core, waiting, slices).
fn threads(pid: &str) -> Vec<(String, Sched)> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let dir = entry.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            let schedstat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
            let mut fields = schedstat.split_whitespace().map(|f| f.parse::<u64>().ok());
            let run = fields.next()??;
            let wait = fields.next()??;
            Some((
                comm.trim().to_owned(),
                Sched {
                    run: run as f64 / 1e9,
                    wait: wait as f64 / 1e9,
                },
            ))
        })
        .collect()
}

fn lock(probe: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    // A panicked framework poisons nothing worth stopping the benchmark for.
    probe.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one framework has seen, read by the benchmark while it runs.
#[derive(Debug, Default)]
struct Progress {
    /// Set just before the kill: later subscriptions and answers count for the failover.
    failed_over: bool,
    /// Tasks reported RUNNING before the failover.
    running: HashSet<agora_proto::TaskId>,
    /// When the framework subscribed after the failover.
    resubscribed: Option<Instant>,
    /// Tasks reported RUNNING by the new master.
    reconciled: HashSet<agora_proto::TaskId>,
    /// Answers from the new master that were not RUNNING.
    reconciled_not_running: usize,
}

/// [`Service`], reporting its progress to the benchmark.
#[derive(Debug)]
struct Probed {
    inner: Service,
    progress: Arc<Mutex<Progress>>,
}

impl Probed {
    fn new(inner: Service, instances: usize, progress: Arc<Mutex<Progress>>) -> Self {
        lock(&progress).running.reserve(instances);
        Self { inner, progress }
    }
}

impl Scheduler for Probed {
    fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
        {
            let mut progress = lock(&self.progress);
            if progress.failed_over && progress.resubscribed.is_none() {
                progress.resubscribed = Some(Instant::now());
            }
        }
        self.inner.subscribed(calls, info);
    }

    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        self.inner.offers(calls, offers);
    }

    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        {
            let mut progress = lock(&self.progress);
            match (progress.failed_over, status.state) {
                (false, TaskState::Running) => {
                    progress.running.insert(status.task_id.clone());
                }
                (true, TaskState::Running) => {
                    progress.reconciled.insert(status.task_id.clone());
                }
                (true, _) => progress.reconciled_not_running += 1,
                (false, _) => {}
            }
        }
        self.inner.status_update(calls, status);
    }
}

/// The new master's cluster events: when each agent registered and each
/// framework subscribed, as this process received them.
#[derive(Debug)]
struct Watch {
    seen: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    agents: BTreeMap<String, Instant>,
    frameworks: BTreeMap<String, Instant>,
}

impl Watch {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut client = pb::operator_client::OperatorClient::connect(format!("http://{addr}"))
            .await
            .context("cannot reach the new master's operator API")?;
        let mut stream = client
            .watch_events(pb::WatchEventsRequest {})
            .await
            .map_err(|status| anyhow!("the new master refused to be watched: {status}"))?
            .into_inner();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(event)) => {
                        let now = Instant::now();
                        let mut seen = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        match event.event {
                            Some(pb::cluster_event::Event::AgentAdded(agent)) => {
                                if let Some(id) = agent.id {
                                    seen.agents.entry(id.value).or_insert(now);
                                }
                            }
                            Some(pb::cluster_event::Event::FrameworkAdded(framework)) => {
                                if let Some(id) = framework.id {
                                    seen.frameworks.entry(id.value).or_insert(now);
                                }
                            }
                            _ => {}
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        eprintln!("warning: the watch of the new master ended: {status}");
                        break;
                    }
                }
            }
        });
        Ok(Self { seen })
    }

    /// Agents and frameworks seen so far.
    fn counts(&self) -> (usize, usize) {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (seen.agents.len(), seen.frameworks.len())
    }

    /// Each agent's first registration, in seconds since `from`, sorted.
    fn agent_times(&self, from: Instant) -> Vec<f64> {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut times: Vec<f64> = seen
            .agents
            .values()
            .map(|t| t.saturating_duration_since(from).as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        times
    }
}

/// What a master's `/metrics` says of its size.
#[derive(Debug, Default)]
struct Counts {
    agents_active: u64,
    frameworks_connected: u64,
    tasks: u64,
    status_updates: u64,
    acknowledgements: u64,
}

/// One scrape of `/metrics` (plain HTTP/1.1 over a fresh connection).
async fn scrape(addr: SocketAddr) -> anyhow::Result<Counts> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach {addr}"))?;
    stream
        .write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .with_context(|| format!("cannot ask {addr} for its metrics"))?;
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .await
        .with_context(|| format!("cannot read the metrics of {addr}"))?;
    if !body.starts_with("HTTP/1.1 200") {
        bail!("{addr}/metrics answered {}", body.lines().next().unwrap_or("nothing"));
    }
    let mut counts = Counts::default();
    for line in body.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        // Counters and gauges are printed as floats.
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        match name {
            "agora_master_agents{status=\"active\"}" => counts.agents_active = value,
            "agora_master_frameworks{connected=\"true\"}" => counts.frameworks_connected = value,
            "agora_master_tasks" => counts.tasks = value,
            "agora_master_status_updates_total" => counts.status_updates = value,
            "agora_master_acknowledgements_total" => counts.acknowledgements = value,
            _ => {}
        }
    }
    Ok(counts)
}
