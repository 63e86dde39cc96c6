//! The operator's stream of cluster events, derived by the core loop from
//! the core's inputs and outputs (the core has no notion of watchers).
//!
//! | event | when |
//! | --- | --- |
//! | `framework_added` | a SUBSCRIBED event is sent (so again on every re-subscription) |
//! | `framework_removed` | the core's `frameworks_removed` counter rises (teardown, failover timeout) |
//! | `agent_added` | an agent is sent `Registered` (so again on every re-registration) |
//! | `agent_removed` | the core's `agents_unreachable` counter rises (the agent is marked unreachable) |
//! | `task_updated` | a task is sent to an agent (state STAGING, with its `TaskInfo`), or a status update is sent to a connected framework (without `task`; reconciliation answers are left out) |
//!
//! Removals are found by comparing a snapshot of the core with what was seen
//! before; they are rare, so the snapshot's cost does not matter.
//!
//! Events go out on a `broadcast` channel: a watcher that falls more than
//! [`WATCH_BUFFER`] events behind loses its stream (see `operator.rs`). To see
//! every change, open the watch first and then read the state.

use crate::{AgentStatus, ConnectionId, Input, Master, Output, Stats};
use agora_proto::{AgentId, AgentInfo, Event, FrameworkId, FrameworkInfo, MasterMessage, TaskReason, TaskState, pb};
use std::collections::{BTreeSet, HashMap};
use tokio::sync::broadcast;

/// Events buffered for watchers.
pub(crate) const WATCH_BUFFER: usize = 1024;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct ClusterEvents {
    sender: broadcast::Sender<pb::ClusterEvent>,
    /// The framework subscribed on each stream, to name the framework of the
    /// status updates sent on it.
    framework_of: HashMap<ConnectionId, FrameworkId>,
    /// The description in the subscription being handled.
    subscribing: Option<(ConnectionId, FrameworkInfo)>,
    /// The description in the registration being handled.
    registering: Option<(ConnectionId, AgentInfo)>,
    /// Frameworks announced and not yet removed.
    known_frameworks: BTreeSet<FrameworkId>,
    /// Agents announced as removed and not yet registered again.
    unreachable_agents: BTreeSet<AgentId>,
    frameworks_removed: u64,
    agents_unreachable: u64,
}

impl ClusterEvents {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(WATCH_BUFFER).0,
            framework_of: HashMap::new(),
            subscribing: None,
            registering: None,
            known_frameworks: BTreeSet::new(),
            unreachable_agents: BTreeSet::new(),
            frameworks_removed: 0,
            agents_unreachable: 0,
        }
    }

    /// A receiver of every event from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<pb::ClusterEvent> {
        self.sender.subscribe()
    }

    fn emit(&self, event: impl FnOnce() -> pb::cluster_event::Event) {
        // Nothing is built when nobody watches.
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(pb::ClusterEvent { event: Some(event()) });
        }
    }

    /// Called before the core handles `input`.
    pub(crate) fn before(&mut self, input: &Input, stats: &Stats) {
        self.frameworks_removed = stats.frameworks_removed;
        self.agents_unreachable = stats.agents_unreachable;
        self.subscribing = None;
        self.registering = None;
        match input {
            Input::Subscribe { conn, info } => self.subscribing = Some((*conn, info.clone())),
            Input::Agent {
                conn,
                message: agora_proto::AgentMessage::Register { info, .. },
            } => self.registering = Some((*conn, info.clone())),
            Input::FrameworkDisconnected { conn } => {
                self.framework_of.remove(conn);
            }
            _ => {}
        }
    }

    /// Called for every output, before it is routed.
    pub(crate) fn output(&mut self, output: &Output) {
        match output {
            Output::ToFramework { conn, event } => self.framework_event(*conn, event),
            Output::CloseFramework { conn } => {
                self.framework_of.remove(conn);
            }
            Output::ToAgent { conn, message } => self.agent_message(*conn, message),
            Output::CloseAgent { .. } | Output::FileRead { .. } => {}
        }
    }

    fn framework_event(&mut self, conn: ConnectionId, event: &Event) {
        match event {
            Event::Subscribed { framework_id, .. } => {
                self.framework_of.insert(conn, framework_id.clone());
                self.known_frameworks.insert(framework_id.clone());
                let info = match &self.subscribing {
                    Some((c, info)) if *c == conn => Some(info.clone()),
                    _ => None,
                };
                self.emit(|| {
                    pb::cluster_event::Event::FrameworkAdded(pb::FrameworkState {
                        id: Some(framework_id.into()),
                        info: info.map(|mut info| {
                            info.id = Some(framework_id.clone());
                            info.into()
                        }),
                        connected: true,
                        active: true,
                        ..Default::default()
                    })
                });
            }
            Event::Update(status) if status.reason != Some(TaskReason::Reconciliation) => {
                let framework_id = self.framework_of.get(&conn);
                self.emit(|| {
                    pb::cluster_event::Event::TaskUpdated(pb::TaskRecord {
                        framework_id: framework_id.map(Into::into),
                        task: None,
                        state: status.state.into(),
                        last_status: Some(status.clone().into()),
                        usage: None,
                    })
                });
            }
            _ => {}
        }
    }

    fn agent_message(&mut self, conn: ConnectionId, message: &MasterMessage) {
        match message {
            MasterMessage::Registered { agent_id, .. } => {
                self.unreachable_agents.remove(agent_id);
                let info = match &self.registering {
                    Some((c, info)) if *c == conn => Some(info.clone()),
                    _ => None,
                };
                self.emit(|| {
                    pb::cluster_event::Event::AgentAdded(pb::AgentState {
                        id: Some(agent_id.into()),
                        total: info.as_ref().map(|i| (&i.resources).into()).unwrap_or_default(),
                        info: info.map(Into::into),
                        active: true,
                        ..Default::default()
                    })
                });
            }
            MasterMessage::RunTask { framework_id, task } => self.emit(|| {
                pb::cluster_event::Event::TaskUpdated(pb::TaskRecord {
                    framework_id: Some(framework_id.into()),
                    task: Some(task.clone().into()),
                    state: TaskState::Staging.into(),
                    last_status: None,
                    usage: None,
                })
            }),
            _ => {}
        }
    }

    /// Called after the core handled an input and its outputs were routed.
    pub(crate) fn after(&mut self, master: &Master) {
        let stats = master.stats();
        let frameworks_removed = stats.frameworks_removed > self.frameworks_removed;
        let agents_unreachable = stats.agents_unreachable > self.agents_unreachable;
        if !frameworks_removed && !agents_unreachable {
            return;
        }
        let state = master.state();
        if frameworks_removed {
            let present: BTreeSet<&FrameworkId> = state.frameworks.iter().map(|f| &f.id).collect();
            let removed: Vec<FrameworkId> = self
                .known_frameworks
                .iter()
                .filter(|id| !present.contains(id))
                .cloned()
                .collect();
            for framework_id in removed {
                self.known_frameworks.remove(&framework_id);
                self.emit(|| pb::cluster_event::Event::FrameworkRemoved(framework_id.into()));
            }
        }
        if agents_unreachable {
            for agent in state.agents.iter().filter(|a| a.status == AgentStatus::Unreachable) {
                if self.unreachable_agents.insert(agent.id.clone()) {
                    self.emit(|| pb::cluster_event::Event::AgentRemoved((&agent.id).into()));
                }
            }
        }
    }
}
