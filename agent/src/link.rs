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
//! Each attempt goes to the next master in the list. A master that is not
//! the leader refuses (as the answer to `Attach`, or by ending an open
//! stream) naming the leader: the agent attaches there at once, added to the
//! list if needed, at most
//! [`MAX_REDIRECTS`](agora_proto::masters::MAX_REDIRECTS) times in a row
//! before backing off, so masters pointing at each other cannot make it
//! spin. A refusal naming no leader (an election in progress) is a failure:
//! back off, try the next. The core's timers run in every state, so tasks
//! end and updates queue while the agent is disconnected. A malformed master
//! message is logged and dropped.
//!
//! The link also builds the configured containerizer and feeds the exits
//! that the real ones push into the core; answers sandbox reads and sends
//! the tasks' usage every `usage_interval` (both off the event loop, on the
//! stream current when they started); and on shutdown kills every task
//! (SIGKILL after at most 1 s), waits until each is reaped and its cgroup
//! removed, and removes the containerizer's empty root cgroups.

#![allow(clippy::disallowed_methods)] // a driver: it reads the real clock and feeds it to the core

use crate::checkpoint::{self, Checkpoint, CheckpointError, Fate, RecoveryPlan};
use crate::config::{AgentConfig, ConfigError, ContainerizerKind};
use crate::containerizer::cgroups::CgroupError;
use crate::containerizer::{
    CgroupsContainerizer, ContainerId, Containerizer, ExitReceiver, ProcessContainerizer, SimulatedContainerizer,
    StartedReceiver, read_sandbox_file,
};
use crate::core::{AgentCore, Input, Output};
use crate::exit_file;
use agora_proto::leader::leader_hint;
use agora_proto::masters::{MasterList, Redirect};
use agora_proto::pb::agent_link_client::AgentLinkClient;
use agora_proto::{AgentId, AgentMessage, MasterMessage, Timestamp, pb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use tonic::transport::Endpoint;
use tracing::{Instrument, Span, debug, info, info_span, warn};

/// How long a shutting-down agent waits for the master to close the stream
/// after it closed its own side.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(1);

/// The longest kill grace period on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long, beyond the grace period, a shutting-down agent waits for its
/// killed tasks to be reaped and cleaned up.
const SHUTDOWN_REAP: Duration = Duration::from_secs(5);

/// Why the agent cannot run. Failures to reach a master are not errors: the
/// agent retries them forever.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cgroups containerizer cannot work on this machine.
    #[error("cannot use the cgroups containerizer: {0}")]
    Cgroups(#[from] CgroupError),
    /// The checkpoint cannot be read (corrupt, or unreadable).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Runs an agent until `shutdown` completes: registers with a master,
/// re-registers after every disconnection, runs the tasks the master sends
/// and reports their statuses until acknowledged.
///
/// Returns an error only for a configuration that cannot work. On shutdown
/// the agent kills its tasks, waits until they are reaped and their cgroups
/// removed (reporting their ends if a stream is open), closes its stream and
/// returns.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let uris = config.master_uris()?;
    // Checked here so that a bad listed address fails at start, not at
    // every attempt; a leader learned later is checked when tried.
    for uri in &uris {
        Endpoint::from_shared(uri.clone()).map_err(|e| ConfigError::InvalidMasterAddress {
            address: uri.clone(),
            reason: e.to_string(),
        })?;
    }
    let masters = MasterList::new(uris).ok_or(ConfigError::NoMasters)?;
    let boot_id = checkpoint::boot_id();
    let checkpoint_file = config.checkpoint.then(|| checkpoint::path(&config.work_dir));
    let plan = match &checkpoint_file {
        Some(file) => recovery_plan(file, &config.work_dir, &boot_id, config.discard_corrupt_checkpoint)?,
        None => RecoveryPlan::default(),
    };
    let (containerizer, events) = build_containerizer(&config)?;
    let (started, exits) = events.unzip();
    // A new seed per incarnation: a fixed `--seed` must not make a restarted
    // agent reuse the status update uuids of its previous run.
    let seed = config.seed.unwrap_or_else(random_seed) ^ plan.incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let incarnation = plan.incarnation;
    let config_usage_interval = config.usage_interval;
    let span = info_span!("agent", agent_id = tracing::field::Empty);
    let mut core = AgentCore::new(config.core_config(), containerizer, seed);
    let clock = Clock::new();
    core.recover(clock.now(), plan);
    let driver = Driver {
        core,
        checkpoint: checkpoint_file.map(|path| CheckpointWriter {
            path,
            boot_id,
            incarnation,
            written: None,
        }),
        clock,
        jitter: StdRng::seed_from_u64(seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15),
        config,
        masters,
        master: None,
        failures: 0,
        exits,
        started,
        next_usage: Instant::now() + config_usage_interval,
        span: span.clone(),
    };
    driver.run(shutdown).instrument(span).await;
    Ok(())
}

/// Reads the checkpoint at `file` and decides what to recover, with the exit
/// statuses recorded under `work_dir`. A corrupt checkpoint is an error,
/// unless `discard_corrupt` (then it is moved aside and the agent starts as
/// a new one).
fn recovery_plan(
    file: &Path,
    work_dir: &Path,
    boot_id: &str,
    discard_corrupt: bool,
) -> Result<RecoveryPlan, CheckpointError> {
    let checkpoint = match checkpoint::read(file) {
        Ok(checkpoint) => checkpoint,
        Err(error @ CheckpointError::Corrupt { .. }) if discard_corrupt => {
            let aside = checkpoint::set_aside(file)?;
            warn!(%error, aside = %aside.display(), "starting as a new agent");
            None
        }
        Err(error) => return Err(error),
    };
    let plan = checkpoint::plan_recovery_with(checkpoint, boot_id, checkpoint::process_start_time, |id| {
        exit_file::read(&exit_file::path(work_dir, id))
    });
    if let Some(old) = &plan.rebooted_from {
        warn!(previous_agent_id = %old, "the machine rebooted since the checkpoint: its tasks are gone; registering as a new agent");
    }
    for task in &plan.tasks {
        let container = task.task.container_id();
        match &task.fate {
            Fate::Reattach(record) => info!(%container, pid = record.pid, "recovered: reattaching to the running task"),
            Fate::Exited(exit) => info!(%container, %exit, "recovered: the task ended while the agent was down"),
            Fate::Ended(why) => warn!(%container, %why, "recovered: the task ended while the agent was down"),
            Fate::AlreadyEnded => debug!(%container, "recovered: an ended task with unacknowledged updates"),
        }
    }
    if plan.agent_id.is_some() {
        info!(
            agent_id = ?plan.agent_id.as_ref().map(AgentId::as_str),
            tasks = plan.tasks.len(),
            updates = plan.updates.iter().map(|u| u.statuses.len()).sum::<usize>(),
            "recovered from the checkpoint"
        );
    }
    Ok(plan)
}

/// Where and what the driver checkpoints.
#[derive(Debug)]
struct CheckpointWriter {
    path: PathBuf,
    boot_id: String,
    incarnation: u64,
    /// The core's checkpoint generation last written.
    written: Option<u64>,
}

/// The channels a real containerizer pushes on: its started containers and
/// its exits.
type Pushed = (StartedReceiver, ExitReceiver);

/// The configured containerizer (the real ones launching in the background,
/// off the event loop and several at once), and the channels it pushes on.
fn build_containerizer(config: &AgentConfig) -> Result<(Box<dyn Containerizer + Send>, Option<Pushed>), AgentError> {
    Ok(match config.containerizer {
        ContainerizerKind::Simulated => (Box::new(SimulatedContainerizer::new()), None),
        ContainerizerKind::Process => {
            let (mut containerizer, exits) = ProcessContainerizer::new(&config.work_dir);
            let started = containerizer.launch_in_background();
            (Box::new(containerizer), Some((started, exits)))
        }
        ContainerizerKind::Cgroups => {
            let (mut containerizer, exits) = CgroupsContainerizer::new(&config.work_dir, config.cgroups.clone())?;
            info!(hierarchy = ?containerizer.hierarchy(), "cgroups containerizer");
            let started = containerizer.launch_in_background();
            (Box::new(containerizer), Some((started, exits)))
        }
    })
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
    Usage,
    Started(ContainerId),
    Exited(ContainerId, crate::containerizer::ExitStatus),
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

/// The next pushed exit; never, for containerizers that push none.
async fn next_exit(exits: &mut Option<ExitReceiver>) -> Option<(ContainerId, crate::containerizer::ExitStatus)> {
    match exits {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next container started in the background; never, for containerizers
/// that start none.
async fn next_started(started: &mut Option<StartedReceiver>) -> Option<ContainerId> {
    match started {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
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
    /// `None` when checkpointing is off.
    checkpoint: Option<CheckpointWriter>,
    clock: Clock,
    jitter: StdRng,
    config: AgentConfig,
    /// The masters as URIs, with the leaders learned from refusals.
    masters: MasterList,
    /// The master of the current attempt or stream.
    master: Option<String>,
    /// Consecutive failed attempts since the last registration.
    failures: u32,
    /// Exits pushed by a real containerizer.
    exits: Option<ExitReceiver>,
    /// Containers started in the background by a real containerizer.
    started: Option<StartedReceiver>,
    /// When usage is next reported.
    next_usage: Instant,
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
                // Before exits: a container's start is pushed before its exit.
                Some(container) = next_started(&mut self.started) => Event::Started(container),
                Some((container, exit)) = next_exit(&mut self.exits) => Event::Exited(container, exit),
                () = sleep_until_some(timer) => Event::Tick,
                () = sleep_until(self.next_usage) => Event::Usage,
                event = next_conn_event(&mut conn) => event,
            };
            let now = self.clock.now();
            match event {
                Event::Shutdown => break,
                Event::Tick => self.core.handle(now, Input::Tick),
                Event::Started(container) => self.core.handle(now, Input::ContainerStarted { container }),
                Event::Exited(container, exit) => self.core.handle(now, Input::ContainerExited { container, exit }),
                Event::Usage => {
                    self.next_usage = Instant::now() + self.config.usage_interval;
                    self.report_usage(&conn, now);
                }
                Event::ConnectDue => conn = self.attach(now),
                Event::Attached(Ok(inbound)) => {
                    debug!("stream open");
                    conn = match conn {
                        Conn::Attaching(tx, _) | Conn::Up(tx, _) => Conn::Up(tx, Box::new(inbound)),
                        idle @ Conn::Idle(_) => idle,
                    };
                }
                Event::Attached(Err(error)) => {
                    let hint = match &error {
                        AttachError::Attach(status) => leader_hint(status),
                        AttachError::Connect(_) => None,
                    };
                    if hint.is_none() {
                        warn!(%error, master = ?self.master, "cannot reach the master");
                    }
                    self.core.handle(now, Input::Disconnected);
                    conn = self.after_failure(hint);
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
                    // A leader deposed while serving ends the stream this
                    // way, naming its successor.
                    let hint = leader_hint(&status);
                    if hint.is_none() {
                        warn!(%status, "the stream to the master failed");
                    }
                    self.core.handle(now, Input::Disconnected);
                    conn = self.after_failure(hint);
                }
            }
            if let Some(next) = self.flush(&conn) {
                conn = next;
            }
        }
        let conn = self.stop_tasks(conn).await;
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

    /// Kills every task (SIGKILL after at most [`SHUTDOWN_GRACE`]), waits
    /// until each has been reaped and cleaned up, reporting their ends on
    /// the stream if it is open, then lets the containerizer remove what it
    /// holds for all tasks.
    async fn stop_tasks(&mut self, conn: Conn) -> Conn {
        let tasks = self.core.running_tasks();
        if !tasks.is_empty() {
            let grace = self.config.default_kill_grace.min(SHUTDOWN_GRACE);
            info!(tasks = tasks.len(), ?grace, "shutting down: killing the tasks");
            let now = self.clock.now();
            for task in tasks {
                let container = ContainerId::new(task.framework_id, task.task.task_id);
                self.core.containerizer_mut().kill(now, &container, grace);
            }
            // Polled containerizers report their kills on the next input.
            self.core.handle(now, Input::Tick);
            self.flush(&conn);
            let deadline = Instant::now() + grace + SHUTDOWN_REAP;
            while self.core.task_count() > 0 {
                let Some(exits) = &mut self.exits else { break };
                match timeout_at(deadline, exits.recv()).await {
                    Ok(Some((container, exit))) => {
                        self.core
                            .handle(self.clock.now(), Input::ContainerExited { container, exit });
                        self.flush(&conn);
                    }
                    Ok(None) | Err(_) => {
                        warn!(
                            tasks = self.core.task_count(),
                            "shutting down: tasks not reaped in time"
                        );
                        break;
                    }
                }
            }
        }
        self.core.containerizer_mut().cleanup();
        conn
    }

    /// Reads the usage of the running containers off the event loop and
    /// sends it on the current stream (once registered).
    fn report_usage(&self, conn: &Conn, now: Timestamp) {
        let Some(tx) = conn.sender().filter(|_| self.core.is_registered()).cloned() else {
            return;
        };
        let probes = self.core.containerizer().usage_probes();
        if probes.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let read = tokio::task::spawn_blocking(move || {
                probes
                    .into_iter()
                    .filter_map(|(id, probe)| match probe.read(now) {
                        Ok(usage) => Some((id.framework_id, id.task_id, usage)),
                        Err(error) => {
                            debug!(container = %id, %error, "no usage");
                            None
                        }
                    })
                    .collect::<Vec<_>>()
            });
            match read.await {
                Ok(usage) if !usage.is_empty() => {
                    let _ = tx.send(AgentMessage::Usage(usage).into());
                }
                Ok(_) => {}
                Err(error) => warn!(%error, "reading usage failed"),
            }
        });
    }

    /// Opens a stream to the next master: queues `Register` (the core's
    /// answer to `Connected`) and starts connecting.
    fn attach(&mut self, now: Timestamp) -> Conn {
        let uri = self.masters.next_to_try().to_owned();
        debug!(master = %uri, "connecting");
        self.master = Some(uri.clone());
        let connect_timeout = self.config.connect_timeout;
        let (tx, rx) = unbounded_channel();
        let attaching: Attaching = Box::pin(async move {
            let endpoint = Endpoint::from_shared(uri)?.connect_timeout(connect_timeout);
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
        self.masters.backing_off();
        debug!(?delay, "reconnecting later");
        Conn::Idle(Instant::now() + delay)
    }

    /// The next attempt after a failed one: at once to the leader a
    /// refusal named (up to `MAX_REDIRECTS` in a row), otherwise after
    /// the backoff delay.
    fn after_failure(&mut self, leader: Option<String>) -> Conn {
        let Some(hint) = leader else {
            return self.backoff();
        };
        match self.masters.redirect(&hint) {
            Redirect::Now { uri, new_leader } => {
                if new_leader {
                    info!(master = %uri, "following the leading master");
                }
                Conn::Idle(Instant::now())
            }
            Redirect::AfterBackoff { uri, new_leader } => {
                if new_leader {
                    info!(master = %uri, "following the leading master");
                }
                warn!(master = %uri, "the masters keep redirecting to each other; backing off");
                self.backoff()
            }
            Redirect::Invalid => {
                warn!(%hint, "ignoring a leader hint that is not an address");
                self.backoff()
            }
        }
    }

    /// Carries out the core's outputs; returns the new connection state when
    /// the core asked to reconnect.
    fn flush(&mut self, conn: &Conn) -> Option<Conn> {
        // On disk before anything is sent: an update that left the agent is
        // in the checkpoint, so a crash cannot lose it.
        self.save_checkpoint();
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
                    self.next_usage = Instant::now();
                    self.span.record("agent_id", agent_id.as_str());
                    let master = self.master.as_deref().unwrap_or_default();
                    if self.masters.served(master) {
                        info!(%master, "following the leading master");
                    }
                    info!(%agent_id, %master, ?ping_interval, tasks = self.core.task_count(), "registered");
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
                    request_id,
                    container,
                    file,
                    offset,
                    max_bytes,
                } => {
                    let Some(tx) = conn.sender().cloned() else {
                        continue;
                    };
                    let work_dir = self.config.work_dir.clone();
                    tokio::spawn(async move {
                        let read = tokio::task::spawn_blocking(move || {
                            read_sandbox_file(&work_dir, &container, file, offset, max_bytes)
                        });
                        let result = read.await.unwrap_or_else(|e| Err(format!("the read failed: {e}")));
                        let _ = tx.send(AgentMessage::FileData { request_id, result }.into());
                    });
                }
            }
        }
        next
    }
}

impl Driver {
    /// Writes the checkpoint if the core changed since the last write. A
    /// failed write is logged and tried again at the next flush.
    fn save_checkpoint(&mut self) {
        let Some(writer) = &mut self.checkpoint else {
            return;
        };
        let generation = self.core.checkpoint_generation();
        if writer.written == Some(generation) {
            return;
        }
        let state = Checkpoint {
            boot_id: writer.boot_id.clone(),
            incarnation: writer.incarnation,
            ..self.core.checkpoint()
        };
        match checkpoint::write(&writer.path, &state) {
            Ok(()) => writer.written = Some(generation),
            Err(error) => {
                tracing::error!(%error, "checkpoint not written; tasks or updates may be lost if the agent dies")
            }
        }
    }
}

/// A random number in `[0, 1)`.
fn unit(rng: &mut StdRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
