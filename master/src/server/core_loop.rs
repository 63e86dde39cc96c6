//! The one task that owns the [`Master`], and the handle the services use to
//! talk to it.
//!
//! The loop waits for the first of: a command from a service, a framework
//! stream that was dropped, or the core's next timer. Each input goes to
//! [`Master::handle`] with the wall-clock time, then every output is routed
//! to its connection's channel with `try_send`: the loop never waits on a
//! client. A framework or agent whose channel is full (it stopped reading)
//! or closed (it went away) is treated as disconnected, and the core is told.
//!
//! Durability: the core notes which of its records (agents, frameworks, gone
//! agents) changed; the loop writes them to the registry in one batch when
//! its command queue is drained (or after [`MAX_UNFLUSHED`] inputs), so a
//! burst of 10,000 agents re-registering after a failover costs a few writes,
//! not 10,000. Replies such as REGISTERED and SUBSCRIBED may go out before
//! their record is written: a master that dies in between has lost nothing
//! the agent or framework cannot bring back, since an id unknown to a
//! recovered master is accepted when its owner comes back with it. Operators'
//! changes (weights, quotas, reservations) are answered only once written.
//! A write refused because this master was deposed stops the loop: serving
//! on would answer for state another leader now owns.
//!
//! Ordering: commands travel on one bounded FIFO channel, so an agent's
//! messages reach the core in the order it sent them, after its attachment
//! and before its disconnection. Framework streams report their end from a
//! `Drop`, which cannot wait, over a separate unbounded channel; that report
//! can overtake the subscription it belongs to, and then the first output
//! routed to the missing stream tells the core the framework is gone.

use super::cluster_events::ClusterEvents;
use super::metrics::Metrics;
use super::registry::{self, Registry, RegistryError, RegistryState, Value};
use crate::{ClusterState, ConnectionId, Input, Master, MasterError, Output, RoleView};
use agora_proto::{
    AgentId, AgentMessage, Event, FileChunk, FrameworkCall, FrameworkId, FrameworkInfo, MasterMessage, Resources,
    RoleQuota, SandboxFile, TaskId, Timestamp, pb,
};
use std::collections::BTreeMap;
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Events buffered per framework stream before the framework counts as not
/// reading (and is disconnected). Large because one input can queue one
/// event per task: a framework reconciling all its tasks after a failover
/// gets every answer at once, and with a small buffer a framework of more
/// tasks than the buffer holds was disconnected, re-subscribed, reconciled
/// and disconnected again, for ever. tokio's channel allocates its slots in
/// blocks as they fill, so the capacity costs nothing until it is used.
pub(crate) const FRAMEWORK_BUFFER: usize = 1 << 18;
/// Messages buffered per agent stream before the agent counts as not reading.
pub(crate) const AGENT_BUFFER: usize = 1024;
/// Commands waiting for the core loop; senders wait when it is full, which
/// slows down agents and callers instead of growing memory.
const COMMAND_BUFFER: usize = 1024;
/// Inputs fed between two writes of the core's records at most, so a queue
/// that never drains still gets them written.
const MAX_UNFLUSHED: usize = 4096;
/// After a failed write of the core's records, wait this long before the next
/// try (the changes are kept meanwhile), so a broken disk is not hammered.
const RETRY_WRITE_AFTER: Duration = Duration::from_secs(1);
/// When the core asks to be woken at a time that a tick at that time did not
/// move, wait at least this long so a core bug cannot spin the loop.
const STALE_TIMER_BACKOFF: Duration = Duration::from_millis(1);

/// The core loop stopped (the server is shutting down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the master is shutting down")]
pub(crate) struct CoreGone;

type Reply<T> = oneshot::Sender<T>;

