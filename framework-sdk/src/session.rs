//! [`Session`]: the pure protocol logic between a [`Scheduler`] and a master.
//!
//! Both the async driver and a discrete-event simulator feed a session the
//! events they receive, with the current time, and send the calls it returns.
//! The session holds what must outlive one connection: the framework id to
//! re-subscribe with, whether the scheduler asked to stop, and whether the
//! master reported a fatal error.

use crate::calls::Calls;
use crate::scheduler::{Scheduler, Subscribed};
use agora_proto::{AgentId, Call, Event, FrameworkCall, FrameworkId, FrameworkInfo, Operation, TaskId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Who acknowledges status updates that carry a uuid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AckMode {
    /// The session acknowledges each update after
    /// [`Scheduler::status_update`] returns (unless the scheduler already did).
    #[default]
    Auto,
    /// The scheduler calls [`Calls::acknowledge`] itself, for instance only
    /// once it has persisted the update. Unacknowledged updates are resent by
    /// the agent.
    Explicit,
}

/// How many heartbeat intervals without any event mean the link is dead
/// (Mesos clients reconnect after about five missed heartbeats).
pub const DEFAULT_MISSED_HEARTBEATS: u32 = 5;

/// Periodic reconciliation, as Mesos' reconciliation guide recommends: every
/// `interval`, ask explicitly about the tasks the scheduler believes are not
/// terminal, again after `retry`, doubling up to `max_retry`, for those the
/// master has not answered yet; once every one is answered, one implicit
/// reconciliation (which also brings tasks the scheduler does not know of).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    /// Time from one round's start (or the subscription) to the next.
    pub interval: Duration,
    /// First wait for answers before asking again.
    pub retry: Duration,
    /// Longest wait between two asks of one round.
    pub max_retry: Duration,
}

impl Reconciliation {
    /// Every 10 minutes (Marathon's default reconciliation interval), asking
    /// again after 10 s, backing off to 5 min.
    pub const DEFAULT: Self = Self {
        interval: Duration::from_secs(600),
        retry: Duration::from_secs(10),
        max_retry: Duration::from_secs(300),
    };
}

impl Default for Reconciliation {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The periodic reconciliation in progress.
#[derive(Debug, Default)]
struct ReconcileState {
    /// When to act next: start a round, or ask again.
    next: Option<Timestamp>,
    /// In a round: the tasks not yet answered, and the next wait.
    waiting: Option<(BTreeSet<TaskId>, Duration)>,
    /// Rounds started.
    rounds: u64,
}

/// The state of one framework's conversation with the master, across
/// connections.
///
/// Both the async driver and a discrete-event simulator feed a session the
/// events they receive, with the current time, and send the calls it returns,
/// in order. The session holds what must outlive one connection: the
/// framework id to re-subscribe with, whether the scheduler asked to stop,
/// and whether the master reported a fatal error.
#[derive(Debug)]
pub struct Session<S> {
    scheduler: S,
    framework: FrameworkInfo,
    ack_mode: AckMode,
    implicit_reconciliation: bool,
    missed_heartbeats: u32,
    subscribed: Option<Subscribed>,
    last_event: Option<Timestamp>,
    exit_requested: bool,
    fatal_error: Option<String>,
    ignored_events: u64,
    reconciliation: Option<Reconciliation>,
    reconcile: ReconcileState,
    /// Tasks the scheduler believes are not terminal: launched, or last
    /// reported in a non-terminal state; with their agent when known.
    live_tasks: BTreeMap<TaskId, Option<AgentId>>,
}

impl<S: Scheduler> Session<S> {
    /// A session for `scheduler`, subscribing as `framework` (set
    /// `framework.id` to fail over to an existing framework). Acknowledges
    /// updates automatically and reconciles after every subscription.
    pub fn new(scheduler: S, framework: FrameworkInfo) -> Self {
        Self {
            scheduler,
            framework,
            ack_mode: AckMode::Auto,
            implicit_reconciliation: true,
            missed_heartbeats: DEFAULT_MISSED_HEARTBEATS,
            subscribed: None,
            last_event: None,
            exit_requested: false,
            fatal_error: None,
            ignored_events: 0,
            reconciliation: Some(Reconciliation::DEFAULT),
            reconcile: ReconcileState::default(),
            live_tasks: BTreeMap::new(),
        }
    }

