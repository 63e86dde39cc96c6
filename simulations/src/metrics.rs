//! What a run measured: per-framework job waits and busyness, cluster
//! utilization and resources held in offers over time, and the master's
//! counters. Everything here is derived from virtual time only, so a report
//! is byte-identical for the same config and seed.

use crate::scheduler::JobRecord;
use serde::Serialize;

/// Seconds in a simulated day (busyness is a median over days).
pub const DAY_SECS: f64 = 86_400.0;

/// Cluster figures at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Virtual time, seconds.
    pub t: f64,
    /// Fraction of cpus used by running tasks.
    pub cpu_used: f64,
    /// Fraction of memory used by running tasks.
    pub mem_used: f64,
    /// Fraction of cpus allocated but not used by a task: held in offers.
    pub cpu_offered: f64,
    /// Fraction of memory held in offers.
    pub mem_offered: f64,
    /// Each framework's dominant share (offered + used), in framework order.
    pub shares: Vec<f64>,
    /// Each framework's fraction of cpus held in offers, in framework order.
    pub cpu_offered_by: Vec<f64>,
}

/// Mean and percentiles of a set of durations, seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// How many values.
    pub count: usize,
    /// Their mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// Summarizes `values` (nearest-rank percentiles).
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = |p: f64| {
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            values[i]
        };
        Self {
            count: n,
            mean: values.iter().sum::<f64>() / n as f64,
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: values[n - 1],
        }
    }
}

/// One framework's results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameworkReport {
    /// Its name.
    pub name: String,
    /// Jobs submitted.
    pub jobs_submitted: usize,
    /// Jobs with every task placed.
    pub jobs_fully_scheduled: usize,
    /// Jobs given up at the retry limits.
    pub jobs_abandoned: usize,
    /// Jobs never attempted by the end.
    pub jobs_never_attempted: usize,
    /// Submission to the start of the first attempt, seconds.
    pub wait_first_attempt: Distribution,
    /// Submission to fully scheduled, seconds.
    pub wait_fully_scheduled: Distribution,
    /// 99th percentile of the wait to fully scheduled counting jobs never
    /// fully scheduled (abandoned, or still waiting at the end) as infinite:
    /// what capacity planning asks for. `null` in JSON when infinite.
    pub full_p99_all_jobs: f64,
    /// Mean scheduling attempts per job attempted.
    pub mean_attempts: f64,
    /// Fraction of time spent deciding, median over simulated days (over
    /// the whole run when shorter than a day).
    pub busyness: f64,
    /// Busyness of each day (the last one partial).
    pub busyness_by_day: Vec<f64>,
    /// Callbacks run.
    pub callbacks: u64,
    /// Offers received.
    pub offers_received: u64,
    /// Tasks that ended other than FINISHED.
    pub tasks_failed: u64,
}

impl FrameworkReport {
    /// Builds the report of a framework from its job records and busy time.
    pub fn from_records(name: &str, records: &[JobRecord], busy_by_day: &[f64], duration: f64) -> Self {
        let secs = |a: agora_proto::Timestamp, b: agora_proto::Timestamp| b.saturating_duration_since(a).as_secs_f64();
        let first: Vec<f64> = records
            .iter()
            .filter_map(|r| r.first_attempt.map(|t| secs(r.submitted, t)))
            .collect();
        let full: Vec<f64> = records
            .iter()
            .filter_map(|r| r.fully_scheduled.map(|t| secs(r.submitted, t)))
            .collect();
        let attempted: Vec<&JobRecord> = records.iter().filter(|r| r.attempts > 0).collect();
        let mean_attempts = if attempted.is_empty() {
            0.0
        } else {
            attempted.iter().map(|r| f64::from(r.attempts)).sum::<f64>() / attempted.len() as f64
        };
        let by_day = busyness_by_day(busy_by_day, duration);
        let mut all: Vec<f64> = records
            .iter()
            .map(|r| r.fully_scheduled.map_or(f64::INFINITY, |t| secs(r.submitted, t)))
            .collect();
        all.sort_by(f64::total_cmp);
        let full_p99_all_jobs = if all.is_empty() {
            0.0
        } else {
            all[((0.99 * all.len() as f64).ceil() as usize).clamp(1, all.len()) - 1]
        };
        Self {
            name: name.to_owned(),
            jobs_submitted: records.len(),
            jobs_fully_scheduled: full.len(),
            jobs_abandoned: records.iter().filter(|r| r.abandoned).count(),
            jobs_never_attempted: records.iter().filter(|r| r.first_attempt.is_none()).count(),
            wait_first_attempt: Distribution::of(first),
            wait_fully_scheduled: Distribution::of(full),
            full_p99_all_jobs,
            mean_attempts,
            busyness: median_busyness(&by_day, duration),
            busyness_by_day: by_day,
            callbacks: 0,
            offers_received: 0,
            tasks_failed: 0,
        }
    }
}