/// Why an operator's change that the registry keeps was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    /// The core refused it.
    #[error(transparent)]
    Refused(#[from] MasterError),
    /// The registry could not be written; the change was undone.
    #[error("nothing changed: {0}")]
    NotPersisted(#[from] RegistryError),
}

/// A chunk of a sandbox file, or why the agent could not read it.
pub(crate) type FileRead = Result<FileChunk, String>;

/// What the services ask of the core loop.
#[derive(Debug)]
enum Command {
    /// Feed an input; reply with the core's verdict when asked to.
    Input {
        input: Input,
        reply: Option<Reply<Result<(), MasterError>>>,
    },
    /// Feed an operator's change that the registry keeps (weights, quotas,
    /// reservations), and store the registry before replying.
    Persisted {
        input: Input,
        reply: Reply<Result<(), ChangeError>>,
    },
    /// A framework opened an event stream: register its channel and subscribe.
    Subscribe {
        conn: ConnectionId,
        info: FrameworkInfo,
        events: mpsc::Sender<Event>,
        reply: Reply<Result<(), MasterError>>,
    },
    /// An agent opened a stream: register its outbound channel.
    AttachAgent {
        conn: ConnectionId,
        messages: mpsc::Sender<MasterMessage>,
    },
    /// An agent sent something malformed: tell it why and close its stream.
    RejectAgent { conn: ConnectionId, reason: String },
    /// Read part of a task's sandbox file; the reply comes when its agent answers.
    ReadFile {
        framework_id: Option<FrameworkId>,
        task_id: TaskId,
        file: SandboxFile,
        offset: u64,
        max_bytes: u64,
        reply: Reply<Result<FileRead, MasterError>>,
    },
    /// A snapshot of the cluster.
    State(Reply<ClusterState>),
    /// Every role with its weight and share.
    Roles(Reply<Vec<RoleView>>),
    /// Bring the metrics up to date before they are rendered.
    RefreshMetrics(Reply<()>),
    /// A receiver of cluster events.
    Watch(Reply<broadcast::Receiver<pb::ClusterEvent>>),
    /// Stop, dropping every stream's channel.
    Shutdown,
}

/// How services reach the core loop. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct CoreHandle {
    commands: mpsc::Sender<Command>,
    dropped_streams: mpsc::UnboundedSender<ConnectionId>,
    next_conn: Arc<AtomicU64>,
}

