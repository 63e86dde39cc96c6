//! [`Batch`]: run N copies of one task to completion, then tear down.

use super::{DEFAULT_DECLINE_REFUSE, DEFAULT_IDLE_REFUSE, FrameworkError, TaskTemplate, launch_waiting};
use crate::calls::Calls;
use crate::matching::Strategy;
use crate::scheduler::{Scheduler, Subscribed};
use agora_proto::{AgentId, Filters, Offer, TaskId, TaskState, TaskStatus};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a [`Batch`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// How many tasks to run.
    pub tasks: usize,
    /// What each task runs and needs; task ids are `NAME-0` … `NAME-(N-1)`.
    pub template: TaskTemplate,
    /// How tasks are spread over the offers of one round.
    pub strategy: Strategy,
    /// Decline filter while tasks still wait for resources.
    pub decline_refuse: Duration,
    /// Decline filter once every task is launched.
    pub idle_refuse: Duration,
}

impl BatchConfig {
    /// `tasks` copies of `template`, first-fit, with the default filters.
    pub const fn new(tasks: usize, template: TaskTemplate) -> Self {
        Self {
            tasks,
            template,
            strategy: Strategy::FirstFit,
            decline_refuse: DEFAULT_DECLINE_REFUSE,
            idle_refuse: DEFAULT_IDLE_REFUSE,
        }
    }
}

#[derive(Debug)]
struct BatchTask {
    id: TaskId,
    launched: bool,
    agent_id: Option<AgentId>,
    state: Option<TaskState>,
}

impl BatchTask {
    fn is_terminal(&self) -> bool {
        self.state.is_some_and(TaskState::is_terminal)
    }
}

/// Runs a fixed number of identical tasks once each.
///
/// Launches tasks as offers arrive and declines the rest with a short filter;
/// once every task is launched it suppresses offers. A task that ends, however
/// it ends, is not relaunched. When every task has reached a terminal state
/// the framework tears itself down and asks the driver to exit; the final
/// states stay readable through [`final_states`](Self::final_states).
#[derive(Debug)]
pub struct Batch {
    config: BatchConfig,
    tasks: Vec<BatchTask>,
    index: BTreeMap<TaskId, usize>,
    next_launch: usize,
    suppressed: bool,
    done: bool,
}

