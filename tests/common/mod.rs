//! Starting the real `agora` binaries and talking to them over real sockets.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)] // not every test uses every helper

use agora_proto::pb;
use agora_proto::pb::operator_client::OperatorClient;
use agora_proto::pb::scheduler_client::SchedulerClient;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
    let mut child = agora()
        .args([
            "master",
            "--listen",
            "127.0.0.1:0",
            "--allocation-interval",
            "20ms",
            "--master-id",
            "test",
        ])
        .args(extra)
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