    /// Sets the periodic reconciliation (`None` turns it off; on by default
    /// with [`Reconciliation::DEFAULT`]).
    #[must_use]
    pub const fn with_periodic_reconciliation(mut self, reconciliation: Option<Reconciliation>) -> Self {
        self.reconciliation = reconciliation;
        self
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called
    /// (periodic reconciliation); `None` when nothing is scheduled.
    pub const fn poll_timeout(&self) -> Option<Timestamp> {
        if self.subscribed.is_some() {
            self.reconcile.next
        } else {
            None
        }
    }

    /// Periodic reconciliation rounds started so far.
    pub const fn reconciliation_rounds(&self) -> u64 {
        self.reconcile.rounds
    }

    /// The tasks the session believes are not terminal (launched through it,
    /// or last reported in a non-terminal state).
    pub fn live_tasks(&self) -> impl Iterator<Item = &TaskId> {
        self.live_tasks.keys()
    }

    /// Runs the timers due at `now` and returns the calls to send: a
    /// periodic reconciliation round starts, or asks again about the tasks
    /// not answered yet, or ends with an implicit reconciliation.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<FrameworkCall> {
        let Some(config) = self.reconciliation else {
            return Vec::new();
        };
        if !self.is_subscribed() || self.reconcile.next.is_none_or(|next| now < next) {
            return Vec::new();
        }
        let mut calls = Calls::new(now, self.framework.id.clone());
        let (waiting, wait) = match self.reconcile.waiting.take() {
            // A round in progress: keep only the tasks still live (the
            // scheduler may have seen them end meanwhile).
            Some((mut waiting, wait)) => {
                waiting.retain(|t| self.live_tasks.contains_key(t));
                (waiting, wait)
            }
            None => {
                self.reconcile.rounds += 1;
                (self.live_tasks.keys().cloned().collect(), config.retry)
            }
        };
        if waiting.is_empty() {
            // Every task answered: one implicit reconciliation ends the round.
            calls.reconcile(Vec::new());
            self.reconcile.next = Some(now + config.interval);
        } else {
            let tasks = waiting
                .iter()
                .map(|t| (t.clone(), self.live_tasks.get(t).cloned().flatten()))
                .collect();
            calls.reconcile(tasks);
            self.reconcile.next = Some(now + wait);
            let next_wait = wait.saturating_mul(2).min(config.max_retry.max(config.retry));
            self.reconcile.waiting = Some((waiting, next_wait));
        }
        self.finish(calls)
    }

    /// Keeps `live_tasks` up to date with a status the master sent, and
    /// counts it as the answer the current reconciliation round waits for.
    fn track_status(&mut self, now: Timestamp, status: &agora_proto::TaskStatus) {
        if status.state.is_terminal() {
            self.live_tasks.remove(&status.task_id);
        } else {
            self.live_tasks.insert(status.task_id.clone(), status.agent_id.clone());
        }
        if let Some((waiting, _)) = &mut self.reconcile.waiting
            && waiting.remove(&status.task_id)
            && waiting.is_empty()
        {
            // The last answer: end the round at once.
            self.reconcile.next = Some(now);
        }
    }

    /// Sets who acknowledges status updates.
    #[must_use]
    pub const fn with_ack_mode(mut self, mode: AckMode) -> Self {
        self.ack_mode = mode;
        self
    }

    /// Turns the implicit reconciliation after each subscription on or off
    /// (on by default, as Mesos recommends).
    #[must_use]
    pub const fn with_implicit_reconciliation(mut self, on: bool) -> Self {
        self.implicit_reconciliation = on;
        self
    }

    /// Sets how many heartbeat intervals of silence mean the link is dead
    /// (at least 1).
    #[must_use]
    pub fn with_missed_heartbeats(mut self, missed: u32) -> Self {
        self.missed_heartbeats = missed.max(1);
        self
    }

