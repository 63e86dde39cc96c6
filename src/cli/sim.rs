//! `agora sim`: runs the discrete-event simulator (crate `agora-sim`) on a
//! workload config; sweeps a key over values in parallel; searches for the
//! smallest value of a key meeting a target; `agora sim bench` measures the
//! engine against a bare event loop.
//!
//! The simulation itself reads no clock; this driver times it (wall time,
//! events per second), which is why the clock lint is allowed here.
#![allow(clippy::disallowed_methods)] // a driver: it measures wall time around runs

use agora_sim::sweep::{Target, parse_sweep, plot_sweep, run_sweep, search_smallest, sweep_table};
use agora_sim::{SimConfig, Simulation, output};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SimArgs {
    #[command(subcommand)]
    command: Option<SimCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum SimCommand {
    /// Events per second of one run against a bare event loop on the same queue, and peak memory.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The workload config (TOML), e.g. simulations/configs/omega-reference.toml.
    config: Option<PathBuf>,
    /// Overrides the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as JSON (with events, wall_seconds, events_per_second).
    #[arg(long)]
    json: bool,
    /// Write summary.json, samples.csv, frameworks.csv and plots into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Set a config key, e.g. `framework.service.t_job=10` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run the config at several values of a key, in parallel: `PARAM=V1,V2,...`.
    #[arg(long, value_name = "PARAM=V1,V2,...", conflicts_with = "search")]
    sweep: Option<String>,
    /// Find the smallest integer value of a key meeting `--target`: `PARAM=LO..HI`.
    #[arg(long, value_name = "PARAM=LO..HI", requires = "target")]
    search: Option<String>,
    /// The target of `--search`: `METRIC<VALUE` (wait_p99<30, busyness<0.5, ...).
    #[arg(long, value_name = "METRIC<VALUE")]
    target: Option<String>,
    /// Whose metric `--target` reads (default: the worst framework's).
    #[arg(long)]
    framework: Option<String>,
    /// Threads for a sweep (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Check the master's invariants after every step (slow).
    #[arg(long)]
    checked: bool,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// The workload config.
    #[arg(default_value = "simulations/configs/omega-reference.toml")]
    config: PathBuf,
    /// Set a config key (repeatable), e.g. `duration=3600`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints: the report plus how long it took.
#[derive(Debug, Serialize)]
struct Timed<'a> {
    #[serde(flatten)]
    report: &'a agora_sim::Report,
    wall_seconds: f64,
    events_per_second: f64,
    simulated_seconds_per_wall_second: f64,
}

pub(crate) async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(SimCommand::Bench(bench)) => run_bench(&bench),
        None => run_sim(args.run),
    }
}

fn overrides(args: &RunArgs) -> Vec<String> {
    let mut o = args.set.clone();
    if let Some(seed) = args.seed {
        o.push(format!("seed={seed}"));
    }
    o
}

