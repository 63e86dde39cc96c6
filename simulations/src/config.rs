//! The workload config (TOML): cluster, network, master, frameworks and
//! their jobs; `--set key=value` overrides applied to the parsed TOML before
//! it is checked, so a sweep changes any key the file has.

use crate::dist::Distribution;
use crate::error::ConfigError;
use agora_master::Policy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// A label for outputs.
    #[serde(default = "default_name")]
    pub name: String,
    /// Seeds every random choice of the run (workload, network, master).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated seconds.
    pub duration: f64,
    /// Seconds between samples of utilization and shares.
    #[serde(default = "default_sample_interval")]
    pub sample_interval: f64,
    /// The machines.
    pub cluster: ClusterConfig,
    /// Message delays.
    #[serde(default)]
    pub network: NetworkConfig,
    /// The master core's settings.
    #[serde(default)]
    pub master: MasterSettings,
    /// The frameworks, each a job-queue scheduler.
    #[serde(rename = "framework", default)]
    pub frameworks: Vec<FrameworkConfig>,
    /// Jobs replayed from a Google 2011 `task_events` trace.
    #[serde(default)]
    pub trace: Option<TraceConfig>,
}

fn default_name() -> String {
    "simulation".to_owned()
}
const fn default_seed() -> u64 {
    1
}
const fn default_sample_interval() -> f64 {
    60.0
}

/// Identical machines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How many.
    pub machines: u32,
    /// Cpus per machine.
    pub cpus: f64,
    /// Memory per machine, MB.
    pub mem: f64,
    /// Fraction of the cluster's cpus filled before the workload starts.
    #[serde(default)]
    pub prefill: f64,
    /// Cpus per pre-fill task.
    #[serde(default = "one")]
    pub prefill_task_cpus: f64,
    /// Memory per pre-fill task, MB.
    #[serde(default = "two_gb")]
    pub prefill_task_mem: f64,
    /// How long pre-fill tasks run, seconds; they outlive the run if unset.
    #[serde(default)]
    pub prefill_duration: Option<Distribution>,
}

const fn one() -> f64 {
    1.0
}
const fn two_gb() -> f64 {
    2048.0
}

/// The modelled network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// One-way delay of every message, seconds. Messages on one connection
    /// stay in order, as on a stream.
    pub delay: Distribution,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            delay: Distribution::Constant { value: 0.0005 },
        }
    }
}

/// Master settings a simulation may change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSettings {
    /// Seconds between allocation cycles, at most.
    #[serde(default = "one")]
    pub allocation_interval: f64,
    /// `fair-share` (today's Mesos) or `offer-all-to-one` (Mesos 2012).
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Rescind offers held longer than this, seconds (off if unset).
    #[serde(default)]
    pub offer_timeout: Option<f64>,
}

fn default_policy() -> String {
    Policy::FairShare.name().to_owned()
}

impl Default for MasterSettings {
    fn default() -> Self {
        Self {
            allocation_interval: 1.0,
            policy: default_policy(),
            offer_timeout: None,
        }
    }
}

/// How a framework's decision time is obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionMode {
    /// `t_job × jobs attempted + t_task × tasks launched` per callback.
    #[default]
    Modelled,
    /// The callback's measured CPU time × `measured_factor` (not reproducible).
    Measured,
}

/// One framework: a job-queue scheduler and the jobs submitted to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkConfig {
    /// Its name, also its role.
    pub name: String,
    /// Decision time per job attempted, seconds.
    #[serde(default)]
    pub t_job: f64,
    /// Decision time per task launched, seconds.
    #[serde(default)]
    pub t_task: f64,
    /// Modelled or measured decision time.
    #[serde(default)]
    pub decision: DecisionMode,
    /// Measured CPU time is multiplied by this.
    #[serde(default = "one")]
    pub measured_factor: f64,
    /// A job not fully placed is tried again after this many seconds.
    #[serde(default = "one")]
    pub retry_interval: f64,
    /// A job is abandoned after more attempts than this that placed nothing.
    #[serde(default = "default_max_no_progress")]
    pub max_attempts_without_progress: u32,
    /// A job is abandoned after more attempts than this in all.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Generated jobs; none if unset (a trace may still feed it).
    #[serde(default)]
    pub jobs: Option<JobKind>,
}

const fn default_max_no_progress() -> u32 {
    100
}
const fn default_max_attempts() -> u32 {
    1000
}

