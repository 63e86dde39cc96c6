//! The link to the master (feature `link`): drives the [`AgentCore`] with
//! real time over one `agora.v1.AgentLink/Attach` stream at a time.
//!
//! ```text
//!            ┌──────────── run() event loop ─────────────┐
//!  shutdown ─┤ select: shutdown | core timer | stream    │
//!            │   Idle ──backoff──► Connecting ──► Up     │
//!            │    ▲                    │ fail      │ end, error,
//!            │    └────────────────────┴───────────┘ Reconnect output
//!            └───────────────────────────────────────────┘
//! ```
//!
//! Each attempt goes to the next master in the list. The core's timers run
//! in every state, so tasks end and updates queue while the agent is
//! disconnected. A malformed master message is logged and dropped.

#![allow(clippy::disallowed_methods)] // a driver: it reads the real clock and feeds it to the core

use crate::config::{AgentConfig, ConfigError, ContainerizerKind};
use crate::containerizer::{Containerizer, SimulatedContainerizer};
use crate::core::{AgentCore, Input, Output};
use agora_proto::pb::agent_link_client::AgentLinkClient;
use agora_proto::{AgentMessage, MasterMessage, Timestamp, pb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use tonic::transport::Endpoint;
use tracing::{Instrument, Span, debug, info, info_span, warn};

/// How long a shutting-down agent waits for the master to close the stream
/// after it closed its own side.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(1);

/// Why the agent cannot run. Failures to reach a master are not errors: the
/// agent retries them forever.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Runs an agent until `shutdown` completes: registers with a master,
/// re-registers after every disconnection, runs the tasks the master sends
/// and reports their statuses until acknowledged.
///
/// Returns an error only for a configuration that cannot work. On shutdown
/// the agent closes its stream and returns; its tasks are not killed.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let endpoints = config
        .master_uris()?
        .into_iter()
        .map(|uri| {
            Endpoint::from_shared(uri.clone())
                .map(|e| e.connect_timeout(config.connect_timeout))
                .map_err(|e| ConfigError::InvalidMasterAddress {
                    address: uri,
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let containerizer: Box<dyn Containerizer + Send> = match config.containerizer {
        ContainerizerKind::Simulated => Box::new(SimulatedContainerizer::new()),
    };
    let seed = config.seed.unwrap_or_else(random_seed);
    let span = info_span!("agent", agent_id = tracing::field::Empty);
    let driver = Driver {
        core: AgentCore::new(config.core_config(), containerizer, seed),
        clock: Clock::new(),
        jitter: StdRng::seed_from_u64(seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15),
        config,
        endpoints,
        next_master: 0,
        failures: 0,
        span: span.clone(),
    };
    driver.run(shutdown).instrument(span).await;
    Ok(())
}

/// A seed from the process' hash randomness and the time.
fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(SystemTime::now())
}

/// Maps the core's timestamps (wall-clock microseconds) to tokio instants,
/// monotonically: wall time at start plus tokio's elapsed time.
#[derive(Debug)]
struct Clock {
    origin: Instant,
    at_origin: Timestamp,
}

impl Clock {
    fn new() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            origin: Instant::now(),
            at_origin: Timestamp::from_micros(u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX)),
        }
    }

    fn now(&self) -> Timestamp {
        self.at_origin + self.origin.elapsed()
    }

    fn instant(&self, at: Timestamp) -> Instant {
        self.origin + at.saturating_duration_since(self.at_origin)
    }
}

/// Why an attempt to open a stream failed.
#[derive(Debug, thiserror::Error)]
enum AttachError {
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("attach refused: {0}")]
    Attach(#[from] tonic::Status),
}

type Attaching = Pin<Box<dyn Future<Output = Result<Streaming<pb::MasterMessage>, AttachError>> + Send>>;

/// The connection to the master.
enum Conn {
    /// No stream; the next attempt is due at the instant.
    Idle(Instant),
    /// Connecting and attaching; `Register` is already queued on `tx`.
    Attaching(UnboundedSender<pb::AgentMessage>, Attaching),
    /// The stream is open.
    Up(UnboundedSender<pb::AgentMessage>, Box<Streaming<pb::MasterMessage>>),
}

impl Conn {
    fn sender(&self) -> Option<&UnboundedSender<pb::AgentMessage>> {
        match self {
            Self::Idle(_) => None,
            Self::Attaching(tx, _) | Self::Up(tx, _) => Some(tx),
        }
    }
}

enum Event {
    Shutdown,
    Tick,
    ConnectDue,
    Attached(Result<Streaming<pb::MasterMessage>, AttachError>),
    Inbound(Result<Option<pb::MasterMessage>, tonic::Status>),
}

