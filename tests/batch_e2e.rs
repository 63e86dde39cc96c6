//! A whole cluster from the real binaries: a master, three agents with the
//! simulated containerizer, and the SDK's `batch` example running 100 tasks.
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core

mod common;

use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn batch_example_runs_100_tasks_to_finished_and_acknowledged() {
    let (_master, addr) = start_master(&[]);
    let _agents: Vec<Proc> = (0..3)
        .map(|_| start_agent(addr, "cpus:4;mem:4096;ports:[31000-32000]"))
        .collect();
    wait_for_agents(addr, 3).await;

    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        example("batch")
            .args([
                "--master",
                &addr.to_string(),
                "--tasks",
                "100",
                "--cpus",
                "0.1",
                "--mem",
                "32",
                "--",
                "sleep",
                "0.1",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("batch runs")
    })
    .await
    .expect("join");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "batch failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("100 tasks on 3 simulated agents: {:.2} s wall", wall.as_secs_f64());

    // The master saw every task finish and every update acknowledged.
    let (status, body) = http_get(addr, "/state");
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&body).expect("/state is JSON");
    let stats = &state["stats"];
    assert_eq!(stats["tasks_launched"], 100, "{stats}");
    assert_eq!(stats["tasks_finished"], 100, "{stats}");
    // RUNNING and FINISHED for each task.
    assert!(stats["acknowledgements"].as_u64().unwrap_or(0) >= 200, "{stats}");
    let finished = state["completed_tasks"]
        .as_array()
        .map_or(0, |t| t.iter().filter(|t| t["state"] == "TASK_FINISHED").count());
    assert_eq!(finished, 100);
    // Every agent is idle again.
    for agent in state["agents"].as_array().expect("agents") {
        assert_eq!(agent["allocated"], "", "agent still has allocations: {agent}");
    }
    let _ = Duration::ZERO;
}