impl Batch {
    /// A batch as configured; fails if the task name makes invalid task ids.
    pub fn new(config: BatchConfig) -> Result<Self, FrameworkError> {
        let tasks = (0..config.tasks)
            .map(|i| {
                Ok(BatchTask {
                    id: config.template.task_id(&i.to_string())?,
                    launched: false,
                    agent_id: None,
                    state: None,
                })
            })
            .collect::<Result<Vec<_>, FrameworkError>>()?;
        let index = tasks.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
        Ok(Self {
            config,
            tasks,
            index,
            next_launch: 0,
            suppressed: false,
            done: false,
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Every task with its latest known state (`None` until the first update).
    pub fn states(&self) -> impl Iterator<Item = (&TaskId, Option<TaskState>)> {
        self.tasks.iter().map(|t| (&t.id, t.state))
    }

    /// The tasks that reached a terminal state, with that state.
    pub fn final_states(&self) -> BTreeMap<TaskId, TaskState> {
        self.tasks
            .iter()
            .filter_map(|t| t.state.filter(|s| s.is_terminal()).map(|s| (t.id.clone(), s)))
            .collect()
    }

    /// How many tasks were launched so far.
    pub const fn launched(&self) -> usize {
        self.next_launch
    }

    /// Whether every task reached a terminal state.
    pub fn is_complete(&self) -> bool {
        self.tasks.iter().all(BatchTask::is_terminal)
    }

    /// Whether every task reached TASK_FINISHED.
    pub fn all_finished(&self) -> bool {
        self.tasks.iter().all(|t| t.state == Some(TaskState::Finished))
    }

    fn finish_if_complete(&mut self, calls: &mut Calls) {
        if !self.done && self.is_complete() {
            self.done = true;
            calls.teardown();
        }
    }
}

impl Scheduler for Batch {
    fn subscribed(&mut self, calls: &mut Calls, _info: &Subscribed) {
        // A fresh subscription starts with offers flowing again.
        self.suppressed = false;
        // Ask explicitly about tasks launched before a disconnection: an
        // ACCEPT lost on the way has no task for implicit reconciliation to
        // report, while an explicit one is answered (TASK_LOST) either way.
        let unsettled: Vec<_> = self
            .tasks
            .iter()
            .filter(|t| t.launched && !t.is_terminal())
            .map(|t| (t.id.clone(), t.agent_id.clone()))
            .collect();
        if !unsettled.is_empty() {
            calls.reconcile(unsettled);
        }
        self.finish_if_complete(calls);
    }

    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let waiting: Vec<TaskId> = self.tasks[self.next_launch..].iter().map(|t| t.id.clone()).collect();
        if waiting.is_empty() || self.done {
            calls.decline(
                offers.into_iter().map(|o| o.id).collect(),
                Filters::refuse(self.config.idle_refuse),
            );
            return;
        }
        let launched = launch_waiting(
            calls,
            &offers,
            &self.config.template,
            &waiting,
            self.config.strategy,
            self.config.decline_refuse,
            Filters::refuse(self.config.decline_refuse),
        );
        // `place` fills requests in order, but may skip one that fits
        // nowhere; identical requests make that all-or-nothing, so the
        // launched ones are a prefix of `waiting`.
        for (i, agent_id) in launched {
            let task = &mut self.tasks[self.next_launch + i];
            task.launched = true;
            task.agent_id = Some(agent_id);
            task.state = Some(TaskState::Staging);
        }
        self.next_launch = self.tasks.iter().take_while(|t| t.launched).count();
        if self.next_launch == self.tasks.len() && !self.suppressed {
            self.suppressed = true;
            calls.suppress(Vec::new());
        }
    }

    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        let Some(&i) = self.index.get(&status.task_id) else {
            return;
        };
        let task = &mut self.tasks[i];
        if task.is_terminal() {
            return;
        }
        task.state = Some(status.state);
        if status.agent_id.is_some() {
            task.agent_id.clone_from(&status.agent_id);
        }
        self.finish_if_complete(calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frameworks::testing::{launched, names, offer, subscribed, update};
    use crate::matching::TaskRequest;
    use crate::session::Session;
    use agora_proto::{Call, CommandInfo, FrameworkInfo, Timestamp};

    fn batch(n: usize) -> Session<Batch> {
        let template = TaskTemplate::new(
            "job",
            CommandInfo::exec("true", Vec::<String>::new()),
            TaskRequest::new("cpus:1;mem:32".parse().expect("resources")),
        );
        let batch = Batch::new(BatchConfig::new(n, template)).expect("valid");
        Session::new(batch, FrameworkInfo::new("batch"))
    }

    fn id(s: &str) -> TaskId {
        TaskId::new(s).expect("id")
    }

    #[test]
    fn launches_as_offers_arrive_and_declines_the_rest() {
        let mut s = batch(3);
        s.handle(Timestamp::ZERO, subscribed());
        let out = s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![
                offer("o1", "a1", "cpus:2;mem:64"),
                offer("o2", "a2", "cpus:0.5;mem:64"),
            ]),
        );
        let tasks = launched(&out);
        assert_eq!(
            tasks.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(),
            ["job-0", "job-1"]
        );
        assert!(
            tasks
                .iter()
                .all(|t| t.resources == "cpus:1;mem:32".parse().expect("resources"))
        );
        assert_eq!(names(&out), ["ACCEPT", "DECLINE"]);
        assert!(matches!(
            &out[1].call,
            Call::Decline { filters, .. } if filters.refuse == DEFAULT_DECLINE_REFUSE
        ));
        assert_eq!(s.scheduler().launched(), 2);

        // The last task goes out with the next offer, then offers are suppressed.
        let out = s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![offer("o3", "a2", "cpus:4;mem:512")]),
        );
        assert_eq!(launched(&out)[0].task_id, id("job-2"));
        assert_eq!(names(&out), ["ACCEPT", "SUPPRESS"]);

