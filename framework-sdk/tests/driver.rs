//! The driver against an in-process fake master: a tonic `Scheduler`
//! service whose event streams the tests write by hand, recording every call.
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core
#![cfg(feature = "driver")]

use agora_proto::pb::scheduler_server::{Scheduler as SchedulerService, SchedulerServer};
use agora_proto::{CommandInfo, FrameworkInfo, Offer, TaskState, TaskStatus, pb};
use agora_sdk::driver::{Backoff, Driver, DriverConfig, DriverError, ExitReason};
use agora_sdk::frameworks::{Batch, BatchConfig, TaskTemplate};
use agora_sdk::{Calls, Reconciliation, Scheduler, Subscribed, TaskRequest};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Code, Request, Response, Status};

const WAIT: Duration = Duration::from_secs(2);

/// A call the fake master received.
// Tests look into some of the requests only; all are kept for failure output.
#[allow(dead_code)]
#[derive(Debug)]
enum Received {
    Accept(pb::AcceptRequest),
    Decline(pb::DeclineRequest),
    Revive(pb::ReviveRequest),
    Suppress(pb::SuppressRequest),
    Kill(pb::KillRequest),
    Acknowledge(pb::AcknowledgeRequest),
    Reconcile(pb::ReconcileRequest),
    Teardown(pb::TeardownRequest),
    UpdateFramework(pb::UpdateFrameworkRequest),
}

impl Received {
    fn name(&self) -> &'static str {
        match self {
            Self::Accept(_) => "ACCEPT",
            Self::Decline(_) => "DECLINE",
            Self::Revive(_) => "REVIVE",
            Self::Suppress(_) => "SUPPRESS",
            Self::Kill(_) => "KILL",
            Self::Acknowledge(_) => "ACKNOWLEDGE",
            Self::Reconcile(_) => "RECONCILE",
            Self::Teardown(_) => "TEARDOWN",
            Self::UpdateFramework(_) => "UPDATE_FRAMEWORK",
        }
    }
}

/// One SUBSCRIBE the fake master received, with the stream to answer on.
#[derive(Debug)]
struct Subscription {
    request: pb::SubscribeRequest,
    events: mpsc::Sender<Result<pb::Event, Status>>,
}

impl Subscription {
    async fn send(&self, event: pb::event::Event) {
        self.events
            .send(Ok(pb::Event { event: Some(event) }))
            .await
            .expect("driver reads the stream");
    }

    async fn subscribed(&self, framework_id: &str, heartbeat_seconds: f64) {
        self.send(pb::event::Event::Subscribed(pb::Subscribed {
            framework_id: Some(pb::FrameworkId {
                value: framework_id.to_owned(),
            }),
            heartbeat_interval_seconds: heartbeat_seconds,
            master_id: "fake".to_owned(),
        }))
        .await;
    }
}

/// How the fake master misbehaves.
#[derive(Debug, Default)]
struct Script {
    reject_subscribe: Option<Code>,
    reject_declines: Option<Code>,
}

#[derive(Debug)]
struct FakeMaster {
    subscriptions: mpsc::UnboundedSender<Subscription>,
    calls: mpsc::UnboundedSender<Received>,
    script: Arc<Mutex<Script>>,
}

impl FakeMaster {
    fn record(&self, call: Received) -> Result<Response<pb::CallResponse>, Status> {
        let reject = matches!(call, Received::Decline(_))
            .then(|| self.script.lock().expect("lock").reject_declines)
            .flatten();
        // Record even rejected calls: the tests check they were sent.
        let _ = self.calls.send(call);
        match reject {
            Some(code) => Err(Status::new(code, "scripted rejection")),
            None => Ok(Response::new(pb::CallResponse {})),
        }
    }
}

