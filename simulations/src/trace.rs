//! Replay of Google's 2011 cluster trace (`task_events` CSV, 13 columns:
//! timestamp µs, missing info, job id, task index, machine id, event type,
//! user, scheduling class, priority, cpu request, memory request, disk
//! request, different-machine constraint).
//!
//! A job becomes one simulated job: submitted at its first SUBMIT, with as
//! many tasks as distinct task indices submitted, the largest cpu and memory
//! request seen (normalised to the largest machine, so scaled by the
//! simulated machine size), and the mean run time of its tasks that were
//! seen both scheduled and ended (the config's default otherwise).

use crate::config::TraceConfig;
use crate::engine::Simulation;
use crate::error::{SimError, TraceError};
use crate::scheduler::Job;
use agora_proto::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Event types of `task_events`.
const SUBMIT: u8 = 0;
const SCHEDULE: u8 = 1;
/// EVICT, FAIL, FINISH, KILL, LOST end a run.
const ENDS: [u8; 5] = [2, 3, 4, 5, 6];
/// Timestamps meaning "before the window" and "after the window".
const BEFORE: u64 = 0;
const AFTER: u64 = i64::MAX as u64;

/// A job read from a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceJob {
    /// The trace's job id.
    pub job_id: u64,
    /// First SUBMIT, µs since the first SUBMIT of the trace.
    pub submitted: u64,
    /// Distinct tasks submitted.
    pub tasks: u32,
    /// Largest cpu request, normalised (0..=1).
    pub cpu_request: f64,
    /// Largest memory request, normalised.
    pub mem_request: f64,
    /// Highest priority seen.
    pub priority: u32,
    /// Mean task run time in seconds, when any task was seen to end.
    pub mean_duration: Option<f64>,
}

#[derive(Default)]
struct Acc {
    first_submit: Option<u64>,
    tasks: BTreeSet<u64>,
    cpu: f64,
    mem: f64,
    priority: u32,
    scheduled: BTreeMap<u64, u64>,
    runs: Vec<f64>,
}

/// Reads a `task_events` file.
pub fn read_task_events(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let text = std::fs::read_to_string(path).map_err(|e| TraceError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    parse_task_events(&text, path)
}

/// Parses `task_events` CSV text; `path` only names the file in errors.
pub fn parse_task_events(text: &str, path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let mut jobs: BTreeMap<u64, Acc> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| TraceError::Line {
            path: path.to_owned(),
            line: n + 1,
            reason,
        };
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() != 13 {
            return Err(bad(format!("expected 13 columns, found {}", cols.len())));
        }
        let int = |i: usize, name: &str| {
            cols[i]
                .trim()
                .parse::<u64>()
                .map_err(|e| bad(format!("column {} ({name}): {e}", i + 1)))
        };
        // Optional numeric columns are empty when the trace lacks them.
        let real = |i: usize, name: &str| {
            let c = cols[i].trim();
            if c.is_empty() {
                Ok(0.0)
            } else {
                c.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| bad(format!("column {} ({name}): {c:?} is not a number >= 0", i + 1)))
            }
        };
        let time = int(0, "timestamp")?;
        let job_id = int(2, "job id")?;
        let task = int(3, "task index")?;
        let kind = u8::try_from(int(5, "event type")?)
            .ok()
            .filter(|k| *k <= 8)
            .ok_or_else(|| bad("column 6 (event type): expected 0..=8".to_owned()))?;
        let priority = u32::try_from(int(8, "priority")?).map_err(|e| bad(format!("priority: {e}")))?;
        let cpu = real(9, "cpu request")?;
        let mem = real(10, "memory request")?;
        if time == BEFORE || time >= AFTER {
            continue;
        }
        let acc = jobs.entry(job_id).or_default();
        acc.priority = acc.priority.max(priority);
        acc.cpu = acc.cpu.max(cpu);
        acc.mem = acc.mem.max(mem);
        match kind {
            SUBMIT => {
                acc.first_submit = Some(acc.first_submit.map_or(time, |t| t.min(time)));
                acc.tasks.insert(task);
            }
            SCHEDULE => {
                acc.scheduled.insert(task, time);
            }
            k if ENDS.contains(&k) => {
                if let Some(start) = acc.scheduled.remove(&task)
                    && time >= start
                {
                    acc.runs.push((time - start) as f64 / 1e6);
                }
            }
            _ => {}
        }
    }
    let origin = jobs.values().filter_map(|a| a.first_submit).min().unwrap_or(0);
    let mut out: Vec<TraceJob> = jobs
        .into_iter()
        .filter_map(|(job_id, a)| {
            let submitted = a.first_submit? - origin;
            Some(TraceJob {
                job_id,
                submitted,
                tasks: u32::try_from(a.tasks.len()).unwrap_or(u32::MAX),
                cpu_request: a.cpu,
                mem_request: a.mem,
                priority: a.priority,
                mean_duration: (!a.runs.is_empty()).then(|| a.runs.iter().sum::<f64>() / a.runs.len() as f64),
            })
        })
        .collect();
    out.sort_by_key(|j| (j.submitted, j.job_id));
    Ok(out)
}

