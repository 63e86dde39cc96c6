//! A Mesos framework, written from the v1 HTTP API specification (raw HTTP,
//! RecordIO, `serde_json::Value`; nothing of ours), runs tasks on the real
//! `agora` master and a simulated agent while the SDK's `batch` example runs
//! tasks on the same cluster: both under one allocator, and every task
//! visible to `agora ps`.
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core

mod common;
#[path = "../master/tests/mesos_client/mod.rs"]
mod mesos_client;

use common::*;
use mesos_client::{Connection, EventStream, subscribe_call};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Tasks the Mesos framework launches, each `sleep 1`.
const MESOS_TASKS: usize = 3;

fn scalar(name: &str, value: f64) -> Value {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": value}})
}

fn scalar_of(offer: &Value, name: &str) -> f64 {
    offer["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"] == name && r["type"] == "SCALAR")
        .filter_map(|r| r["scalar"]["value"].as_f64())
        .sum()
}

fn ps(addr: std::net::SocketAddr, all: bool) -> Vec<Value> {
    let mut cmd = agora();
    cmd.args(["ps", "--json", "--master", &addr.to_string()]);
    if all {
        cmd.arg("--all");
    }
    let output = cmd.output().expect("agora ps runs");
    assert!(
        output.status.success(),
        "agora ps: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("agora ps --json prints JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mesos_http_framework_and_an_sdk_framework_share_the_cluster() {
    let (_master, addr) = start_master(&["--heartbeat-interval", "500ms"]);
    let _agent = start_agent(addr, "cpus:4;mem:4096;ports:[31000-32000]");
    wait_for_agents(addr, 1).await;
    let started = Instant::now();

    // The SDK framework: 10 tasks of one second.
    let batch = tokio::task::spawn_blocking(move || {
        example("batch")
            .args([
                "--master",
                &addr.to_string(),
                "--tasks",
                "10",
                "--cpus",
                "0.1",
                "--mem",
                "32",
                "--",
                "sleep",
                "1",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("batch runs")
    });

    // The Mesos framework.
    let call = subscribe_call("mesos-e2e", json!({"failover_timeout": 60}));
    let mut events = EventStream::subscribe(addr, &call, &[])
        .await
        .unwrap_or_else(|r| panic!("SUBSCRIBE: {} {}", r.status, r.text()));
    let stream_id = events.stream_id();
    let mut calls = Connection::open(addr).await;
    let subscribed = events.next().await.expect("SUBSCRIBED");
    assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
    let framework_id = subscribed["subscribed"]["framework_id"].clone();
    let fid = framework_id["value"].as_str().expect("an id").to_owned();

    let mut launched = 0;
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut acknowledged = 0;
    let mut seen_running_in_ps = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while states
        .values()
        .filter(|s| s.last().is_some_and(|s| s == "TASK_FINISHED"))
        .count()
        < MESOS_TASKS
    {
        assert!(Instant::now() < deadline, "tasks did not finish in 30 s: {states:?}");
        let event = events.next().await.expect("the stream stays open");
        match event["type"].as_str() {
            Some("OFFERS") => {
                for offer in event["offers"]["offers"].as_array().into_iter().flatten() {
                    let (mut cpus, mut mem) = (scalar_of(offer, "cpus"), scalar_of(offer, "mem"));
                    let mut tasks = Vec::new();
                    while launched < MESOS_TASKS && cpus >= 0.1 && mem >= 32.0 {
                        launched += 1;
                        cpus -= 0.1;
                        mem -= 32.0;
                        tasks.push(json!({
                            "name": format!("mesos-{launched}"),
                            "task_id": {"value": format!("mesos-{launched}")},
                            "agent_id": offer["agent_id"],
                            "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)],
                            "command": {"shell": true, "value": "sleep 1"}
                        }));
                    }
                    let response = if tasks.is_empty() {
                        calls
                            .call(
                                &stream_id,
                                &json!({"type": "DECLINE", "framework_id": framework_id,
                                    "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 30}}}),
                            )
                            .await
                    } else {
                        calls
                            .call(
                                &stream_id,
                                &json!({"type": "ACCEPT", "framework_id": framework_id,
                                    "accept": {"offer_ids": [offer["id"]],
                                        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                                        "filters": {"refuse_seconds": 30}}}),
                            )
                            .await
                    };
                    assert_eq!(response.status, 202, "{}", response.text());
                }
            }
            Some("UPDATE") => {
                let status = &event["update"]["status"];
                let task = status["task_id"]["value"].as_str().expect("a task id").to_owned();
                let state = status["state"].as_str().expect("a state").to_owned();
                states.entry(task).or_default().push(state);
                if status.get("uuid").is_some() {
                    let ack = json!({"type": "ACKNOWLEDGE", "framework_id": framework_id,
                        "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
                    let response = calls.call(&stream_id, &ack).await;
                    assert_eq!(response.status, 202, "{}", response.text());
                    acknowledged += 1;
                }
                let running = states
                    .values()
                    .filter(|s| s.last().is_some_and(|s| s == "TASK_RUNNING"))
                    .count();
                if running == MESOS_TASKS && !seen_running_in_ps {
                    // Visible to `agora ps` while they run.
                    let tasks = tokio::task::spawn_blocking(move || ps(addr, false))
                        .await
                        .expect("join");
                    let ours = tasks.iter().filter(|t| t["framework_id"] == fid.as_str()).count();
                    assert_eq!(ours, MESOS_TASKS, "agora ps: {tasks:?}");
                    seen_running_in_ps = true;
                }
            }
            Some("HEARTBEAT" | "RESCIND") => {}
            other => panic!("unexpected event {other:?}: {event}"),
        }
    }
    let mesos_done = started.elapsed();
    for (task, seen) in &states {
        assert_eq!(
            seen.as_slice(),
            ["TASK_RUNNING", "TASK_FINISHED"],
            "{task} went through {seen:?}"
        );
    }
    assert_eq!(acknowledged, 2 * MESOS_TASKS);
    assert!(seen_running_in_ps, "the tasks were never seen running together");

    let teardown = json!({"type": "TEARDOWN", "framework_id": framework_id});
    assert_eq!(calls.call(&stream_id, &teardown).await.status, 202);
    assert!(events.ends().await);

    let output = batch.await.expect("join");
    let batch_done = started.elapsed();
    assert!(
        output.status.success(),
        "batch failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Both frameworks' tasks, in one master's state.
    let all = tokio::task::spawn_blocking(move || ps(addr, true)).await.expect("join");
    let ours = all
        .iter()
        .filter(|t| t["framework_id"] == framework_id["value"])
        .count();
    let theirs = all.len() - ours;
    assert_eq!(ours, MESOS_TASKS, "agora ps --all: {all:?}");
    assert_eq!(theirs, 10, "agora ps --all: {all:?}");
    eprintln!(
        "Mesos framework: {MESOS_TASKS} tasks done in {:.2} s; SDK batch: 10 tasks done in {:.2} s (same master, same agent)",
        mesos_done.as_secs_f64(),
        batch_done.as_secs_f64()
    );
}
