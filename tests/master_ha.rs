//! Highly available masters as processes: `agora master --etcd ...` against
//! a real etcd (Debian's `etcd-server`; the tests fail if it is missing).

#![cfg(feature = "etcd")]
#![allow(clippy::disallowed_methods)] // black-box tests measure wall-clock time

mod common;
#[path = "../master/tests/support/etcd_server.rs"]
mod etcd_server;

use agora_proto::pb::operator_client::OperatorClient;
use agora_proto::{CommandInfo, FrameworkInfo, Resources, TaskState, pb};
use agora_sdk::TaskRequest;
use agora_sdk::driver::{Backoff, Driver, DriverConfig};
use agora_sdk::frameworks::{Service, ServiceConfig, TaskTemplate};
use common::{Proc, agora, http_get, processes_where, spawn_master, temp_dir, wait_timeout};
use etcd_server::EtcdServer;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The leader TTL of these clusters.
const TTL: &str = "2s";

/// Starts `agora master` in the cluster under `prefix`; returns it and its address.
fn start_ha_master(etcd: &EtcdServer, prefix: &str, id: &str) -> (Proc, SocketAddr) {
    spawn_master(
        agora()
            .args(["master", "--listen", "127.0.0.1:0", "--allocation-interval", "20ms"])
            .args(["--master-id", id, "--etcd", &etcd.url, "--leader-ttl", TTL])
            .args(["--etcd-prefix", prefix]),
    )
}

fn leads(addr: SocketAddr) -> bool {
    http_get(addr, "/health") == (200, "ok".to_owned())
}

/// Waits for one of `addrs` to lead; returns its index and how long it took.
fn wait_for_leader(addrs: &[SocketAddr], within: Duration) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        if let Some(i) = addrs.iter().position(|&addr| leads(addr)) {
            return (i, started.elapsed());
        }
        assert!(started.elapsed() < within, "no leader among {addrs:?} after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_of_the_leader_elects_another_within_the_ttl() {
    let etcd = EtcdServer::start();
    let mut masters: Vec<(Proc, SocketAddr)> = (0..3)
        .map(|i| start_ha_master(&etcd, "/kill9", &format!("m{i}")))
        .collect();
    let addrs: Vec<SocketAddr> = masters.iter().map(|(_, addr)| *addr).collect();
    let (leader, _) = wait_for_leader(&addrs, Duration::from_secs(10));
    let others: Vec<SocketAddr> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, a)| *a)
        .collect();
    // A standby that is still connecting to etcd knows no leader yet.
    let expected = (200, format!("standby; leader: {}\n", addrs[leader]));
    for &standby in &others {
        let deadline = Instant::now() + Duration::from_secs(5);
        while http_get(standby, "/health") != expected {
            assert!(Instant::now() < deadline, "{standby} does not name the leader");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let (mut killed, _) = masters.remove(leader);
    killed.0.kill().expect("kill -9");
    let (_, took) = wait_for_leader(&others, Duration::from_secs(10));
    eprintln!("new leader {took:?} after kill -9 of the leader (TTL {TTL})");
    assert!(
        took < Duration::from_secs(4),
        "takeover took {took:?} with a TTL of {TTL}"
    );
    assert!(!others.iter().all(|&a| leads(a)), "exactly one leads");
}

#[test]
fn a_master_that_loses_its_leadership_exits_nonzero() {
    let etcd = EtcdServer::start();
    let (mut master, addr) = start_ha_master(&etcd, "/exit", "m0");
    wait_for_leader(&[addr], Duration::from_secs(10));
    // What a lease expiry does to the key, done by hand.
    assert_eq!(etcd.delete("/exit/leader"), 1);
    let status = wait_timeout(&mut master.0, Duration::from_secs(5)).expect("the deposed master exits");
    assert!(!status.success(), "a deposed master must exit nonzero, got {status}");
}

/// An agent whose tasks are real processes (`process` containerizer: no
/// root needed), following the leader among `masters`.
fn start_ha_agent(masters: &[SocketAddr], work_dir: &Path) -> Proc {
    let list = masters.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let child = agora()
        .args(["agent", "--master", &list, "--containerizer", "process"])
        .args(["--resources", "cpus:8;mem:4GiB"])
        .arg("--work-dir")
        .arg(work_dir)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("agora agent starts");
    Proc(child)
}

/// The `sleep` processes of tasks whose sandbox is under `dir`, by pid.
fn task_processes_under(dir: &Path) -> BTreeSet<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return BTreeSet::new();
    };
    processes_where(|cwd, comm| comm == "sleep" && cwd.starts_with(&dir))
}

/// Kills the task processes under a directory when dropped: the agents are
/// killed with SIGKILL at the end of the test, and their tasks (and the
/// waiters that record their exit) outlive them by design.
struct KillTasksUnder(std::path::PathBuf);

