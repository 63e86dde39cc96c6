//! The link against an in-process fake master speaking `agora.v1.AgentLink`.
//!
//! These tests use real time (the network is real) with short retry and
//! backoff settings, so each takes well under two seconds. The fake hands
//! every attached stream to the test, which plays the master's part.
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core
#![cfg(feature = "link")]

use agora_agent::{AgentConfig, ContainerizerKind, ReconnectBackoff, RetryPolicy};
use agora_proto::pb::agent_link_server::{AgentLink, AgentLinkServer};
use agora_proto::{
    AgentId, AgentMessage, CommandInfo, FileChunk, FrameworkId, MasterMessage, RunningTask, SandboxFile, TaskId,
    TaskInfo, TaskState, TaskStatus, pb,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

const WAIT: Duration = Duration::from_secs(2);

/// One stream from the agent, as the master sees it.
struct Conn {
    from_agent: mpsc::UnboundedReceiver<pb::AgentMessage>,
    to_agent: mpsc::UnboundedSender<Result<pb::MasterMessage, Status>>,
}

impl Conn {
    /// The agent's next message; fails the test after [`WAIT`].
    async fn recv(&mut self) -> AgentMessage {
        let wire = timeout(WAIT, self.from_agent.recv())
            .await
            .expect("the agent answers in time")
            .expect("the agent keeps the stream open");
        AgentMessage::try_from(wire).expect("the agent sends valid messages")
    }

    /// The agent's next status update, skipping pongs.
    async fn recv_update(&mut self) -> TaskStatus {
        loop {
            match self.recv().await {
                AgentMessage::StatusUpdate { status, .. } => return status,
                // Pongs and periodic usage reports may come between any two updates.
                AgentMessage::Pong | AgentMessage::Usage(_) => {}
                other => panic!("expected a status update, got {other:?}"),
            }
        }
    }

    /// Whatever the agent sends within `window`.
    async fn drain(&mut self, window: Duration) -> Vec<AgentMessage> {
        let end = Instant::now() + window;
        let mut messages = Vec::new();
        while let Ok(Some(wire)) = tokio::time::timeout_at(end, self.from_agent.recv()).await {
            messages.push(AgentMessage::try_from(wire).expect("valid"));
        }
        messages
    }

    fn send(&self, message: MasterMessage) {
        self.send_wire(message.into());
    }

    fn send_wire(&self, message: pb::MasterMessage) {
        self.to_agent.send(Ok(message)).expect("the stream is open");
    }

    fn ack(&self, status: &TaskStatus) {
        self.send(MasterMessage::Acknowledge {
            framework_id: framework(),
            task_id: status.task_id.clone(),
            uuid: status.uuid.expect("updates carry a uuid"),
        });
    }

    /// Expects `Register` and answers `Registered` as `agent-1`.
    async fn register(&mut self, ping_interval: Duration) -> (Option<AgentId>, Vec<RunningTask>) {
        let AgentMessage::Register { agent_id, tasks, .. } = self.recv().await else {
            panic!("the first message is Register");
        };
        self.send(MasterMessage::Registered {
            agent_id: agent_id_1(),
            ping_interval,
        });
        (agent_id, tasks)
    }
}

struct FakeMaster {
    conns: mpsc::UnboundedSender<Conn>,
}

#[tonic::async_trait]
impl AgentLink for FakeMaster {
    type AttachStream = UnboundedReceiverStream<Result<pb::MasterMessage, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = request.into_inner();
        let (in_tx, from_agent) = mpsc::unbounded_channel();
        let (to_agent, mut from_test) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        // Relays both ways; when either side ends, both do (as a master
        // closes its stream once the agent closed its own).
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = inbound.message() => {
                        let Ok(Some(message)) = message else { break };
                        if in_tx.send(message).is_err() {
                            break;
                        }
                    }
                    message = from_test.recv() => {
                        let Some(message) = message else { break };
                        if out_tx.send(message).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let _ = self.conns.send(Conn { from_agent, to_agent });
        Ok(Response::new(UnboundedReceiverStream::new(out_rx)))
    }
}

struct Master {
    addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
}

impl Master {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AgentLinkServer::new(FakeMaster { conns: tx }))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self { addr, conns }
    }

    async fn accept(&mut self) -> Conn {
        timeout(WAIT, self.conns.recv())
            .await
            .expect("the agent connects in time")
            .expect("the fake master runs")
    }
}

