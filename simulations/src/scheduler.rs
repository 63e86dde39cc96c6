//! [`JobQueueScheduler`]: the framework the Omega model simulates, written as
//! an ordinary SDK [`Scheduler`], so offers, accepts, declines, suppress and
//! revive go through the real `Session` and master.
//!
//! Jobs wait in a FIFO queue. On offers, each job due for an attempt is
//! placed by randomized first fit (offers shuffled once per callback, then
//! first fit); a job not fully placed is tried again after the retry
//! interval and abandoned past the model's limits. Decisions are serial:
//! job k of a callback starts after the modelled decision time of jobs
//! 0..k, which is when its attempt is recorded.

use agora_proto::{CommandInfo, Filters, Offer, OfferId, Resources, Scalar, TaskId, TaskInfo, TaskState, Timestamp};
use agora_sdk::{Calls, Scheduler};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::VecDeque;
use std::time::Duration;

/// A job: `tasks` identical tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// When it was submitted.
    pub submitted: Timestamp,
    /// How many tasks.
    pub tasks: u32,
    /// How long each task runs, seconds.
    pub duration: f64,
    /// Cpus per task.
    pub cpus: f64,
    /// Memory per task, MB.
    pub mem: f64,
}

/// What happened to a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// When it was submitted.
    pub submitted: Timestamp,
    /// When its first scheduling attempt started.
    pub first_attempt: Option<Timestamp>,
    /// When its last task was placed (end of that decision).
    pub fully_scheduled: Option<Timestamp>,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts that placed nothing.
    pub attempts_without_progress: u32,
    /// Tasks.
    pub tasks: u32,
    /// Tasks placed (and not lost since).
    pub placed: u32,
    /// Tasks launched, counting relaunches (numbers task ids).
    pub launched: u32,
    /// Whether it hit a retry limit.
    pub abandoned: bool,
}

/// How the scheduler decides and when it gives up.
#[derive(Clone, Debug, PartialEq)]
pub struct JobQueueConfig {
    /// Decision time per job attempted.
    pub t_job: Duration,
    /// Decision time per task placed.
    pub t_task: Duration,
    /// Delay before a job not fully placed is tried again.
    pub retry_interval: Duration,
    /// Abandon after more attempts than this that placed nothing.
    pub max_attempts_without_progress: u32,
    /// Abandon after more attempts than this.
    pub max_attempts: u32,
    /// Seeds the placement shuffle.
    pub seed: u64,
}

#[derive(Debug)]
struct Pending {
    job: usize,
    remaining: u32,
    next_attempt: Timestamp,
    resources: Resources,
    command: CommandInfo,
    cpus: u64,
    mem: u64,
}

/// A serial job-queue scheduler with randomized first-fit placement.
#[derive(Debug)]
pub struct JobQueueScheduler {
    config: JobQueueConfig,
    rng: StdRng,
    jobs: Vec<Job>,
    records: Vec<JobRecord>,
    pending: VecDeque<Pending>,
    suppressed: bool,
    /// Modelled decision time of the last callback.
    last_decision: Duration,
    /// Jobs attempted and tasks placed in the last callback.
    last_work: (u32, u32),
    tasks_failed: u64,
}

/// How long declined offers stay away when nothing waits (offers are
/// suppressed too; this covers offers already in flight).
const IDLE_REFUSE: Duration = Duration::from_secs(5);

impl JobQueueScheduler {
    /// An idle scheduler.
    pub fn new(config: JobQueueConfig) -> Self {
        Self {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            jobs: Vec::new(),
            records: Vec::new(),
            pending: VecDeque::new(),
            suppressed: false,
            last_decision: Duration::ZERO,
            last_work: (0, 0),
            tasks_failed: 0,
        }
    }

    /// A job arrives; revives offers if they were suppressed.
    pub fn submit(&mut self, calls: &mut Calls, job: Job) {
        let index = self.jobs.len();
        let resources = Resources::new()
            .with_scalar("cpus", None, scalar(job.cpus))
            .with_scalar("mem", None, scalar(job.mem));
        let cpus = resources.cpus().milli();
        let mem = resources.mem().milli();
        self.records.push(JobRecord {
            submitted: job.submitted,
            first_attempt: None,
            fully_scheduled: None,
            attempts: 0,
            attempts_without_progress: 0,
            tasks: job.tasks,
            placed: 0,
            launched: 0,
            abandoned: false,
        });
        if job.tasks == 0 {
            self.records[index].fully_scheduled = Some(job.submitted);
        } else {
            self.pending.push_back(Pending {
                job: index,
                remaining: job.tasks,
                next_attempt: job.submitted,
                resources,
                // The modelled agent (like the simulated containerizer) runs `sleep N` for N seconds.
                command: CommandInfo::shell(format!("sleep {}", job.duration)),
                cpus,
                mem,
            });
        }
        self.jobs.push(job);
        if self.suppressed && !self.pending.is_empty() {
            calls.revive(Vec::new());
            self.suppressed = false;
        }
    }