#[tonic::async_trait]
impl SchedulerService for FakeMaster {
    type SubscribeStream = ReceiverStream<Result<pb::Event, Status>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        if let Some(code) = self.script.lock().expect("lock").reject_subscribe {
            return Err(Status::new(code, "scripted rejection"));
        }
        let (events, rx) = mpsc::channel(16);
        let _ = self.subscriptions.send(Subscription {
            request: request.into_inner(),
            events,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
    async fn accept(&self, r: Request<pb::AcceptRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Accept(r.into_inner()))
    }
    async fn decline(&self, r: Request<pb::DeclineRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Decline(r.into_inner()))
    }
    async fn revive(&self, r: Request<pb::ReviveRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Revive(r.into_inner()))
    }
    async fn suppress(&self, r: Request<pb::SuppressRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Suppress(r.into_inner()))
    }
    async fn kill(&self, r: Request<pb::KillRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Kill(r.into_inner()))
    }
    async fn acknowledge(&self, r: Request<pb::AcknowledgeRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Acknowledge(r.into_inner()))
    }
    async fn reconcile(&self, r: Request<pb::ReconcileRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Reconcile(r.into_inner()))
    }
    async fn teardown(&self, r: Request<pb::TeardownRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::Teardown(r.into_inner()))
    }
    async fn update_framework(
        &self,
        r: Request<pb::UpdateFrameworkRequest>,
    ) -> Result<Response<pb::CallResponse>, Status> {
        self.record(Received::UpdateFramework(r.into_inner()))
    }
}

/// A running fake master and what it saw.
#[derive(Debug)]
struct Master {
    address: String,
    subscriptions: mpsc::UnboundedReceiver<Subscription>,
    calls: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<Script>>,
    server: JoinHandle<()>,
}

impl Master {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let (sub_tx, subscriptions) = mpsc::unbounded_channel();
        let (call_tx, calls) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(Script::default()));
        let service = FakeMaster {
            subscriptions: sub_tx,
            calls: call_tx,
            script: Arc::clone(&script),
        };
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(SchedulerServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .expect("fake master serves");
        });
        Self {
            address,
            subscriptions,
            calls,
            script,
            server,
        }
    }

    async fn next_subscription(&mut self) -> Subscription {
        within(self.subscriptions.recv()).await.expect("server alive")
    }

    async fn next_call(&mut self) -> Received {
        within(self.calls.recv()).await.expect("server alive")
    }

    /// Subscribes the driver as `fw-1` and checks the implicit reconciliation.
    async fn accept_subscription(&mut self, heartbeat_seconds: f64) -> Subscription {
        let sub = self.next_subscription().await;
        sub.subscribed("fw-1", heartbeat_seconds).await;
        match self.next_call().await {
            Received::Reconcile(r) => {
                assert_eq!(r.framework_id.map(|f| f.value).as_deref(), Some("fw-1"));
                assert!(r.tasks.is_empty(), "implicit reconciliation");
            }
            other => panic!("expected RECONCILE after SUBSCRIBED, got {other:?}"),
        }
        sub
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

/// Reports callbacks on a channel; tears down on offers when asked to.
#[derive(Debug)]
struct Probe {
    events: mpsc::UnboundedSender<String>,
    teardown_on_offers: bool,
}

impl Scheduler for Probe {
    fn subscribed(&mut self, _calls: &mut Calls, info: &Subscribed) {
        let _ = self.events.send(format!("subscribed {}", info.framework_id));
    }
    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let _ = self.events.send(format!("offers {}", offers.len()));
        calls.decline(offers.into_iter().map(|o| o.id).collect(), Default::default());
        if self.teardown_on_offers {
            calls.revive(vec![]);
            calls.teardown();
        }
    }
    fn status_update(&mut self, _calls: &mut Calls, status: &TaskStatus) {
        let _ = self.events.send(format!("update {} {}", status.task_id, status.state));
    }
    fn error(&mut self, _calls: &mut Calls, message: &str) {
        let _ = self.events.send(format!("error {message}"));
    }
    fn disconnected(&mut self) {
        let _ = self.events.send("disconnected".to_owned());
    }
}

fn config(masters: &[&str]) -> DriverConfig {
    let mut config = DriverConfig::new(masters.iter().copied(), FrameworkInfo::new("probe"));
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    config.connect_timeout = Duration::from_secs(1);
    config.subscribe_timeout = Duration::from_secs(1);
    config.jitter_seed = Some(7);
    config
}