    /// What to send in SUBSCRIBE: the framework description, with the id the
    /// master assigned once there is one, so that re-subscribing keeps the
    /// framework's tasks.
    pub const fn framework_info(&self) -> &FrameworkInfo {
        &self.framework
    }

    /// The framework's id, once the master assigned one.
    pub const fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework.id.as_ref()
    }

    /// The acknowledgement mode.
    pub const fn ack_mode(&self) -> AckMode {
        self.ack_mode
    }

    /// What the master said at the current subscription, if subscribed.
    pub const fn subscription(&self) -> Option<&Subscribed> {
        self.subscribed.as_ref()
    }

    /// Whether the current connection is subscribed.
    pub const fn is_subscribed(&self) -> bool {
        self.subscribed.is_some()
    }

    /// Whether the scheduler asked to stop (or tore the framework down).
    pub const fn exit_requested(&self) -> bool {
        self.exit_requested
    }

    /// The master's fatal ERROR message, if one arrived; the session is over.
    pub fn fatal_error(&self) -> Option<&str> {
        self.fatal_error.as_deref()
    }

    /// Events ignored because they came before SUBSCRIBED (a protocol
    /// violation by the master).
    pub const fn ignored_events(&self) -> u64 {
        self.ignored_events
    }

    /// How long the link may stay silent before it counts as dead: the
    /// heartbeat interval times the allowed misses. `None` before
    /// subscription or when the master sends no heartbeats.
    pub fn heartbeat_timeout(&self) -> Option<Duration> {
        let interval = self.subscribed.as_ref()?.heartbeat_interval;
        (!interval.is_zero()).then(|| interval.saturating_mul(self.missed_heartbeats))
    }