/// Creates the core loop around `master` and the handle to reach it. The loop
/// does nothing until [`CoreLoop::run`] is spawned.
pub(crate) fn new(master: Master, metrics: Metrics, registry: Option<Box<dyn Registry>>) -> (CoreHandle, CoreLoop) {
    let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
    let (dropped_tx, dropped_streams) = mpsc::unbounded_channel();
    let handle = CoreHandle {
        commands: commands_tx,
        dropped_streams: dropped_tx,
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let core = CoreLoop {
        master,
        clock: WallClock::default(),
        commands,
        dropped_streams,
        frameworks: HashMap::new(),
        agents: HashMap::new(),
        follow_ups: VecDeque::new(),
        reads: HashMap::new(),
        next_read: 0,
        last_tick: None,
        events: ClusterEvents::new(),
        metrics,
        registry,
        unwritten: BTreeMap::new(),
        inputs_since_write: 0,
        retry_write_at: None,
        deposed: None,
    };
    (handle, core)
}

impl CoreHandle {
    /// A fresh connection id; framework and agent streams share the numbering.
    pub(crate) fn next_conn(&self) -> ConnectionId {
        ConnectionId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    async fn send(&self, command: Command) -> Result<(), CoreGone> {
        self.commands.send(command).await.map_err(|_| CoreGone)
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, CoreGone> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_| CoreGone)
    }

    /// Feeds a framework's call; the inner result is the core's verdict.
    pub(crate) async fn call(&self, call: FrameworkCall) -> Result<Result<(), MasterError>, CoreGone> {
        self.ask(|reply| Command::Input {
            input: Input::Call(call),
            reply: Some(reply),
        })
        .await
    }

    /// Registers a framework's event channel and subscribes it on `conn`.
    pub(crate) async fn subscribe(
        &self,
        conn: ConnectionId,
        info: FrameworkInfo,
        events: mpsc::Sender<Event>,
    ) -> Result<Result<(), MasterError>, CoreGone> {
        self.ask(|reply| Command::Subscribe {
            conn,
            info,
            events,
            reply,
        })
        .await
    }

    /// A guard that tells the core, when dropped, that the framework stream
    /// on `conn` is gone.
    pub(crate) fn stream_guard(&self, conn: ConnectionId) -> StreamGuard {
        StreamGuard {
            conn,
            dropped_streams: self.dropped_streams.clone(),
        }
    }

    /// Registers an agent stream's outbound channel.
    pub(crate) async fn attach_agent(
        &self,
        conn: ConnectionId,
        messages: mpsc::Sender<MasterMessage>,
    ) -> Result<(), CoreGone> {
        self.send(Command::AttachAgent { conn, messages }).await
    }

    /// Feeds a message from an agent (no reply: the core never refuses one).
    pub(crate) async fn agent_message(&self, conn: ConnectionId, message: AgentMessage) -> Result<(), CoreGone> {
        self.send(Command::Input {
            input: Input::Agent { conn, message },
            reply: None,
        })
        .await
    }

    /// The agent's stream ended.
    pub(crate) async fn agent_disconnected(&self, conn: ConnectionId) -> Result<(), CoreGone> {
        self.send(Command::Input {
            input: Input::AgentDisconnected { conn },
            reply: None,
        })
        .await
    }

    /// Sends the agent an error and closes its stream, which also counts as
    /// its disconnection.
    pub(crate) async fn reject_agent(&self, conn: ConnectionId, reason: String) -> Result<(), CoreGone> {
        self.send(Command::RejectAgent { conn, reason }).await
    }

    /// Reads part of a task's sandbox file through its agent.
    pub(crate) async fn read_file(
        &self,
        framework_id: Option<FrameworkId>,
        task_id: TaskId,
        file: SandboxFile,
        offset: u64,
        max_bytes: u64,
    ) -> Result<Result<FileRead, MasterError>, CoreGone> {
        self.ask(|reply| Command::ReadFile {
            framework_id,
            task_id,
            file,
            offset,
            max_bytes,
            reply,
        })
        .await
    }

    /// Kills a task on behalf of an operator.
    pub(crate) async fn kill_task(
        &self,
        framework_id: Option<FrameworkId>,
        task_id: TaskId,
    ) -> Result<Result<(), MasterError>, CoreGone> {
        self.ask(|reply| Command::Input {
            input: Input::KillTask { framework_id, task_id },
            reply: Some(reply),
        })
        .await
    }

    /// Sets role weights on behalf of an operator (kept in the registry).
    pub(crate) async fn update_weights(
        &self,
        weights: Vec<(String, f64)>,
    ) -> Result<Result<(), ChangeError>, CoreGone> {
        self.ask(|reply| Command::Persisted {
            input: Input::UpdateWeights(weights),
            reply,
        })
        .await
    }

    /// Sets or removes role quota limits and guarantees on behalf of an
    /// operator (kept in the registry).
    pub(crate) async fn update_quota(
        &self,
        quotas: Vec<(String, RoleQuota)>,
    ) -> Result<Result<(), ChangeError>, CoreGone> {
        self.ask(|reply| Command::Persisted {
            input: Input::UpdateQuota(quotas),
            reply,
        })
        .await
    }

    /// Reserves resources on an agent on behalf of an operator.
    pub(crate) async fn reserve_resources(
        &self,
        agent_id: AgentId,
        resources: Resources,
    ) -> Result<Result<(), ChangeError>, CoreGone> {
        self.ask(|reply| Command::Persisted {
            input: Input::ReserveResources { agent_id, resources },
            reply,
        })
        .await
    }

    /// Gives dynamic reservations back on behalf of an operator.
    pub(crate) async fn unreserve_resources(
        &self,
        agent_id: AgentId,
        resources: Resources,
    ) -> Result<Result<(), ChangeError>, CoreGone> {
        self.ask(|reply| Command::Persisted {
            input: Input::UnreserveResources { agent_id, resources },
            reply,
        })
        .await
    }

    /// Every role with its weight and share.
    pub(crate) async fn roles(&self) -> Result<Vec<RoleView>, CoreGone> {
        self.ask(Command::Roles).await
    }

    /// A snapshot of the cluster.
    pub(crate) async fn state(&self) -> Result<ClusterState, CoreGone> {
        self.ask(Command::State).await
    }

    /// Brings the Prometheus metrics up to date.
    pub(crate) async fn refresh_metrics(&self) -> Result<(), CoreGone> {
        self.ask(Command::RefreshMetrics).await
    }

    /// A receiver of every cluster event from now on.
    pub(crate) async fn watch(&self) -> Result<broadcast::Receiver<pb::ClusterEvent>, CoreGone> {
        self.ask(Command::Watch).await
    }

    /// Whether the core loop still runs.
    pub(crate) fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }

    /// Asks the core loop to stop; returns at once if it already has.
    pub(crate) async fn shutdown(&self) {
        let _ = self.send(Command::Shutdown).await;
    }
}