/// A kind of job: when jobs come and what they need. All tasks of a job
/// are alike (one duration, cpus and memory drawn per job).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobKind {
    /// Seconds between submissions.
    pub inter_arrival: Distribution,
    /// Tasks per job (rounded up, at least 1).
    pub tasks: Distribution,
    /// Task duration, seconds.
    pub duration: Distribution,
    /// Cpus per task.
    pub cpus: Distribution,
    /// Memory per task, MB.
    pub mem: Distribution,
}

/// Replay of a Google 2011 `task_events` trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// The CSV file (relative paths are relative to the config file).
    pub path: PathBuf,
    /// Jobs with at least this priority go to `service_framework`, the
    /// others to `batch_framework` (Omega splits production from the rest).
    #[serde(default = "default_service_priority")]
    pub service_min_priority: u32,
    /// Framework receiving the batch jobs.
    #[serde(default = "batch")]
    pub batch_framework: String,
    /// Framework receiving the service jobs.
    #[serde(default = "service")]
    pub service_framework: String,
    /// Duration of tasks whose end is not in the trace, seconds.
    #[serde(default = "default_trace_duration")]
    pub default_duration: f64,
}

const fn default_service_priority() -> u32 {
    9
}
fn batch() -> String {
    "batch".to_owned()
}
fn service() -> String {
    "service".to_owned()
}
const fn default_trace_duration() -> f64 {
    300.0
}

impl SimConfig {
    /// Reads a config file and applies `overrides` (`key=value`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut config = Self::parse(&text, overrides)?;
        if let Some(trace) = &mut config.trace
            && trace.path.is_relative()
            && let Some(dir) = path.parent()
        {
            trace.path = dir.join(&trace.path);
        }
        Ok(config)
    }

    /// Parses TOML text and applies `overrides`.
    pub fn parse(text: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let config: Self = table.try_into().map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The allocator policy named in the config.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        self.master.policy.parse().map_err(|e: String| ConfigError::Invalid {
            key: "master.policy".to_owned(),
            reason: e,
        })
    }

    /// Checks every value; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(key, "must be a finite number > 0"))
            }
        };
        let nonneg = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(key, "must be a finite number >= 0"))
            }
        };
        positive("duration", self.duration)?;
        positive("sample_interval", self.sample_interval)?;
        if self.cluster.machines == 0 {
            return Err(invalid("cluster.machines", "must be at least 1"));
        }
        positive("cluster.cpus", self.cluster.cpus)?;
        positive("cluster.mem", self.cluster.mem)?;
        if !(0.0..=1.0).contains(&self.cluster.prefill) {
            return Err(invalid("cluster.prefill", "must be a fraction in [0, 1]"));
        }
        positive("cluster.prefill_task_cpus", self.cluster.prefill_task_cpus)?;
        positive("cluster.prefill_task_mem", self.cluster.prefill_task_mem)?;
        if let Some(d) = &self.cluster.prefill_duration {
            d.validate("cluster.prefill_duration")?;
        }
        self.network.delay.validate("network.delay")?;
        positive("master.allocation_interval", self.master.allocation_interval)?;
        self.policy()?;
        if let Some(t) = self.master.offer_timeout {
            positive("master.offer_timeout", t)?;
        }
        if self.frameworks.is_empty() {
            return Err(invalid("framework", "at least one [[framework]] is needed"));
        }
        for (i, f) in self.frameworks.iter().enumerate() {
            let key = |field: &str| format!("framework.{}.{field}", f.name);
            if f.name.is_empty() || agora_proto::validate_role(&f.name).is_err() {
                return Err(invalid(
                    &format!("framework.{i}.name"),
                    "must be a valid role name (letters, digits, - and _)",
                ));
            }
            if self.frameworks[..i].iter().any(|g| g.name == f.name) {
                return Err(invalid(&key("name"), "names must be unique"));
            }
            nonneg(&key("t_job"), f.t_job)?;
            nonneg(&key("t_task"), f.t_task)?;
            nonneg(&key("measured_factor"), f.measured_factor)?;
            positive(&key("retry_interval"), f.retry_interval)?;
            if let Some(jobs) = &f.jobs {
                jobs.inter_arrival.validate(&key("jobs.inter_arrival"))?;
                if jobs.inter_arrival.mean() <= 0.0 {
                    return Err(invalid(&key("jobs.inter_arrival"), "the mean must be > 0"));
                }
                jobs.tasks.validate(&key("jobs.tasks"))?;
                jobs.duration.validate(&key("jobs.duration"))?;
                jobs.cpus.validate(&key("jobs.cpus"))?;
                jobs.mem.validate(&key("jobs.mem"))?;
            }
        }
        if let Some(trace) = &self.trace {
            for name in [&trace.batch_framework, &trace.service_framework] {
                if !self.frameworks.iter().any(|f| &f.name == name) {
                    return Err(invalid("trace", &format!("no [[framework]] named {name:?}")));
                }
            }
            positive("trace.default_duration", trace.default_duration)?;
        }
        Ok(())
    }
}