fn run_sim(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = args.config.clone() else {
        bail!("give a workload config, e.g. `agora sim simulations/configs/omega-reference.toml`");
    };
    if let Some(spec) = &args.sweep {
        return sweep(&args, &path, spec);
    }
    if let Some(spec) = &args.search {
        return search(&args, &path, spec);
    }
    let config = SimConfig::load(&path, &overrides(&args))?;
    let trace = config.trace.clone();
    let started = Instant::now();
    let mut sim = Simulation::new(config)?;
    if args.checked {
        sim = sim.checked();
    }
    if let Some(trace) = trace {
        agora_sim::trace::submit_trace(&mut sim, &trace)?;
    }
    let report = sim.run()?;
    let wall = started.elapsed().as_secs_f64();
    let timed = Timed {
        report: &report,
        wall_seconds: wall,
        events_per_second: report.events as f64 / wall.max(1e-9),
        simulated_seconds_per_wall_second: report.duration / wall.max(1e-9),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&timed)?);
    } else {
        print!("{}", output::summary_table(&report));
        println!(
            "wall {:.2} s, {:.0} events/s, {:.0} simulated s per wall s",
            wall, timed.events_per_second, timed.simulated_seconds_per_wall_second
        );
    }
    if let Some(dir) = &args.out {
        let written = output::write_outputs(&report, dir)?;
        // Wall time differs run to run; it goes in its own file so the others stay byte-identical.
        let timing = dir.join("timing.json");
        let json = serde_json::json!({
            "events": report.events,
            "wall_seconds": wall,
            "events_per_second": timed.events_per_second,
        });
        std::fs::write(&timing, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {}", timing.display()))?;
        if !args.json {
            for p in written.iter().chain(std::iter::once(&timing)) {
                println!("wrote {}", p.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn threads(args: &RunArgs) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} points, {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

fn sweep(args: &RunArgs, path: &Path, spec: &str) -> anyhow::Result<ExitCode> {
    let (key, values) = parse_sweep(spec)?;
    let bar = progress_bar(values.len(), &format!("sweeping {key}"));
    let started = Instant::now();
    let points = run_sweep(path, &overrides(args), &key, &values, threads(args), &|done| {
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    if args.json {
        let reports: Vec<_> = points
            .iter()
            .map(|p| serde_json::json!({ "value": p.value, "report": p.report }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "key": key, "points": reports, "wall_seconds": wall }))?
        );
    } else {
        print!("{}", sweep_table(&key, &points, false));
        println!("{} points in {wall:.1} s wall", points.len());
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let csv = dir.join("sweep.csv");
        std::fs::write(&csv, sweep_table(&key, &points, true))
            .with_context(|| format!("cannot write {}", csv.display()))?;
        let svg = dir.join("sweep.svg");
        let name = points.first().map_or("", |p| p.report.name.as_str());
        plot_sweep(&key, &points, &svg, &format!("{name}: sweep of {key}"))?;
        if !args.json {
            println!("wrote {} and {}", csv.display(), svg.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn search(args: &RunArgs, path: &Path, spec: &str) -> anyhow::Result<ExitCode> {
    let Some((key, range)) = spec.split_once('=') else {
        bail!("--search expects PARAM=LO..HI, e.g. cluster.machines=100..10000");
    };
    let Some((lo, hi)) = range.split_once("..") else {
        bail!("--search expects PARAM=LO..HI");
    };
    let (lo, hi): (u64, u64) = (lo.trim().parse()?, hi.trim().parse()?);
    if lo == 0 || lo > hi {
        bail!("--search needs 0 < LO <= HI");
    }
    let target = Target::parse(args.target.as_deref().unwrap_or_default(), args.framework.clone())?;
    let base = overrides(args);
    let bar = ProgressBar::new_spinner();
    let result = search_smallest(lo, hi, target.below, |v| {
        bar.set_message(format!("{key}={v}"));
        bar.tick();
        let mut o = base.clone();
        o.push(format!("{key}={v}"));
        let report = agora_sim::run(SimConfig::load(path, &o)?)?;
        Ok(target.value(&report))
    })?;
    bar.finish_and_clear();
    println!(
        "{key:>12}  {:>12}  meets {}<{}",
        target.metric, target.metric, target.below
    );
    for (v, m, ok) in &result.curve {
        println!("{v:>12}  {m:>12.3}  {}", if *ok { "yes" } else { "no" });
    }
    match result.answer {
        Some(v) => {
            println!("smallest {key} meeting {}<{}: {v}", target.metric, target.below);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("no {key} in {lo}..{hi} meets {}<{}", target.metric, target.below);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// What `agora sim bench` measured.
#[derive(Debug, Serialize)]
struct BenchReport {
    machines: u32,
    simulated_seconds: f64,
    events: u64,
    wall_seconds: f64,
    events_per_second: f64,
    bare_loop_events_per_second: f64,
    /// How many times slower than the bare loop one event of the simulation is.
    ratio_to_bare_loop: f64,
    offers_made: u64,
    peak_memory_mib: Option<f64>,
}

fn run_bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let config = SimConfig::load(&args.config, &args.set)?;
    let machines = config.cluster.machines;
    let started = Instant::now();
    let report = agora_sim::run(config)?;
    let wall = started.elapsed().as_secs_f64();
    let events_per_second = report.events as f64 / wall.max(1e-9);
    // The bare loop: as many events, on the same queue type, holding about
    // as many pending events as the run does (one per machine plus change).
    let bare_events = report.events.max(1_000_000);
    let started = Instant::now();
    let checksum = agora_sim::bench::bare_loop(bare_events, machines as usize + 1000);
    let bare_wall = started.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    let bare = bare_events as f64 / bare_wall.max(1e-9);
    let result = BenchReport {
        machines,
        simulated_seconds: report.duration,
        events: report.events,
        wall_seconds: wall,
        events_per_second,
        bare_loop_events_per_second: bare,
        ratio_to_bare_loop: bare / events_per_second.max(1e-9),
        offers_made: report.master.offers_made,
        peak_memory_mib: agora_sim::bench::peak_memory_kib().map(|k| k as f64 / 1024.0),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "{} machines, {:.0} simulated s: {} events in {:.2} s wall = {:.0} events/s ({} offers made)",
            result.machines,
            result.simulated_seconds,
            result.events,
            result.wall_seconds,
            result.events_per_second,
            result.offers_made
        );
        println!(
            "bare event loop: {:.0} events/s; the simulation is {:.0}x slower per event",
            result.bare_loop_events_per_second, result.ratio_to_bare_loop
        );
        if let Some(mib) = result.peak_memory_mib {
            println!("peak memory (VmHWM): {mib:.1} MiB");
        }
    }
    Ok(ExitCode::SUCCESS)
}
