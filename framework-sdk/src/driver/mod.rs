//! The async driver: connects a [`Scheduler`] to a master over gRPC.
//!
//! The driver owns a [`Session`] and does only I/O around it: it subscribes,
//! turns each event on the stream into a domain [`Event`], feeds it to the
//! session with the wall-clock time, and sends the calls the session returns
//! one by one, in order, before reading the next event.
//!
//! - **Heartbeats**: once subscribed, the link counts as dead after
//!   [`DriverConfig::missed_heartbeats`] heartbeat intervals without any
//!   event; before SUBSCRIBED arrives, after [`DriverConfig::subscribe_timeout`].
//! - **Reconnection**: when the stream ends, fails, or goes silent, or a call
//!   fails in transport, the scheduler is told
//!   ([`Scheduler::disconnected`]) and the driver re-subscribes with the
//!   framework id it was given, trying the master addresses in turn with
//!   exponential backoff and jitter. Calls not yet sent are dropped, as in the
//!   Mesos scheduler library: offers die with the connection and
//!   unacknowledged updates are resent by agents.
//! - **Following the leader**: a master that is not the leader refuses with
//!   the leader's address ([`agora_proto::leader`]); the driver goes there
//!   at once (adding it to its list if needed), at most
//!   [`MAX_REDIRECTS`](agora_proto::masters::MAX_REDIRECTS) times in a row
//!   before backing off, so masters pointing at each other cannot make it
//!   spin. A refusal that names no leader (an election in progress) is a
//!   failure like any other: back off, try the next master.
//! - **Stopping**: [`Driver::run`] returns once the scheduler asks to exit
//!   (after sending what it queued), when a [`DriverHandle`] asks for a
//!   shutdown, or with a [`DriverError`] on a fatal ERROR event or a
//!   subscription the master refuses.

#![allow(clippy::disallowed_methods)] // a driver: it reads the real clock and feeds it to the core

mod address;
mod backoff;
mod error;

pub use address::{DEFAULT_MASTER_PORT, master_uri};
pub use backoff::Backoff;
pub use error::DriverError;

use crate::scheduler::Scheduler;
use crate::session::{AckMode, DEFAULT_MISSED_HEARTBEATS, Reconciliation, Session};
use agora_proto::leader::leader_hint;
use agora_proto::masters::{MasterList, Redirect};
use agora_proto::pb::scheduler_client::SchedulerClient;
use agora_proto::{Call, Event, FrameworkCall, FrameworkInfo, Timestamp, WireCall, pb};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tracing::{Instrument, debug, field, info, info_span, warn};

/// How a [`Driver`] connects and behaves.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Master addresses (`host:port` or `http://host:port`), tried in turn.
    /// A master that is not the leader names the one that is: the driver
    /// goes there next, adding it to this list if it is not in it.
    pub masters: Vec<String>,
    /// The framework to subscribe as; set `id` to fail over to an existing one.
    pub framework: FrameworkInfo,
    /// Who acknowledges status updates.
    pub ack_mode: AckMode,
    /// Delays between reconnection attempts.
    pub backoff: Backoff,
    /// Heartbeat intervals without any event before the link counts as dead.
    pub missed_heartbeats: u32,
    /// Limit on opening a connection and on the master's answer to SUBSCRIBE.
    pub connect_timeout: Duration,
    /// Limit on waiting for the SUBSCRIBED event once the stream is open.
    pub subscribe_timeout: Duration,
    /// Limit on each call.
    pub call_timeout: Duration,
    /// Give up with [`DriverError::Unreachable`] after this many failed
    /// attempts in a row; `None` retries forever, as Mesos drivers do.
    pub max_reconnect_attempts: Option<u32>,
    /// Seed of the jitter added to backoff delays; `None` seeds from the time
    /// and process id so that many frameworks do not retry in lockstep.
    pub jitter_seed: Option<u64>,
    /// Periodic reconciliation (see [`Reconciliation`]); `None` turns it off.
    pub reconciliation: Option<Reconciliation>,
}