    /// What happened to every job submitted, in submission order.
    pub fn records(&self) -> &[JobRecord] {
        &self.records
    }

    /// Jobs still waiting to be fully placed.
    pub fn pending_jobs(&self) -> usize {
        self.pending.len()
    }

    /// Tasks that ended other than FINISHED (lost, dropped, killed).
    pub const fn tasks_failed(&self) -> u64 {
        self.tasks_failed
    }

    /// The modelled decision time of the last callback, and the jobs
    /// attempted and tasks placed in it; the engine charges this time.
    pub const fn last_decision(&self) -> (Duration, u32, u32) {
        (self.last_decision, self.last_work.0, self.last_work.1)
    }

    fn task_id(&self, job: usize, placed: u32) -> Option<TaskId> {
        TaskId::new(format!("j{job}-t{placed}")).ok()
    }
}

/// The job index in a task id `j{job}-t{n}`.
fn job_of(task_id: &str) -> Option<usize> {
    task_id.strip_prefix('j')?.split_once("-t")?.0.parse().ok()
}

fn scalar(v: f64) -> Scalar {
    // Validated config values are finite and >= 0; anything else asks for nothing.
    Scalar::from_f64(v).unwrap_or(Scalar::ZERO)
}

impl Scheduler for JobQueueScheduler {
    fn offers(&mut self, calls: &mut Calls, mut offers: Vec<Offer>) {
        let now = calls.now();
        self.last_decision = Duration::ZERO;
        self.last_work = (0, 0);
        offers.shuffle(&mut self.rng);
        let mut free: Vec<(u64, u64)> = offers
            .iter()
            .map(|o| (o.resources.cpus().milli(), o.resources.mem().milli()))
            .collect();
        let mut launches: Vec<Vec<TaskInfo>> = vec![Vec::new(); offers.len()];
        let mut elapsed = Duration::ZERO;
        let mut still_pending = VecDeque::with_capacity(self.pending.len());
        while let Some(mut p) = self.pending.pop_front() {
            if p.next_attempt > now {
                still_pending.push_back(p);
                continue;
            }
            let start = now + elapsed;
            let record = &mut self.records[p.job];
            record.first_attempt.get_or_insert(start);
            record.attempts += 1;
            let mut placed = 0u32;
            // Identical tasks: an offer too small for one is too small for the next.
            for (i, slot) in free.iter_mut().enumerate() {
                while p.remaining > placed && slot.0 >= p.cpus && slot.1 >= p.mem {
                    slot.0 -= p.cpus;
                    slot.1 -= p.mem;
                    let number = self.records[p.job].launched + placed;
                    placed += 1;
                    if let Some(task_id) = self.task_id(p.job, number) {
                        launches[i].push(TaskInfo {
                            name: task_id.as_str().to_owned(),
                            task_id,
                            agent_id: offers[i].agent_id.clone(),
                            resources: p.resources.clone(),
                            command: p.command.clone(),
                            kill_grace_period: None,
                        });
                    }
                }
                if p.remaining == placed {
                    break;
                }
            }
            elapsed += self.config.t_job + self.config.t_task * placed;
            self.last_work.0 += 1;
            self.last_work.1 += placed;
            let record = &mut self.records[p.job];
            record.placed += placed;
            record.launched += placed;
            p.remaining -= placed;
            if placed == 0 {
                record.attempts_without_progress += 1;
            }
            if p.remaining == 0 {
                record.fully_scheduled = Some(now + elapsed);
            } else if record.attempts_without_progress > self.config.max_attempts_without_progress
                || record.attempts > self.config.max_attempts
            {
                record.abandoned = true;
            } else {
                p.next_attempt = now + elapsed + self.config.retry_interval;
                still_pending.push_back(p);
            }
        }
        self.pending = still_pending;
        self.last_decision = elapsed;

        let refuse = if self.pending.is_empty() {
            IDLE_REFUSE
        } else {
            self.config.retry_interval
        };
        let mut unused: Vec<OfferId> = Vec::new();
        for (offer, tasks) in offers.into_iter().zip(launches) {
            if tasks.is_empty() {
                unused.push(offer.id);
            } else {
                calls.launch_with_filters(vec![offer.id], tasks, Filters::refuse(refuse));
            }
        }
        calls.decline(unused, Filters::refuse(refuse));
        if self.pending.is_empty() && !self.suppressed {
            calls.suppress(Vec::new());
            self.suppressed = true;
        }
    }

