//! Frameworks as the engine drives them: an SDK [`Session`] around a
//! [`Scheduler`], plus what the engine needs to know of each callback (how
//! long the decision took in the model) and, for job-queue schedulers, how
//! to submit jobs and read what happened to them.

use crate::scheduler::{Job, JobQueueScheduler, JobRecord};
use agora_proto::{Call, Event, FrameworkCall, FrameworkInfo, Operation, Timestamp};
use agora_sdk::{Calls, Scheduler, Session};
use std::any::Any;
use std::fmt;
use std::time::Duration;

/// What one callback produced.
#[derive(Debug, Default)]
pub struct Decision {
    /// The calls to send to the master, in order.
    pub calls: Vec<FrameworkCall>,
    /// Modelled decision time.
    pub time: Duration,
}

/// A framework the engine can drive.
pub trait SimFramework: fmt::Debug {
    /// What it subscribes with.
    fn info(&self) -> FrameworkInfo;
    /// Runs the callback for `event` at `now`.
    fn handle(&mut self, now: Timestamp, event: Event) -> Decision;
    /// A job arrives (job-queue frameworks only; others ignore it).
    fn submit(&mut self, now: Timestamp, job: Job) -> Decision {
        let _ = (now, job);
        Decision::default()
    }
    /// What happened to its jobs.
    fn job_records(&self) -> &[JobRecord] {
        &[]
    }
    /// For tests that look at a specific scheduler after a run.
    fn as_any(&self) -> &dyn Any;
}

/// A [`JobQueueScheduler`] in a session; its decision time is the
/// scheduler's own serial model (`t_job` per job attempted, `t_task` per
/// task placed).
#[derive(Debug)]
pub struct JobFramework {
    session: Session<JobQueueScheduler>,
}

impl JobFramework {
    /// `scheduler` subscribing as `info`.
    pub fn new(scheduler: JobQueueScheduler, info: FrameworkInfo) -> Self {
        Self {
            session: Session::new(scheduler, info),
        }
    }

    /// The scheduler.
    pub const fn scheduler(&self) -> &JobQueueScheduler {
        self.session.scheduler()
    }
}

impl SimFramework for JobFramework {
    fn info(&self) -> FrameworkInfo {
        self.session.framework_info().clone()
    }

    fn handle(&mut self, now: Timestamp, event: Event) -> Decision {
        let offers = matches!(event, Event::Offers(_));
        let calls = self.session.handle(now, event);
        let time = if offers {
            self.session.scheduler().last_decision().0
        } else {
            Duration::ZERO
        };
        Decision { calls, time }
    }

    fn submit(&mut self, now: Timestamp, job: Job) -> Decision {
        let mut calls = Calls::new(now, self.session.framework_id().cloned());
        self.session.scheduler_mut().submit(&mut calls, job);
        let calls = match self.session.framework_id() {
            Some(id) => calls
                .drain()
                .into_iter()
                .map(|call| FrameworkCall {
                    framework_id: id.clone(),
                    call,
                })
                .collect(),
            // Not subscribed yet: the revive is moot, offers come anyway.
            None => Vec::new(),
        };
        Decision {
            calls,
            time: Duration::ZERO,
        }
    }

    fn job_records(&self) -> &[JobRecord] {
        self.session.scheduler().records()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Any SDK scheduler, unchanged (the SDK's `Batch`, say). Its decision
/// time is modelled from what it did: `t_job` per OFFERS callback plus
/// `t_task` per task it launched.
#[derive(Debug)]
pub struct SdkFramework<S> {
    session: Session<S>,
    t_job: Duration,
    t_task: Duration,
}

impl<S: Scheduler> SdkFramework<S> {
    /// `scheduler` subscribing as `info`, with the given decision-time model.
    pub fn new(scheduler: S, info: FrameworkInfo, t_job: Duration, t_task: Duration) -> Self {
        Self {
            session: Session::new(scheduler, info),
            t_job,
            t_task,
        }
    }

    /// The session (and through it the scheduler).
    pub const fn session(&self) -> &Session<S> {
        &self.session
    }
}

/// Tasks launched by a batch of calls.
pub fn tasks_launched(calls: &[FrameworkCall]) -> u32 {
    let n: usize = calls
        .iter()
        .map(|c| match &c.call {
            Call::Accept { operations, .. } => operations
                .iter()
                .map(|op| match op {
                    Operation::Launch(tasks) => tasks.len(),
                    _ => 0,
                })
                .sum(),
            _ => 0,
        })
        .sum();
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<S: Scheduler + fmt::Debug + 'static> SimFramework for SdkFramework<S> {
    fn info(&self) -> FrameworkInfo {
        self.session.framework_info().clone()
    }

    fn handle(&mut self, now: Timestamp, event: Event) -> Decision {
        let offers = matches!(event, Event::Offers(_));
        let calls = self.session.handle(now, event);
        let time = if offers {
            self.t_job + self.t_task * tasks_launched(&calls)
        } else {
            Duration::ZERO
        };
        Decision { calls, time }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