type Run<S> = JoinHandle<(Result<ExitReason, DriverError>, Driver<S>)>;

fn spawn<S: Scheduler + 'static>(mut driver: Driver<S>) -> Run<S> {
    tokio::spawn(async move {
        let result = driver.run().await;
        (result, driver)
    })
}

fn probe(
    config: DriverConfig,
    teardown_on_offers: bool,
) -> (
    Run<Probe>,
    agora_sdk::driver::DriverHandle,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver::new(
        config,
        Probe {
            events: tx,
            teardown_on_offers,
        },
    )
    .expect("valid config");
    let handle = driver.handle();
    (spawn(driver), handle, rx)
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    within(rx.recv()).await.expect("driver alive")
}

fn update(task: &str, uuid: Option<[u8; 16]>) -> pb::event::Event {
    pb::event::Event::Update(pb::Update {
        status: Some(pb::TaskStatus {
            task_id: Some(pb::TaskId { value: task.to_owned() }),
            state: pb::TaskState::TaskRunning as i32,
            agent_id: Some(pb::AgentId { value: "a1".to_owned() }),
            uuid: uuid.map(|u| u.to_vec()).unwrap_or_default(),
            timestamp: 1.0,
            ..Default::default()
        }),
    })
}

#[tokio::test]
async fn subscribes_calls_back_and_reconciles_then_shuts_down() {
    let mut master = Master::start().await;
    let (run, handle, mut events) = probe(config(&[&format!("http://{}", master.address)]), false);
    let sub = master.next_subscription().await;
    let info = sub.request.framework_info.clone().expect("framework info");
    assert_eq!(info.name, "probe");
    assert!(info.id.is_none(), "first subscription has no id");
    sub.subscribed("fw-1", 15.0).await;
    assert_eq!(next_event(&mut events).await, "subscribed fw-1");
    assert!(matches!(master.next_call().await, Received::Reconcile(r) if r.tasks.is_empty()));

    handle.shutdown();
    let (result, driver) = within(run).await.expect("join");
    assert_eq!(result.expect("clean stop"), ExitReason::Shutdown);
    assert_eq!(driver.session().framework_id().map(|f| f.as_str()), Some("fw-1"));
}

#[tokio::test]
async fn acknowledges_updates_with_their_uuid() {
    let mut master = Master::start().await;
    let (run, handle, mut events) = probe(config(&[&master.address]), false);
    let sub = master.accept_subscription(15.0).await;
    next_event(&mut events).await;

    sub.send(update("t1", Some([7; 16]))).await;
    match master.next_call().await {
        Received::Acknowledge(ack) => {
            assert_eq!(ack.uuid, vec![7; 16]);
            assert_eq!(ack.task_id.map(|t| t.value).as_deref(), Some("t1"));
            assert_eq!(ack.agent_id.map(|a| a.value).as_deref(), Some("a1"));
            assert_eq!(ack.framework_id.map(|f| f.value).as_deref(), Some("fw-1"));
        }
        other => panic!("expected ACKNOWLEDGE, got {other:?}"),
    }
    assert_eq!(next_event(&mut events).await, "update t1 TASK_RUNNING");

    // No uuid, no acknowledgement: the next call is the ack of the update after.
    sub.send(update("t2", None)).await;
    sub.send(update("t3", Some([9; 16]))).await;
    match master.next_call().await {
        Received::Acknowledge(ack) => assert_eq!(ack.task_id.map(|t| t.value).as_deref(), Some("t3")),
        other => panic!("expected ACKNOWLEDGE of t3, got {other:?}"),
    }
    handle.shutdown();
    within(run).await.expect("join").0.expect("clean stop");
}

