//! Starting the real `agora` binaries and talking to them over real sockets.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)] // not every test uses every helper

use agora_proto::pb;
use agora_proto::pb::operator_client::OperatorClient;
use agora_proto::pb::scheduler_client::SchedulerClient;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tonic::Streaming;
use tonic::transport::Channel;

/// A child process killed when dropped, so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn agora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agora"))
}

/// An example of the SDK, built by `cargo test --workspace` next to the binaries.
pub fn example(name: &str) -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_agora"));
    let path = bin
        .parent()
        .map(|d| d.join("examples").join(name))
        .expect("the agora binary lives in a directory");
    assert!(
        path.exists(),
        "the SDK example {} is not built; run the tests with `cargo test --workspace` (which builds examples)",
        path.display()
    );
    Command::new(path)
}

/// Starts a master on a free port, with a short allocation interval so tests are quick.
pub fn start_master(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut command = agora();
    command
        .args([
            "master",
            "--listen",
            "127.0.0.1:0",
            "--allocation-interval",
            "20ms",
            "--master-id",
            "test",
        ])
        // Not the default /var/lib/agora/master: each master its own, empty registry.
        .arg("--work-dir")
        .arg(temp_dir("master"))
        .args(extra);
    spawn_master(&mut command)
}

/// Spawns `agora master ...` (quietly) and reads the address it prints first.
pub fn spawn_master(command: &mut Command) -> (Proc, SocketAddr) {
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("agora master starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("master prints its address");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("cannot find an address in {line:?}"));
    (proc, addr)
}

pub fn start_agent(master: SocketAddr, resources: &str) -> Proc {
    let child = agora()
        .args([
            "agent",
            "--master",
            &master.to_string(),
            "--resources",
            resources,
            "--containerizer",
            "simulated",
        ])
        // Not the default /var/lib/agora/agent, which needs root.
        .arg("--work-dir")
        .arg(temp_dir("agent"))
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("agora agent starts");
    Proc(child)
}

pub async fn operator(addr: SocketAddr) -> OperatorClient<Channel> {
    OperatorClient::connect(format!("http://{addr}"))
        .await
        .expect("operator client connects")
}

pub async fn state(addr: SocketAddr) -> pb::ClusterState {
    operator(addr)
        .await
        .get_state(pb::GetStateRequest {})
        .await
        .expect("GetState")
        .into_inner()
}

/// Waits until `n` agents are registered and active.
pub async fn wait_for_agents(addr: SocketAddr, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let active = state(addr).await.agents.iter().filter(|a| a.active).count();
        if active >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {active} of {n} agents registered in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` over plain HTTP/1.1; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// A framework written directly against the gRPC API, for black-box tests.
pub struct RawFramework {
    pub client: SchedulerClient<Channel>,
    pub events: Streaming<pb::Event>,
    pub id: pb::FrameworkId,
}

pub fn framework_info(name: &str) -> pb::FrameworkInfo {
    pb::FrameworkInfo {
        name: name.to_owned(),
        failover_timeout_seconds: 60.0,
        ..Default::default()
    }
}

impl RawFramework {
    pub async fn subscribe(addr: SocketAddr, info: pb::FrameworkInfo) -> Self {
        let mut client = SchedulerClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let mut events = client
            .subscribe(pb::SubscribeRequest {
                framework_info: Some(info),
            })
            .await
            .expect("subscribe")
            .into_inner();
        let first = events.message().await.expect("stream").expect("an event");
        let Some(pb::event::Event::Subscribed(s)) = first.event else {
            panic!("expected SUBSCRIBED first, got {first:?}");
        };
        Self {
            client,
            events,
            id: s.framework_id.expect("framework id"),
        }
    }

    /// The next event that `pick` accepts, skipping others, within `timeout`.
    pub async fn next<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(pb::event::Event) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.message()).await.ok()?;
            let event = event.expect("event stream").expect("stream open");
            if let Some(found) = event.event.and_then(&mut pick) {
                return Some(found);
            }
        }
    }

    pub async fn offers(&mut self, timeout: Duration) -> Option<Vec<pb::Offer>> {
        self.next(timeout, |e| match e {
            pb::event::Event::Offers(o) => Some(o.offers),
            _ => None,
        })
        .await
    }

    pub async fn update(&mut self, timeout: Duration) -> Option<pb::TaskStatus> {
        self.next(timeout, |e| match e {
            pb::event::Event::Update(u) => u.status,
            _ => None,
        })
        .await
    }

    pub async fn launch(&mut self, offers: &[&pb::Offer], tasks: Vec<pb::TaskInfo>, refuse_seconds: f64) {
        self.client
            .accept(pb::AcceptRequest {
                framework_id: Some(self.id.clone()),
                offer_ids: offers.iter().filter_map(|o| o.id.clone()).collect(),
                operations: vec![pb::Operation {
                    operation: Some(pb::operation::Operation::Launch(pb::LaunchOperation {
                        task_infos: tasks,
                    })),
                }],
                filters: Some(pb::Filters {
                    refuse_seconds: Some(refuse_seconds),
                }),
            })
            .await
            .expect("accept is queued");
    }

    pub async fn decline(&mut self, offer: &pb::Offer, refuse_seconds: f64) {
        self.client
            .decline(pb::DeclineRequest {
                framework_id: Some(self.id.clone()),
                offer_ids: offer.id.iter().cloned().collect(),
                filters: Some(pb::Filters {
                    refuse_seconds: Some(refuse_seconds),
                }),
            })
            .await
            .expect("decline is queued");
    }
}

pub fn resources(spec: &str) -> Vec<pb::Resource> {
    let r: agora_proto::Resources = spec.parse().expect("valid spec");
    (&r).into()
}

pub fn task(id: &str, offer: &pb::Offer, spec: &str, command: &str) -> pb::TaskInfo {
    pb::TaskInfo {
        name: id.to_owned(),
        task_id: Some(pb::TaskId { value: id.to_owned() }),
        agent_id: offer.agent_id.clone(),
        resources: resources(spec),
        command: Some(pb::CommandInfo {
            value: command.to_owned(),
            ..Default::default()
        }),
        kill_policy: None,
    }
}

pub fn domain(wire: &[pb::Resource]) -> agora_proto::Resources {
    agora_proto::Resources::try_from(wire).expect("the master sends valid resources")
}

// ----- `agora local` and the operator commands -------------------------------

/// A fresh directory under the system's temp dir, for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("agora-test-{name}-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// `agora local` on a free port. Dropping it sends SIGTERM and waits, so the
/// agent kills its tasks and removes their cgroups even when a test fails.
#[derive(Debug)]
pub struct Local {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub work_dir: PathBuf,
    /// The cgroup under which its tasks' cgroups are made, unique to it.
    pub cgroups_root: String,
}

/// Starts `agora local --port 0` in a temp work dir, with a cgroups root of
/// its own, and reads its address from the first line it prints.
pub fn start_local(name: &str, extra: &[&str]) -> Local {
    let work_dir = temp_dir(name);
    let cgroups_root = format!("agora-test-{name}-{}", std::process::id());
    let mut child = agora()
        .args(["local", "--port", "0", "--work-dir"])
        .arg(&work_dir)
        .args(["--cgroups-root", &cgroups_root])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("agora local starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("agora local prints its address");
    // Keep reading, so that what it prints later never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr = line
        .trim()
        .strip_prefix("agora local listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("cannot find an address in {line:?}"));
    let local = Local {
        child: Some(child),
        addr,
        work_dir,
        cgroups_root,
    };
    // The master listens before its agent has registered: wait for the agent,
    // so that tests see the cluster they asked for (a loaded machine can take
    // a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = local.agora(&["agents", "--json"]);
        let agents: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if !agents.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the local agent did not register in 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    local
}

impl Local {
    /// `agora ARGS` against this cluster, to completion.
    pub fn agora(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("agora runs")
    }

    /// `agora ARGS` against this cluster, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = agora();
        command
            .args(args)
            .env("AGORA_MASTER", self.addr.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    /// Sends `signal` (`TERM`, `INT`) and waits up to 30 s for the exit.
    pub fn stop(&mut self, signal: &str) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        send_signal(child.id(), signal);
        let status = wait_timeout(&mut child, Duration::from_secs(30));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.stop("TERM");
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -s {signal} {pid} failed");
}

/// Waits for `child` at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Describes a finished command for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Whether the tests that need root and cgroups can run here. When they
/// cannot: under CI (`CI` set) this fails the test, saying why; elsewhere it
/// prints why and the test returns early.
pub fn cgroups_available(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false);
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").is_file();
    let missing = match (root, v1 || v2) {
        (true, true) => return true,
        (false, _) => "this test needs root (it creates cgroups)",
        (true, false) => "this test needs cgroups mounted at /sys/fs/cgroup",
    };
    assert!(std::env::var_os("CI").is_none(), "{test}: {missing}");
    eprintln!("skipping {test}: {missing}");
    false
}

/// Every cgroup directory below `root` in every hierarchy (v1: one per
/// controller; v2: the unified one), the root itself excluded.
pub fn cgroup_dirs(root: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.push(path.clone());
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    let base = Path::new("/sys/fs/cgroup");
    walk(&base.join(root), &mut found);
    if let Ok(hierarchies) = std::fs::read_dir(base) {
        for hierarchy in hierarchies.flatten() {
            walk(&hierarchy.path().join(root), &mut found);
        }
    }
    found
}

/// Processes whose whole command line starts with `prefix` (`pgrep -f ^prefix`).
pub fn processes_like(prefix: &str) -> Vec<String> {
    let output = Command::new("pgrep")
        .args(["-a", "-f", &format!("^{prefix}")])
        .output()
        .expect("pgrep runs");
    text(&output.stdout).lines().map(str::to_owned).collect()
}

/// The processes whose working directory (`cwd`, canonical) and command
/// name (`comm`) `pick` accepts, by pid.
pub fn processes_where(mut pick: impl FnMut(&Path, &str) -> bool) -> BTreeSet<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            pick(&cwd, comm.trim()).then_some(pid)
        })
        .collect()
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `timeout`.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tasks `agora ps --all --json` lists.
pub fn tasks(local: &Local) -> Vec<serde_json::Value> {
    let output = local.agora(&["ps", "--all", "--json"]);
    assert!(output.status.success(), "agora ps failed: {}", describe(&output));
    serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).expect("ps --json prints an array")
}

/// Waits until a task named `name` is in `state`; returns its id.
pub fn wait_for_task(local: &Local, name: &str, state: &str) -> String {
    eventually(Duration::from_secs(15), || {
        tasks(local)
            .into_iter()
            .find(|t| t["name"] == name && t["state"] == state)
            .and_then(|t| t["id"].as_str().map(str::to_owned))
    })
    .unwrap_or_else(|| panic!("no task {name:?} reached {state} in 15 s: {:?}", tasks(local)))
}
