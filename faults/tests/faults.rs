//! Seeded fault injection: a few hundred seeds in CI, one seed on demand
//! (`AGORA_FAULT_SEED`), thousands with `--ignored` in release, and a
//! deliberate bug the harness must catch.

#![allow(clippy::disallowed_methods)] // measures wall time around runs; the harness itself reads no clock

use agora_faults::{Bug, FaultConfig, run};
use std::time::Instant;

/// Runs seeds `range`; panics with every failing seed and its command.
fn run_seeds(range: std::ops::Range<u64>) {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut events = 0;
    for seed in range.clone() {
        match run(&FaultConfig::new(seed)) {
            Ok(report) => events += report.events,
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(failure.seed);
            }
        }
    }
    eprintln!(
        "seeds {range:?}: {} failed, {events} events in {:.1?}",
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn seeds_0_to_150() {
    run_seeds(0..150);
}

#[test]
fn seeds_150_to_300() {
    run_seeds(150..300);
}

/// `AGORA_FAULT_SEED=n` runs seed `n` alone, printing what it did
/// (`AGORA_FAULT_TRACE=1`: every message and fault; `AGORA_FAULT_BUG=name`:
/// with a deliberate bug).
#[test]
fn one_seed() {
    let Some(seed) = std::env::var("AGORA_FAULT_SEED").ok().and_then(|s| s.parse().ok()) else {
        return;
    };
    let bug = std::env::var("AGORA_FAULT_BUG")
        .ok()
        .map(|name| Bug::from_name(&name).expect("a known bug"));
    match run(&FaultConfig {
        bug,
        ..FaultConfig::new(seed)
    }) {
        Ok(report) => eprintln!("seed {seed}: {report:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// Thousands of seeds: `AGORA_FAULT_SEEDS=5000 cargo test --release -p
/// agora-faults --test faults many_seeds -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark run: thousands of seeds, in release"]
fn many_seeds() {
    let n = std::env::var("AGORA_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    run_seeds(1_000_000..1_000_000 + n);
}

/// The harness catches an agent that forgets its unacknowledged updates
/// across a restart, and names the seed and the command that reproduces it.
#[test]
fn catches_an_agent_that_drops_unacknowledged_updates_on_restart() {
    let caught = (0..50).find_map(|seed| {
        let config = FaultConfig {
            bug: Some(Bug::DropUnackedOnRestart),
            ..FaultConfig::new(seed)
        };
        run(&config).err()
    });
    let failure = caught.expect("the harness catches the bug within 50 seeds");
    let printed = failure.to_string();
    eprintln!("{printed}");
    assert!(
        printed.contains(&format!("AGORA_FAULT_SEED={}", failure.seed)),
        "{printed}"
    );
    assert!(printed.contains("AGORA_FAULT_BUG=drop-unacked-on-restart"), "{printed}");
    assert!(printed.contains("cargo test -p agora-faults"), "{printed}");
}

/// Seeds that once left a *ghost* agent (ARCHITECTURE.md "Fault
/// injection"): a lost REGISTERED makes the agent register again under a new
/// id; the first id is unreachable, and its tasks reach a terminal state
/// (TASK_GONE) only because unreachable agents are now gone after
/// `agent_unreachable_timeout`. A regression test for that bound.
#[test]
fn ghost_agent_seeds() {
    for seed in [1_000_869, 1_003_527] {
        if let Err(failure) = run(&FaultConfig::new(seed)) {
            panic!("{failure}");
        }
    }
}

/// A seed that once ended with a task STAGING for ever: a partition dropped
/// the LAUNCH on a stream that then carried on, which TCP cannot do (it
/// retransmits, or the stream breaks). Partitions now hold a live stream's
/// messages until they end; this seed keeps that model honest.
#[test]
fn a_partition_delays_a_live_stream_and_loses_nothing() {
    if let Err(failure) = run(&FaultConfig::new(1_004_188)) {
        panic!("{failure}");
    }
}
