//! The clients follow the leader among several masters: the SDK driver, the
//! agent and the CLI, each given only the address of a master that is not the
//! leader, end up at the real master; masters that point at each other make
//! them back off, not spin.
//!
//! A standby is faked: an HTTP/2 server whose every answer is the refusal a
//! non-leading master gives (`agora_proto::leader::not_leader`), naming the
//! leader set in its [`Hint`] (or none). The real master runs in-process
//! (SDK, agent) or as the real binary (CLI).
#![allow(clippy::disallowed_methods)] // real sockets, real time

mod common;

use agora_agent::{AgentConfig, ContainerizerKind, ReconnectBackoff};
use agora_master::server::{self, ServerConfig};
use agora_proto::leader::not_leader;
use agora_proto::{FrameworkInfo, Offer, Resources};
use agora_sdk::driver::{Backoff, Driver, DriverConfig, DriverError};
use agora_sdk::{Calls, Scheduler, Subscribed};
use common::{describe, eventually, start_agent, start_master, text};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Long enough for anything these tests wait for, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// What a fake standby says: the leader it names (`None`: no leader known).
#[derive(Clone, Debug, Default)]
struct Hint(Arc<Mutex<Option<String>>>);

impl Hint {
    fn set(&self, leader: Option<String>) {
        *self.0.lock().expect("not poisoned") = leader;
    }