/// Applies `a.b.c=value` to a parsed TOML table. Array elements are chosen
/// by index or, for tables with a `name`, by name (`framework.service.t_job`).
/// The value is read as TOML (`10`, `"fair-share"`, `{ kind = ... }`), and as
/// a bare string if that fails.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(ConfigError::UnknownKey {
            key: assignment.to_owned(),
            reason: "expected key=value".to_owned(),
        });
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    set_in_table(table, &parts, parse_value(raw.trim())).map_err(|reason| ConfigError::UnknownKey {
        key: key.to_owned(),
        reason,
    })
}

fn set_in_table(table: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), String> {
    match parts {
        [] => Err("empty key".to_owned()),
        [last] => {
            table.insert((*last).to_owned(), value);
            Ok(())
        }
        // A section left out of the file (all defaults) is created; a
        // misspelt one is then refused by the schema, naming the key.
        [first, rest @ ..] => {
            let next = table
                .entry((*first).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            set_in_value(next, first, rest, value)
        }
    }
}

fn set_in_value(current: &mut toml::Value, name: &str, parts: &[&str], value: toml::Value) -> Result<(), String> {
    match current {
        toml::Value::Table(t) => set_in_table(t, parts, value),
        toml::Value::Array(items) => {
            let [selector, rest @ ..] = parts else {
                return Err(format!("{name:?} is a list: name an element"));
            };
            if rest.is_empty() {
                return Err("the key ends at a list element".to_owned());
            }
            let element = match selector.parse::<usize>() {
                Ok(i) => items.get_mut(i),
                Err(_) => items
                    .iter_mut()
                    .find(|v| v.get("name").and_then(toml::Value::as_str) == Some(*selector)),
            }
            .ok_or_else(|| format!("no element {selector:?} in {name:?}"))?;
            set_in_value(element, selector, rest, value)
        }
        _ => Err(format!("{name:?} is not a table")),
    }
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        duration = 100.0
        [cluster]
        machines = 4
        cpus = 4.0
        mem = 16384.0
        [[framework]]
        name = "batch"
        t_job = 0.1
        [framework.jobs]
        inter_arrival = { kind = "exponential", mean = 10.0 }
        tasks = { kind = "constant", value = 2.0 }
        duration = { kind = "constant", value = 5.0 }
        cpus = { kind = "constant", value = 1.0 }
        mem = { kind = "constant", value = 1024.0 }
    "#;

    #[test]
    fn parses_with_defaults() {
        let c = SimConfig::parse(SMALL, &[]).expect("valid");
        assert_eq!(c.seed, 1);
        assert_eq!(c.frameworks[0].max_attempts, 1000);
        assert_eq!(c.policy(), Ok(Policy::FairShare));
    }

    #[test]
    fn overrides_reach_array_elements_by_name_and_index() {
        let c = SimConfig::parse(
            SMALL,
            &[
                "framework.batch.t_job=2.5".to_owned(),
                "framework.0.t_task=0.01".to_owned(),
                "cluster.machines=8".to_owned(),
                "master.policy=offer-all-to-one".to_owned(),
            ],
        )
        .expect("valid");
        assert_eq!(c.frameworks[0].t_job, 2.5);
        assert_eq!(c.frameworks[0].t_task, 0.01);
        assert_eq!(c.cluster.machines, 8);
        assert_eq!(c.policy(), Ok(Policy::OfferAllToOne));
    }

    #[test]
    fn bad_values_and_keys_are_named() {
        let err = SimConfig::parse(SMALL, &["framework.batch.t_job=-1".to_owned()]).expect_err("negative");
        assert_eq!(
            err,
            ConfigError::Invalid {
                key: "framework.batch.t_job".to_owned(),
                reason: "must be a finite number >= 0".to_owned()
            }
        );
        let err = SimConfig::parse(SMALL, &["framework.nope.t_job=1".to_owned()]).expect_err("unknown");
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
        let err = SimConfig::parse(SMALL, &["master.policy=greedy".to_owned()]).expect_err("policy");
        assert!(matches!(err, ConfigError::Invalid { ref key, .. } if key == "master.policy"));
        let err = SimConfig::parse(&SMALL.replace("t_job", "t_jbo"), &[]).expect_err("typo");
        assert!(err.to_string().contains("t_jbo"), "{err}");
    }
}
