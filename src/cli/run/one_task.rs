//! [`OneTask`]: the scheduler behind `agora run`. It launches one task on the
//! first offer that holds it, then suppresses offers, and reports what
//! happens to the command over a channel. Pure apart from that channel: the
//! SDK's driver runs it, and tests drive it through a `Session`.

use agora_proto::{Filters, FrameworkId, Offer, TaskId, TaskInfo, TaskStatus};
use agora_sdk::{Calls, Scheduler, Subscribed, TaskRequest};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Decline filter while the task waits for an offer that holds it: short,
/// so a freed agent is offered again soon.
const WAITING_REFUSE: Duration = Duration::from_secs(1);
/// Decline filter once the task is launched (offers are suppressed too).
const LAUNCHED_REFUSE: Duration = Duration::from_secs(3600);

/// What the scheduler tells the command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Report {
    /// Subscribed with this framework id.
    Subscribed(FrameworkId),
    /// Offers arrived and none could hold the task; the largest offer.
    NoFit(String),
    /// An update of the task.
    Status(TaskStatus),
    /// The master ended the framework.
    Error(String),
}

/// Launches one task and reports its updates.
#[derive(Debug)]
pub(crate) struct OneTask {
    template: TaskInfo,
    request: TaskRequest,
    launched: bool,
    suppressed: bool,
    told_no_fit: bool,
    reports: UnboundedSender<Report>,
}

impl OneTask {
    /// `template`'s agent id and resources are filled in from the offer it
    /// is launched with.
    pub(crate) fn new(template: TaskInfo, request: TaskRequest, reports: UnboundedSender<Report>) -> Self {
        Self {
            template,
            request,
            launched: false,
            suppressed: false,
            told_no_fit: false,
            reports,
        }
    }

    fn task_id(&self) -> &TaskId {
        &self.template.task_id
    }

    fn report(&self, report: Report) {
        // The command stopped listening only when it is exiting anyway.
        let _ = self.reports.send(report);
    }
}

