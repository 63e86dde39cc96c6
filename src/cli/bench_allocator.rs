//! `agora bench allocator a1|a2|a3`: the allocator benchmarks Mesos publishes
//! (reference `benchmarks.md`, section A), driving the [`Allocator`] directly
//! with a virtual clock, as Mesos' `hierarchical_allocator_benchmarks.cpp` does.
//!
//! - **A1, decline offers**: agents of `cpus:24;mem:4096;disk:4096;ports:[31000-32000]`,
//!   agent *i* already running a task of framework *i mod F*
//!   (`cpus:16;mem:2014;disk:1024`, 16 ports); then rounds in which one cycle
//!   is timed and every offer is declined with a 365-day filter. The scenario
//!   has 2F rounds; at most `--rounds` (default 50) are run and timed, the
//!   first ones, in which every agent is still offered (the expensive part:
//!   later rounds find every agent filtered).
//! - **A2, many frameworks with real launches**: 80 agents, 4 service, 500 CI
//!   and 50 analytics frameworks (19,500 tasks); each round one cycle is
//!   timed, frameworks launch greedily from their offers and decline the rest
//!   with no filter; a framework that has placed all its tasks suppresses.
//! - **A3, large and small quota**: 3,000 agents of `cpus:2;mem:2048;disk:2048`;
//!   2,500 roles with a quota of half an agent and 500 roles with a quota of
//!   two agents (each quota both the role's guarantee and its limit), one
//!   framework per role launching nothing; the first cycle (about 3,500
//!   allocations) and a second, empty cycle are timed.
//!
//! `a1 --growth` runs two A1 sweeps instead of the grid, a few rounds per
//! point: cycle time against agents (1k–50k) at a fixed number of frameworks
//! (default 1,000), and against frameworks (1–6k) at a fixed number of agents
//! (default 10,000). It prints both tables, with the time per offer (a
//! cycle's time divided by its offers: flat if the growth is linear in the
//! offers), and writes them as an SVG plot (`--out DIR`, default `.`).
//!
//! Memory is the growth of the process's resident set (`VmRSS`) over each
//! setup step, divided by the number of agents, frameworks or filters added:
//! an estimate (the heap keeps freed pages), good to the page.
#![allow(clippy::disallowed_methods)] // a benchmark driver: it reads the clock

use agora_master::allocator::reference::ReferenceDrfAllocator;
use agora_master::allocator::{Allocator, DrfAllocator, DrfConfig, Used};
use agora_proto::{AgentId, FrameworkId, Resources, Scalar, Timestamp};
use anyhow::{Context, anyhow};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Mesos' published A1 figures: (agents, frameworks, text).
const MESOS_A1: &[(usize, usize, &str)] = &[
    (10_000, 1_000, "5.42 s → 3.53 s → 1.06 s (optimised)"),
    (2_000, 2_000, "28.2 s"),
    (20_000, 2_000, "≈4.4 s (1.7 release chart)"),
];