impl DriverConfig {
    /// Subscribes `framework` to the masters at `masters`, with defaults for
    /// everything else.
    pub fn new(masters: impl IntoIterator<Item = impl Into<String>>, framework: FrameworkInfo) -> Self {
        Self {
            masters: masters.into_iter().map(Into::into).collect(),
            framework,
            ack_mode: AckMode::Auto,
            backoff: Backoff::DEFAULT,
            missed_heartbeats: DEFAULT_MISSED_HEARTBEATS,
            connect_timeout: Duration::from_secs(5),
            subscribe_timeout: Duration::from_secs(15),
            call_timeout: Duration::from_secs(10),
            max_reconnect_attempts: None,
            jitter_seed: None,
            reconciliation: Some(Reconciliation::DEFAULT),
        }
    }
}

/// Why [`Driver::run`] returned successfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The scheduler called [`Calls::exit`](crate::Calls::exit) or
    /// [`Calls::teardown`](crate::Calls::teardown); its calls were sent.
    Exited,
    /// [`DriverHandle::shutdown`] was called (or [`DriverHandle::teardown`]
    /// while no master was connected). The framework stays registered until
    /// its failover timeout.
    Shutdown,
    /// [`DriverHandle::teardown`] was called and TEARDOWN sent: the master
    /// kills the framework's tasks and forgets it.
    TornDown,
}

/// Stops a running [`Driver`] from elsewhere (a signal handler, a test).
#[derive(Clone, Debug)]
pub struct DriverHandle {
    stop: Arc<watch::Sender<Stop>>,
}

/// What a [`DriverHandle`] asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Run,
    Shutdown,
    Teardown,
}

impl DriverHandle {
    /// Asks the driver to stop as soon as it is between events; it then
    /// returns [`ExitReason::Shutdown`]. The framework is not torn down.
    pub fn shutdown(&self) {
        self.stop.send_replace(Stop::Shutdown);
    }

    /// Asks the driver to tear the framework down (killing its tasks) and
    /// stop; it then returns [`ExitReason::TornDown`]. If no master is
    /// connected at that moment, the driver stops without tearing down
    /// ([`ExitReason::Shutdown`]).
    pub fn teardown(&self) {
        self.stop.send_replace(Stop::Teardown);
    }
}

/// Runs a [`Scheduler`] against a master. See the [module documentation](self).
#[derive(Debug)]
pub struct Driver<S> {
    config: DriverConfig,
    /// The masters as URIs, with the leaders learned from refusals.
    masters: MasterList,
    session: Session<S>,
    stop_tx: Arc<watch::Sender<Stop>>,
    stop: watch::Receiver<Stop>,
    rng: StdRng,
    /// The framework id recorded on the tracing span, recorded once:
    /// recording a field again makes some subscribers print it twice.
    traced_id: Option<agora_proto::FrameworkId>,
}

impl<S: Scheduler> Driver<S> {
    /// A driver for `scheduler`; checks the master addresses.
    pub fn new(config: DriverConfig, scheduler: S) -> Result<Self, DriverError> {
        let uris = config
            .masters
            .iter()
            .map(|m| master_uri(m))
            .collect::<Result<Vec<_>, _>>()?;
        let masters = MasterList::new(uris).ok_or(DriverError::NoMasters)?;
        let session = Session::new(scheduler, config.framework.clone())
            .with_ack_mode(config.ack_mode)
            .with_periodic_reconciliation(config.reconciliation)
            .with_missed_heartbeats(config.missed_heartbeats);
        let (stop_tx, stop) = watch::channel(Stop::Run);
        let rng = StdRng::seed_from_u64(config.jitter_seed.unwrap_or_else(entropy));
        Ok(Self {
            config,
            masters,
            session,
            stop_tx: Arc::new(stop_tx),
            stop,
            rng,
            traced_id: None,
        })
    }

    /// A handle that stops [`run`](Self::run).
    pub fn handle(&self) -> DriverHandle {
        DriverHandle {
            stop: Arc::clone(&self.stop_tx),
        }
    }

    /// The session (framework id, subscription, exit state).
    pub const fn session(&self) -> &Session<S> {
        &self.session
    }

    /// The scheduler.
    pub const fn scheduler(&self) -> &S {
        self.session.scheduler()
    }

    /// Ends the driver, giving the scheduler back (to read its results).
    pub fn into_scheduler(self) -> S {
        self.session.into_scheduler()
    }

    /// Subscribes and drives the scheduler until it exits, the handle shuts
    /// the driver down, or a fatal error occurs. A shutdown is final: a
    /// later `run` returns [`ExitReason::Shutdown`] at once.
    pub async fn run(&mut self) -> Result<ExitReason, DriverError> {
        let span = info_span!(
            "framework",
            name = %self.session.framework_info().name,
            framework_id = field::Empty,
        );
        self.traced_id = self.session.framework_id().cloned();
        if let Some(id) = &self.traced_id {
            span.record("framework_id", field::display(id));
        }
        self.run_loop().instrument(span).await
    }