    fn get(&self) -> Option<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// A master that is not the leader: refuses every gRPC call, counting them.
struct Standby {
    addr: SocketAddr,
    hint: Hint,
    calls: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl Standby {
    async fn start(leader: Option<String>) -> Self {
        let hint = Hint::default();
        hint.set(leader);
        let calls = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new().fallback({
            let hint = hint.clone();
            let calls = Arc::clone(&calls);
            move || {
                let leader = hint.get();
                calls.fetch_add(1, Ordering::SeqCst);
                async move { not_leader(leader.as_deref()).into_http::<axum::body::Body>() }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            hint,
            calls,
            _stop: stop,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The real master in this process; stops when dropped.
struct Leader {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Leader {
    async fn start() -> Self {
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        };
        config.master.allocation_interval = Duration::from_millis(10);
        config.master.master_id = "leader".to_owned();
        let server = server::bind(config).await.expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self { addr, _stop: stop }
    }

    async fn agents(&self) -> usize {
        common::state(self.addr).await.agents.len()
    }
}

/// An in-process agent with the simulated containerizer and quick retries.
fn spawn_agent(masters: Vec<String>) -> oneshot::Sender<()> {
    let mut config = AgentConfig::new(masters, "cpus:2;mem:512".parse::<Resources>().expect("valid"));
    config.containerizer = ContainerizerKind::Simulated;
    config.work_dir = common::temp_dir("follow-agent");
    config.hostname = Some("follower".to_owned());
    config.reconnect = ReconnectBackoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        jitter: 0.5,
    };
    config.connect_timeout = Duration::from_secs(1);
    config.seed = Some(3);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(agora_agent::run(config, async move {
        let _ = stopped.await;
    }));
    stop
}

/// Reports the subscription and the first offers.
#[derive(Debug)]
struct Probe(mpsc::UnboundedSender<String>);

impl Scheduler for Probe {
    fn subscribed(&mut self, _calls: &mut Calls, info: &Subscribed) {
        let _ = self.0.send(format!("subscribed {}", info.master_id));
    }
    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let _ = self.0.send(format!("offers {}", offers.len()));
        calls.exit();
    }
}

fn driver_config(masters: &[SocketAddr]) -> DriverConfig {
    let mut config = DriverConfig::new(masters.iter().map(ToString::to_string), FrameworkInfo::new("follower"));
    config.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    config.connect_timeout = Duration::from_secs(1);
    config.jitter_seed = Some(11);
    config
}

async fn next(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("the scheduler hears in time")
        .expect("the driver runs")
}

#[tokio::test]
async fn the_driver_subscribes_at_the_leader_a_standby_names_and_gets_offers() {
    let leader = Leader::start().await;
    let _agent = spawn_agent(vec![leader.addr.to_string()]);
    // No leader known at first: the driver backs off and asks again.
    let standby = Standby::start(None).await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut driver = Driver::new(driver_config(&[standby.addr]), Probe(tx)).expect("valid config");
    let run = tokio::spawn(async move { driver.run().await });
    let deadline = Instant::now() + PATIENCE;
    while standby.calls() < 2 {
        assert!(
            Instant::now() < deadline,
            "the driver retries a standby without a leader"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    standby.hint.set(Some(leader.addr.to_string()));
    assert_eq!(next(&mut events).await, "subscribed leader");
    assert!(next(&mut events).await.starts_with("offers "));
    let exit = tokio::time::timeout(PATIENCE, run).await.expect("the driver exits");
    assert!(matches!(exit, Ok(Ok(_))), "{exit:?}");
}

#[tokio::test]
async fn an_agent_given_a_standby_registers_with_the_leader() {
    let leader = Leader::start().await;
    let standby = Standby::start(Some(leader.addr.to_string())).await;
    let _agent = spawn_agent(vec![standby.addr.to_string()]);
    let deadline = Instant::now() + PATIENCE;
    while leader.agents().await == 0 {
        assert!(Instant::now() < deadline, "the agent registers with the leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = common::state(leader.addr).await;
    assert_eq!(
        state.agents[0].info.as_ref().map(|i| i.hostname.as_str()),
        Some("follower")
    );
    assert!(standby.calls() >= 1, "the agent asked the standby first");
}

/// Two standbys naming each other: every client backs off between bounded
/// rounds of redirects instead of bouncing between them as fast as it can.
#[tokio::test]
async fn standbys_pointing_at_each_other_do_not_make_clients_spin() {
    let a = Standby::start(None).await;
    let b = Standby::start(Some(a.addr.to_string())).await;
    a.hint.set(Some(b.addr.to_string()));

    // The driver: gives up after its attempts, each a bounded run of
    // redirects followed by a backoff.
    let mut config = driver_config(&[a.addr, b.addr]);
    config.max_reconnect_attempts = Some(2);
    let (tx, _events) = mpsc::unbounded_channel();
    let mut driver = Driver::new(config, Probe(tx)).expect("valid config");
    let result = tokio::time::timeout(PATIENCE, driver.run())
        .await
        .expect("the driver gives up");
    assert!(
        matches!(result, Err(DriverError::Unreachable { attempts: 3, .. })),
        "{result:?}"
    );
    let asked = a.calls() + b.calls();
    let bound = 3 * (agora_proto::masters::MAX_REDIRECTS as usize + 1);
    assert!(asked <= bound, "{asked} SUBSCRIBEs for 3 attempts (at most {bound})");

    // The agent: over half a second of backoffs of 20 to 200 ms it makes a
    // handful of bounded rounds.
    let before = a.calls() + b.calls();
    let stop = spawn_agent(vec![a.addr.to_string(), b.addr.to_string()]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stop);
    let asked = a.calls() + b.calls() - before;
    assert!(asked >= 2, "the agent tried: {asked}");
    assert!(asked <= 60, "the agent spins: {asked} attaches in 500 ms");
}

#[test]
fn the_cli_follows_a_standby_to_the_leader() {
    let (_master, addr) = start_master(&[]);
    let _agent = start_agent(addr, "cpus:2;mem:512");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let standby = runtime.block_on(Standby::start(Some(addr.to_string())));
    let standby_addr = standby.addr.to_string();
    let agents = eventually(PATIENCE, || {
        let output = common::agora()
            .args(["agents", "--master", &standby_addr])
            .output()
            .expect("agora agents runs");
        assert!(output.status.success(), "{}", describe(&output));
        let listed = text(&output.stdout);
        listed.contains("active").then_some(listed)
    });
    assert!(agents.is_some(), "the agent shows through the standby");

    // A task started through the standby shows in `agora ps` through it.
    let mut run = common::Proc(
        common::agora()
            .args([
                "run",
                "--master",
                &standby_addr,
                "--name",
                "followed",
                "--",
                "sleep",
                "30",
            ])
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("agora run starts"),
    );
    let listed = eventually(PATIENCE, || {
        let output = common::agora()
            .args(["ps", "--master", &standby_addr])
            .output()
            .expect("agora ps runs");
        assert!(output.status.success(), "{}", describe(&output));
        let listed = text(&output.stdout);
        listed.contains("followed").then_some(listed)
    });
    assert!(listed.is_some(), "the task shows through the standby");
    let _ = run.0.kill();
    assert!(standby.calls() >= 2);
}

#[test]
fn the_cli_says_when_no_master_leads() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let none = runtime.block_on(Standby::start(None));
    let output = common::agora()
        .args(["ps", "--master", &none.addr.to_string(), "--leader-wait", "300ms"])
        .output()
        .expect("agora ps runs");
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(said.contains("no master leads"), "{said}");
    assert!(none.calls() >= 2, "it asked again before giving up: {}", none.calls());

    // Two standbys naming each other: a bounded number of calls, then the same answer.
    let a = runtime.block_on(Standby::start(None));
    let b = runtime.block_on(Standby::start(Some(a.addr.to_string())));
    a.hint.set(Some(b.addr.to_string()));
    let started = Instant::now();
    let output = common::agora()
        .args([
            "ps",
            "--master",
            &format!("{},{}", a.addr, b.addr),
            "--leader-wait",
            "300ms",
        ])
        .output()
        .expect("agora ps runs");
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(
        said.contains("no master leads") && said.contains("redirecting"),
        "{said}"
    );
    let asked = a.calls() + b.calls();
    assert!(asked <= 40, "{asked} calls in {:?}", started.elapsed());
}