/// Which scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// Decline offers (Mesos' reference allocator benchmark).
    A1,
    /// Many frameworks with real launches.
    A2,
    /// Large and small quota.
    A3,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AllocatorArgs {
    /// The scenario.
    scenario: Scenario,
    /// A1: one grid point with this many agents (default grid: 1k, 10k); with
    /// `--growth`, the agents held fixed while frameworks vary (default 10k).
    #[arg(long)]
    agents: Option<usize>,
    /// A1: one grid point with this many frameworks (default grid: 1, 100, 1000);
    /// with `--growth`, the frameworks held fixed while agents vary (default 1k).
    #[arg(long)]
    frameworks: Option<usize>,
    /// A1: the most rounds run and timed per point (the scenario has 2F)
    /// [default: 50; with `--growth`, 5].
    #[arg(long)]
    rounds: Option<usize>,
    /// A1: growth sweeps instead of the grid: cycle time against agents
    /// (1k, 5k, 10k, 20k, 30k, 50k) and against frameworks (1, 50, 100, 200,
    /// 500, 1k, 3k, 6k); prints both tables and writes an SVG plot.
    #[arg(long)]
    growth: bool,
    /// With `--growth`: the directory to write the plot to
    /// (`allocator-growth.svg`; `allocator-growth-reference.svg` with
    /// `--reference`) [default: .].
    #[arg(long, requires = "growth")]
    out: Option<PathBuf>,
    /// Measure the first, straightforward allocator instead (the "before" figures).
    #[arg(long)]
    reference: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One A1 grid point.
#[derive(Debug, Serialize)]
struct A1Report {
    allocator: &'static str,
    agents: usize,
    frameworks: usize,
    /// Rounds run and timed (the scenario has 2F).
    rounds: usize,
    /// The first cycle, in ms.
    first_cycle_ms: f64,
    /// Median and 99th percentile of every timed cycle, in ms.
    median_cycle_ms: f64,
    p99_cycle_ms: f64,
    /// Median time per round to decline every offer (the `recover` calls), in ms.
    median_decline_ms: f64,
    /// Offers made over all rounds.
    offers: usize,
    /// Median, over the timed cycles that made offers, of the cycle's time
    /// divided by its offers, in µs (none if no cycle made an offer).
    median_us_per_offer: Option<f64>,
    /// Filters in force at the end.
    filters: usize,
    /// Setup time (adding frameworks and agents), in ms.
    setup_ms: f64,
    /// Resident memory grown per agent, per framework and per filter, in
    /// bytes; only for the first point a process measures (later points
    /// reuse the heap freed by earlier ones).
    bytes_per_agent: Option<f64>,
    bytes_per_framework: Option<f64>,
    bytes_per_filter: Option<f64>,
    /// Mesos' published figure at this point, if any.
    mesos: Option<&'static str>,
}

/// The A2 run.
#[derive(Debug, Serialize)]
struct A2Report {
    allocator: &'static str,
    cycles: usize,
    tasks_placed: usize,
    tasks_wanted: usize,
    /// Sum of the timed cycles, in ms.
    total_allocate_ms: f64,
    /// Sum of every recover call (declines), in ms.
    total_recover_ms: f64,
    median_cycle_ms: f64,
    p99_cycle_ms: f64,
    offers: usize,
}

pub(crate) fn run(args: AllocatorArgs) -> anyhow::Result<ExitCode> {
    if args.growth && args.scenario != Scenario::A1 {
        return Err(anyhow!("--growth is an A1 mode: `agora bench allocator a1 --growth`"));
    }
    match args.scenario {
        Scenario::A1 if args.growth => a1_growth(&args),
        Scenario::A1 => a1(&args),
        Scenario::A2 => a2(&args),
        Scenario::A3 => a3(&args),
    }
}

fn res(spec: &str) -> anyhow::Result<Resources> {
    spec.parse().map_err(|e| anyhow!("bad resources {spec}: {e}"))
}

fn new_allocator(reference: bool) -> Box<dyn Allocator> {
    if reference {
        Box::new(ReferenceDrfAllocator::new(DrfConfig::default()))
    } else {
        Box::new(DrfAllocator::new(DrfConfig::default()))
    }
}

fn allocator_name(reference: bool) -> &'static str {
    if reference { "reference" } else { "drf" }
}

/// The process's resident set, in bytes (0 if unknown).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (median, p99) of `xs`, in ms.
fn percentiles(mut xs: Vec<Duration>) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    xs.sort();
    let p99 = (xs.len() * 99).div_ceil(100).max(1) - 1;
    (ms(xs[xs.len() / 2]), ms(xs[p99]))
}

fn per(bytes: u64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { bytes as f64 / n as f64 }
}