struct Agent {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), agora_agent::AgentError>>,
}

impl Agent {
    fn start(config: AgentConfig) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(agora_agent::run(config, async {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            handle,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(WAIT, self.handle)
            .await
            .expect("the agent stops in time")
            .expect("the agent task does not panic")
            .expect("the agent stops cleanly");
    }
}

fn framework() -> FrameworkId {
    FrameworkId::new("f1").expect("valid")
}

fn agent_id_1() -> AgentId {
    AgentId::new("agent-1").expect("valid")
}

fn config(masters: &[String]) -> AgentConfig {
    let mut config = AgentConfig::new(
        masters.iter().cloned(),
        "cpus:2;mem:1GiB;ports:[31000-31010]".parse().expect("valid"),
    );
    config.hostname = Some("test-host".to_owned());
    config.attributes = "rack:r1;zone:a".parse().expect("valid");
    // Long enough that no retry crosses an acknowledgement in tests that
    // are not about retries.
    config.status_retry = RetryPolicy {
        first_retry: Duration::from_secs(60),
        max_interval: Duration::from_secs(60),
    };
    config.reconnect = ReconnectBackoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        jitter: 0.5,
    };
    config.connect_timeout = Duration::from_secs(1);
    config.seed = Some(1);
    config
}

fn task(id: &str, command: &str) -> TaskInfo {
    TaskInfo {
        name: id.to_owned(),
        task_id: TaskId::new(id).expect("valid"),
        agent_id: agent_id_1(),
        resources: "cpus:1".parse().expect("valid"),
        command: CommandInfo::shell(command),
        kill_grace_period: None,
    }
}

#[tokio::test]
async fn registers_with_the_configured_resources() {
    let mut master = Master::start().await;
    let config = config(&[master.addr.to_string()]);
    let agent = Agent::start(config.clone());
    let mut conn = master.accept().await;
    let AgentMessage::Register { info, agent_id, tasks } = conn.recv().await else {
        panic!("the first message is Register");
    };
    assert_eq!(info.hostname, "test-host");
    assert_eq!(info.resources, config.resources);
    assert_eq!(info.attributes.to_string(), "rack:r1;zone:a");
    assert_eq!(agent_id, None);
    assert_eq!(tasks, []);
    conn.send(MasterMessage::Registered {
        agent_id: agent_id_1(),
        ping_interval: Duration::from_secs(15),
    });
    conn.send(MasterMessage::Ping);
    assert_eq!(conn.recv().await, AgentMessage::Pong);

    // Shutdown closes the agent's side of the stream, then returns.
    let closing = tokio::spawn(async move {
        let closed = timeout(WAIT, conn.from_agent.recv()).await.expect("closed in time");
        assert!(closed.is_none(), "nothing after shutdown: {closed:?}");
    });
    agent.shutdown().await;
    closing.await.expect("the stream was closed");
}

#[tokio::test]
async fn updates_are_retried_until_acknowledged_and_in_order() {
    let mut master = Master::start().await;
    let mut config = config(&[format!("http://{}", master.addr)]);
    config.status_retry = RetryPolicy {
        first_retry: Duration::from_millis(100),
        max_interval: Duration::from_millis(400),
    };
    let agent = Agent::start(config);
    let mut conn = master.accept().await;
    conn.register(Duration::from_secs(15)).await;
    let started = Instant::now();
    conn.send(MasterMessage::RunTask {
        framework_id: framework(),
        task: task("t1", "sleep 0.2"),
    });

    let running = conn.recv_update().await;
    assert_eq!(running.state, TaskState::Running);
    assert_eq!(running.agent_id, Some(agent_id_1()));
    assert_eq!(conn.recv_update().await, running, "re-sent while unacknowledged");
    // FINISHED (due at 0.2 s) is held back until RUNNING is acknowledged.
    let retries = conn.drain(Duration::from_millis(300)).await;
    assert!(
        retries
            .iter()
            .all(|m| matches!(m, AgentMessage::StatusUpdate { status, .. } if *status == running)),
        "only RUNNING until it is acknowledged: {retries:?}"
    );
    conn.ack(&running);

    let finished = loop {
        let status = conn.recv_update().await;
        if status.uuid != running.uuid {
            break status;
        }
    };
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(finished.state, TaskState::Finished);
    assert_eq!(finished.exit_code, Some(0));
    assert_eq!(conn.recv_update().await, finished, "re-sent while unacknowledged");
    conn.ack(&finished);
    // Unacknowledged, FINISHED would come again at least twice in 500 ms
    // (after 200 and 400 ms); at most one re-send can cross the acknowledgement.
    let after = conn.drain(Duration::from_millis(500)).await;
    let repeats = after
        .iter()
        .filter(|m| matches!(m, AgentMessage::StatusUpdate { status, .. } if *status == finished))
        .count();
    assert!(
        repeats <= 1 && after.len() == repeats,
        "nothing after the acknowledgement: {after:?}"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn reconnects_and_reregisters_with_its_id_and_running_task() {
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[master.addr.to_string()]));
    let mut conn = master.accept().await;
    assert_eq!(conn.register(Duration::from_secs(15)).await, (None, vec![]));
    conn.send(MasterMessage::RunTask {
        framework_id: framework(),
        task: task("long", "sleep 30"),
    });
    let running = conn.recv_update().await;
    conn.ack(&running);
    conn.send(MasterMessage::Ping);
    assert_eq!(conn.recv().await, AgentMessage::Pong, "the acknowledgement was handled");
    drop(conn); // the master drops the stream

    let mut conn = master.accept().await;
    let (agent_id, tasks) = conn.register(Duration::from_secs(15)).await;
    assert_eq!(agent_id, Some(agent_id_1()));
    assert_eq!(
        tasks,
        [RunningTask {
            framework_id: framework(),
            task: task("long", "sleep 30"),
            state: TaskState::Running,
        }]
    );
    conn.send(MasterMessage::Ping);
    assert_eq!(
        conn.recv().await,
        AgentMessage::Pong,
        "nothing to re-send: all acknowledged"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_updates_are_resent_after_reregistration() {
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[master.addr.to_string()]));
    let mut conn = master.accept().await;
    conn.register(Duration::from_secs(15)).await;
    conn.send(MasterMessage::RunTask {
        framework_id: framework(),
        task: task("t1", "sleep 30"),
    });
    let running = conn.recv_update().await;
    drop(conn);

    let mut conn = master.accept().await;
    conn.register(Duration::from_secs(15)).await;
    assert_eq!(conn.recv_update().await, running, "re-sent at once, not after 60 s");
    agent.shutdown().await;
}

#[tokio::test]
async fn malformed_messages_are_dropped() {
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[master.addr.to_string()]));
    let mut conn = master.accept().await;
    conn.register(Duration::from_secs(15)).await;
    conn.send_wire(pb::MasterMessage { message: None });
    conn.send_wire(pb::MasterMessage {
        message: Some(pb::master_message::Message::RunTask(pb::RunTask {
            framework_id: Some(pb::FrameworkId { value: "f1".to_owned() }),
            task: None,
        })),
    });
    conn.send_wire(pb::MasterMessage {
        message: Some(pb::master_message::Message::Acknowledge(pb::AcknowledgeUpdate {
            framework_id: Some(pb::FrameworkId { value: "f1".to_owned() }),
            task_id: Some(pb::TaskId { value: "t".to_owned() }),
            uuid: vec![1, 2, 3],
        })),
    });
    conn.send(MasterMessage::Ping);
    assert_eq!(conn.recv().await, AgentMessage::Pong, "same stream, still alive");
    agent.shutdown().await;
}

