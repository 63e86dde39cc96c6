//! [`Service`]: keep N instances of one task running.

use super::{DEFAULT_DECLINE_REFUSE, DEFAULT_IDLE_REFUSE, FrameworkError, TaskTemplate, launch_waiting};
use crate::calls::Calls;
use crate::matching::Strategy;
use crate::scheduler::{Scheduler, Subscribed};
use agora_proto::{AgentId, Filters, Offer, TaskId, TaskState, TaskStatus};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a [`Service`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// How many instances to keep running.
    pub instances: usize,
    /// What each instance runs and needs; task ids are
    /// `NAME-INSTANCE-GENERATION`, the generation growing with each relaunch.
    pub template: TaskTemplate,
    /// How instances are spread over the offers of one round (spread by
    /// default, so that one agent's loss takes few instances).
    pub strategy: Strategy,
    /// Decline filter while instances wait for resources.
    pub decline_refuse: Duration,
    /// Decline filter while every instance is launched.
    pub idle_refuse: Duration,
}

impl ServiceConfig {
    /// `instances` copies of `template`, spread, with the default filters.
    pub const fn new(instances: usize, template: TaskTemplate) -> Self {
        Self {
            instances,
            template,
            strategy: Strategy::Spread,
            decline_refuse: DEFAULT_DECLINE_REFUSE,
            idle_refuse: DEFAULT_IDLE_REFUSE,
        }
    }
}

/// One instance of a [`Service`], as last reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its current task, `None` while it waits to be (re)launched.
    pub task_id: Option<TaskId>,
    /// The state of that task (`Staging` from launch until the first update).
    pub state: Option<TaskState>,
    /// Where the task runs.
    pub agent_id: Option<AgentId>,
    /// How many tasks this instance has had (1 after the first launch).
    pub generation: u64,
}

/// Keeps a number of instances of one task running.
///
/// An instance whose task reaches a terminal state (finished, failed, killed,
/// lost, …) is relaunched under a fresh task id as soon as an offer fits.
/// Offers are suppressed while every instance is launched and revived when
/// one needs relaunching. A service never exits by itself.
#[derive(Debug)]
pub struct Service {
    config: ServiceConfig,
    instances: Vec<Instance>,
    by_task: BTreeMap<TaskId, usize>,
    suppressed: bool,
    relaunches: u64,
}

