//! The status update manager: every task status the agent produces is
//! delivered at least once and, per task, in order.
//!
//! Each task (each [`ContainerId`]) has a queue of updates. Only the head is
//! in flight: it is sent, then re-sent after [`RetryPolicy::first_retry`],
//! then after twice that, and so on up to [`RetryPolicy::max_interval`],
//! until the framework acknowledges its uuid. The next update is sent when
//! the head is acknowledged; an emptied queue is forgotten. While the agent is
//! offline (not registered) nothing is sent and no retry is armed; going
//! online sends every head at once and restarts its backoff, as Mesos does.

use crate::checkpoint::PendingUpdates;
use crate::containerizer::ContainerId;
use crate::core::Output;
use agora_proto::{AgentId, AgentMessage, FrameworkId, StatusUuid, TaskStatus, Timestamp};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// When unacknowledged status updates are re-sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first re-send (Mesos: 10 s).
    pub first_retry: Duration,
    /// The wait doubles after each re-send up to this (Mesos: 10 min).
    pub max_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(10),
            max_interval: Duration::from_secs(600),
        }
    }
}

/// What became of an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// It acknowledged the head of its task's queue, which was removed.
    Accepted,
    /// It names no update in flight (a duplicate, or a later update's uuid).
    Ignored,
}

#[derive(Debug, Default)]
struct Stream {
    /// Unacknowledged updates, oldest (the one in flight) first.
    pending: VecDeque<TaskStatus>,
    /// When the head is re-sent and the wait that led there; `None` offline.
    retry: Option<(Timestamp, Duration)>,
}

/// Per-task queues of unacknowledged updates; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct StatusUpdateManager {
    policy: RetryPolicy,
    online: bool,
    streams: BTreeMap<ContainerId, Stream>,
    /// The armed retries, by time; mirrors `Stream::retry`.
    retries: BTreeSet<(Timestamp, ContainerId)>,
}

impl StatusUpdateManager {
    pub(crate) const fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            online: false,
            streams: BTreeMap::new(),
            retries: BTreeSet::new(),
        }
    }

    /// Queues `status` (which carries a uuid) behind the task's earlier
    /// updates; sends it at once if it is the head and the agent is online.
    pub(crate) fn enqueue(&mut self, now: Timestamp, id: ContainerId, status: TaskStatus, out: &mut VecDeque<Output>) {
        let stream = self.streams.entry(id.clone()).or_default();
        stream.pending.push_back(status);
        if stream.pending.len() == 1 && self.online {
            self.transmit(now, &id, self.policy.first_retry, out);
        }
    }

    /// Handles the framework's acknowledgement of `uuid` for task `id`.
    pub(crate) fn acknowledge(
        &mut self,
        now: Timestamp,
        id: &ContainerId,
        uuid: StatusUuid,
        out: &mut VecDeque<Output>,
    ) -> Ack {
        let Some(stream) = self.streams.get_mut(id) else {
            return Ack::Ignored;
        };
        if stream.pending.front().and_then(|s| s.uuid) != Some(uuid) {
            return Ack::Ignored;
        }
        stream.pending.pop_front();
        if let Some((at, _)) = stream.retry.take() {
            self.retries.remove(&(at, id.clone()));
        }
        if stream.pending.is_empty() {
            self.streams.remove(id);
        } else if self.online {
            self.transmit(now, id, self.policy.first_retry, out);
        }
        Ack::Accepted
    }

    /// Goes online (registered): every head is sent now, with a fresh
    /// backoff. Calling it again while online re-sends them again.
    pub(crate) fn go_online(&mut self, now: Timestamp, out: &mut VecDeque<Output>) {
        self.online = true;
        self.retries.clear();
        let ids: Vec<ContainerId> = self.streams.keys().cloned().collect();
        for id in ids {
            self.transmit(now, &id, self.policy.first_retry, out);
        }
    }

    /// Goes offline: nothing is sent until [`go_online`](Self::go_online).
    pub(crate) fn go_offline(&mut self) {
        self.online = false;
        self.retries.clear();
        for stream in self.streams.values_mut() {
            stream.retry = None;
        }
    }

    /// Re-sends every head whose retry is due, doubling its wait.
    pub(crate) fn tick(&mut self, now: Timestamp, out: &mut VecDeque<Output>) {
        while let Some((at, _)) = self.retries.first()
            && *at <= now
        {
            let Some((_, id)) = self.retries.pop_first() else { break };
            let waited = self
                .streams
                .get(&id)
                .and_then(|s| s.retry)
                .map_or(self.policy.first_retry, |r| r.1);
            let wait = waited.saturating_mul(2).min(self.policy.max_interval);
            self.transmit(now, &id, wait, out);
        }
    }

    /// When the next retry is due.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.retries.first().map(|(at, _)| *at)
    }

    /// Sends the head of `id`'s queue and arms its retry after `wait`.
    fn transmit(&mut self, now: Timestamp, id: &ContainerId, wait: Duration, out: &mut VecDeque<Output>) {
        let Some(stream) = self.streams.get_mut(id) else { return };
        let Some(head) = stream.pending.front() else { return };
        out.push_back(Output::Send(AgentMessage::StatusUpdate {
            framework_id: id.framework_id.clone(),
            status: head.clone(),
        }));
        if let Some((at, _)) = stream.retry.take() {
            self.retries.remove(&(at, id.clone()));
        }
        let at = now + wait;
        stream.retry = Some((at, wait));
        self.retries.insert((at, id.clone()));
    }

    /// Stamps every queued update with the agent's (new) id.
    pub(crate) fn set_agent_id(&mut self, agent_id: &AgentId) {
        for status in self.streams.values_mut().flat_map(|s| s.pending.iter_mut()) {
            status.agent_id = Some(agent_id.clone());
        }
    }

    /// Forgets every update of `framework_id` (it was shut down: nobody
    /// will acknowledge them).
    pub(crate) fn drop_framework(&mut self, framework_id: &FrameworkId) {
        self.streams.retain(|id, _| id.framework_id != *framework_id);
        self.retries.retain(|(_, id)| id.framework_id != *framework_id);
    }

    /// Puts back the unacknowledged updates of task `id` (oldest first) from
    /// a checkpoint, behind any already queued; they are sent when the agent
    /// goes online.
    pub(crate) fn restore(&mut self, id: ContainerId, statuses: Vec<TaskStatus>) {
        if statuses.is_empty() {
            return;
        }
        self.streams.entry(id).or_default().pending.extend(statuses);
    }

    /// Every task's unacknowledged updates, oldest first, for the checkpoint.
    pub(crate) fn snapshot(&self) -> Vec<PendingUpdates> {
        self.streams
            .iter()
            .map(|(id, stream)| PendingUpdates {
                framework_id: id.framework_id.clone(),
                task_id: id.task_id.clone(),
                statuses: stream.pending.iter().cloned().collect(),
            })
            .collect()
    }

    /// The unacknowledged updates of task `id`, oldest first.
    pub(crate) fn pending(&self, id: &ContainerId) -> impl Iterator<Item = &TaskStatus> {
        self.streams.get(id).into_iter().flat_map(|s| s.pending.iter())
    }

    /// Whether task `id` has unacknowledged updates.
    pub(crate) fn contains(&self, id: &ContainerId) -> bool {
        self.streams.contains_key(id)
    }

    /// How many updates are unacknowledged, over all tasks.
    pub(crate) fn len(&self) -> usize {
        self.streams.values().map(|s| s.pending.len()).sum()
    }
}