    /// When the link counts as dead if nothing arrives before: the last
    /// event plus [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub fn heartbeat_deadline(&self) -> Option<Timestamp> {
        Some(self.last_event? + self.heartbeat_timeout()?)
    }

    /// Whether the link counts as dead at `now` (see
    /// [`heartbeat_deadline`](Self::heartbeat_deadline)).
    pub fn heartbeat_expired(&self, now: Timestamp) -> bool {
        self.heartbeat_deadline().is_some_and(|deadline| now >= deadline)
    }

    /// The scheduler.
    pub const fn scheduler(&self) -> &S {
        &self.scheduler
    }

    /// The scheduler, mutably (to configure it between events).
    pub const fn scheduler_mut(&mut self) -> &mut S {
        &mut self.scheduler
    }

    /// Ends the session, giving the scheduler back.
    pub fn into_scheduler(self) -> S {
        self.scheduler
    }

    /// Handles one event received at `now`: runs the matching callback and
    /// returns the calls to send, in order.
    ///
    /// After SUBSCRIBED the framework id is remembered and an implicit
    /// reconciliation follows the scheduler's own calls. After an UPDATE
    /// carrying a uuid, an acknowledgement follows (in [`AckMode::Auto`]).
    /// A TEARDOWN is moved after every other call of the same round.
    /// Events other than SUBSCRIBED and ERROR that arrive before SUBSCRIBED
    /// are ignored and counted in [`ignored_events`](Self::ignored_events).
    pub fn handle(&mut self, now: Timestamp, event: Event) -> Vec<FrameworkCall> {
        self.last_event = Some(now);
        if !self.is_subscribed() && !matches!(event, Event::Subscribed { .. } | Event::Error(_)) {
            self.ignored_events += 1;
            return Vec::new();
        }
        let mut calls = Calls::new(now, self.framework.id.clone());
        match event {
            Event::Subscribed {
                framework_id,
                heartbeat_interval,
                master_id,
            } => {
                self.framework.id = Some(framework_id.clone());
                calls = Calls::new(now, Some(framework_id.clone()));
                let info = Subscribed {
                    framework_id,
                    master_id,
                    heartbeat_interval,
                };
                self.scheduler.subscribed(&mut calls, &info);
                self.subscribed = Some(info);
                if self.implicit_reconciliation {
                    calls.reconcile(Vec::new());
                }
                // A new subscription starts the periodic schedule afresh.
                self.reconcile.waiting = None;
                self.reconcile.next = self.reconciliation.map(|r| now + r.interval);
            }
            Event::Offers(offers) => self.scheduler.offers(&mut calls, offers),
            Event::Rescind(offer_id) => self.scheduler.rescinded(&mut calls, &offer_id),
            Event::Update(status) => {
                self.track_status(now, &status);
                self.scheduler.status_update(&mut calls, &status);
                if self.ack_mode == AckMode::Auto {
                    calls.acknowledge(&status);
                }
            }
            Event::Failure { agent_id } => self.scheduler.failure(&mut calls, &agent_id),
            Event::Error(message) => {
                self.scheduler.error(&mut calls, &message);
                self.fatal_error = Some(message);
                self.subscribed = None;
            }
            Event::Heartbeat => {}
        }
        self.finish(calls)
    }

    /// The connection is lost (stream ended, heartbeats missed, or a call
    /// failed in transport). Tells the scheduler if it was subscribed;
    /// returns whether it was.
    pub fn disconnected(&mut self) -> bool {
        self.last_event = None;
        if self.subscribed.take().is_some() {
            self.scheduler.disconnected();
            true
        } else {
            false
        }
    }

    fn finish(&mut self, mut calls: Calls) -> Vec<FrameworkCall> {
        self.exit_requested |= calls.exit_requested();
        let mut queued = calls.drain();
        // TEARDOWN ends the framework, so whatever else this round queued
        // (the acknowledgement of the update that triggered it, say) goes first.
        queued.sort_by_key(|call| matches!(call, Call::Teardown));
        // Calls need a framework id; without one (an ERROR before any
        // subscription) there is no one to send them for.
        let Some(framework_id) = self.framework.id.clone() else {
            return Vec::new();
        };
        queued
            .into_iter()
            .map(|call| {
                if let Call::Accept { operations, .. } = &call {
                    for operation in operations {
                        if let Operation::Launch(tasks) = operation {
                            for task in tasks {
                                self.live_tasks
                                    .insert(task.task_id.clone(), Some(task.agent_id.clone()));
                            }
                        }
                    }
                }
                let call = match call {
                    // The master keys UPDATE_FRAMEWORK by the info's id.
                    Call::UpdateFramework(mut info) => {
                        info.id = Some(framework_id.clone());
                        self.framework = info.clone();
                        Call::UpdateFramework(info)
                    }
                    other => other,
                };
                FrameworkCall {
                    framework_id: framework_id.clone(),
                    call,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, Filters, Offer, OfferId, Resources, StatusUuid, TaskId, TaskState, TaskStatus};

    /// Records callbacks and runs a scripted reaction.
    #[derive(Debug, Default)]
    struct Recorder {
        log: Vec<String>,
        ack_explicitly: bool,
        exit_on_update: bool,
    }

    impl Scheduler for Recorder {
        fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
            self.log.push(format!(
                "subscribed {} at {}",
                info.framework_id,
                calls.now().as_micros()
            ));
            calls.revive(vec![]);
        }
        fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
            self.log.push(format!("offers {}", offers.len()));
            calls.decline(offers.into_iter().map(|o| o.id).collect(), Filters::default());
        }
        fn rescinded(&mut self, _calls: &mut Calls, offer_id: &OfferId) {
            self.log.push(format!("rescinded {offer_id}"));
        }
        fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
            self.log.push(format!("update {} {}", status.task_id, status.state));
            if self.ack_explicitly {
                calls.acknowledge(status);
            }
            if self.exit_on_update {
                calls.exit();
            }
        }
        fn failure(&mut self, _calls: &mut Calls, agent_id: &AgentId) {
            self.log.push(format!("failure {agent_id}"));
        }
        fn error(&mut self, _calls: &mut Calls, message: &str) {
            self.log.push(format!("error {message}"));
        }
        fn disconnected(&mut self) {
            self.log.push("disconnected".to_owned());
        }
    }

    fn fid(s: &str) -> FrameworkId {
        FrameworkId::new(s).expect("id")
    }

    fn subscribed(id: &str) -> Event {
        Event::Subscribed {
            framework_id: fid(id),
            heartbeat_interval: Duration::from_secs(15),
            master_id: "m".to_owned(),
        }
    }

    fn update(uuid: Option<u128>) -> Event {
        let mut s = TaskStatus::new(TaskId::new("t1").expect("id"), TaskState::Running, Timestamp::ZERO);
        s.agent_id = Some(AgentId::new("a1").expect("id"));
        s.uuid = uuid.map(StatusUuid::from_u128);
        Event::Update(s)
    }

    fn offer(id: &str) -> Offer {
        Offer {
            id: OfferId::new(id).expect("id"),
            framework_id: fid("fw"),
            agent_id: AgentId::new("a1").expect("id"),
            hostname: "h".to_owned(),
            resources: Resources::new(),
            attributes: Default::default(),
            role: "*".to_owned(),
        }
    }

    fn session() -> Session<Recorder> {
        Session::new(Recorder::default(), FrameworkInfo::new("test"))
    }

    fn calls_of(out: &[FrameworkCall]) -> Vec<&Call> {
        out.iter().map(|c| &c.call).collect()
    }

    #[test]
    fn subscribed_runs_callback_then_reconciles_implicitly() {
        let mut s = session();
        assert!(s.framework_id().is_none());
        let out = s.handle(Timestamp::from_secs(7), subscribed("fw"));
        assert_eq!(s.scheduler().log, vec!["subscribed fw at 7000000"]);
        assert_eq!(
            calls_of(&out),
            vec![&Call::Revive { roles: vec![] }, &Call::Reconcile { tasks: vec![] }]
        );
        assert!(out.iter().all(|c| c.framework_id == fid("fw")));
        assert_eq!(s.framework_id(), Some(&fid("fw")));
        assert_eq!(s.framework_info().id, Some(fid("fw")));
        assert!(s.is_subscribed());
    }

    #[test]
    fn implicit_reconciliation_can_be_turned_off() {
        let mut s = session().with_implicit_reconciliation(false);
        let out = s.handle(Timestamp::ZERO, subscribed("fw"));
        assert_eq!(calls_of(&out), vec![&Call::Revive { roles: vec![] }]);
    }

    #[test]
    fn updates_with_uuid_are_acknowledged_after_the_callback() {
        let mut s = session();
        s.handle(Timestamp::ZERO, subscribed("fw"));
        let out = s.handle(Timestamp::ZERO, update(Some(42)));
        assert_eq!(
            s.scheduler().log.last().map(String::as_str),
            Some("update t1 TASK_RUNNING")
        );
        assert_eq!(
            calls_of(&out),
            vec![&Call::Acknowledge {
                agent_id: AgentId::new("a1").expect("id"),
                task_id: TaskId::new("t1").expect("id"),
                uuid: StatusUuid::from_u128(42),
            }]
        );
        assert!(s.handle(Timestamp::ZERO, update(None)).is_empty(), "no uuid, no ack");
    }

    #[test]
    fn auto_mode_does_not_double_acknowledge() {
        let mut s = session();
        s.scheduler_mut().ack_explicitly = true;
        s.handle(Timestamp::ZERO, subscribed("fw"));
        let out = s.handle(Timestamp::ZERO, update(Some(1)));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn explicit_mode_leaves_acknowledgement_to_the_scheduler() {
        let mut s = session().with_ack_mode(AckMode::Explicit);
        s.handle(Timestamp::ZERO, subscribed("fw"));
        assert!(s.handle(Timestamp::ZERO, update(Some(1))).is_empty());
        s.scheduler_mut().ack_explicitly = true;
        let out = s.handle(Timestamp::ZERO, update(Some(2)));
        assert!(matches!(
            calls_of(&out)[..],
            [Call::Acknowledge { uuid, .. }] if *uuid == StatusUuid::from_u128(2)
        ));
    }

    #[test]
    fn events_before_subscription_are_ignored() {
        let mut s = session();
        assert!(s.handle(Timestamp::ZERO, Event::Offers(vec![offer("o1")])).is_empty());
        assert!(s.handle(Timestamp::ZERO, update(Some(1))).is_empty());
        assert_eq!(s.ignored_events(), 2);
        assert!(s.scheduler().log.is_empty());
    }

    #[test]
    fn offers_rescind_failure_reach_the_scheduler() {
        let mut s = session();
        s.handle(Timestamp::ZERO, subscribed("fw"));
        let out = s.handle(Timestamp::ZERO, Event::Offers(vec![offer("o1"), offer("o2")]));
        assert!(matches!(calls_of(&out)[..], [Call::Decline { offer_ids, .. }] if offer_ids.len() == 2));
        s.handle(Timestamp::ZERO, Event::Rescind(OfferId::new("o3").expect("id")));
        s.handle(
            Timestamp::ZERO,
            Event::Failure {
                agent_id: AgentId::new("a9").expect("id"),
            },
        );
        assert!(s.handle(Timestamp::ZERO, Event::Heartbeat).is_empty());
        assert_eq!(
            s.scheduler().log[1..],
            ["offers 2", "rescinded o3", "failure a9"].map(str::to_owned)
        );
    }

    #[test]
    fn resubscription_keeps_the_framework_id_and_reconciles_again() {
        let mut s = session();
        s.handle(Timestamp::ZERO, subscribed("fw"));
        assert!(s.disconnected());
        assert!(!s.disconnected(), "only one disconnected callback per subscription");
        assert!(!s.is_subscribed());
        assert_eq!(s.framework_info().id, Some(fid("fw")), "re-subscribe with the same id");
        let out = s.handle(Timestamp::ZERO, subscribed("fw"));
        assert_eq!(calls_of(&out).last(), Some(&&Call::Reconcile { tasks: vec![] }));
        assert_eq!(
            s.scheduler()
                .log
                .iter()
                .filter(|l| l.as_str() == "disconnected")
                .count(),
            1
        );
    }

    #[test]
    fn exit_is_remembered_and_calls_still_flushed() {
        let mut s = session();
        s.scheduler_mut().exit_on_update = true;
        s.handle(Timestamp::ZERO, subscribed("fw"));
        assert!(!s.exit_requested());
        let out = s.handle(Timestamp::ZERO, update(Some(5)));
        assert!(s.exit_requested());
        assert_eq!(out.len(), 1, "the acknowledgement is still sent");
    }

    #[test]
    fn teardown_goes_after_the_acknowledgement() {
        #[derive(Debug)]
        struct Quitter;
        impl Scheduler for Quitter {
            fn offers(&mut self, _calls: &mut Calls, _offers: Vec<Offer>) {}
            fn status_update(&mut self, calls: &mut Calls, _status: &TaskStatus) {
                calls.teardown();
                calls.kill(TaskId::new("t2").expect("id"), None);
            }
        }
        let mut s = Session::new(Quitter, FrameworkInfo::new("q"));
        s.handle(Timestamp::ZERO, subscribed("fw"));
        let out = s.handle(Timestamp::ZERO, update(Some(1)));
        let names: Vec<_> = out.iter().map(|c| c.call.name()).collect();
        assert_eq!(names, ["KILL", "ACKNOWLEDGE", "TEARDOWN"]);
        assert!(s.exit_requested());
    }

    #[test]
    fn error_is_fatal_and_ends_the_subscription() {
        let mut s = session();
        s.handle(Timestamp::ZERO, subscribed("fw"));
        s.handle(Timestamp::ZERO, Event::Error("framework removed".to_owned()));
        assert_eq!(s.fatal_error(), Some("framework removed"));
        assert!(!s.is_subscribed());
        assert_eq!(
            s.scheduler().log.last().map(String::as_str),
            Some("error framework removed")
        );
    }

    #[test]
    fn error_before_subscription_reaches_the_scheduler() {
        let mut s = session();
        assert!(s.handle(Timestamp::ZERO, Event::Error("bad".to_owned())).is_empty());
        assert_eq!(s.fatal_error(), Some("bad"));
    }

    #[test]
    fn heartbeat_deadline_follows_the_last_event() {
        let mut s = session();
        assert_eq!(s.heartbeat_deadline(), None);
        s.handle(Timestamp::from_secs(10), subscribed("fw"));
        assert_eq!(s.heartbeat_timeout(), Some(Duration::from_secs(75)));
        assert_eq!(s.heartbeat_deadline(), Some(Timestamp::from_secs(85)));
        s.handle(Timestamp::from_secs(20), Event::Heartbeat);
        assert!(!s.heartbeat_expired(Timestamp::from_secs(94)));
        assert!(s.heartbeat_expired(Timestamp::from_secs(95)));
        let s = session().with_missed_heartbeats(0);
        assert_eq!(s.missed_heartbeats, 1);
    }

    #[test]
    fn zero_heartbeat_interval_disables_the_watchdog() {
        let mut s = session();
        s.handle(
            Timestamp::ZERO,
            Event::Subscribed {
                framework_id: fid("fw"),
                heartbeat_interval: Duration::ZERO,
                master_id: String::new(),
            },
        );
        assert_eq!(s.heartbeat_timeout(), None);
        assert!(!s.heartbeat_expired(Timestamp::from_secs(1_000_000)));
    }

    #[test]
    fn update_framework_carries_the_framework_id_and_is_remembered() {
        #[derive(Debug)]
        struct Renamer;
        impl Scheduler for Renamer {
            fn subscribed(&mut self, calls: &mut Calls, _info: &Subscribed) {
                let mut info = FrameworkInfo::new("renamed");
                info.roles = vec!["ads".to_owned()];
                calls.update_framework(info);
            }
            fn offers(&mut self, _calls: &mut Calls, _offers: Vec<Offer>) {}
        }
        let mut s = Session::new(Renamer, FrameworkInfo::new("x")).with_implicit_reconciliation(false);
        let out = s.handle(Timestamp::ZERO, subscribed("fw"));
        let [
            FrameworkCall {
                call: Call::UpdateFramework(info),
                ..
            },
        ] = &out[..]
        else {
            panic!("expected one UPDATE_FRAMEWORK, got {out:?}");
        };
        assert_eq!(info.id, Some(fid("fw")));
        assert_eq!(s.framework_info().roles, vec!["ads".to_owned()]);
        assert_eq!(s.framework_info().id, Some(fid("fw")));
    }

    fn status(task: &str, state: TaskState) -> Event {
        let mut s = TaskStatus::new(TaskId::new(task).expect("id"), state, Timestamp::ZERO);
        s.agent_id = Some(AgentId::new("a1").expect("id"));
        Event::Update(s)
    }

    fn reconciled(out: &[FrameworkCall]) -> Vec<Vec<String>> {
        out.iter()
            .filter_map(|c| match &c.call {
                Call::Reconcile { tasks } => Some(tasks.iter().map(|(t, _)| t.to_string()).collect()),
                _ => None,
            })
            .collect()
    }

    const MIN: Duration = Duration::from_secs(60);

    fn periodic() -> Session<Recorder> {
        session().with_periodic_reconciliation(Some(Reconciliation {
            interval: 10 * MIN,
            retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(40),
        }))
    }

    #[test]
    fn periodic_reconciliation_waits_for_the_interval_and_only_while_subscribed() {
        let mut s = periodic();
        assert_eq!(s.poll_timeout(), None);
        let t0 = Timestamp::from_secs(100);
        s.handle(t0, subscribed("fw"));
        assert_eq!(s.poll_timeout(), Some(t0 + 10 * MIN));
        assert!(s.handle_timeout(t0 + 9 * MIN).is_empty(), "not due yet");
        s.disconnected();
        assert_eq!(s.poll_timeout(), None);
        assert!(s.handle_timeout(t0 + 11 * MIN).is_empty(), "nothing while disconnected");
        // Re-subscribing restarts the schedule.
        let t1 = t0 + 12 * MIN;
        s.handle(t1, subscribed("fw"));
        assert_eq!(s.poll_timeout(), Some(t1 + 10 * MIN));
    }

    #[test]
    fn without_live_tasks_a_round_is_one_implicit_reconciliation() {
        let mut s = periodic();
        s.handle(Timestamp::ZERO, subscribed("fw"));
        let at = Timestamp::ZERO + 10 * MIN;
        let out = s.handle_timeout(at);
        assert_eq!(reconciled(&out), vec![Vec::<String>::new()]);
        assert_eq!(s.reconciliation_rounds(), 1);
        assert_eq!(s.poll_timeout(), Some(at + 10 * MIN));
    }

    #[test]
    fn a_round_asks_explicitly_with_backoff_until_answered_then_implicitly() {
        let mut s = periodic();
        s.handle(Timestamp::ZERO, subscribed("fw"));
        s.handle(Timestamp::ZERO, status("t1", TaskState::Running));
        s.handle(Timestamp::ZERO, status("t2", TaskState::Running));
        s.handle(Timestamp::ZERO, status("t3", TaskState::Running));
        s.handle(Timestamp::ZERO, status("t3", TaskState::Finished));
        let mut at = Timestamp::ZERO + 10 * MIN;
        assert_eq!(
            reconciled(&s.handle_timeout(at)),
            vec![vec!["t1", "t2"]],
            "explicit, live tasks only"
        );
        // No answer: asked again after 10 s, 20 s, 40 s, 40 s (capped).
        for wait in [10, 20, 40, 40] {
            assert_eq!(s.poll_timeout(), Some(at + Duration::from_secs(wait)));
            at += Duration::from_secs(wait);
            assert_eq!(reconciled(&s.handle_timeout(at)), vec![vec!["t1", "t2"]]);
        }
        // t1 is answered: only t2 is asked about.
        s.handle(at, status("t1", TaskState::Running));
        at += Duration::from_secs(40);
        assert_eq!(reconciled(&s.handle_timeout(at)), vec![vec!["t2"]]);
        // The last answer ends the round with an implicit reconciliation.
        s.handle(at, status("t2", TaskState::Lost));
        assert_eq!(s.poll_timeout(), Some(at));
        assert_eq!(reconciled(&s.handle_timeout(at)), vec![Vec::<String>::new()]);
        assert_eq!(s.poll_timeout(), Some(at + 10 * MIN));
        assert_eq!(s.reconciliation_rounds(), 1);
        assert_eq!(s.live_tasks().map(ToString::to_string).collect::<Vec<_>>(), ["t1"]);
    }

    #[test]
    fn launched_tasks_are_reconciled_before_any_update_with_their_agent() {
        #[derive(Debug)]
        struct Launcher;
        impl Scheduler for Launcher {
            fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
                for offer in offers {
                    let task = agora_proto::TaskInfo {
                        name: "t".to_owned(),
                        task_id: TaskId::new("launched").expect("id"),
                        agent_id: offer.agent_id.clone(),
                        resources: Resources::new(),
                        command: agora_proto::CommandInfo::shell("true"),
                        kill_grace_period: None,
                    };
                    calls.accept(vec![offer.id], vec![Operation::Launch(vec![task])], Filters::default());
                }
            }
        }
        let mut s = Session::new(Launcher, FrameworkInfo::new("l"));
        s.handle(Timestamp::ZERO, subscribed("fw"));
        s.handle(Timestamp::ZERO, Event::Offers(vec![offer("o1")]));
        let out = s.handle_timeout(Timestamp::ZERO + Reconciliation::DEFAULT.interval);
        let [
            FrameworkCall {
                call: Call::Reconcile { tasks },
                ..
            },
        ] = &out[..]
        else {
            panic!("expected one RECONCILE, got {out:?}");
        };
        assert_eq!(
            tasks,
            &[(
                TaskId::new("launched").expect("id"),
                Some(AgentId::new("a1").expect("id"))
            )]
        );
    }

    #[test]
    fn periodic_reconciliation_can_be_turned_off() {
        let mut s = session().with_periodic_reconciliation(None);
        s.handle(Timestamp::ZERO, subscribed("fw"));
        assert_eq!(s.poll_timeout(), None);
        assert!(s.handle_timeout(Timestamp::from_secs(1_000_000)).is_empty());
    }
}
