//! Allocation-cycle time of the DRF allocator, after Mesos' "decline offers"
//! benchmark (`hierarchical_allocator_benchmarks.cpp`): agents of
//! `cpus:24;mem:4096;disk:4096;ports:[31000-32000]`, each already running a
//! task of framework `i mod F` that uses `cpus:16;mem:2014;disk:1024` and 16
//! ports; then rounds in which every offer is declined with a 365-day filter
//! and one cycle is timed.
//!
//! Reported beside each figure, measured in the same run: the time of a bare
//! pass over the same agents that only computes each one's free resources
//! (the least any allocator must do per cycle), and the ratio between them.
//!
//! Run: `cargo bench -p agora-master --bench allocation_cycle -- [AGENTS] [FRAMEWORKS]`
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core

use agora_master::allocator::{Allocator, DrfAllocator, DrfConfig, Used};
use agora_proto::{AgentId, FrameworkId, Resources, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn res(spec: &str) -> Resources {
    spec.parse().unwrap_or_else(|e| panic!("bad spec {spec}: {e}"))
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

struct Setup {
    allocator: DrfAllocator,
    agents: Vec<(AgentId, Resources, Resources)>,
}

fn setup(agents: usize, frameworks: usize) -> Setup {
    let mut allocator = DrfAllocator::new(DrfConfig::default());
    let framework_ids: Vec<FrameworkId> = (0..frameworks)
        .map(|i| FrameworkId::new(format!("f{i:05}")).expect("valid id"))
        .collect();
    for id in &framework_ids {
        allocator.add_framework(id, &["*".to_owned()], &[]);
    }
    let total = res("cpus:24;mem:4096;disk:4096;ports:[31000-32000]");
    let used_spec = res("cpus:16;mem:2014;disk:1024;ports:[31000-31015]");
    let mut list = Vec::new();
    for i in 0..agents {
        let agent_id = AgentId::new(format!("a{i:06}")).expect("valid id");
        let used = Used {
            framework_id: framework_ids[i % frameworks].clone(),
            agent_id: agent_id.clone(),
            role: "*".to_owned(),
            resources: used_spec.clone(),
        };
        allocator.add_agent(&agent_id, &total, &[used]);
        list.push((agent_id, total.clone(), used_spec.clone()));
    }
    Setup {
        allocator,
        agents: list,
    }
}

fn bare_pass(agents: &[(AgentId, Resources, Resources)]) -> Duration {
    let start = Instant::now();
    for (id, total, used) in agents {
        black_box((id, total.clone() - used));
    }
    start.elapsed()
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let grid: Vec<(usize, usize)> = match args.as_slice() {
        [a, f] => vec![(*a, *f)],
        _ => vec![(1_000, 10), (1_000, 100), (5_000, 10)],
    };
    println!("| agents | frameworks | first cycle | decline cycle (median) | bare pass (median) | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (agents, frameworks) in grid {
        let Setup {
            mut allocator,
            agents: list,
        } = setup(agents, frameworks);
        let mut rng = StdRng::seed_from_u64(1);
        let mut now = Timestamp::from_secs(1);
        let refuse = Some(Duration::from_secs(365 * 24 * 3600));

        let start = Instant::now();
        let mut allocations = allocator.allocate(now, &mut rng);
        let first = start.elapsed();

        let rounds = (2 * frameworks).min(20);
        let mut cycles = Vec::new();
        let mut bare = Vec::new();
        for _ in 0..rounds {
            for a in &allocations {
                allocator.recover(now, &a.framework_id, &a.agent_id, &a.role, &a.resources, refuse);
            }
            now += Duration::from_millis(1);
            let start = Instant::now();
            allocations = allocator.allocate(now, &mut rng);
            cycles.push(start.elapsed());
            bare.push(bare_pass(&list));
        }
        let (cycle, bare) = (median(cycles), median(bare));
        println!(
            "| {agents} | {frameworks} | {:.2} ms | {:.2} ms | {:.3} ms | {:.0}x |",
            first.as_secs_f64() * 1e3,
            cycle.as_secs_f64() * 1e3,
            bare.as_secs_f64() * 1e3,
            cycle.as_secs_f64() / bare.as_secs_f64().max(1e-9)
        );
    }
}