    async fn run_loop(&mut self) -> Result<ExitReason, DriverError> {
        let mut failures: u32 = 0;
        loop {
            let uri = self.masters.next_to_try().to_owned();
            let subscribing = connect(&uri, &self.config, self.session.framework_info());
            let Ok(connected) = until_stopped(&mut self.stop, subscribing).await else {
                return Ok(ExitReason::Shutdown);
            };
            let lost = match connected {
                Ok((client, stream)) => match self.serve(&uri, client, stream).await {
                    Served::Done(result) => return result,
                    Served::Lost { subscribed, lost } => {
                        if self.session.disconnected() {
                            info!(master = %uri, "disconnected: {}", lost.why);
                        }
                        if subscribed {
                            failures = 0;
                        }
                        lost
                    }
                },
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retry(lost)) => {
                    // A refusal naming the leader is routine: said below
                    // when the leader is news.
                    if lost.leader.is_none() {
                        warn!(master = %uri, "cannot subscribe: {}", lost.why);
                    } else {
                        debug!(master = %uri, "not the leader: {}", lost.why);
                    }
                    lost
                }
            };
            let last = lost.why;
            if let Some(hint) = lost.leader {
                match self.masters.redirect(&hint) {
                    // Not a failure: the master answered, and said where to go.
                    Redirect::Now {
                        uri: leader,
                        new_leader,
                    } => {
                        log_leader(&leader, new_leader);
                        continue;
                    }
                    Redirect::AfterBackoff {
                        uri: leader,
                        new_leader,
                    } => {
                        log_leader(&leader, new_leader);
                        warn!(master = %leader, "the masters keep redirecting to each other; backing off");
                    }
                    Redirect::Invalid => warn!(master = %uri, %hint, "ignoring a leader hint that is not an address"),
                }
            }
            self.masters.backing_off();
            failures = failures.saturating_add(1);
            if self.config.max_reconnect_attempts.is_some_and(|max| failures > max) {
                return Err(DriverError::Unreachable {
                    attempts: failures,
                    last,
                });
            }
            let delay = self.config.backoff.delay(failures - 1, self.rng.random::<f64>());
            debug!(?delay, attempt = failures, "reconnecting after a delay");
            if until_stopped(&mut self.stop, tokio::time::sleep(delay)).await.is_err() {
                return Ok(ExitReason::Shutdown);
            }
        }
    }

    /// Reads events and sends calls until the subscription ends.
    async fn serve(
        &mut self,
        uri: &str,
        mut client: SchedulerClient<Channel>,
        mut stream: tonic::Streaming<pb::Event>,
    ) -> Served {
        let mut subscribed = false;
        loop {
            let silence = if self.session.is_subscribed() {
                // From the last event, not from now: the session's timers
                // wake this loop without an event.
                self.session
                    .heartbeat_deadline()
                    .map(|deadline| deadline.saturating_duration_since(now()))
            } else {
                Some(self.config.subscribe_timeout)
            };
            let timer = self
                .session
                .poll_timeout()
                .map(|at| at.saturating_duration_since(now()));
            let read = within(silence, stream.message());
            let woke = until_stopped(&mut self.stop, async {
                match timer {
                    Some(wait) => tokio::select! {
                        next = read => Some(next),
                        () = tokio::time::sleep(wait) => None,
                    },
                    None => Some(read.await),
                }
            })
            .await;
            let woke = match woke {
                // A session timer (periodic reconciliation) is due.
                Ok(None) => {
                    let calls = self.session.handle_timeout(now());
                    if let Err(lost) = send_all(&mut client, calls, self.config.call_timeout).await {
                        return Served::Lost { subscribed, lost };
                    }
                    continue;
                }
                Ok(Some(next)) => Ok(next),
                Err(stop) => Err(stop),
            };
            let next = match woke {
                Err(Stop::Teardown) if self.session.is_subscribed() => {
                    let teardown = self.session.framework_id().map(|id| FrameworkCall {
                        framework_id: id.clone(),
                        call: Call::Teardown,
                    });
                    if let Err(lost) =
                        send_all(&mut client, teardown.into_iter().collect(), self.config.call_timeout).await
                    {
                        warn!("TEARDOWN not delivered: {}", lost.why);
                        return Served::Done(Ok(ExitReason::Shutdown));
                    }
                    return Served::Done(Ok(ExitReason::TornDown));
                }
                Err(_) => return Served::Done(Ok(ExitReason::Shutdown)),
                Ok(next) => next,
            };
            let wire = match next {
                None => {
                    return Served::Lost {
                        subscribed,
                        lost: Lost::new(format!("no event for {:?}", silence.unwrap_or_default())),
                    };
                }
                // A leader deposed while serving ends the stream this way,
                // naming its successor.
                Some(Err(status)) => {
                    return Served::Lost {
                        subscribed,
                        lost: Lost::status("event stream failed", &status),
                    };
                }
                Some(Ok(None)) => {
                    return Served::Lost {
                        subscribed,
                        lost: Lost::new("the master closed the event stream"),
                    };
                }
                Some(Ok(Some(wire))) => wire,
            };
            let event = match Event::try_from(wire) {
                Ok(event) => event,
                Err(e) => {
                    warn!(master = %uri, "dropping a malformed event: {e}");
                    continue;
                }
            };
            let is_subscribed = matches!(event, Event::Subscribed { .. });
            if !self.session.is_subscribed() && !is_subscribed && !matches!(event, Event::Error(_)) {
                warn!(master = %uri, "ignoring an event that came before SUBSCRIBED");
            }
            let calls = self.session.handle(now(), event);
            if is_subscribed {
                subscribed = true;
                if self.masters.served(uri) {
                    log_leader(uri, true);
                }
                if let Some(info) = self.session.subscription() {
                    if self.traced_id.as_ref() != Some(&info.framework_id) {
                        tracing::Span::current().record("framework_id", field::display(&info.framework_id));
                        self.traced_id = Some(info.framework_id.clone());
                    }
                    info!(master = %uri, master_id = %info.master_id, heartbeat = ?info.heartbeat_interval, "subscribed");
                }
            }
            let sent = send_all(&mut client, calls, self.config.call_timeout).await;
            if let Some(message) = self.session.fatal_error() {
                return Served::Done(Err(DriverError::Fatal(message.to_owned())));
            }
            if self.session.exit_requested() {
                if let Err(lost) = sent {
                    warn!("exiting with calls unsent: {}", lost.why);
                }
                return Served::Done(Ok(ExitReason::Exited));
            }
            if let Err(lost) = sent {
                return Served::Lost { subscribed, lost };
            }
        }
    }
}