fn a1(args: &AllocatorArgs) -> anyhow::Result<ExitCode> {
    let max_rounds = args.rounds.unwrap_or(50);
    let grid: Vec<(usize, usize)> = match (args.agents, args.frameworks) {
        (None, None) => [1_000, 10_000]
            .iter()
            .flat_map(|a| [1, 100, 1_000].map(|f| (*a, f)))
            .collect(),
        (a, f) => vec![(a.unwrap_or(10_000), f.unwrap_or(1_000))],
    };
    if !args.json {
        println!(
            "A1 decline offers, allocator `{}`: rounds = min(2F, {}), the first ones, each one timed cycle",
            allocator_name(args.reference),
            max_rounds
        );
        println!(
            "| agents | frameworks | rounds | first cycle | median cycle | p99 cycle | declines/round | offers | filters | setup | mem/agent | mem/framework | mem/filter | Mesos (published) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    }
    let mut reports = Vec::new();
    for (i, (agents, frameworks)) in grid.into_iter().enumerate() {
        let report = a1_point(args.reference, max_rounds, agents, frameworks.max(1), i == 0)?;
        if !args.json {
            println!(
                "| {} | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} | {:.0} ms | {} | {} | {} | {} |",
                report.agents,
                report.frameworks,
                report.rounds,
                report.first_cycle_ms,
                report.median_cycle_ms,
                report.p99_cycle_ms,
                report.median_decline_ms,
                report.offers,
                report.filters,
                report.setup_ms,
                bytes(report.bytes_per_agent),
                bytes(report.bytes_per_framework),
                bytes(report.bytes_per_filter),
                report.mesos.unwrap_or("")
            );
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports).context("serialising")?);
    }
    Ok(ExitCode::SUCCESS)
}

fn bytes(b: Option<f64>) -> String {
    b.map_or_else(|| "—".to_owned(), |b| format!("{b:.0} B"))
}

fn a1_point(
    reference: bool,
    max_rounds: usize,
    agents: usize,
    frameworks: usize,
    memory: bool,
) -> anyhow::Result<A1Report> {
    let total = res("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")?;
    let used = res("cpus:16;mem:2014;disk:1024;ports:[31000-31015]")?;
    let role = vec!["*".to_owned()];
    let framework_ids = (0..frameworks)
        .map(|i| FrameworkId::new(format!("f{i:05}")))
        .collect::<Result<Vec<_>, _>>()?;
    let agent_ids = (0..agents)
        .map(|i| AgentId::new(format!("a{i:06}")))
        .collect::<Result<Vec<_>, _>>()?;

    let setup = Instant::now();
    let rss0 = rss_bytes();
    let mut allocator = new_allocator(reference);
    for id in &framework_ids {
        allocator.add_framework(id, &role, &[]);
    }
    let rss1 = rss_bytes();
    for (i, id) in agent_ids.iter().enumerate() {
        let running = Used {
            framework_id: framework_ids[i % frameworks].clone(),
            agent_id: id.clone(),
            role: "*".to_owned(),
            resources: used.clone(),
        };
        allocator.add_agent(id, &total, &[running]);
    }
    let rss2 = rss_bytes();
    let setup = setup.elapsed();

    let mut rng = StdRng::seed_from_u64(1);
    let mut now = Timestamp::from_secs(1);
    let refuse = Some(Duration::from_secs(365 * 24 * 3600));
    let rounds = (2 * frameworks).min(max_rounds.max(1));
    let mut cycles = Vec::with_capacity(rounds);
    let mut declines = Vec::with_capacity(rounds);
    let mut per_offer = Vec::with_capacity(rounds);
    let mut offers = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let allocations = allocator.allocate(now, &mut rng);
        let cycle = start.elapsed();
        cycles.push(cycle);
        offers += allocations.len();
        if let Ok(n @ 1..) = u32::try_from(allocations.len()) {
            per_offer.push(cycle / n);
        }
        let start = Instant::now();
        for a in &allocations {
            allocator.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, refuse);
        }
        declines.push(start.elapsed());
        now += Duration::from_millis(1);
    }
    let rss3 = rss_bytes();
    let filters = allocator.active_filters(now);
    let first = cycles.first().copied().unwrap_or_default();
    let (median, p99) = percentiles(cycles);
    Ok(A1Report {
        allocator: allocator_name(reference),
        agents,
        frameworks,
        rounds,
        first_cycle_ms: ms(first),
        median_cycle_ms: median,
        p99_cycle_ms: p99,
        median_decline_ms: percentiles(declines).0,
        offers,
        median_us_per_offer: (!per_offer.is_empty()).then(|| percentiles(per_offer).0 * 1e3),
        filters,
        setup_ms: ms(setup),
        bytes_per_agent: memory.then(|| per(rss2.saturating_sub(rss1), agents)),
        bytes_per_framework: memory.then(|| per(rss1.saturating_sub(rss0), frameworks)),
        bytes_per_filter: memory.then(|| per(rss3.saturating_sub(rss2), filters)),
        mesos: MESOS_A1
            .iter()
            .find(|(a, f, _)| *a == agents && *f == frameworks)
            .map(|(_, _, text)| *text),
    })
}