    fn status_update(&mut self, calls: &mut Calls, status: &agora_proto::TaskStatus) {
        if !status.state.is_terminal() || status.state == TaskState::Finished {
            return;
        }
        self.tasks_failed += 1;
        // A task that never ran to completion (its offer was rescinded, its
        // agent lost) goes back to its job, which waits to be placed again.
        let Some(job) = job_of(status.task_id.as_str()) else {
            return;
        };
        let Some(record) = self.records.get_mut(job).filter(|r| !r.abandoned) else {
            return;
        };
        record.placed = record.placed.saturating_sub(1);
        record.fully_scheduled = None;
        if let Some(p) = self.pending.iter_mut().find(|p| p.job == job) {
            p.remaining += 1;
        } else if let Some(spec) = self.jobs.get(job) {
            let resources = Resources::new()
                .with_scalar("cpus", None, scalar(spec.cpus))
                .with_scalar("mem", None, scalar(spec.mem));
            self.pending.push_back(Pending {
                job,
                remaining: 1,
                next_attempt: calls.now(),
                cpus: resources.cpus().milli(),
                mem: resources.mem().milli(),
                resources,
                command: CommandInfo::shell(format!("sleep {}", spec.duration)),
            });
        }
        if self.suppressed {
            calls.revive(Vec::new());
            self.suppressed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, Attributes, Call, FrameworkId, Operation};

    fn offer(i: usize, cpus: u64) -> Offer {
        Offer {
            id: OfferId::new(format!("o{i}")).expect("id"),
            framework_id: FrameworkId::new("f").expect("id"),
            agent_id: AgentId::new(format!("a{i}")).expect("id"),
            hostname: format!("h{i}"),
            resources: Resources::new()
                .with_scalar("cpus", None, Scalar::from_units(cpus))
                .with_scalar("mem", None, Scalar::from_units(16384)),
            attributes: Attributes::default(),
            role: "*".to_owned(),
        }
    }

    fn scheduler() -> JobQueueScheduler {
        JobQueueScheduler::new(JobQueueConfig {
            t_job: Duration::from_millis(100),
            t_task: Duration::from_millis(5),
            retry_interval: Duration::from_secs(1),
            max_attempts_without_progress: 2,
            max_attempts: 1000,
            seed: 3,
        })
    }

    fn job(tasks: u32) -> Job {
        Job {
            submitted: Timestamp::ZERO,
            tasks,
            duration: 10.0,
            cpus: 1.0,
            mem: 1024.0,
        }
    }

    fn launched(calls: &[Call]) -> usize {
        calls
            .iter()
            .map(|c| match c {
                Call::Accept { operations, .. } => operations
                    .iter()
                    .map(|o| match o {
                        Operation::Launch(t) => t.len(),
                        _ => 0,
                    })
                    .sum(),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn places_what_fits_and_retries_the_rest_later() {
        let mut s = scheduler();
        let mut calls = Calls::new(Timestamp::ZERO, None);
        s.submit(&mut calls, job(10));
        s.offers(&mut calls, vec![offer(0, 4), offer(1, 4)]);
        assert_eq!(launched(calls.pending()), 8);
        assert_eq!(s.records()[0].placed, 8);
        assert_eq!(s.last_decision(), (Duration::from_millis(140), 1, 8));
        // Offers within the retry interval do not trigger an attempt.
        let mut calls = Calls::new(Timestamp::from_micros(500_000), None);
        s.offers(&mut calls, vec![offer(2, 4)]);
        assert_eq!(launched(calls.pending()), 0);
        let mut calls = Calls::new(Timestamp::from_secs(2), None);
        s.offers(&mut calls, vec![offer(2, 4)]);
        assert_eq!(launched(calls.pending()), 2);
        assert_eq!(s.records()[0].attempts, 2);
        assert!(s.records()[0].fully_scheduled.is_some());
        assert!(matches!(calls.pending().last(), Some(Call::Suppress { .. })));
    }

    #[test]
    fn a_lost_task_goes_back_to_its_job() {
        let mut s = scheduler();
        let mut calls = Calls::new(Timestamp::ZERO, None);
        s.submit(&mut calls, job(2));
        s.offers(&mut calls, vec![offer(0, 4)]);
        assert!(s.records()[0].fully_scheduled.is_some());
        let lost = agora_proto::TaskStatus::new(TaskId::new("j0-t1").expect("id"), TaskState::Lost, Timestamp::ZERO);
        let mut calls = Calls::new(Timestamp::from_secs(1), None);
        s.status_update(&mut calls, &lost);
        assert_eq!(s.pending_jobs(), 1);
        assert!(matches!(calls.pending(), [Call::Revive { .. }]));
        let mut calls = Calls::new(Timestamp::from_secs(2), None);
        s.offers(&mut calls, vec![offer(1, 4)]);
        assert_eq!(launched(calls.pending()), 1);
        assert_eq!((s.records()[0].placed, s.records()[0].launched), (2, 3));
        assert!(s.records()[0].fully_scheduled.is_some());
    }

    #[test]
    fn abandons_after_too_many_fruitless_attempts() {
        let mut s = scheduler();
        let mut calls = Calls::new(Timestamp::ZERO, None);
        s.submit(&mut calls, job(1));
        for t in 0..3 {
            let mut calls = Calls::new(Timestamp::from_secs(10 * t), None);
            s.offers(&mut calls, vec![offer(0, 0)]);
        }
        assert!(s.records()[0].abandoned);
        assert_eq!(s.pending_jobs(), 0);
    }
}
