//! `agora bench launch`: how fast a one-machine cluster starts containers.
//!
//! In one process it starts a master and an agent (as `agora local` does,
//! in a fresh temp work dir), runs N tasks of `true` through the SDK's
//! `Batch` framework and measures, on the framework's clock, from the first
//! launch (the ACCEPT) to every task RUNNING and to every task FINISHED.
//! Then, in the same run, it does the same N commands with plain fork+exec
//! (`Command::new("true").spawn()` N times, then waits for all) as the floor
//! no containerizer can beat. The agent is given `cpus:N/2;mem:32N` so that
//! all N tasks (`cpus:0.5;mem:32` each) fit in one offer and run at once.
#![allow(clippy::disallowed_methods)] // a benchmark driver: it reads the clock

use crate::cli::MasterAddrs;
use crate::cli::agent::ContainerArgs;
use crate::cli::local::temp_work_dir;
use crate::client::Operator;
use crate::cluster::{ClusterOptions, LocalCluster};
use agora_agent::ContainerizerKind;
use agora_proto::{
    Call, CommandInfo, FrameworkInfo, Offer, Resources, Scalar, TaskId, TaskState, TaskStatus, Timestamp,
};
use agora_sdk::driver::{Driver, DriverConfig};
use agora_sdk::frameworks::{Batch, BatchConfig, TaskTemplate};
use agora_sdk::{Calls, Scheduler, Subscribed, TaskRequest};
use anyhow::{Context, anyhow};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Each task's share: small, so that thousands fit on one agent.
const TASK_CPUS_MILLI: u64 = 500;
const TASK_MEM_MIB: u64 = 32;
/// The longest the cluster part may take before the benchmark gives up.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Launch N `true` tasks on a one-machine cluster, against N bare fork+execs.
    Launch(LaunchArgs),
    /// The allocator alone (Mesos' allocator benchmarks A1, A2), on a virtual clock.
    Allocator(crate::cli::bench_allocator::AllocatorArgs),
    /// Master failover at scale: N emulated agents, T tasks, F frameworks; the
    /// time for a new master to get them all back after the old one is killed.
    Failover(crate::cli::bench_failover::FailoverArgs),
    /// The agents of `bench failover`, in a process of their own (started by it).
    #[command(hide = true)]
    FailoverAgents(crate::cli::bench_failover::AgentsArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct LaunchArgs {
    /// How many tasks.
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The agent's containerizer (default: the best available).
    #[arg(long)]
    containerizer: Option<ContainerizerKind>,
    /// The master's allocation interval.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    allocation_interval: Duration,
}

/// What one run measured; `--json` prints it as is.
#[derive(Debug, Serialize)]
struct LaunchReport {
    tasks: usize,
    containerizer: String,
    /// From the first ACCEPT to every task RUNNING, in seconds.
    cluster_all_running: f64,
    /// From the first ACCEPT to every task FINISHED, in seconds.
    cluster_all_finished: f64,
    /// Tasks that ended otherwise than FINISHED.
    cluster_not_finished: usize,
    /// Time to spawn every process, in seconds.
    fork_exec_all_spawned: f64,
    /// Time to spawn and reap every process, in seconds.
    fork_exec_all_exited: f64,
    /// `cluster_all_finished / fork_exec_all_exited`.
    ratio: f64,
}

pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Launch(args) => launch(args).await,
        BenchCommand::Allocator(args) => crate::cli::bench_allocator::run(args),
        BenchCommand::Failover(args) => crate::cli::bench_failover::run(args).await,
        BenchCommand::FailoverAgents(args) => crate::cli::bench_failover::run_agents(args).await,
    }
}