#[tokio::test]
async fn a_silent_master_is_left_for_a_new_stream() {
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[master.addr.to_string()]));
    let mut conn = master.accept().await;
    // Pings every 40 ms are promised but never sent: gone after 5 × 40 ms.
    conn.register(Duration::from_millis(40)).await;
    let left = Instant::now();
    let mut second = master.accept().await;
    assert!(left.elapsed() >= Duration::from_millis(150), "{:?}", left.elapsed());
    let (agent_id, _) = second.register(Duration::from_secs(15)).await;
    assert_eq!(agent_id, Some(agent_id_1()));
    drop(conn);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_refused_agent_tries_again() {
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[master.addr.to_string()]));
    let mut conn = master.accept().await;
    let AgentMessage::Register { .. } = conn.recv().await else {
        panic!("Register first");
    };
    conn.send(MasterMessage::Error("try later".to_owned()));
    let mut conn = master.accept().await;
    assert_eq!(conn.register(Duration::from_secs(15)).await, (None, vec![]));
    agent.shutdown().await;
}

#[tokio::test]
async fn each_master_is_tried_in_turn() {
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address")
    };
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[format!("{dead},{}", master.addr)]));
    let mut conn = master.accept().await;
    assert_eq!(conn.register(Duration::from_secs(15)).await, (None, vec![]));
    agent.shutdown().await;
}

