//! `agora run` on `agora local`, through real processes in cgroups: output,
//! exit codes, and the limits that `--mem`, `--cpus` and the pids limit set.
#![allow(clippy::disallowed_methods)] // black-box tests wait on real time

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn run_echo_prints_hello_and_exits_0() {
    if !cgroups_available("run_echo_prints_hello_and_exits_0") {
        return;
    }
    let local = start_local("echo", &[]);
    let output = local.agora(&["run", "--", "echo hello"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "hello\n", "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("TASK_RUNNING"), "{stderr}");
    assert!(stderr.contains("TASK_FINISHED"), "{stderr}");
}

#[test]
fn run_exits_with_the_tasks_exit_code_and_passes_its_stderr() {
    if !cgroups_available("run_exits_with_the_tasks_exit_code_and_passes_its_stderr") {
        return;
    }
    let local = start_local("exit3", &[]);
    let output = local.agora(&["run", "--", "sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("oops\n"), "{stderr}");
    assert!(stderr.contains("TASK_FAILED"), "{stderr}");
}

#[test]
fn a_task_beyond_its_memory_limit_fails_saying_so() {
    if !cgroups_available("a_task_beyond_its_memory_limit_fails_saying_so") {
        return;
    }
    let local = start_local("oom", &[]);
    let output = local.agora(&[
        "run",
        "--mem",
        "64MiB",
        "--",
        "python3",
        "-c",
        "b = bytearray(512 * 1024 * 1024)",
    ]);
    assert!(!output.status.success(), "{}", describe(&output));
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr)).to_lowercase();
    assert!(all.contains("memory limit"), "{}", describe(&output));
}

#[test]
fn half_a_cpu_gives_a_busy_loop_half_the_wall_time() {
    if !cgroups_available("half_a_cpu_gives_a_busy_loop_half_the_wall_time") {
        return;
    }
    let local = start_local("cpu", &[]);
    // Spins for 2 s of wall time, then prints the cpu time it got.
    let spin = "import time\nt = time.time()\nwhile time.time() - t < 2: pass\nprint(time.process_time())";
    let output = local.agora(&["run", "--cpus", "0.5", "--", "python3", "-c", spin]);
    assert!(output.status.success(), "{}", describe(&output));
    let cpu: f64 = text(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("a number: {}", describe(&output)));
    assert!(
        (0.8..=1.2).contains(&cpu),
        "2 s at 0.5 cpus should use 1 s of cpu (±20%), used {cpu:.3} s"
    );
}

#[test]
fn a_fork_bomb_is_held_by_the_pids_limit_and_the_agent_survives() {
    if !cgroups_available("a_fork_bomb_is_held_by_the_pids_limit_and_the_agent_survives") {
        return;
    }
    let local = start_local("forkbomb", &["--pids-limit", "32"]);
    // 200 sleeps in one task: the fork that would exceed 32 fails.
    let marker = "sleep 31.4159";
    let bomb = format!("for i in $(seq 200); do {marker} & done; wait");
    let started = Instant::now();
    let output = local.agora(&["run", "--timeout", "20s", "--", "sh", "-c", &bomb]);
    let stderr = text(&output.stderr).to_lowercase();
    assert!(
        stderr.contains("fork") || stderr.contains("resource temporarily unavailable"),
        "forks should have failed: {}",
        describe(&output)
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the task should end without waiting out its sleeps"
    );
    // Nothing of the task is left, and the agent still runs tasks.
    assert!(
        eventually(Duration::from_secs(5), || processes_like(marker)
            .is_empty()
            .then_some(()))
        .is_some(),
        "left behind: {:?}",
        processes_like(marker)
    );
    let output = local.agora(&["run", "--", "echo ok"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "ok\n");
}