#[tokio::test]
async fn resubscribes_with_the_framework_id_after_the_stream_drops() {
    let mut master = Master::start().await;
    let (run, handle, mut events) = probe(config(&[&master.address]), false);
    let sub = master.accept_subscription(15.0).await;
    assert_eq!(next_event(&mut events).await, "subscribed fw-1");

    drop(sub);
    assert_eq!(next_event(&mut events).await, "disconnected");
    let again = master.next_subscription().await;
    let info = again.request.framework_info.clone().expect("framework info");
    assert_eq!(
        info.id.map(|i| i.value).as_deref(),
        Some("fw-1"),
        "re-subscribes as itself"
    );
    again.subscribed("fw-1", 15.0).await;
    assert_eq!(next_event(&mut events).await, "subscribed fw-1");
    assert!(
        matches!(master.next_call().await, Received::Reconcile(r) if r.tasks.is_empty()),
        "reconciles after every subscription"
    );
    handle.shutdown();
    within(run).await.expect("join").0.expect("clean stop");
}

#[tokio::test]
async fn heartbeat_watchdog_reconnects_a_silent_master() {
    let mut master = Master::start().await;
    let (run, handle, mut events) = probe(config(&[&master.address]), false);
    // 40 ms heartbeats: dead after 5 × 40 = 200 ms of silence.
    let sub = master.accept_subscription(0.04).await;
    next_event(&mut events).await;

    // Heartbeats keep the link alive for well past the timeout.
    for _ in 0..10 {
        sub.send(pb::event::Event::Heartbeat(pb::Heartbeat {})).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(events.try_recv().is_err(), "no disconnection while heartbeats flow");
    assert!(master.subscriptions.try_recv().is_err());

    // Then silence, with the stream still open: only the watchdog can notice.
    let started = tokio::time::Instant::now();
    assert_eq!(next_event(&mut events).await, "disconnected");
    assert!(started.elapsed() >= Duration::from_millis(150), "fired early");
    let again = master.next_subscription().await;
    assert!(again.request.framework_info.and_then(|f| f.id).is_some());
    drop(sub);
    handle.shutdown();
    within(run).await.expect("join").0.expect("clean stop");
}

#[tokio::test]
async fn handle_teardown_sends_teardown_and_stops() {
    let mut master = Master::start().await;
    let (run, handle, mut events) = probe(config(&[&master.address]), false);
    master.accept_subscription(15.0).await;
    next_event(&mut events).await;
    handle.teardown();
    assert!(matches!(master.next_call().await, Received::Teardown(t) if t.framework_id.is_some()));
    let (result, _) = within(run).await.expect("join");
    assert_eq!(result.expect("clean stop"), ExitReason::TornDown);
}

#[tokio::test]
async fn error_event_is_fatal() {
    let mut master = Master::start().await;
    let (run, _handle, mut events) = probe(config(&[&master.address]), false);
    let sub = master.accept_subscription(15.0).await;
    next_event(&mut events).await;
    sub.send(pb::event::Event::Error(pb::Error {
        message: "framework removed".to_owned(),
    }))
    .await;
    let (result, _) = within(run).await.expect("join");
    assert!(matches!(result, Err(DriverError::Fatal(m)) if m == "framework removed"));
    assert_eq!(next_event(&mut events).await, "error framework removed");
}

#[tokio::test]
async fn exit_flushes_queued_calls_in_order_even_past_rejections() {
    let mut master = Master::start().await;
    master.script.lock().expect("lock").reject_declines = Some(Code::InvalidArgument);
    let (run, _handle, _events) = probe(config(&[&master.address]), true);
    let sub = master.accept_subscription(15.0).await;
    sub.send(pb::event::Event::Offers(pb::Offers {
        offers: vec![pb::Offer {
            id: Some(pb::OfferId { value: "o1".to_owned() }),
            framework_id: Some(pb::FrameworkId {
                value: "fw-1".to_owned(),
            }),
            agent_id: Some(pb::AgentId { value: "a1".to_owned() }),
            hostname: "h".to_owned(),
            role: "*".to_owned(),
            ..Default::default()
        }],
    }))
    .await;
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(master.next_call().await.name());
    }
    assert_eq!(names, ["DECLINE", "REVIVE", "TEARDOWN"]);
    let (result, _) = within(run).await.expect("join");
    assert_eq!(result.expect("exits"), ExitReason::Exited);
}

