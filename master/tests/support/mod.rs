//! Shared helpers of the server's integration tests: a server on an
//! ephemeral port, tonic clients, and wire messages built by hand (the tests
//! speak the protocol as an outside client would).

#![allow(dead_code, unreachable_pub)]

use agora_master::server::{self, ServerConfig, ServerError};
use agora_proto::pb;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(2);

/// Fails the test if `future` takes longer than [`PATIENCE`].
pub async fn soon<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A server on 127.0.0.1 with a free port, allocating every 10 ms.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

pub fn config() -> ServerConfig {
    let mut config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServerConfig::default()
    };
    config.master.allocation_interval = Duration::from_millis(10);
    config.master.master_id = "test".to_owned();
    config
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let server = server::bind(config).await.expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn scheduler(&self) -> pb::scheduler_client::SchedulerClient<Channel> {
        pb::scheduler_client::SchedulerClient::connect(self.url())
            .await
            .expect("connect")
    }

    pub async fn agent_client(&self) -> pb::agent_link_client::AgentLinkClient<Channel> {
        pb::agent_link_client::AgentLinkClient::connect(self.url())
            .await
            .expect("connect")
    }

    pub async fn operator(&self) -> pb::operator_client::OperatorClient<Channel> {
        pb::operator_client::OperatorClient::connect(self.url())
            .await
            .expect("connect")
    }

    pub async fn state(&self) -> pb::ClusterState {
        self.operator()
            .await
            .get_state(pb::GetStateRequest {})
            .await
            .expect("GetState")
            .into_inner()
    }

    /// Waits, without asking, for the server to stop (a deposed master
    /// does) and returns what `run` returned.
    pub async fn stopped(mut self) -> Result<(), ServerError> {
        // Held, not dropped: a dropped sender would ask it to stop.
        let _stop = self.stop.take();
        soon("the server to stop by itself", &mut self.task)
            .await
            .expect("server task")
    }

    /// Asks the server to stop and returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        soon("the server to stop", &mut self.task).await.expect("server task")
    }
}

pub fn scalar(name: &str, value: f64) -> pb::Resource {
    pb::Resource {
        name: name.to_owned(),
        value: Some(pb::resource::Value::Scalar(value)),
        reservation: String::new(),
    }
}

pub fn framework_info(name: &str) -> pb::FrameworkInfo {
    pb::FrameworkInfo {
        name: name.to_owned(),
        user: "test".to_owned(),
        ..Default::default()
    }
}

pub fn agent_info(hostname: &str) -> pb::AgentInfo {
    pb::AgentInfo {
        hostname: hostname.to_owned(),
        resources: vec![scalar("cpus", 4.0), scalar("mem", 1024.0)],
        attributes: vec![],
    }
}

/// A framework's open event stream.
pub struct Framework {
    pub id: pb::FrameworkId,
    pub events: Streaming<pb::Event>,
}

impl Framework {
    /// Subscribes and reads SUBSCRIBED.
    pub async fn subscribe(server: &TestServer, info: pb::FrameworkInfo) -> Self {
        let mut client = server.scheduler().await;
        let mut events = client
            .subscribe(pb::SubscribeRequest {
                framework_info: Some(info),
            })
            .await
            .expect("subscribe")
            .into_inner();
        let id = match next_event(&mut events).await {
            pb::event::Event::Subscribed(s) => s.framework_id.expect("framework id"),
            other => panic!("expected SUBSCRIBED, got {other:?}"),
        };
        Self { id, events }
    }

    /// The next event other than a heartbeat.
    pub async fn next(&mut self) -> pb::event::Event {
        loop {
            match next_event(&mut self.events).await {
                pb::event::Event::Heartbeat(_) => continue,
                event => return event,
            }
        }
    }

    /// The next OFFERS event.
    pub async fn offers(&mut self) -> Vec<pb::Offer> {
        loop {
            if let pb::event::Event::Offers(offers) = self.next().await {
                return offers.offers;
            }
        }
    }
}

/// The next event on a stream, failing the test if it ends or stalls.
pub async fn next_event(events: &mut Streaming<pb::Event>) -> pb::event::Event {
    soon("an event", events.message())
        .await
        .expect("event stream failed")
        .expect("event stream ended")
        .event
        .expect("event without a body")
}

/// An agent's open stream: what it sends, and what the master answers.
pub struct Agent {
    pub outbound: mpsc::Sender<pb::AgentMessage>,
    pub inbound: Streaming<pb::MasterMessage>,
}

impl Agent {
    pub async fn attach(server: &TestServer) -> Self {
        let (outbound, rx) = mpsc::channel(16);
        let inbound = server
            .agent_client()
            .await
            .attach(ReceiverStream::new(rx))
            .await
            .expect("attach")
            .into_inner();
        Self { outbound, inbound }
    }

    pub async fn send(&self, message: pb::agent_message::Message) {
        self.outbound
            .send(pb::AgentMessage { message: Some(message) })
            .await
            .expect("agent stream open");
    }

    /// The next message other than a ping; `None` when the master closed the stream.
    pub async fn next(&mut self) -> Option<pb::master_message::Message> {
        loop {
            let message = soon("a master message", self.inbound.message())
                .await
                .expect("agent stream failed")?;
            match message.message.expect("message without a body") {
                pb::master_message::Message::Ping(_) => continue,
                message => return Some(message),
            }
        }
    }

    /// Registers and reads the agent id the master gives.
    pub async fn register(&mut self, info: pb::AgentInfo) -> pb::AgentId {
        self.send(pb::agent_message::Message::Register(pb::RegisterAgent {
            agent_info: Some(info),
            agent_id: None,
            tasks: vec![],
        }))
        .await;
        match self.next().await {
            Some(pb::master_message::Message::Registered(r)) => r.agent_id.expect("agent id"),
            other => panic!("expected Registered, got {other:?}"),
        }
    }
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    soon(&format!("GET {path}"), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let response = String::from_utf8(response).expect("utf-8 response");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        (status, body.to_owned())
    })
    .await
}