/// Reads the configured trace and submits its jobs to the batch and
/// service frameworks of `sim`, scaled to the simulated machines.
pub fn submit_trace(sim: &mut Simulation, trace: &TraceConfig) -> Result<(), SimError> {
    let jobs = read_task_events(&trace.path)?;
    let (cpus, mem) = sim.machine_size();
    let index = |name: &str| {
        sim.framework_index(name).ok_or_else(|| SimError::Framework {
            name: name.to_owned(),
            reason: "named in [trace] but not configured".to_owned(),
        })
    };
    let batch = index(&trace.batch_framework)?;
    let service = index(&trace.service_framework)?;
    for j in jobs {
        let slot = if j.priority >= trace.service_min_priority {
            service
        } else {
            batch
        };
        sim.submit_at(
            slot,
            Job {
                submitted: Timestamp::from_micros(j.submitted),
                tasks: j.tasks,
                duration: j.mean_duration.unwrap_or(trace.default_duration),
                // A request of 0 still takes a sliver, as a real task would.
                cpus: (j.cpu_request * cpus).max(0.001),
                mem: (j.mem_request * mem).max(1.0),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hand_made_sample() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/task_events_sample.csv");
        let jobs = read_task_events(&path).expect("sample parses");
        assert_eq!(jobs.len(), 3);
        let first = &jobs[0];
        assert_eq!(first.job_id, 3_418_309);
        assert_eq!(first.submitted, 0);
        assert_eq!(first.tasks, 3);
        assert_eq!(first.priority, 0);
        assert_eq!(first.cpu_request, 0.125);
        // Tasks 0 and 1 ran 100 s and 200 s; task 2 never ended.
        assert_eq!(first.mean_duration, Some(150.0));
        let service = jobs.iter().find(|j| j.job_id == 6_251_812).expect("service job");
        assert_eq!(service.priority, 9);
        assert_eq!(service.submitted, 5_000_000);
        assert_eq!(service.tasks, 2);
        // A job whose only SUBMIT is before the window (timestamp 0) is
        // known only by later events and is not replayed.
        assert!(jobs.iter().all(|j| j.job_id != 1_000_000));
        assert_eq!(jobs[2].mean_duration, None);
    }

    #[test]
    fn bad_lines_name_file_line_and_column() {
        let err = parse_task_events("600000000,,1,0,,0,u,0,0,0.1,0.1,0,0\n1,2,3\n", Path::new("t.csv"))
            .expect_err("short line");
        assert_eq!(
            err,
            TraceError::Line {
                path: "t.csv".into(),
                line: 2,
                reason: "expected 13 columns, found 3".to_owned()
            }
        );
        let err = parse_task_events("600000000,,1,0,,x,u,0,0,0.1,0.1,0,0\n", Path::new("t.csv")).expect_err("bad type");
        assert!(err.to_string().contains("column 6"), "{err}");
    }
}