impl Drop for KillTasksUnder {
    fn drop(&mut self) {
        for pid in task_processes_under(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// The tasks a master knows, by id, with their state names.
async fn tasks_known(addr: SocketAddr) -> Option<BTreeMap<String, (String, String)>> {
    let mut client = OperatorClient::connect(format!("http://{addr}")).await.ok()?;
    let state = client.get_state(pb::GetStateRequest {}).await.ok()?.into_inner();
    Some(
        state
            .tasks
            .into_iter()
            .filter_map(|t| {
                let state = pb::TaskState::try_from(t.state).ok()?.as_str_name().to_owned();
                let framework = t.framework_id?.value;
                Some((t.task?.task_id?.value, (state, framework)))
            })
            .collect(),
    )
}

/// Etcd, three masters, two agents, a service of 50 tasks through the SDK
/// driver; `kill -9` of the leader. A new leader within 10 s of the kill,
/// the framework back under its id, every task RUNNING (the framework's own
/// view, after the reconciliation the driver does on re-subscribing, and the
/// new leader's), and no task launched twice: still 50 task processes, the
/// same pids, every instance of the service in its first generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_while_50_tasks_run_loses_nothing() {
    const TASKS: usize = 50;
    let etcd = EtcdServer::start();
    let mut masters: Vec<(Proc, SocketAddr)> = (0..3)
        .map(|i| start_ha_master(&etcd, "/tasks", &format!("m{i}")))
        .collect();
    let addrs: Vec<SocketAddr> = masters.iter().map(|(_, addr)| *addr).collect();
    let (leader, _) = wait_for_leader(&addrs, Duration::from_secs(10));
    let work = temp_dir("ha-agents");
    let _tasks = KillTasksUnder(work.clone());
    let _agents: Vec<Proc> = (0..2)
        .map(|i| start_ha_agent(&addrs, &work.join(format!("agent{i}"))))
        .collect();

    let mut info = FrameworkInfo::new("ha-service");
    info.failover_timeout = Duration::from_secs(600);
    let mut config = DriverConfig::new(addrs.iter().map(ToString::to_string), info);
    config.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
    };
    config.connect_timeout = Duration::from_secs(2);
    let resources: Resources = "cpus:0.1;mem:16MiB".parse().expect("valid resources");
    let template = TaskTemplate::new("ha", CommandInfo::shell("exec sleep 600"), TaskRequest::new(resources));
    let service = Service::new(ServiceConfig::new(TASKS, template)).expect("valid service");
    let mut driver = Driver::new(config, service).expect("valid driver config");
    let handle = driver.handle();
    let run = tokio::spawn(async move {
        let exit = driver.run().await;
        (exit, driver)
    });

    // All 50 running, as the leader sees them and as processes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        let known = tasks_known(addrs[leader]).await.unwrap_or_default();
        let running = known.values().filter(|(state, _)| state == "TASK_RUNNING").count();
        let pids = task_processes_under(&work);
        if running == TASKS && pids.len() == TASKS {
            break (known, pids);
        }
        assert!(
            Instant::now() < deadline,
            "{running} of {TASKS} tasks running, {} processes, after 60 s",
            pids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (tasks_before, pids_before) = before;
    let framework_id = tasks_before.values().next().map(|(_, f)| f.clone()).expect("a task");

    let (mut killed, _) = masters.remove(leader);
    killed.0.kill().expect("kill -9 of the leader");
    let killed_at = Instant::now();
    let others: Vec<SocketAddr> = masters.iter().map(|(_, addr)| *addr).collect();
    let (new_leader, took) = wait_for_leader(&others, Duration::from_secs(10));
    eprintln!("new leader {took:?} after kill -9 of the leader (TTL {TTL})");
    assert!(took <= Duration::from_secs(10), "a new leader took {took:?}");

    // The new leader hears of every task again, from the agents, under the
    // same framework, and the framework re-subscribes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let known = tasks_known(others[new_leader]).await.unwrap_or_default();
        let back = known
            .iter()
            .filter(|(id, (state, framework))| {
                state == "TASK_RUNNING" && *framework == framework_id && tasks_before.contains_key(*id)
            })
            .count();
        let subscribed = {
            let mut client = OperatorClient::connect(format!("http://{}", others[new_leader]))
                .await
                .expect("the new leader answers");
            let state = client
                .get_state(pb::GetStateRequest {})
                .await
                .expect("state")
                .into_inner();
            state
                .frameworks
                .iter()
                .any(|f| f.active && f.id.as_ref().is_some_and(|id| id.value == framework_id))
        };
        if back == TASKS && known.len() == TASKS && subscribed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the failover the new leader knows {back} of the {TASKS} tasks RUNNING ({} in all), framework subscribed: {subscribed}",
            known.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "every task and the framework back {:?} after the kill",
        killed_at.elapsed()
    );

    // Give the framework time to act on what it was told after re-subscribing:
    // a task it thought lost would be relaunched now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle.shutdown();
    let (exit, driver) = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the driver stops")
        .expect("the driver task does not panic");
    exit.expect("the driver ends cleanly");
    assert_eq!(
        driver.session().framework_id().map(ToString::to_string),
        Some(framework_id.clone()),
        "the framework keeps its id"
    );
    let service = driver.into_scheduler();
    assert!(
        service
            .instances()
            .iter()
            .all(|i| i.generation == 1 && i.state == Some(TaskState::Running)),
        "every instance still RUNNING in its first launch: {:?}",
        service.instances()
    );
    let pids_after = task_processes_under(&work);
    assert_eq!(pids_after, pids_before, "the same task processes, none launched twice");
}