/// `a1 --growth`: the agents swept at fixed frameworks.
const GROWTH_AGENTS: [usize; 6] = [1_000, 5_000, 10_000, 20_000, 30_000, 50_000];
/// `a1 --growth`: the frameworks swept at fixed agents.
const GROWTH_FRAMEWORKS: [usize; 8] = [1, 50, 100, 200, 500, 1_000, 3_000, 6_000];
/// The allocator issue's target for one A1 cycle at 10k agents × 1k frameworks, in ms.
const TARGET_MS: f64 = 10.0;

/// One `--growth` sweep: one count varies, the other is held fixed.
#[derive(Debug, Serialize)]
struct Sweep {
    /// What varies: `agents` or `frameworks`.
    varies: &'static str,
    /// The other count, held fixed.
    fixed: usize,
    points: Vec<A1Report>,
}

/// The `a1 --growth` run.
#[derive(Debug, Serialize)]
struct GrowthReport {
    allocator: &'static str,
    /// The most rounds timed per point (each point runs `min(2F, this)`).
    max_rounds: usize,
    target_ms: f64,
    /// The SVG plot written.
    plot: PathBuf,
    by_agents: Sweep,
    by_frameworks: Sweep,
}

fn a1_growth(args: &AllocatorArgs) -> anyhow::Result<ExitCode> {
    let max_rounds = args.rounds.unwrap_or(5);
    let fixed_frameworks = args.frameworks.unwrap_or(1_000).max(1);
    let fixed_agents = args.agents.unwrap_or(10_000);
    let name = allocator_name(args.reference);
    if !args.json {
        println!(
            "A1 growth, allocator `{name}`: rounds = min(2F, {max_rounds}), the first ones, each one timed cycle; \
             per offer = median over the cycles of (cycle time / offers in the cycle)"
        );
    }
    let sweep = |varies: &'static str, fixed: usize, values: &[usize]| -> anyhow::Result<Sweep> {
        if !args.json {
            let other = if varies == "agents" { "frameworks" } else { "agents" };
            println!("\nCycle time against {varies} ({fixed} {other}):\n");
            println!(
                "| agents | frameworks | rounds | offers/cycle | first cycle | median cycle | p99 cycle | per offer | declines/round | setup |"
            );
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        }
        let mut points = Vec::with_capacity(values.len());
        for &v in values {
            let (agents, frameworks) = if varies == "agents" { (v, fixed) } else { (fixed, v) };
            let report = a1_point(args.reference, max_rounds, agents, frameworks.max(1), false)?;
            if !args.json {
                println!(
                    "| {} | {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.2} ms | {:.0} ms |",
                    report.agents,
                    report.frameworks,
                    report.rounds,
                    report.offers as f64 / report.rounds.max(1) as f64,
                    report.first_cycle_ms,
                    report.median_cycle_ms,
                    report.p99_cycle_ms,
                    report
                        .median_us_per_offer
                        .map_or_else(|| "—".to_owned(), |us| format!("{us:.2} µs")),
                    report.median_decline_ms,
                    report.setup_ms,
                );
            }
            points.push(report);
        }
        Ok(Sweep { varies, fixed, points })
    };
    let by_agents = sweep("agents", fixed_frameworks, &GROWTH_AGENTS)?;
    let by_frameworks = sweep("frameworks", fixed_agents, &GROWTH_FRAMEWORKS)?;

    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = if args.reference {
        "allocator-growth-reference.svg"
    } else {
        "allocator-growth.svg"
    };
    let plot = dir.join(file);
    let report = GrowthReport {
        allocator: name,
        max_rounds,
        target_ms: TARGET_MS,
        plot,
        by_agents,
        by_frameworks,
    };
    plot_growth(&report, &report.plot)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("serialising")?);
    } else {
        println!("\nPlot: {}", report.plot.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The two sweeps as two log–log panels: median and p99 cycle time, and the target.
fn plot_growth(report: &GrowthReport, path: &Path) -> anyhow::Result<()> {
    use crate::cli::bench_plot::{Line, Panel, write_svg};
    let panel = |sweep: &Sweep, other: &str| {
        let x = |p: &A1Report| {
            (if sweep.varies == "agents" {
                p.agents
            } else {
                p.frameworks
            }) as f64
        };
        let line = |label: &str, y: fn(&A1Report) -> f64| Line {
            label: label.to_owned(),
            points: sweep.points.iter().map(|p| (x(p), y(p))).collect(),
            guide: false,
        };
        let mut lines = vec![line("median", |p| p.median_cycle_ms), line("p99", |p| p.p99_cycle_ms)];
        // Against agents, linear growth for reference: proportional to the
        // agents (each is offered once per cycle), through the median of the
        // measured medians' ratios to them.
        let mut slopes: Vec<f64> = sweep.points.iter().map(|p| p.median_cycle_ms / x(p)).collect();
        slopes.sort_by(f64::total_cmp);
        if let Some(slope) = slopes.get(slopes.len() / 2).filter(|_| sweep.varies == "agents") {
            lines.push(Line {
                label: format!("linear in {}", sweep.varies),
                points: sweep.points.iter().map(|p| (x(p), slope * x(p))).collect(),
                guide: true,
            });
        }
        Panel {
            caption: format!("against {} ({} {other})", sweep.varies, sweep.fixed),
            x_desc: sweep.varies.to_owned(),
            y_desc: "cycle time (ms)".to_owned(),
            lines,
            target: Some((report.target_ms, format!("target {} ms", report.target_ms))),
        }
    };
    let title = format!(
        "A1 (decline offers): allocation cycle time, allocator `{}`, ≤ {} rounds per point",
        report.allocator, report.max_rounds
    );
    write_svg(
        path,
        &title,
        &[
            panel(&report.by_agents, "frameworks"),
            panel(&report.by_frameworks, "agents"),
        ],
    )
}

/// A2 framework kind: (id prefix, count, tasks each, tasks per offer, task,
/// shared role or one role per framework).
type FrameworkKind = (&'static str, usize, usize, usize, &'static str, Option<&'static str>);

/// One simulated A2 framework.
#[derive(Debug)]
struct Sim {
    id: FrameworkId,
    remaining: usize,
    per_offer: usize,
    task: Resources,
    cpus: Scalar,
    mem: Scalar,
}

fn a2(args: &AllocatorArgs) -> anyhow::Result<ExitCode> {
    let mut allocator = new_allocator(args.reference);
    let agent_total = res("cpus:64;mem:488000")?;
    for i in 0..80 {
        allocator.add_agent(&AgentId::new(format!("a{i:02}"))?, &agent_total, &[]);
    }
    let mut sims = Vec::new();
    // (prefix, count, tasks each, per offer, task, role: shared or one per framework)
    let kinds: [FrameworkKind; 3] = [
        ("service", 4, 4_000, 100, "cpus:0.07;mem:400", None),
        ("ci", 500, 5, 1, "cpus:0.1;mem:4000", Some("ci")),
        ("analytics", 50, 20, 5, "cpus:1;mem:1000", Some("analytics")),
    ];
    for (prefix, count, tasks, per_offer, task, role) in kinds {
        let task = res(task)?;
        for i in 0..count {
            let id = FrameworkId::new(format!("{prefix}{i:03}"))?;
            let role = role.map_or_else(|| format!("{prefix}{i}"), str::to_owned);
            allocator.add_framework(&id, &[role], &[]);
            sims.push(Sim {
                id,
                remaining: tasks,
                per_offer,
                cpus: task.cpus(),
                mem: task.mem(),
                task: task.clone(),
            });
        }
    }
    let wanted: usize = sims.iter().map(|s| s.remaining).sum();
    let by_id: std::collections::BTreeMap<FrameworkId, usize> =
        sims.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();

    let mut rng = StdRng::seed_from_u64(1);
    let mut now = Timestamp::from_secs(1);
    let (mut cycles, mut recover_time) = (Vec::new(), Duration::ZERO);
    let (mut placed, mut offers, mut idle) = (0, 0, 0);
    while placed < wanted && idle < 100 {
        let start = Instant::now();
        let allocations = allocator.allocate(now, &mut rng);
        cycles.push(start.elapsed());
        offers += allocations.len();
        let before = placed;
        for a in allocations {
            let sim = &mut sims[by_id[&a.framework_id]];
            let fit_cpus = if sim.cpus.is_zero() {
                usize::MAX
            } else {
                (a.resources.cpus().milli() / sim.cpus.milli()) as usize
            };
            let fit_mem = if sim.mem.is_zero() {
                usize::MAX
            } else {
                (a.resources.mem().milli() / sim.mem.milli()) as usize
            };
            let n = sim.remaining.min(sim.per_offer).min(fit_cpus).min(fit_mem);
            let mut launched = Resources::new();
            for _ in 0..n {
                launched += &sim.task;
            }
            sim.remaining -= n;
            placed += n;
            let rest = a.resources.clone() - &launched;
            let start = Instant::now();
            allocator.recover(now, &a.framework_id, &a.agent_id, &a.role, &rest, None);
            if sim.remaining == 0 {
                allocator.suppress(&a.framework_id, &[]);
            }
            recover_time += start.elapsed();
        }
        idle = if placed == before { idle + 1 } else { 0 };
        now += Duration::from_secs(1);
    }
    let total: Duration = cycles.iter().sum();
    let count = cycles.len();
    let (median, p99) = percentiles(cycles);
    let report = A2Report {
        allocator: allocator_name(args.reference),
        cycles: count,
        tasks_placed: placed,
        tasks_wanted: wanted,
        total_allocate_ms: ms(total),
        total_recover_ms: ms(recover_time),
        median_cycle_ms: median,
        p99_cycle_ms: p99,
        offers,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("serialising")?);
    } else {
        println!("A2 many frameworks with launches, allocator `{}`", report.allocator);
        println!(
            "| cycles | tasks placed | offers | allocator time (total) | median cycle | p99 cycle | declines (total) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} / {} | {} | {:.1} ms | {:.3} ms | {:.3} ms | {:.1} ms |",
            report.cycles,
            report.tasks_placed,
            report.tasks_wanted,
            report.offers,
            report.total_allocate_ms,
            report.median_cycle_ms,
            report.p99_cycle_ms,
            report.total_recover_ms
        );
    }
    Ok(if placed == wanted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Mesos' published A3 figure (first cycle).
const MESOS_A3: &str = "23.4 s, later ≈15–17 s";

/// The A3 run.
#[derive(Debug, Serialize)]
struct A3Report {
    allocator: &'static str,
    agents: usize,
    roles: usize,
    /// Setup time (agents, quotas, frameworks), in ms.
    setup_ms: f64,
    first_cycle_ms: f64,
    first_cycle_allocations: usize,
    second_cycle_ms: f64,
    second_cycle_allocations: usize,
    /// Roles holding exactly their quota after the first cycle.
    roles_at_quota: usize,
    mesos: &'static str,
}

fn a3(args: &AllocatorArgs) -> anyhow::Result<ExitCode> {
    let mut allocator = new_allocator(args.reference);
    let setup = Instant::now();
    let agent_total = res("cpus:2;mem:2048;disk:2048")?;
    let agents = 3_000;
    for i in 0..agents {
        allocator.add_agent(&AgentId::new(format!("a{i:04}"))?, &agent_total, &[]);
    }
    let quota_of = |spec: &Resources| spec.scalars().map(|(k, v)| (k.name.to_string(), v)).collect();
    let small: agora_proto::QuotaLimit = quota_of(&res("cpus:1;mem:1024;disk:1024")?);
    let large: agora_proto::QuotaLimit = quota_of(&res("cpus:4;mem:4096;disk:4096")?);
    let mut quotas = Vec::new();
    for i in 0..3_000 {
        let (role, quota) = if i < 2_500 {
            (format!("small{i:04}"), small.clone())
        } else {
            (format!("large{:03}", i - 2_500), large.clone())
        };
        // Guarantee = limit = the quota, as Mesos' quota meant when A3 was published.
        allocator.set_quota(&role, Some(quota.clone()));
        allocator.set_guarantee(&role, Some(quota.clone()));
        allocator.add_framework(&FrameworkId::new(format!("f{i:04}"))?, std::slice::from_ref(&role), &[]);
        quotas.push((role, quota));
    }
    let setup_ms = ms(setup.elapsed());
    let mut rng = StdRng::seed_from_u64(1);
    let now = Timestamp::from_secs(1);
    let start = Instant::now();
    let first = allocator.allocate(now, &mut rng);
    let first_ms = ms(start.elapsed());
    let start = Instant::now();
    let second = allocator.allocate(now + Duration::from_secs(1), &mut rng);
    let second_ms = ms(start.elapsed());
    let held: std::collections::BTreeMap<String, Resources> =
        allocator.roles().into_iter().map(|r| (r.role, r.allocated)).collect();
    let roles_at_quota = quotas
        .iter()
        .filter(|(role, quota)| {
            held.get(role)
                .is_some_and(|h| quota.iter().all(|(name, value)| h.scalar(name) == *value))
        })
        .count();
    let report = A3Report {
        allocator: allocator_name(args.reference),
        agents,
        roles: quotas.len(),
        setup_ms,
        first_cycle_ms: first_ms,
        first_cycle_allocations: first.len(),
        second_cycle_ms: second_ms,
        second_cycle_allocations: second.len(),
        roles_at_quota,
        mesos: MESOS_A3,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("serialising")?);
    } else {
        println!("A3 large and small quota, allocator `{}`", report.allocator);
        println!(
            "| agents | roles | first cycle | allocations | second cycle | allocations | roles at quota | setup | Mesos (published, first cycle) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        println!(
            "| {} | {} | {:.2} ms | {} | {:.3} ms | {} | {} / {} | {:.0} ms | {} |",
            report.agents,
            report.roles,
            report.first_cycle_ms,
            report.first_cycle_allocations,
            report.second_cycle_ms,
            report.second_cycle_allocations,
            report.roles_at_quota,
            report.roles,
            report.setup_ms,
            report.mesos
        );
    }
    Ok(if roles_at_quota == quotas.len() && second.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