impl Service {
    /// A service as configured; fails if the task name makes invalid task ids.
    pub fn new(config: ServiceConfig) -> Result<Self, FrameworkError> {
        // Check the longest id early, not at the first relaunch.
        config.template.task_id(&format!("{}-{}", config.instances, u64::MAX))?;
        let instances = vec![
            Instance {
                task_id: None,
                state: None,
                agent_id: None,
                generation: 0,
            };
            config.instances
        ];
        Ok(Self {
            config,
            instances,
            by_task: BTreeMap::new(),
            suppressed: false,
            relaunches: 0,
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The instances, in order.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// How many instances report TASK_RUNNING.
    pub fn running(&self) -> usize {
        self.instances
            .iter()
            .filter(|i| i.state == Some(TaskState::Running))
            .count()
    }

    /// How many tasks were relaunched after their predecessor ended.
    pub const fn relaunches(&self) -> u64 {
        self.relaunches
    }

    fn waiting(&self) -> Vec<usize> {
        (0..self.instances.len())
            .filter(|&i| self.instances[i].task_id.is_none())
            .collect()
    }
}

impl Scheduler for Service {
    fn subscribed(&mut self, calls: &mut Calls, _info: &Subscribed) {
        let current: Vec<_> = self
            .instances
            .iter()
            .filter_map(|i| Some((i.task_id.clone()?, i.agent_id.clone())))
            .collect();
        if !current.is_empty() {
            // See `Batch::subscribed`: an explicit reconciliation also covers
            // launches that never reached the master.
            calls.reconcile(current);
        }
        self.suppressed = false;
    }

    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let waiting = self.waiting();
        if waiting.is_empty() {
            calls.decline(
                offers.into_iter().map(|o| o.id).collect(),
                Filters::refuse(self.config.idle_refuse),
            );
            if !self.suppressed {
                self.suppressed = true;
                calls.suppress(Vec::new());
            }
            return;
        }
        let mut ids = Vec::with_capacity(waiting.len());
        for &slot in &waiting {
            let generation = self.instances[slot].generation;
            match self.config.template.task_id(&format!("{slot}-{generation}")) {
                Ok(id) => ids.push(id),
                // Checked in `new` for the longest id; cannot happen.
                Err(_) => return,
            }
        }
        let launched = launch_waiting(
            calls,
            &offers,
            &self.config.template,
            &ids,
            self.config.strategy,
            self.config.decline_refuse,
            Filters::refuse(self.config.decline_refuse),
        );
        for (i, agent_id) in launched {
            let slot = waiting[i];
            let instance = &mut self.instances[slot];
            instance.task_id = Some(ids[i].clone());
            instance.state = Some(TaskState::Staging);
            instance.agent_id = Some(agent_id);
            instance.generation += 1;
            self.by_task.insert(ids[i].clone(), slot);
        }
        if self.waiting().is_empty() && !self.suppressed {
            self.suppressed = true;
            calls.suppress(Vec::new());
        }
    }

    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        let Some(&slot) = self.by_task.get(&status.task_id) else {
            return;
        };
        let instance = &mut self.instances[slot];
        // Updates about an instance's earlier tasks are history.
        if instance.task_id.as_ref() != Some(&status.task_id) {
            return;
        }
        if status.state.is_terminal() {
            self.by_task.remove(&status.task_id);
            instance.task_id = None;
            instance.state = Some(status.state);
            instance.agent_id = None;
            self.relaunches += 1;
            if self.suppressed {
                self.suppressed = false;
                calls.revive(Vec::new());
            }
        } else {
            instance.state = Some(status.state);
            if status.agent_id.is_some() {
                instance.agent_id.clone_from(&status.agent_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frameworks::testing::{launched, names, offer, subscribed, update};
    use crate::matching::TaskRequest;
    use crate::session::Session;
    use agora_proto::{CommandInfo, Event, FrameworkInfo, Timestamp};

    fn service(n: usize) -> Session<Service> {
        let template = TaskTemplate::new(
            "web",
            CommandInfo::shell("sleep 1000"),
            TaskRequest::new("cpus:0.5;mem:32".parse().expect("resources")).with_ports(1),
        );
        Session::new(
            Service::new(ServiceConfig::new(n, template)).expect("valid"),
            FrameworkInfo::new("svc"),
        )
    }

    fn id(s: &str) -> TaskId {
        TaskId::new(s).expect("id")
    }

    #[test]
    fn spreads_instances_with_ports_then_suppresses() {
        let mut s = service(2);
        s.handle(Timestamp::ZERO, subscribed());
        let out = s.handle(
            Timestamp::ZERO,
            Event::Offers(vec![
                offer("o1", "a1", "cpus:4;mem:1024;ports:[31000-31009]"),
                offer("o2", "a2", "cpus:4;mem:1024;ports:[31000-31009]"),
            ]),
        );
        let tasks = launched(&out);
        assert_eq!(
            tasks
                .iter()
                .map(|t| (t.task_id.as_str(), t.agent_id.as_str()))
                .collect::<Vec<_>>(),
            [("web-0-0", "a1"), ("web-1-0", "a2")]
        );
        assert_eq!(tasks[0].resources.ports().iter().collect::<Vec<_>>(), [(31000, 31000)]);
        assert_eq!(names(&out), ["ACCEPT", "ACCEPT", "SUPPRESS"]);
        assert!(s.scheduler().instances().iter().all(|i| i.generation == 1));
    }

    #[test]
    fn relaunches_ended_instances_with_fresh_ids_and_never_exits() {
        let mut s = service(1);
        s.handle(Timestamp::ZERO, subscribed());
        s.handle(
            Timestamp::ZERO,
            Event::Offers(vec![offer("o1", "a1", "cpus:1;mem:64;ports:[1-5]")]),
        );
        s.handle(Timestamp::ZERO, update(&id("web-0-0"), TaskState::Running, 1));
        assert_eq!(s.scheduler().running(), 1);

        for (generation, end) in [
            TaskState::Failed,
            TaskState::Lost,
            TaskState::Killed,
            TaskState::Finished,
        ]
        .into_iter()
        .enumerate()
        {
            let current = id(&format!("web-0-{generation}"));
            let out = s.handle(Timestamp::ZERO, update(&current, end, 10 + generation as u128));
            assert_eq!(names(&out), ["REVIVE", "ACKNOWLEDGE"], "after {end}");
            assert_eq!(s.scheduler().running(), 0);
            let out = s.handle(
                Timestamp::ZERO,
                Event::Offers(vec![offer("o", "a1", "cpus:1;mem:64;ports:[1-5]")]),
            );
            assert_eq!(
                launched(&out)[0].task_id,
                id(&format!("web-0-{}", generation + 1)),
                "fresh id after {end}"
            );
        }
        assert_eq!(s.scheduler().relaunches(), 4);
        assert!(!s.exit_requested());
    }

    #[test]
    fn stale_and_unknown_updates_are_ignored() {
        let mut s = service(1);
        s.handle(Timestamp::ZERO, subscribed());
        s.handle(
            Timestamp::ZERO,
            Event::Offers(vec![offer("o1", "a1", "cpus:1;mem:64;ports:[1-5]")]),
        );
        s.handle(Timestamp::ZERO, update(&id("web-0-0"), TaskState::Failed, 1));
        s.handle(
            Timestamp::ZERO,
            Event::Offers(vec![offer("o2", "a1", "cpus:1;mem:64;ports:[1-5]")]),
        );
        // A duplicate of the old task's end must not relaunch the new one.
        s.handle(Timestamp::ZERO, update(&id("web-0-0"), TaskState::Failed, 1));
        s.handle(Timestamp::ZERO, update(&id("nope"), TaskState::Failed, 2));
        assert_eq!(s.scheduler().relaunches(), 1);
        assert_eq!(s.scheduler().instances()[0].task_id, Some(id("web-0-1")));
    }

    #[test]
    fn offers_that_do_not_fit_are_declined_briefly() {
        let mut s = service(1);
        s.handle(Timestamp::ZERO, subscribed());
        let out = s.handle(Timestamp::ZERO, Event::Offers(vec![offer("o1", "a1", "cpus:1;mem:64")]));
        assert_eq!(names(&out), ["DECLINE"], "no ports in the offer");
    }

    #[test]
    fn resubscription_reconciles_current_tasks() {
        let mut s = service(2);
        s.handle(Timestamp::ZERO, subscribed());
        s.handle(
            Timestamp::ZERO,
            Event::Offers(vec![offer("o1", "a1", "cpus:0.5;mem:64;ports:[1-5]")]),
        );
        s.disconnected();
        let out = s.handle(Timestamp::ZERO, subscribed());
        assert_eq!(names(&out), ["RECONCILE", "RECONCILE"]);
        assert!(matches!(
            &out[0].call,
            agora_proto::Call::Reconcile { tasks } if tasks == &[(id("web-0-0"), Some(AgentId::new("a1").expect("id")))]
        ));
    }
}