/// Tells the core loop, when dropped, that a framework's event stream is gone
/// (tonic drops the response stream when the client goes away).
#[derive(Debug)]
pub(crate) struct StreamGuard {
    conn: ConnectionId,
    dropped_streams: mpsc::UnboundedSender<ConnectionId>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        // Fails only when the core loop has stopped, and then nobody cares.
        let _ = self.dropped_streams.send(self.conn);
    }
}

/// Wall-clock time as the core sees it: microseconds since the Unix epoch,
/// never going backwards even if the system clock does.
#[derive(Debug, Default)]
struct WallClock {
    last: Timestamp,
}

impl WallClock {
    fn now(&mut self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last = self.last.max(Timestamp::from_micros(micros));
        self.last
    }
}

/// The task that owns the master core. See the module documentation.
#[derive(Debug)]
pub(crate) struct CoreLoop {
    master: Master,
    clock: WallClock,
    commands: mpsc::Receiver<Command>,
    dropped_streams: mpsc::UnboundedReceiver<ConnectionId>,
    /// Event channels of open framework streams.
    frameworks: HashMap<ConnectionId, mpsc::Sender<Event>>,
    /// Outbound channels of open agent streams.
    agents: HashMap<ConnectionId, mpsc::Sender<MasterMessage>>,
    /// Disconnections discovered while routing outputs, fed after the input
    /// that caused them.
    follow_ups: VecDeque<Input>,
    /// Sandbox reads waiting for their agent, by request number.
    reads: HashMap<u64, Reply<Result<FileRead, MasterError>>>,
    next_read: u64,
    /// The time of the last tick, to notice a timer the tick did not clear.
    last_tick: Option<Timestamp>,
    events: ClusterEvents,
    metrics: Metrics,
    /// Where operators' weights and quotas and the core's records are kept
    /// (none: in memory only).
    registry: Option<Box<dyn Registry>>,
    /// Changes of the core's records taken but not written yet, by key (a
    /// later change of a key replaces an earlier one).
    unwritten: BTreeMap<String, Option<Value>>,
    /// Inputs fed since the core's records were last written.
    inputs_since_write: usize,
    /// After a failed write: not before this.
    retry_write_at: Option<Instant>,
    /// Set when a write was refused because this master lost leadership:
    /// the loop stops.
    deposed: Option<RegistryError>,
}

