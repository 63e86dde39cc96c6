//! [`Calls`]: the queue through which a scheduler answers the master.

use agora_proto::{
    AgentId, Call, Filters, FrameworkId, FrameworkInfo, OfferId, Operation, StatusUuid, TaskId, TaskInfo, TaskStatus,
    Timestamp,
};

/// The calls a scheduler makes during one callback, in order, plus the
/// current time and whether it asked to stop.
///
/// The session hands one to every callback and sends what was queued, in
/// queue order, once the callback returns. Nothing is sent while the callback
/// runs, so a scheduler never waits on the network.
#[derive(Debug)]
pub struct Calls {
    now: Timestamp,
    framework_id: Option<FrameworkId>,
    queue: Vec<Call>,
    exit: bool,
}

impl Calls {
    /// An empty queue at time `now`, for a framework known as `framework_id`
    /// (if subscribed). Sessions build these; tests of a scheduler may too.
    pub fn new(now: Timestamp, framework_id: Option<FrameworkId>) -> Self {
        Self {
            now,
            framework_id,
            queue: Vec::new(),
            exit: false,
        }
    }

    /// The current time: wall-clock under the driver, virtual in a
    /// simulator. Schedulers take time from here, never from a clock.
    pub const fn now(&self) -> Timestamp {
        self.now
    }

    /// The framework's id, once subscribed.
    pub const fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    /// Queues any call.
    pub fn call(&mut self, call: Call) {
        self.queue.push(call);
    }

    /// Uses `offer_ids` (all on one agent) for `operations`; whatever the
    /// operations leave unused is declined with `filters`.
    pub fn accept(&mut self, offer_ids: Vec<OfferId>, operations: Vec<Operation>, filters: Filters) {
        self.call(Call::Accept {
            offer_ids,
            operations,
            filters,
        });
    }

    /// Launches `tasks` on the offers' agent, declining the rest with the
    /// default filters.
    pub fn launch(&mut self, offer_ids: Vec<OfferId>, tasks: Vec<TaskInfo>) {
        self.launch_with_filters(offer_ids, tasks, Filters::default());
    }

    /// Like [`launch`](Self::launch), declining the rest with `filters`.
    pub fn launch_with_filters(&mut self, offer_ids: Vec<OfferId>, tasks: Vec<TaskInfo>, filters: Filters) {
        self.accept(offer_ids, vec![Operation::Launch(tasks)], filters);
    }

    /// Gives offers back; their resources are not re-offered to this
    /// framework on those agents for `filters.refuse`.
    pub fn decline(&mut self, offer_ids: Vec<OfferId>, filters: Filters) {
        if !offer_ids.is_empty() {
            self.call(Call::Decline { offer_ids, filters });
        }
    }

    /// Clears decline filters and resumes offers for `roles` (all when empty).
    pub fn revive(&mut self, roles: Vec<String>) {
        self.call(Call::Revive { roles });
    }

    /// Stops offers for `roles` (all when empty); updates keep coming.
    pub fn suppress(&mut self, roles: Vec<String>) {
        self.call(Call::Suppress { roles });
    }

    /// Kills a task.
    pub fn kill(&mut self, task_id: TaskId, agent_id: Option<AgentId>) {
        self.call(Call::Kill { task_id, agent_id });
    }

    /// Acknowledges `status`. Returns `false` (and queues nothing) when the
    /// update needs no acknowledgement: it carries no uuid, or no agent to
    /// send the acknowledgement to.
    pub fn acknowledge(&mut self, status: &TaskStatus) -> bool {
        let (Some(uuid), Some(agent_id)) = (status.uuid, status.agent_id.clone()) else {
            return false;
        };
        if !self.has_acknowledged(uuid) {
            self.call(Call::Acknowledge {
                agent_id,
                task_id: status.task_id.clone(),
                uuid,
            });
        }
        true
    }

    /// Asks for the latest state of `tasks`; an empty list asks for every
    /// task the master knows of (implicit reconciliation).
    pub fn reconcile(&mut self, tasks: Vec<(TaskId, Option<AgentId>)>) {
        self.call(Call::Reconcile { tasks });
    }

    /// Unregisters the framework: the master kills its tasks and forgets it.
    /// Also asks the driver to stop, since there is nothing left to drive.
    pub fn teardown(&mut self) {
        self.call(Call::Teardown);
        self.exit = true;
    }

    /// Changes the framework's description (roles, capabilities, …) without
    /// re-subscribing.
    pub fn update_framework(&mut self, info: FrameworkInfo) {
        self.call(Call::UpdateFramework(info));
    }

    /// Asks the driver to stop once the queued calls are sent. The framework
    /// stays registered (its tasks survive for its failover timeout); call
    /// [`teardown`](Self::teardown) to unregister it.
    pub fn exit(&mut self) {
        self.exit = true;
    }

    /// Whether [`exit`](Self::exit) or [`teardown`](Self::teardown) was called.
    pub const fn exit_requested(&self) -> bool {
        self.exit
    }

    /// The calls queued so far.
    pub fn pending(&self) -> &[Call] {
        &self.queue
    }

    /// Takes the queued calls out, leaving the queue empty.
    pub fn drain(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.queue)
    }

    pub(crate) fn has_acknowledged(&self, uuid: StatusUuid) -> bool {
        self.queue
            .iter()
            .any(|c| matches!(c, Call::Acknowledge { uuid: u, .. } if *u == uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::TaskState;

    fn status(uuid: Option<u128>, agent: Option<&str>) -> TaskStatus {
        let mut s = TaskStatus::new(TaskId::new("t").expect("id"), TaskState::Running, Timestamp::ZERO);
        s.uuid = uuid.map(StatusUuid::from_u128);
        s.agent_id = agent.map(|a| AgentId::new(a).expect("id"));
        s
    }

    #[test]
    fn acknowledge_needs_uuid_and_agent_and_is_idempotent() {
        let mut calls = Calls::new(Timestamp::from_secs(3), None);
        assert_eq!(calls.now(), Timestamp::from_secs(3));
        assert!(!calls.acknowledge(&status(None, Some("a"))));
        assert!(!calls.acknowledge(&status(Some(1), None)));
        assert!(calls.pending().is_empty());
        assert!(calls.acknowledge(&status(Some(1), Some("a"))));
        assert!(calls.acknowledge(&status(Some(1), Some("a"))));
        assert_eq!(calls.pending().len(), 1);
        assert!(calls.has_acknowledged(StatusUuid::from_u128(1)));
    }

    #[test]
    fn empty_decline_is_not_queued_and_teardown_exits() {
        let mut calls = Calls::new(Timestamp::ZERO, None);
        calls.decline(vec![], Filters::default());
        assert!(calls.pending().is_empty());
        assert!(!calls.exit_requested());
        calls.teardown();
        assert!(calls.exit_requested());
        assert_eq!(calls.drain(), vec![Call::Teardown]);
        assert!(calls.pending().is_empty());
    }

    #[test]
    fn launch_is_an_accept_with_one_launch_operation() {
        let mut calls = Calls::new(Timestamp::ZERO, None);
        let offer = OfferId::new("o").expect("id");
        calls.launch(vec![offer.clone()], vec![]);
        assert_eq!(
            calls.pending(),
            &[Call::Accept {
                offer_ids: vec![offer],
                operations: vec![Operation::Launch(vec![])],
                filters: Filters::default(),
            }]
        );
    }
}