/// How one connection ended.
#[derive(Debug)]
enum Served {
    /// `run` returns this.
    Done(Result<ExitReason, DriverError>),
    /// The link is lost; reconnect. `subscribed` tells whether it got as far
    /// as SUBSCRIBED (which resets the backoff).
    Lost { subscribed: bool, lost: Lost },
}

/// Why a link was lost or could not be made, and the leader the master
/// named if it refused as a master that is not the leader.
#[derive(Debug)]
struct Lost {
    why: String,
    leader: Option<String>,
}

impl Lost {
    fn new(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            leader: None,
        }
    }

    /// `what` failed with `status`, which may name the leader.
    fn status(what: &str, status: &tonic::Status) -> Self {
        Self {
            why: format!("{what} ({:?}): {}", status.code(), status.message()),
            leader: leader_hint(status),
        }
    }
}

/// Why a subscription attempt failed.
#[derive(Debug)]
enum Failure {
    /// Worth retrying (perhaps with another master).
    Retry(Lost),
    /// Retrying cannot help.
    Fatal(DriverError),
}

/// Opens a channel to `uri` and sends SUBSCRIBE.
async fn connect(
    uri: &str,
    config: &DriverConfig,
    framework: &FrameworkInfo,
) -> Result<(SchedulerClient<Channel>, tonic::Streaming<pb::Event>), Failure> {
    let endpoint = Endpoint::from_shared(uri.to_owned())
        .map_err(|e| Failure::Retry(Lost::new(format!("invalid endpoint: {e}"))))?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true);
    let channel = tokio::time::timeout(config.connect_timeout, endpoint.connect())
        .await
        .map_err(|_| Failure::Retry(Lost::new("connecting timed out")))?
        .map_err(|e| Failure::Retry(Lost::new(format!("cannot connect: {}", with_sources(&e)))))?;
    // Offers from a large cluster can exceed tonic's 4 MiB default.
    let mut client = SchedulerClient::new(channel).max_decoding_message_size(64 << 20);
    let request = pb::SubscribeRequest {
        framework_info: Some(framework.clone().into()),
    };
    let response = tokio::time::timeout(config.connect_timeout, client.subscribe(request))
        .await
        .map_err(|_| Failure::Retry(Lost::new("SUBSCRIBE timed out")))?;
    match response {
        Ok(response) => Ok((client, response.into_inner())),
        // A master that is not the leader refuses with UNAVAILABLE, naming
        // the leader when it knows it.
        Err(status) if is_transient(status.code()) => Err(Failure::Retry(Lost::status("SUBSCRIBE failed", &status))),
        Err(status) => Err(Failure::Fatal(DriverError::SubscribeRejected {
            master: uri.to_owned(),
            code: status.code(),
            message: status.message().to_owned(),
        })),
    }
}