impl CoreLoop {
    /// Runs until asked to stop or until every handle is gone. Dropping the
    /// loop drops every stream's channel, which ends the streams. Returns an
    /// error when a registry write was refused because this master was
    /// deposed.
    pub(crate) async fn run(mut self) -> Result<(), RegistryError> {
        loop {
            let wait = self.master.poll_timeout().map(|at| {
                let wait = at.saturating_duration_since(self.clock.now());
                if self.last_tick.is_some_and(|tick| at <= tick) {
                    wait.max(STALE_TIMER_BACKOFF)
                } else {
                    wait
                }
            });
            let flow = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => ControlFlow::Break(()),
                },
                Some(conn) = self.dropped_streams.recv() => {
                    self.frameworks.remove(&conn);
                    let _ = self.feed(Input::FrameworkDisconnected { conn });
                    ControlFlow::Continue(())
                }
                () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {
                    let _ = self.feed(Input::Tick);
                    ControlFlow::Continue(())
                }
            };
            if flow.is_break() {
                // What was decided before the stop is still written.
                self.inputs_since_write = 0;
                let _ = self.write_records(true);
                break;
            }
            self.inputs_since_write += 1;
            if self.commands.is_empty() || self.inputs_since_write >= MAX_UNFLUSHED {
                let _ = self.write_records(false);
            }
            if self.deposed.is_some() {
                break;
            }
        }
        tracing::info!(
            frameworks = self.frameworks.len(),
            agents = self.agents.len(),
            "core loop stopped; closing streams"
        );
        match self.deposed.take() {
            Some(error) => {
                tracing::error!(%error, "this master was deposed; it stops serving");
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// Writes the core's changed records to the registry in one batch.
    /// `force` ignores the pause after a failed write (an operator waits).
    /// A failed write keeps the changes for the next try; one refused
    /// because this master was deposed stops the loop.
    fn write_records(&mut self, force: bool) -> Result<(), RegistryError> {
        self.inputs_since_write = 0;
        for change in self.master.take_durable_changes() {
            match registry::durable_change(&change) {
                Ok(change) => {
                    self.unwritten.insert(change.key, change.value);
                }
                // Our own types always encode; if one did not, keeping the
                // rest beats stopping the master.
                Err(error) => tracing::error!(%error, "cannot encode a registry record"),
            }
        }
        let Some(registry) = self.registry.as_mut() else {
            self.unwritten.clear();
            return Ok(());
        };
        if self.unwritten.is_empty() || (!force && self.retry_write_at.is_some_and(|at| Instant::now() < at)) {
            return Ok(());
        }
        let changes: Vec<registry::Change> = self
            .unwritten
            .iter()
            .map(|(key, value)| registry::Change {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        match registry.apply(&changes) {
            Ok(()) => {
                self.metrics.registry_write(changes.len());
                self.unwritten.clear();
                self.retry_write_at = None;
                Ok(())
            }
            Err(RegistryError::Deposed) => {
                self.deposed = Some(RegistryError::Deposed);
                Err(RegistryError::Deposed)
            }
            Err(error) => {
                tracing::error!(%error, pending = changes.len(), "cannot write the registry; will try again");
                self.retry_write_at = Some(Instant::now() + RETRY_WRITE_AFTER);
                Err(error)
            }
        }
    }

    fn command(&mut self, command: Command) -> ControlFlow<()> {
        match command {
            Command::Input { input, reply } => {
                // The agent hung up: end our half of its stream too, so its
                // shutdown does not wait for a close that never comes.
                if let Input::AgentDisconnected { conn } = &input {
                    self.agents.remove(conn);
                }
                let result = self.feed(input);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Command::Persisted { input, reply } => {
                let _ = reply.send(self.feed_persisted(input));
            }
            Command::Subscribe {
                conn,
                info,
                events,
                reply,
            } => {
                self.frameworks.insert(conn, events);
                let result = self.feed(Input::Subscribe { conn, info });
                if result.is_err() {
                    self.frameworks.remove(&conn);
                }
                let _ = reply.send(result);
            }
            Command::AttachAgent { conn, messages } => {
                self.agents.insert(conn, messages);
            }
            Command::RejectAgent { conn, reason } => {
                if let Some(messages) = self.agents.remove(&conn) {
                    let _ = messages.try_send(MasterMessage::Error(reason));
                }
                let _ = self.feed(Input::AgentDisconnected { conn });
            }
            Command::ReadFile {
                framework_id,
                task_id,
                file,
                offset,
                max_bytes,
                reply,
            } => {
                self.next_read += 1;
                let request = self.next_read;
                self.reads.insert(request, reply);
                let result = self.feed(Input::ReadFile {
                    request,
                    framework_id,
                    task_id,
                    file,
                    offset,
                    max_bytes,
                });
                if let Err(refusal) = result
                    && let Some(reply) = self.reads.remove(&request)
                {
                    let _ = reply.send(Err(refusal));
                }
            }
            Command::State(reply) => {
                let _ = reply.send(self.master.state());
            }
            Command::Roles(reply) => {
                let _ = reply.send(self.master.roles());
            }
            Command::RefreshMetrics(reply) => {
                let now = self.clock.now();
                self.metrics.refresh(&self.master, now);
                let _ = reply.send(());
            }
            Command::Watch(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            Command::Shutdown => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    /// The roles the registry should hold now (the core's records are
    /// written apart, by `write_records`).
    fn registry_state(&self) -> RegistryState {
        RegistryState {
            roles: registry::roles_of(
                &self.master.config().drf.weights,
                self.master
                    .roles()
                    .into_iter()
                    .map(|role| (role.role, role.quota, role.guarantee)),
            ),
            records: crate::durable::Records::default(),
        }
    }

    /// Restores what a registry holds, before anything is served: the core's
    /// records first (nothing may come before them), then operators' roles.
    pub(crate) fn restore(&mut self, state: RegistryState) -> Result<(), MasterError> {
        let now = self.clock.now();
        let records = &state.records;
        if !(records.agents.is_empty() && records.frameworks.is_empty() && records.gone.is_empty()) {
            tracing::info!(
                agents = records.agents.len(),
                frameworks = records.frameworks.len(),
                gone = records.gone.len(),
                "recovering from the registry"
            );
        }
        self.master.recover(now, state.records);
        let roles = state.roles;
        if !roles.weights.is_empty() {
            self.feed(Input::UpdateWeights(roles.weights.into_iter().collect()))?;
        }
        if !roles.quotas.is_empty() {
            let quotas = roles.quotas.into_iter().map(|(role, q)| (role, q.into())).collect();
            self.feed(Input::UpdateQuota(quotas))?;
        }
        Ok(())
    }

    /// Writes what `restore` changed (frameworks connected when the previous
    /// master died now count as disconnected since the restart).
    pub(crate) fn write_restored(&mut self) -> Result<(), RegistryError> {
        self.write_records(true)
    }

    /// Feeds an operator's change and stores the registry. The write is
    /// synchronous (a small file, flushed): operators change weights,
    /// quotas and reservations rarely, and a change must not be acknowledged
    /// before it is durable. If the write fails the change is undone in the
    /// core, so the core and the registry never disagree.
    fn feed_persisted(&mut self, input: Input) -> Result<(), ChangeError> {
        let result = self.feed_persisted_inner(input);
        if let Err(ChangeError::NotPersisted(RegistryError::Deposed)) = &result {
            self.deposed = Some(RegistryError::Deposed);
        }
        result
    }

    /// A reservation, written with every other pending record before the
    /// operator hears of it; undone by the inverse operation if the write fails.
    fn feed_reservation(&mut self, input: Input) -> Result<(), ChangeError> {
        let undo = match &input {
            Input::ReserveResources { agent_id, resources } => Input::UnreserveResources {
                agent_id: agent_id.clone(),
                resources: resources.clone(),
            },
            Input::UnreserveResources { agent_id, resources } => Input::ReserveResources {
                agent_id: agent_id.clone(),
                resources: resources.clone(),
            },
            _ => return Ok(self.feed(input)?),
        };
        self.feed(input)?;
        if let Err(error) = self.write_records(true) {
            if !matches!(error, RegistryError::Deposed) {
                tracing::error!(%error, "cannot store the registry; the operator's reservation is undone");
                // The resources were just re-keyed and nothing ran since: the inverse applies.
                let _ = self.feed(undo);
            }
            return Err(error.into());
        }
        Ok(())
    }

    fn feed_persisted_inner(&mut self, input: Input) -> Result<(), ChangeError> {
        if matches!(input, Input::ReserveResources { .. } | Input::UnreserveResources { .. }) {
            return self.feed_reservation(input);
        }
        if self.registry.is_none() {
            return Ok(self.feed(input)?);
        }
        let before = self.registry_state();
        let undo = match &input {
            Input::UpdateWeights(weights) => Input::UpdateWeights(
                weights
                    .iter()
                    .map(|(role, _)| (role.clone(), before.roles.weights.get(role).copied().unwrap_or(1.0)))
                    .collect(),
            ),
            Input::UpdateQuota(quotas) => Input::UpdateQuota(
                quotas
                    .iter()
                    .map(|(role, _)| {
                        (
                            role.clone(),
                            before.roles.quotas.get(role).cloned().unwrap_or_default().into(),
                        )
                    })
                    .collect(),
            ),
            _ => return Ok(self.feed(input)?),
        };
        self.feed(input)?;
        let after = self.registry_state();
        let stored = before
            .changes_to(&after)
            .and_then(|changes| match self.registry.as_mut() {
                Some(registry) if !changes.is_empty() => registry.apply(&changes),
                _ => Ok(()),
            });
        if let Err(error) = stored {
            tracing::error!(%error, "cannot store the registry; the operator's change is undone");
            // The values being restored were accepted before.
            let _ = self.feed(undo);
            return Err(error.into());
        }
        Ok(())
    }

    /// Feeds `input` and whatever disconnections routing its outputs reveals;
    /// returns the verdict on `input` itself.
    fn feed(&mut self, input: Input) -> Result<(), MasterError> {
        let result = self.handle(input);
        while let Some(follow_up) = self.follow_ups.pop_front() {
            // Disconnections are never refused.
            let _ = self.handle(follow_up);
        }
        result
    }

    fn handle(&mut self, input: Input) -> Result<(), MasterError> {
        let now = self.clock.now();
        if matches!(input, Input::Tick) {
            self.last_tick = Some(now);
        }
        self.events.before(&input, self.master.stats());
        let cycles = self.master.stats().allocation_cycles;
        let started = Instant::now();
        let result = self.master.handle(now, input);
        if self.master.stats().allocation_cycles > cycles {
            self.metrics.allocation_cycle(started.elapsed());
        }
        while let Some(output) = self.master.poll_output() {
            self.events.output(&output);
            self.route(output);
        }
        self.events.after(&self.master);
        result
    }

    fn route(&mut self, output: Output) {
        match output {
            Output::ToFramework { conn, event } => {
                if let Event::Subscribed { framework_id, .. } = &event {
                    tracing::info!(%conn, %framework_id, "framework subscribed");
                }
                let delivered = match self.frameworks.get(&conn) {
                    Some(events) => deliver(events, event, conn, "framework"),
                    None => false,
                };
                if !delivered {
                    self.frameworks.remove(&conn);
                    self.follow_ups.push_back(Input::FrameworkDisconnected { conn });
                }
            }
            Output::CloseFramework { conn } => {
                tracing::debug!(%conn, "closing framework stream");
                self.frameworks.remove(&conn);
            }
            Output::ToAgent { conn, message } => {
                if let MasterMessage::Registered { agent_id, .. } = &message {
                    tracing::info!(%conn, %agent_id, "agent registered");
                }
                let delivered = match self.agents.get(&conn) {
                    Some(messages) => deliver(messages, message, conn, "agent"),
                    None => false,
                };
                if !delivered {
                    self.agents.remove(&conn);
                    self.follow_ups.push_back(Input::AgentDisconnected { conn });
                }
            }
            Output::CloseAgent { conn } => {
                tracing::debug!(%conn, "closing agent stream");
                self.agents.remove(&conn);
            }
            Output::FileRead { request, result } => {
                if let Some(reply) = self.reads.remove(&request) {
                    let _ = reply.send(Ok(result));
                }
            }
        }
    }
}

/// Queues `item` without waiting; `false` when the peer is gone or not
/// reading, which the caller treats as a disconnection.
fn deliver<T>(channel: &mpsc::Sender<T>, item: T, conn: ConnectionId, peer: &str) -> bool {
    match channel.try_send(item) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            tracing::warn!(%conn, peer, "peer is not reading its stream; disconnecting it");
            false
        }
        Err(TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::MasterConfig;
    use agora_proto::AgentInfo;
    use std::sync::Mutex;

    /// A registry in memory that records the size of every batch.
    #[derive(Debug, Clone, Default)]
    struct Counting {
        batches: Arc<Mutex<Vec<usize>>>,
        entries: Arc<Mutex<BTreeMap<String, Value>>>,
    }

    impl Registry for Counting {
        fn load(&mut self) -> Result<BTreeMap<String, Value>, RegistryError> {
            Ok(self.entries.lock().unwrap().clone())
        }

        fn apply(&mut self, changes: &[registry::Change]) -> Result<(), RegistryError> {
            self.batches.lock().unwrap().push(changes.len());
            let mut entries = self.entries.lock().unwrap();
            for change in changes {
                match &change.value {
                    Some(value) => entries.insert(change.key.clone(), value.clone()),
                    None => entries.remove(&change.key),
                };
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_burst_of_registrations_is_written_in_a_few_batches() {
        let registry = Counting::default();
        let metrics = Metrics::new().unwrap();
        let (handle, core) = new(
            Master::new(MasterConfig::default(), 1),
            metrics,
            Some(Box::new(registry.clone())),
        );
        let core = tokio::spawn(core.run());
        let mut streams = Vec::new();
        for i in 0..1000 {
            let conn = handle.next_conn();
            let (tx, rx) = mpsc::channel(AGENT_BUFFER);
            streams.push(rx);
            handle.attach_agent(conn, tx).await.unwrap();
            let info = AgentInfo {
                hostname: format!("host-{i}"),
                resources: "cpus:1;mem:64".parse().unwrap(),
                attributes: Default::default(),
            };
            handle
                .agent_message(
                    conn,
                    AgentMessage::Register {
                        info,
                        agent_id: None,
                        tasks: Vec::new(),
                    },
                )
                .await
                .unwrap();
        }
        // The second answer comes after the loop went back to its queue,
        // which it does only after writing what the first one's batch held.
        handle.state().await.unwrap();
        handle.state().await.unwrap();
        let batches = registry.batches.lock().unwrap().clone();
        let agents = registry
            .entries
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("agents/"))
            .count();
        assert_eq!(agents, 1000);
        assert_eq!(
            batches.iter().sum::<usize>(),
            1000,
            "each record written once: {batches:?}"
        );
        // One sender hands over 64 registrations per turn (tokio's
        // cooperative budget); many agents at once fill the queue further.
        assert!(batches.len() <= 50, "{} batches: {batches:?}", batches.len());
        handle.shutdown().await;
        assert!(core.await.unwrap().is_ok());
    }

    /// A registry that refuses every write: this master was deposed.
    #[derive(Debug)]
    struct Deposed;

    impl Registry for Deposed {
        fn load(&mut self) -> Result<BTreeMap<String, Value>, RegistryError> {
            Ok(BTreeMap::new())
        }

        fn apply(&mut self, _: &[registry::Change]) -> Result<(), RegistryError> {
            Err(RegistryError::Deposed)
        }
    }

    #[tokio::test]
    async fn a_deposed_master_stops_its_core_loop() {
        let (handle, core) = new(
            Master::new(MasterConfig::default(), 1),
            Metrics::new().unwrap(),
            Some(Box::new(Deposed)),
        );
        let core = tokio::spawn(core.run());
        let (events, _rx) = mpsc::channel(FRAMEWORK_BUFFER);
        let conn = handle.next_conn();
        // Answered (SUBSCRIBED may precede its record), then the write fails.
        let _ = handle.subscribe(conn, FrameworkInfo::new("f"), events).await;
        assert!(matches!(core.await.unwrap(), Err(RegistryError::Deposed)));
        assert!(!handle.is_running());
    }
}