impl Scheduler for OneTask {
    fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
        self.suppressed = false;
        if self.launched {
            // An ACCEPT lost with the connection leaves no task for implicit
            // reconciliation to report; an explicit question is answered.
            calls.reconcile(vec![(self.task_id().clone(), Some(self.template.agent_id.clone()))]);
        }
        self.report(Report::Subscribed(info.framework_id.clone()));
    }

    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        let mut unused = Vec::new();
        let mut largest: Option<Offer> = None;
        for offer in offers {
            if !self.launched
                && let Some(resources) = self.request.allocate(&offer.resources)
            {
                self.launched = true;
                self.template.agent_id = offer.agent_id.clone();
                self.template.resources = resources;
                calls.launch_with_filters(
                    vec![offer.id],
                    vec![self.template.clone()],
                    Filters::refuse(LAUNCHED_REFUSE),
                );
                continue;
            }
            if largest
                .as_ref()
                .is_none_or(|l| offer.resources.mem() > l.resources.mem())
            {
                largest = Some(offer.clone());
            }
            unused.push(offer.id);
        }
        let refuse = if self.launched { LAUNCHED_REFUSE } else { WAITING_REFUSE };
        calls.decline(unused, Filters::refuse(refuse));
        if self.launched && !self.suppressed {
            self.suppressed = true;
            calls.suppress(Vec::new());
        }
        if !self.launched
            && !self.told_no_fit
            && let Some(largest) = largest
        {
            self.told_no_fit = true;
            self.report(Report::NoFit(largest.resources.to_string()));
        }
    }

    fn status_update(&mut self, _calls: &mut Calls, status: &TaskStatus) {
        if &status.task_id == self.task_id() {
            self.report(Report::Status(status.clone()));
        }
    }

    fn error(&mut self, _calls: &mut Calls, message: &str) {
        self.report(Report::Error(message.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{
        AgentId, Call, CommandInfo, Event, FrameworkInfo, OfferId, Operation, Resources, StatusUuid, TaskState,
        Timestamp,
    };
    use agora_sdk::Session;
    use tokio::sync::mpsc;

    fn offer(id: &str, spec: &str) -> Offer {
        Offer {
            id: OfferId::new(id).expect("id"),
            framework_id: FrameworkId::new("fw").expect("id"),
            agent_id: AgentId::new("a1").expect("id"),
            hostname: "a1".to_owned(),
            resources: spec.parse().expect("resources"),
            attributes: Default::default(),
            role: "*".to_owned(),
        }
    }

    fn session() -> (Session<OneTask>, mpsc::UnboundedReceiver<Report>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let template = TaskInfo {
            name: "hello".to_owned(),
            task_id: TaskId::new("run-1").expect("id"),
            agent_id: AgentId::new("unset").expect("id"),
            resources: Resources::new(),
            command: CommandInfo::shell("echo hello"),
            kill_grace_period: None,
        };
        let request = TaskRequest::new("cpus:0.5;mem:64".parse().expect("resources"));
        let mut session = Session::new(OneTask::new(template, request, tx), FrameworkInfo::new("run"));
        session.handle(
            Timestamp::ZERO,
            Event::Subscribed {
                framework_id: FrameworkId::new("fw").expect("id"),
                heartbeat_interval: Duration::from_secs(15),
                master_id: "m".to_owned(),
            },
        );
        (session, rx)
    }

    #[test]
    fn launches_once_on_the_first_offer_that_fits_then_suppresses() {
        let (mut s, mut rx) = session();
        assert!(matches!(rx.try_recv(), Ok(Report::Subscribed(_))));
        let calls = s.handle(
            Timestamp::ZERO,
            Event::Offers(vec![offer("small", "cpus:0.1;mem:512"), offer("big", "cpus:2;mem:512")]),
        );
        let launched: Vec<_> = calls
            .iter()
            .filter_map(|c| match &c.call {
                Call::Accept {
                    offer_ids, operations, ..
                } => Some((offer_ids.clone(), operations.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(launched.len(), 1);
        assert_eq!(launched[0].0, vec![OfferId::new("big").expect("id")]);
        let Operation::Launch(tasks) = &launched[0].1[0] else {
            panic!("expected a LAUNCH, got {:?}", launched[0].1[0]);
        };
        assert_eq!(tasks[0].resources, "cpus:0.5;mem:64".parse().expect("resources"));
        assert_eq!(tasks[0].agent_id.as_str(), "a1");
        assert!(calls.iter().any(|c| matches!(&c.call, Call::Decline { .. })));
        assert!(calls.iter().any(|c| matches!(&c.call, Call::Suppress { .. })));

        // Later offers are declined, never launched on.
        let calls = s.handle(Timestamp::ZERO, Event::Offers(vec![offer("again", "cpus:2;mem:512")]));
        assert!(calls.iter().all(|c| !matches!(&c.call, Call::Accept { .. })));
    }

    #[test]
    fn reports_its_own_updates_and_when_nothing_fits() {
        let (mut s, mut rx) = session();
        let _ = rx.try_recv();
        s.handle(Timestamp::ZERO, Event::Offers(vec![offer("o", "cpus:0.1;mem:16")]));
        assert_eq!(rx.try_recv(), Ok(Report::NoFit("cpus:0.1;mem:16".to_owned())));
        s.handle(Timestamp::ZERO, Event::Offers(vec![offer("o2", "cpus:0.1;mem:16")]));
        assert!(rx.try_recv().is_err(), "said once");

        let mut mine = TaskStatus::new(TaskId::new("run-1").expect("id"), TaskState::Failed, Timestamp::ZERO);
        mine.uuid = Some(StatusUuid::from_u128(1));
        mine.agent_id = Some(AgentId::new("a1").expect("id"));
        mine.exit_code = Some(3);
        let other = TaskStatus::new(TaskId::new("other").expect("id"), TaskState::Running, Timestamp::ZERO);
        s.handle(Timestamp::ZERO, Event::Update(other));
        let calls = s.handle(Timestamp::ZERO, Event::Update(mine.clone()));
        assert_eq!(rx.try_recv(), Ok(Report::Status(mine)));
        assert!(calls.iter().any(|c| matches!(&c.call, Call::Acknowledge { .. })));
    }
}