/// Busy seconds per day → fraction per day (the last day over its length).
fn busyness_by_day(busy: &[f64], duration: f64) -> Vec<f64> {
    let days = (duration / DAY_SECS).ceil().max(1.0) as usize;
    (0..days)
        .map(|d| {
            let start = d as f64 * DAY_SECS;
            let len = (duration - start).min(DAY_SECS);
            let b = busy.get(d).copied().unwrap_or(0.0);
            if len > 0.0 { b / len } else { 0.0 }
        })
        .collect()
}

/// The median over full days, or the only (partial) day.
fn median_busyness(by_day: &[f64], duration: f64) -> f64 {
    let full_days = (duration / DAY_SECS).floor() as usize;
    let mut days: Vec<f64> = if full_days == 0 {
        by_day.to_vec()
    } else {
        by_day.iter().take(full_days).copied().collect()
    };
    if days.is_empty() {
        return 0.0;
    }
    days.sort_by(f64::total_cmp);
    let n = days.len();
    if n % 2 == 1 {
        days[n / 2]
    } else {
        (days[n / 2 - 1] + days[n / 2]) / 2.0
    }
}

/// The master's counters at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MasterCounters {
    /// Allocation cycles run.
    pub allocation_cycles: u64,
    /// Offers made.
    pub offers_made: u64,
    /// Offers accepted.
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Offers rescinded.
    pub offers_rescinded: u64,
    /// Tasks launched.
    pub tasks_launched: u64,
    /// Tasks finished.
    pub tasks_finished: u64,
    /// Calls from frameworks.
    pub calls: u64,
    /// Calls the master refused outright.
    pub calls_refused: u64,
}

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The config's name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// Simulated seconds.
    pub duration: f64,
    /// Machines.
    pub machines: u32,
    /// Allocator policy.
    pub policy: String,
    /// Events processed.
    pub events: u64,
    /// Per framework (pre-fill excluded).
    pub frameworks: Vec<FrameworkReport>,
    /// Mean of the samples' cpu utilization.
    pub mean_cpu_used: f64,
    /// Mean of the samples' memory utilization.
    pub mean_mem_used: f64,
    /// Mean fraction of cpus held in offers.
    pub mean_cpu_offered: f64,
    /// Mean fraction of memory held in offers.
    pub mean_mem_offered: f64,
    /// The master's counters.
    pub master: MasterCounters,
    /// Samples over time.
    #[serde(skip)]
    pub samples: Vec<Sample>,
    /// Names of the frameworks in sample order (pre-fill included).
    #[serde(skip)]
    pub sample_frameworks: Vec<String>,
}

impl Report {
    /// The report of the framework called `name`.
    pub fn framework(&self, name: &str) -> Option<&FrameworkReport> {
        self.frameworks.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = Distribution::of((1..=100).map(f64::from).collect());
        assert_eq!((d.p50, d.p90, d.p99, d.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(d.mean, 50.5);
        assert_eq!(Distribution::of(vec![]).count, 0);
    }

    #[test]
    fn busyness_is_the_median_of_full_days() {
        let by_day = busyness_by_day(&[8640.0, 4320.0, 17280.0, 100.0], 3.0 * DAY_SECS + 100.0);
        assert_eq!(by_day[0], 0.1);
        assert_eq!(by_day[3], 1.0);
        assert_eq!(median_busyness(&by_day, 3.0 * DAY_SECS + 100.0), 0.1);
        let short = busyness_by_day(&[10.0], 100.0);
        assert_eq!(median_busyness(&short, 100.0), 0.1);
    }
}