/// Sends `calls` in order. Stops at the first failure that means the
/// subscription is gone (transport failure, unknown framework, a master no
/// longer the leader) and reports it; calls the master merely rejects are
/// logged and skipped.
async fn send_all(
    client: &mut SchedulerClient<Channel>,
    calls: Vec<FrameworkCall>,
    call_timeout: Duration,
) -> Result<(), Lost> {
    let total = calls.len();
    for (i, call) in calls.into_iter().enumerate() {
        let name = call.call.name();
        let result = tokio::time::timeout(call_timeout, send(client, WireCall::from(call)))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("call timed out")));
        match result {
            Ok(()) => debug!(call = name, "sent"),
            Err(status) if is_transient(status.code()) || is_unsubscribed(status.code()) => {
                let mut lost = Lost::status(&format!("{name} failed"), &status);
                lost.why
                    .push_str(&format!("; {} queued call(s) dropped", total - i - 1));
                return Err(lost);
            }
            Err(status) => {
                warn!(call = name, code = ?status.code(), "the master rejected a call: {}", status.message());
            }
        }
    }
    Ok(())
}

/// Says which master leads, when that is news.
fn log_leader(uri: &str, new_leader: bool) {
    if new_leader {
        info!(master = %uri, "following the leading master");
    }
}

/// Codes that say the master or the path to it failed, not the request.
const fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Internal
            | Code::ResourceExhausted
    )
}

/// Codes the master uses for calls from a framework it does not consider
/// subscribed: re-subscribing settles it.
const fn is_unsubscribed(code: Code) -> bool {
    matches!(code, Code::NotFound | Code::FailedPrecondition)
}

async fn send(client: &mut SchedulerClient<Channel>, call: WireCall) -> Result<(), tonic::Status> {
    match call {
        WireCall::Accept(r) => client.accept(r).await.map(drop),
        WireCall::Decline(r) => client.decline(r).await.map(drop),
        WireCall::Revive(r) => client.revive(r).await.map(drop),
        WireCall::Suppress(r) => client.suppress(r).await.map(drop),
        WireCall::Kill(r) => client.kill(r).await.map(drop),
        WireCall::Acknowledge(r) => client.acknowledge(r).await.map(drop),
        WireCall::Reconcile(r) => client.reconcile(r).await.map(drop),
        WireCall::Teardown(r) => client.teardown(r).await.map(drop),
        WireCall::UpdateFramework(r) => client.update_framework(r).await.map(drop),
    }
}

/// Runs `fut` unless a [`DriverHandle`] asks to stop first (`Err` then,
/// with what it asked for).
async fn until_stopped<F: Future>(stop: &mut watch::Receiver<Stop>, fut: F) -> Result<F::Output, Stop> {
    tokio::select! {
        biased;
        // The sender lives in the driver, so `wait_for` only ends on `true`.
        asked = stop.wait_for(|stop| *stop != Stop::Run) => Err(asked.map_or(Stop::Shutdown, |s| *s)),
        out = fut => Ok(out),
    }
}

/// Runs `fut` within `limit` (forever when `None`); `None` if it timed out.
async fn within<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// `error: its source: its source's source…`; tonic's transport errors say
/// little at the top level ("transport error").
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Wall-clock time since the Unix epoch, as the scheduler API uses.
fn now() -> Timestamp {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_micros(u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX))
}

/// A seed for the backoff jitter that differs between processes and runs.
fn entropy() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