#[tokio::test]
async fn kill_and_shutdown_framework_over_the_link() {
    let mut master = Master::start().await;
    let agent = Agent::start(config(&[master.addr.to_string()]));
    let mut conn = master.accept().await;
    conn.register(Duration::from_secs(15)).await;
    for id in ["a", "b"] {
        conn.send(MasterMessage::RunTask {
            framework_id: framework(),
            task: task(id, "sleep 60"),
        });
        let running = conn.recv_update().await;
        conn.ack(&running);
    }
    conn.send(MasterMessage::KillTask {
        framework_id: framework(),
        task_id: TaskId::new("a").expect("valid"),
    });
    let killed = conn.recv_update().await;
    assert_eq!((killed.task_id.as_str(), killed.state), ("a", TaskState::Killed));
    conn.ack(&killed);
    conn.send(MasterMessage::ShutdownFramework {
        framework_id: framework(),
    });
    let killed = conn.recv_update().await;
    assert_eq!((killed.task_id.as_str(), killed.state), ("b", TaskState::Killed));
    assert_eq!(
        conn.drain(Duration::from_millis(300)).await,
        [],
        "a shut-down framework's final update is not retried"
    );
    agent.shutdown().await;
}

/// Asks for a sandbox file and returns the answer.
async fn read_file(
    conn: &mut Conn,
    request_id: u64,
    task: &str,
    offset: u64,
    max_bytes: u64,
) -> Result<FileChunk, String> {
    conn.send(MasterMessage::ReadFile {
        request_id,
        framework_id: framework(),
        task_id: TaskId::new(task).expect("valid"),
        file: SandboxFile::Stdout,
        offset,
        max_bytes,
    });
    loop {
        match conn.recv().await {
            AgentMessage::FileData { request_id: id, result } => {
                assert_eq!(id, request_id);
                return result;
            }
            AgentMessage::Pong | AgentMessage::Usage(_) => {}
            other => panic!("expected file data, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn real_tasks_sandbox_reads_usage_and_kill_on_shutdown() {
    let work_dir = std::env::temp_dir().join(format!("agora-link-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work_dir);
    let mut master = Master::start().await;
    let mut config = config(&[master.addr.to_string()]);
    config.containerizer = ContainerizerKind::Process;
    config.work_dir = work_dir.clone();
    config.usage_interval = Duration::from_millis(100);
    let agent = Agent::start(config);
    let mut conn = master.accept().await;
    conn.register(Duration::from_secs(15)).await;

    conn.send(MasterMessage::RunTask {
        framework_id: framework(),
        task: task("echo", "echo hello sandbox"),
    });
    let running = conn.recv_update().await;
    assert_eq!(running.state, TaskState::Running);
    conn.ack(&running);
    let finished = conn.recv_update().await;
    assert_eq!((finished.state, finished.exit_code), (TaskState::Finished, Some(0)));
    conn.ack(&finished);

    let chunk = read_file(&mut conn, 1, "echo", 0, 1000).await.expect("stdout");
    assert_eq!(
        chunk,
        FileChunk {
            data: b"hello sandbox\n".to_vec(),
            offset: 0,
            size: 14
        }
    );
    let part = read_file(&mut conn, 2, "echo", 6, 4).await.expect("stdout");
    assert_eq!((part.data.as_slice(), part.size), (&b"sand"[..], 14));
    let past = read_file(&mut conn, 3, "echo", 100, 10)
        .await
        .expect("past the end is no error");
    assert_eq!((past.data.len(), past.size), (0, 14));
    let missing = read_file(&mut conn, 4, "nope", 0, 10).await.expect_err("no such task");
    assert!(missing.contains("no sandbox"), "{missing}");

    // A running task's usage is reported; shutdown kills it.
    conn.send(MasterMessage::RunTask {
        framework_id: framework(),
        task: task("sleeper", "sleep 100"),
    });
    let running = conn.recv_update().await;
    conn.ack(&running);
    let usage = loop {
        if let AgentMessage::Usage(usage) = conn.recv().await {
            break usage;
        }
    };
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].1.as_str(), "sleeper");
    assert!(usage[0].2.pids >= 1, "{usage:?}");

    let pid_file = work_dir.join("sandboxes/f1/sleeper");
    assert!(pid_file.is_dir());
    let closing = tokio::spawn(async move {
        loop {
            match conn.recv().await {
                AgentMessage::StatusUpdate { status, .. } => return status,
                _ => continue,
            }
        }
    });
    agent.shutdown().await;
    let killed = closing
        .await
        .expect("the final update is sent before the stream closes");
    assert_eq!((killed.task_id.as_str(), killed.state), ("sleeper", TaskState::Killed));
    let _ = std::fs::remove_dir_all(&work_dir);
}

/// A leader deposed while the agent is attached ends the stream naming its
/// successor, a master the agent was not given: the agent re-registers
/// there at once, with its id, though its backoff is far longer than the
/// test waits.
#[tokio::test]
async fn a_stream_ended_by_a_deposed_leader_moves_the_agent_to_the_new_one_at_once() {
    let mut old = Master::start().await;
    let mut new = Master::start().await;
    let mut config = config(&[old.addr.to_string()]);
    config.reconnect = ReconnectBackoff {
        initial: Duration::from_secs(30),
        max: Duration::from_secs(30),
        jitter: 0.0,
    };
    let agent = Agent::start(config);
    let mut conn = old.accept().await;
    conn.register(Duration::from_secs(10)).await;
    conn.to_agent
        .send(Err(agora_proto::leader::not_leader(Some(&new.addr.to_string()))))
        .expect("the stream is open");
    let mut moved = new.accept().await;
    let AgentMessage::Register { agent_id, .. } = moved.recv().await else {
        panic!("the first message is Register");
    };
    assert_eq!(agent_id, Some(agent_id_1()), "it re-registers as itself");
    agent.shutdown().await;
}