async fn next_conn_event(conn: &mut Conn) -> Event {
    match conn {
        Conn::Idle(at) => {
            sleep_until(*at).await;
            Event::ConnectDue
        }
        Conn::Attaching(_, attaching) => Event::Attached(attaching.await),
        Conn::Up(_, inbound) => Event::Inbound(inbound.message().await),
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Driver {
    core: AgentCore<Box<dyn Containerizer + Send>>,
    clock: Clock,
    jitter: StdRng,
    config: AgentConfig,
    endpoints: Vec<Endpoint>,
    next_master: usize,
    /// Consecutive failed attempts since the last registration.
    failures: u32,
    span: Span,
}

impl Driver {
    async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut conn = Conn::Idle(Instant::now());
        loop {
            let timer = self.core.poll_timeout().map(|at| self.clock.instant(at));
            let event = tokio::select! {
                biased;
                () = &mut shutdown => Event::Shutdown,
                () = sleep_until_some(timer) => Event::Tick,
                event = next_conn_event(&mut conn) => event,
            };
            let now = self.clock.now();
            match event {
                Event::Shutdown => break,
                Event::Tick => self.core.handle(now, Input::Tick),
                Event::ConnectDue => conn = self.attach(now),
                Event::Attached(Ok(inbound)) => {
                    debug!("stream open");
                    conn = match conn {
                        Conn::Attaching(tx, _) | Conn::Up(tx, _) => Conn::Up(tx, Box::new(inbound)),
                        idle @ Conn::Idle(_) => idle,
                    };
                }
                Event::Attached(Err(error)) => {
                    warn!(%error, "cannot reach the master");
                    self.core.handle(now, Input::Disconnected);
                    conn = self.backoff();
                }
                Event::Inbound(Ok(Some(wire))) => match MasterMessage::try_from(wire) {
                    Ok(message) => self.core.handle(now, Input::Master(message)),
                    Err(error) => warn!(%error, "malformed message from the master dropped"),
                },
                Event::Inbound(Ok(None)) => {
                    warn!("the master closed the stream");
                    self.core.handle(now, Input::Disconnected);
                    conn = self.backoff();
                }
                Event::Inbound(Err(status)) => {
                    warn!(%status, "the stream to the master failed");
                    self.core.handle(now, Input::Disconnected);
                    conn = self.backoff();
                }
            }
            if let Some(next) = self.flush(&conn) {
                conn = next;
            }
        }
        if let Conn::Up(tx, mut inbound) = conn {
            info!("shutting down: closing the stream");
            drop(tx);
            let _ = timeout(SHUTDOWN_DRAIN, async {
                while let Ok(Some(_)) = inbound.message().await {}
            })
            .await;
        } else {
            info!("shutting down");
        }
    }

    /// Opens a stream to the next master: queues `Register` (the core's
    /// answer to `Connected`) and starts connecting.
    fn attach(&mut self, now: Timestamp) -> Conn {
        let endpoint = self.endpoints[self.next_master % self.endpoints.len()].clone();
        self.next_master = (self.next_master + 1) % self.endpoints.len();
        debug!(master = %endpoint.uri(), "connecting");
        let (tx, rx) = unbounded_channel();
        let attaching: Attaching = Box::pin(async move {
            let channel = endpoint.connect().await?;
            let response = AgentLinkClient::new(channel)
                .attach(UnboundedReceiverStream::new(rx))
                .await?;
            Ok(response.into_inner())
        });
        let conn = Conn::Attaching(tx, attaching);
        self.core.handle(now, Input::Connected);
        conn
    }

    /// No stream until the backoff delay has passed.
    fn backoff(&mut self) -> Conn {
        let delay = self.config.reconnect.delay(self.failures, unit(&mut self.jitter));
        self.failures = self.failures.saturating_add(1);
        debug!(?delay, "reconnecting later");
        Conn::Idle(Instant::now() + delay)
    }

    /// Carries out the core's outputs; returns the new connection state when
    /// the core asked to reconnect.
    fn flush(&mut self, conn: &Conn) -> Option<Conn> {
        let mut next = None;
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send(message) => {
                    if let AgentMessage::StatusUpdate { framework_id, status } = &message {
                        let _task =
                            info_span!("task", framework_id = %framework_id, task_id = %status.task_id).entered();
                        debug!(state = %status.state, uuid = ?status.uuid.map(|u| u.to_string()), "sending status update");
                    }
                    let sent = next.is_none() && conn.sender().is_some_and(|tx| tx.send(message.into()).is_ok());
                    if !sent {
                        debug!("no open stream; message dropped (status updates are re-sent on reconnection)");
                    }
                }
                Output::Registered {
                    agent_id,
                    ping_interval,
                } => {
                    self.failures = 0;
                    self.span.record("agent_id", agent_id.as_str());
                    info!(%agent_id, ?ping_interval, tasks = self.core.task_count(), "registered");
                }
                Output::Reconnect(reason) => {
                    warn!(%reason, "reconnecting");
                    next = Some(self.backoff());
                }
                Output::TaskChanged { container, state } => {
                    let _task = info_span!(
                        "task",
                        framework_id = %container.framework_id,
                        task_id = %container.task_id
                    )
                    .entered();
                    info!(%state, "task state");
                }
                Output::Warning(warning) => warn!(%warning),
                Output::ReadFile {
                    request_id, container, ..
                } => {
                    // The simulated containerizer runs no process and keeps no sandbox.
                    let answer = AgentMessage::FileData {
                        request_id,
                        result: Err(format!(
                            "task {} has no sandbox: the simulated containerizer runs no process",
                            container.task_id
                        )),
                    };
                    if let Some(tx) = conn.sender() {
                        let _ = tx.send(answer.into());
                    }
                }
            }
        }
        next
    }
}

/// A random number in `[0, 1)`.
fn unit(rng: &mut StdRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