async fn launch(args: LaunchArgs) -> anyhow::Result<ExitCode> {
    let n = args.tasks;
    let work_dir = temp_work_dir("agora-bench");
    let count = n as u64;
    let agent_resources = Resources::new()
        .with_scalar(
            Resources::CPUS,
            None,
            Scalar::from_milli(TASK_CPUS_MILLI * count.max(1)),
        )
        .with_scalar(Resources::MEM, None, Scalar::from_units(TASK_MEM_MIB * count.max(1)));
    let cluster = LocalCluster::start(ClusterOptions {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        allocation_interval: args.allocation_interval,
        work_dir: work_dir.clone(),
        containers: ContainerArgs {
            resources: Some(agent_resources),
            containerizer: args.containerizer,
            ..ContainerArgs::default()
        },
    })
    .await?;
    let containerizer = cluster.containerizer().to_string();
    if !args.json {
        eprintln!("{n} tasks of `true` on a local agent ({containerizer} containerizer)...");
    }
    let measured = tokio::time::timeout(CLUSTER_TIMEOUT, run_batch(cluster.addr(), n)).await;
    let stopped = cluster.stop().await;
    // A thousand sandboxes are not worth keeping.
    let _ = std::fs::remove_dir_all(&work_dir);
    let timing = measured.map_err(|_| anyhow!("the tasks did not all end within {}s", CLUSTER_TIMEOUT.as_secs()))??;
    stopped?;

    if !args.json {
        eprintln!("{n} bare fork+exec of `true`...");
    }
    let (spawned, exited) = tokio::task::spawn_blocking(move || fork_exec(n))
        .await
        .context("the fork+exec baseline crashed")??;

    let report = LaunchReport {
        tasks: n,
        containerizer,
        cluster_all_running: timing.all_running.as_secs_f64(),
        cluster_all_finished: timing.all_finished.as_secs_f64(),
        cluster_not_finished: timing.not_finished,
        fork_exec_all_spawned: spawned.as_secs_f64(),
        fork_exec_all_exited: exited.as_secs_f64(),
        ratio: timing.all_finished.as_secs_f64() / exited.as_secs_f64().max(1e-9),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(if report.cluster_not_finished == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(r: &LaunchReport) {
    use crate::table::{Align, Table};
    let mut table = Table::new(&[
        ("", Align::Left),
        ("ALL STARTED", Align::Right),
        ("ALL ENDED", Align::Right),
        ("PER TASK", Align::Right),
    ]);
    let per_task = |s: f64| format!("{:.2} ms", s * 1000.0 / r.tasks.max(1) as f64);
    table.row(vec![
        format!("agora ({})", r.containerizer),
        format!("{:.3} s", r.cluster_all_running),
        format!("{:.3} s", r.cluster_all_finished),
        per_task(r.cluster_all_finished),
    ]);
    table.row(vec![
        "fork+exec".to_owned(),
        format!("{:.3} s", r.fork_exec_all_spawned),
        format!("{:.3} s", r.fork_exec_all_exited),
        per_task(r.fork_exec_all_exited),
    ]);
    print!("{}", table.render());
    println!("ratio (all ended): {:.2}x", r.ratio);
    if r.cluster_not_finished > 0 {
        println!("{} tasks did not finish", r.cluster_not_finished);
    }
}

/// Spawns `n` `true` processes, then reaps them: (all spawned, all exited).
fn fork_exec(n: usize) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let child = std::process::Command::new("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot spawn `true`")?;
        children.push(child);
    }
    let spawned = started.elapsed();
    for mut child in children {
        child.wait().context("cannot wait for `true`")?;
    }
    Ok((spawned, started.elapsed()))
}

/// What the framework measured.
#[derive(Debug)]
struct Timing {
    all_running: Duration,
    all_finished: Duration,
    not_finished: usize,
}

async fn run_batch(master: SocketAddr, n: usize) -> anyhow::Result<Timing> {
    wait_for_agent(master).await?;
    let request = TaskRequest::new(
        Resources::new()
            .with_scalar(Resources::CPUS, None, Scalar::from_milli(TASK_CPUS_MILLI))
            .with_scalar(Resources::MEM, None, Scalar::from_units(TASK_MEM_MIB)),
    );
    let template = TaskTemplate::new("bench", CommandInfo::exec("true", Vec::<String>::new()), request);
    let batch = Batch::new(BatchConfig::new(n, template))?;
    let config = DriverConfig::new([master.to_string()], FrameworkInfo::new("agora bench launch"));
    let mut driver = Driver::new(config, Timed::new(batch, n))?;
    driver.run().await.context("the benchmark framework failed")?;
    let timed = driver.into_scheduler();
    let first = timed.first_launch.ok_or_else(|| anyhow!("no task was launched"))?;
    let since = |t: Option<Timestamp>| t.map_or(Duration::ZERO, |t| t.saturating_duration_since(first));
    let not_finished = timed
        .inner
        .final_states()
        .values()
        .filter(|s| **s != TaskState::Finished)
        .count()
        + n.saturating_sub(timed.inner.final_states().len());
    Ok(Timing {
        all_running: since(timed.all_running),
        all_finished: since(timed.all_finished),
        not_finished,
    })
}

/// Waits until the agent registered, so the clock starts with an offer.
async fn wait_for_agent(master: SocketAddr) -> anyhow::Result<()> {
    let mut operator = Operator::connect(&MasterAddrs {
        masters: vec![master.to_string()],
        leader_wait: Duration::from_secs(5),
    })
    .await?;
    for _ in 0..500 {
        if operator.state().await?.agents.iter().any(|a| a.active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow!("the agent did not register within 10 s"))
}

/// [`Batch`], with the times (on the framework's clock) of the first launch,
/// of the last task to start, and of the last to end.
#[derive(Debug)]
struct Timed {
    inner: Batch,
    tasks: usize,
    first_launch: Option<Timestamp>,
    started: BTreeSet<TaskId>,
    all_running: Option<Timestamp>,
    all_finished: Option<Timestamp>,
}

impl Timed {
    const fn new(inner: Batch, tasks: usize) -> Self {
        Self {
            inner,
            tasks,
            first_launch: None,
            started: BTreeSet::new(),
            all_running: None,
            all_finished: None,
        }
    }
}

impl Scheduler for Timed {
    fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
        self.inner.subscribed(calls, info);
    }

    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let before = calls.pending().len();
        self.inner.offers(calls, offers);
        let accepted = calls.pending()[before..]
            .iter()
            .any(|c| matches!(c, Call::Accept { .. }));
        if accepted && self.first_launch.is_none() {
            self.first_launch = Some(calls.now());
        }
    }

    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        // A task that ended without a RUNNING we saw still started.
        if status.state == TaskState::Running || status.state.is_terminal() {
            self.started.insert(status.task_id.clone());
            if self.started.len() == self.tasks && self.all_running.is_none() {
                self.all_running = Some(calls.now());
            }
        }
        self.inner.status_update(calls, status);
        if self.inner.is_complete() && self.all_finished.is_none() {
            self.all_finished = Some(calls.now());
        }
    }
}