#[tokio::test]
async fn tries_the_next_master_when_one_is_down() {
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_address = dead.local_addr().expect("address").to_string();
    drop(dead);
    let mut master = Master::start().await;
    let (run, handle, mut events) = probe(config(&[&dead_address, &master.address]), false);
    master.accept_subscription(15.0).await;
    assert_eq!(next_event(&mut events).await, "subscribed fw-1");
    handle.shutdown();
    within(run).await.expect("join").0.expect("clean stop");
}

#[tokio::test]
async fn rejected_subscription_is_fatal() {
    let master = Master::start().await;
    master.script.lock().expect("lock").reject_subscribe = Some(Code::InvalidArgument);
    let (run, _handle, _events) = probe(config(&[&master.address]), false);
    let (result, _) = within(run).await.expect("join");
    assert!(
        matches!(
            result,
            Err(DriverError::SubscribeRejected {
                code: Code::InvalidArgument,
                ..
            })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn gives_up_after_the_configured_attempts() {
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_address = dead.local_addr().expect("address").to_string();
    drop(dead);
    let mut cfg = config(&[&dead_address]);
    cfg.max_reconnect_attempts = Some(2);
    let (run, _handle, _events) = probe(cfg, false);
    let (result, _) = within(run).await.expect("join");
    assert!(
        matches!(result, Err(DriverError::Unreachable { attempts: 3, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn shutdown_interrupts_reconnection() {
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_address = dead.local_addr().expect("address").to_string();
    drop(dead);
    let (run, handle, _events) = probe(config(&[&dead_address]), false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.shutdown();
    let (result, _) = within(run).await.expect("join");
    assert_eq!(result.expect("clean stop"), ExitReason::Shutdown);
}

#[tokio::test]
async fn invalid_addresses_are_rejected_up_front() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let make = |masters: &[&str]| {
        Driver::new(
            config(masters),
            Probe {
                events: tx.clone(),
                teardown_on_offers: false,
            },
        )
    };
    assert!(matches!(make(&[]), Err(DriverError::NoMasters)));
    // Trait objects drive too.
    let boxed: Box<dyn Scheduler> = Box::new(Probe {
        events: tx.clone(),
        teardown_on_offers: false,
    });
    assert!(Driver::new(config(&["127.0.0.1:1"]), boxed).is_ok());
    assert!(matches!(
        make(&["https://m:5050"]),
        Err(DriverError::InvalidAddress { .. })
    ));
}

#[tokio::test]
async fn batch_runs_to_completion_through_the_driver() {
    let mut master = Master::start().await;
    let template = TaskTemplate::new(
        "job",
        CommandInfo::exec("true", Vec::<String>::new()),
        TaskRequest::new("cpus:0.1;mem:32".parse().expect("resources")),
    );
    let batch = Batch::new(BatchConfig::new(2, template)).expect("valid");
    let run = spawn(Driver::new(config(&[&master.address]), batch).expect("valid config"));
    let sub = master.accept_subscription(15.0).await;
    sub.send(pb::event::Event::Offers(pb::Offers {
        offers: vec![pb::Offer {
            id: Some(pb::OfferId { value: "o1".to_owned() }),
            framework_id: Some(pb::FrameworkId {
                value: "fw-1".to_owned(),
            }),
            agent_id: Some(pb::AgentId { value: "a1".to_owned() }),
            hostname: "h".to_owned(),
            resources: (&"cpus:1;mem:128".parse::<agora_proto::Resources>().expect("resources")).into(),
            role: "*".to_owned(),
            ..Default::default()
        }],
    }))
    .await;
    let Received::Accept(accept) = master.next_call().await else {
        panic!("expected ACCEPT");
    };
    let tasks = match &accept.operations[..] {
        [
            pb::Operation {
                operation: Some(pb::operation::Operation::Launch(launch)),
            },
        ] => launch.task_infos.clone(),
        other => panic!("expected one LAUNCH, got {other:?}"),
    };
    assert_eq!(tasks.len(), 2);
    assert_eq!(master.next_call().await.name(), "SUPPRESS");

    for (i, task) in tasks.iter().enumerate() {
        let mut status = pb::TaskStatus {
            task_id: task.task_id.clone(),
            state: pb::TaskState::TaskFinished as i32,
            agent_id: Some(pb::AgentId { value: "a1".to_owned() }),
            uuid: vec![i as u8 + 1; 16],
            timestamp: 2.0,
            ..Default::default()
        };
        status.exit_code = Some(0);
        sub.send(pb::event::Event::Update(pb::Update { status: Some(status) }))
            .await;
    }
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(master.next_call().await.name());
    }
    assert_eq!(names, ["ACKNOWLEDGE", "ACKNOWLEDGE", "TEARDOWN"], "teardown goes last");
    let (result, driver) = within(run).await.expect("join");
    assert_eq!(result.expect("exits"), ExitReason::Exited);
    let batch = driver.into_scheduler();
    assert!(batch.all_finished());
    assert_eq!(
        batch.final_states().values().copied().collect::<Vec<_>>(),
        [TaskState::Finished; 2]
    );
}

#[tokio::test]
async fn reconciles_periodically_explicitly_then_implicitly() {
    let mut master = Master::start().await;
    let mut config = config(&[&master.address]);
    config.reconciliation = Some(Reconciliation {
        interval: Duration::from_millis(300),
        retry: Duration::from_millis(100),
        max_retry: Duration::from_millis(100),
    });
    let (run, handle, mut events) = probe(config, false);
    let sub = master.accept_subscription(60.0).await;
    assert_eq!(next_event(&mut events).await, "subscribed fw-1");
    // A running task: the round asks about it by name, again until answered.
    sub.send(update("t1", None)).await;
    for _ in 0..2 {
        match master.next_call().await {
            Received::Reconcile(r) => {
                let names: Vec<_> = r
                    .tasks
                    .iter()
                    .filter_map(|t| t.task_id.as_ref())
                    .map(|t| t.value.as_str())
                    .collect();
                assert_eq!(names, ["t1"], "explicit reconciliation of the live task");
            }
            other => panic!("expected RECONCILE, got {other:?}"),
        }
    }
    // The answer ends the round with an implicit reconciliation.
    sub.send(update("t1", None)).await;
    loop {
        match master.next_call().await {
            Received::Reconcile(r) if r.tasks.is_empty() => break,
            Received::Reconcile(_) => {} // an ask already under way
            other => panic!("expected RECONCILE, got {other:?}"),
        }
    }
    handle.shutdown();
    let (result, driver) = within(run).await.expect("join");
    assert_eq!(result.expect("clean stop"), ExitReason::Shutdown);
    assert!(driver.session().reconciliation_rounds() >= 1);
}

/// A leader deposed while the framework is subscribed ends the event stream
/// naming its successor, a master the driver was not given: the driver
/// re-subscribes there with its id at once, though its backoff is far
/// longer than the test waits.
#[tokio::test]
async fn a_stream_ended_by_a_deposed_leader_moves_the_driver_to_the_new_one_at_once() {
    let mut old = Master::start().await;
    let mut new = Master::start().await;
    let mut config = config(&[&old.address]);
    config.backoff = Backoff {
        initial: Duration::from_secs(30),
        max: Duration::from_secs(30),
    };
    let (run, handle, mut events) = probe(config, false);
    let sub = old.accept_subscription(15.0).await;
    assert_eq!(next_event(&mut events).await, "subscribed fw-1");
    sub.events
        .send(Err(agora_proto::leader::not_leader(Some(&new.address))))
        .await
        .expect("driver reads the stream");
    assert_eq!(next_event(&mut events).await, "disconnected");
    let moved = new.next_subscription().await;
    let info = moved.request.framework_info.clone().expect("framework info");
    assert_eq!(
        info.id.map(|i| i.value).as_deref(),
        Some("fw-1"),
        "re-subscribes as itself"
    );
    handle.shutdown();
    within(run).await.expect("join").0.expect("clean stop");
}