        // Offers still in flight are declined for long.
        let out = s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![offer("o4", "a2", "cpus:4;mem:512")]),
        );
        assert!(matches!(
            &out[..],
            [c] if matches!(&c.call, Call::Decline { filters, .. } if filters.refuse == DEFAULT_IDLE_REFUSE)
        ));
    }

    #[test]
    fn tears_down_and_exits_when_every_task_ended_without_relaunching() {
        let mut s = batch(2);
        s.handle(Timestamp::ZERO, subscribed());
        s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![offer("o1", "a1", "cpus:2;mem:64")]),
        );
        let out = s.handle(Timestamp::ZERO, update(&id("job-0"), TaskState::Running, 1));
        assert_eq!(names(&out), ["ACKNOWLEDGE"]);
        s.handle(Timestamp::ZERO, update(&id("job-0"), TaskState::Finished, 2));
        let out = s.handle(Timestamp::ZERO, update(&id("job-1"), TaskState::Failed, 3));
        assert_eq!(names(&out), ["ACKNOWLEDGE", "TEARDOWN"]);
        assert!(s.exit_requested());
        let b = s.scheduler();
        assert!(b.is_complete());
        assert!(!b.all_finished());
        assert_eq!(
            b.final_states().into_iter().collect::<Vec<_>>(),
            vec![(id("job-0"), TaskState::Finished), (id("job-1"), TaskState::Failed)]
        );
        // A failed task is not relaunched.
        let out = s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![offer("o2", "a1", "cpus:2;mem:64")]),
        );
        assert!(launched(&out).is_empty());
        // A late duplicate does not change the final state.
        s.handle(Timestamp::ZERO, update(&id("job-0"), TaskState::Failed, 4));
        assert_eq!(s.scheduler().final_states()[&id("job-0")], TaskState::Finished);
    }

    #[test]
    fn all_finished_and_unknown_tasks_are_ignored() {
        let mut s = batch(1);
        s.handle(Timestamp::ZERO, subscribed());
        s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![offer("o1", "a1", "cpus:2;mem:64")]),
        );
        s.handle(Timestamp::ZERO, update(&id("other-7"), TaskState::Finished, 1));
        assert!(!s.scheduler().is_complete());
        s.handle(Timestamp::ZERO, update(&id("job-0"), TaskState::Finished, 2));
        assert!(s.scheduler().all_finished());
        assert!(s.exit_requested());
    }

    #[test]
    fn empty_batch_tears_down_at_once_and_resubscription_reconciles_launched_tasks() {
        let mut s = batch(0);
        let out = s.handle(Timestamp::ZERO, subscribed());
        assert_eq!(names(&out), ["RECONCILE", "TEARDOWN"]);
        assert!(s.exit_requested());

        let mut s = batch(2);
        s.handle(Timestamp::ZERO, subscribed());
        s.handle(
            Timestamp::ZERO,
            agora_proto::Event::Offers(vec![offer("o1", "a1", "cpus:1;mem:64")]),
        );
        s.disconnected();
        let out = s.handle(Timestamp::ZERO, subscribed());
        let reconciled: Vec<_> = out
            .iter()
            .filter_map(|c| match &c.call {
                Call::Reconcile { tasks } => Some(tasks.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            reconciled,
            vec![vec![(id("job-0"), Some(AgentId::new("a1").expect("id")))], vec![]]
        );
    }

    #[test]
    fn invalid_name_is_rejected() {
        let template = TaskTemplate::new(
            "a/b",
            CommandInfo::shell("true"),
            TaskRequest::new("cpus:1".parse().expect("resources")),
        );
        let err = Batch::new(BatchConfig::new(1, template)).expect_err("slash");
        assert!(err.to_string().contains("\"a/b-0\""), "{err}");
    }
}
