//! Prometheus metrics of one master server.
//!
//! Each server has its own recorder (never the process-global one), so
//! several servers can run in one process, as they do in tests. The core
//! loop owns the recorder: it times allocation cycles as they happen, and
//! brings counters and gauges up to date from the core when `/metrics` is
//! scraped; the HTTP handler then renders through the shared handle.
//!
//! | metric | kind | source |
//! | --- | --- | --- |
//! | `agora_master_<field>_total` | counter | every field of [`Stats`](crate::Stats) |
//! | `agora_master_agents{status}` | gauge | agents by status (active, disconnected, unreachable) |
//! | `agora_master_frameworks{connected}` | gauge | frameworks, connected or not |
//! | `agora_master_tasks` | gauge | tasks the master tracks (not yet ended, or ended and unacknowledged) |
//! | `agora_master_outstanding_offers` | gauge | offers not yet answered |
//! | `agora_master_allocation_cycle_seconds` | histogram | time of each `handle` call that ran an allocation cycle |
//! | `agora_master_active_filters` | gauge | decline filters in force |
//! | `agora_master_role_dominant_share{role}` | gauge | each role's dominant share, before weighting |
//! | `agora_master_role_weight{role}` | gauge | each role's weight |
//! | `agora_master_framework_dominant_share{framework_id}` | gauge | each framework's dominant share |
//! | `agora_master_role_quota_consumed{role,resource}` | gauge | what a role with a quota holds (offered or used, reservations included) of each resource its limit or guarantee names |
//! | `agora_master_role_quota_limit{role,resource}` | gauge | each entry of a role's quota limit |
//! | `agora_master_role_quota_guarantee{role,resource}` | gauge | each entry of a role's quota guarantee |
//!
//! Offers made, declined and rescinded are `Stats` counters
//! (`agora_master_offers_{made,declined,rescinded}_total`). Per-role series
//! follow `GetRoles` (roles in use), per-framework ones the frameworks the
//! master knows.
//!
//! Series of roles and frameworks that are gone are removed: every gauge in
//! use is set on each refresh, and the recorder drops a gauge that was not
//! set since the previous render (an idle timeout of zero). That needs each
//! render to follow its own refresh: the HTTP handler holds a lock across
//! both (`server/http.rs`). Per-role and per-framework gauges are looked up
//! on every refresh rather than kept, so a handle never outlives its series.

use crate::{AgentStatus, Master, RoleView};
use agora_proto::{QuotaLimit, Timestamp};
use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use metrics_util::MetricKindMask;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

const PREFIX: &str = "agora_master_";
const ALLOCATION_CYCLE: &str = "agora_master_allocation_cycle_seconds";
/// From 10 µs (a small cluster) to 1 s (far too slow).
const ALLOCATION_BUCKETS: [f64; 12] = [
    1e-5, 2.5e-5, 1e-4, 2.5e-4, 1e-3, 2.5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 0.5, 1.0,
];
/// Histogram samples wait in the recorder until rendered; without scrapes
/// they are folded into the buckets every so many samples instead.
const UPKEEP_EVERY: u32 = 256;

/// Quota consumption of one role: for each resource its limit or guarantee
/// names, what it holds, and the limit and guarantee themselves. Runs under
/// the server's local recorder.
fn refresh_quota(role: &RoleView) {
    let empty = QuotaLimit::new();
    let limit = role.quota.as_ref().unwrap_or(&empty);
    let guarantee = role.guarantee.as_ref().unwrap_or(&empty);
    let names: BTreeSet<&String> = limit.keys().chain(guarantee.keys()).collect();
    for name in names {
        let labels = [("role", role.role.clone()), ("resource", name.clone())];
        metrics::gauge!("agora_master_role_quota_consumed", &labels).set(role.allocated.scalar(name).as_f64());
        if let Some(value) = limit.get(name) {
            metrics::gauge!("agora_master_role_quota_limit", &labels).set(value.as_f64());
        }
        if let Some(value) = guarantee.get(name) {
            metrics::gauge!("agora_master_role_quota_guarantee", &labels).set(value.as_f64());
        }
    }
}

/// The recorder and the handles the core loop updates.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    allocation_cycle: Histogram,
    agents: [(AgentStatus, Gauge); 3],
    frameworks_connected: Gauge,
    frameworks_disconnected: Gauge,
    tasks: Gauge,
    outstanding_offers: Gauge,
    active_filters: Gauge,
    /// One counter per field of `Stats`, made when first seen.
    counters: BTreeMap<String, Counter>,
    /// Batches written to the registry, and the entries they held.
    registry_writes: Counter,
    registry_entries: Counter,
    samples_since_upkeep: u32,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("counters", &self.counters.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Result<Self, BuildError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(ALLOCATION_CYCLE.to_owned()), &ALLOCATION_BUCKETS)?
            // Gauges not set since the last render belong to departed roles
            // and frameworks (see the module documentation).
            .idle_timeout(MetricKindMask::GAUGE, Some(Duration::ZERO))
            .build_recorder();
        let (allocation_cycle, agents, frameworks, tasks, outstanding_offers, active_filters) =
            metrics::with_local_recorder(&recorder, || {
                metrics::describe_histogram!(
                    ALLOCATION_CYCLE,
                    Unit::Seconds,
                    "Time of each core step that ran an allocation cycle"
                );
                metrics::describe_gauge!("agora_master_agents", "Agents known to the master, by status");
                metrics::describe_gauge!("agora_master_frameworks", "Frameworks known to the master");
                metrics::describe_gauge!("agora_master_tasks", "Tasks the master tracks");
                metrics::describe_gauge!("agora_master_outstanding_offers", "Offers not yet accepted or declined");
                metrics::describe_gauge!("agora_master_active_filters", "Decline filters in force");
                metrics::describe_gauge!(
                    "agora_master_role_dominant_share",
                    "Each role's dominant share of the cluster, before weighting"
                );
                metrics::describe_gauge!("agora_master_role_weight", "Each role's weight");
                metrics::describe_gauge!(
                    "agora_master_framework_dominant_share",
                    "Each framework's dominant share of the cluster"
                );
                metrics::describe_gauge!(
                    "agora_master_role_quota_consumed",
                    "What a role with a quota holds (offered or used) of each resource its quota names"
                );
                metrics::describe_gauge!("agora_master_role_quota_limit", "Each entry of a role's quota limit");
                metrics::describe_gauge!(
                    "agora_master_role_quota_guarantee",
                    "Each entry of a role's quota guarantee"
                );
                let agent = |status: AgentStatus| {
                    let label = match status {
                        AgentStatus::Active => "active",
                        AgentStatus::Disconnected => "disconnected",
                        AgentStatus::Unreachable => "unreachable",
                    };
                    (status, metrics::gauge!("agora_master_agents", "status" => label))
                };
                (
                    metrics::histogram!(ALLOCATION_CYCLE),
                    [
                        agent(AgentStatus::Active),
                        agent(AgentStatus::Disconnected),
                        agent(AgentStatus::Unreachable),
                    ],
                    [
                        metrics::gauge!("agora_master_frameworks", "connected" => "true"),
                        metrics::gauge!("agora_master_frameworks", "connected" => "false"),
                    ],
                    metrics::gauge!("agora_master_tasks"),
                    metrics::gauge!("agora_master_outstanding_offers"),
                    metrics::gauge!("agora_master_active_filters"),
                )
            });
        let (registry_writes, registry_entries) = metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(
                "agora_master_registry_writes",
                "Batches of the master's records written to the registry"
            );
            metrics::describe_counter!(
                "agora_master_registry_entries_written",
                "Records written (or deleted) in those batches"
            );
            (
                metrics::counter!("agora_master_registry_writes"),
                metrics::counter!("agora_master_registry_entries_written"),
            )
        });
        let [frameworks_connected, frameworks_disconnected] = frameworks;
        Ok(Self {
            recorder,
            allocation_cycle,
            agents,
            frameworks_connected,
            frameworks_disconnected,
            tasks,
            outstanding_offers,
            active_filters,
            counters: BTreeMap::new(),
            registry_writes,
            registry_entries,
            samples_since_upkeep: 0,
        })
    }

    /// What the HTTP handler renders through.
    pub(crate) fn handle(&self) -> PrometheusHandle {
        self.recorder.handle()
    }

    /// Records the duration of a core step that ran an allocation cycle.
    pub(crate) fn allocation_cycle(&mut self, took: Duration) {
        self.allocation_cycle.record(took.as_secs_f64());
        self.samples_since_upkeep += 1;
        if self.samples_since_upkeep >= UPKEEP_EVERY {
            self.samples_since_upkeep = 0;
            self.recorder.handle().run_upkeep();
        }
    }

    /// Counts a batch of `entries` written to the registry.
    pub(crate) fn registry_write(&self, entries: usize) {
        self.registry_writes.increment(1);
        self.registry_entries.increment(entries as u64);
    }

    /// Copies the core's counters, current sizes and shares (as of `now`)
    /// into the recorder.
    pub(crate) fn refresh(&mut self, master: &Master, now: Timestamp) {
        self.refresh_counters(master);
        // The snapshot costs a copy of the cluster; it is taken once per scrape.
        let state = master.state();
        for (status, gauge) in &self.agents {
            gauge.set(state.agents.iter().filter(|a| a.status == *status).count() as f64);
        }
        let connected = state.frameworks.iter().filter(|f| f.connected).count();
        self.frameworks_connected.set(connected as f64);
        self.frameworks_disconnected
            .set((state.frameworks.len() - connected) as f64);
        self.tasks.set(state.tasks.len() as f64);
        self.outstanding_offers.set(state.offers.len() as f64);
        self.active_filters.set(master.active_filters(now) as f64);
        self.refresh_shares(master, &state);
    }

    /// Per-role and per-framework gauges, looked up afresh: those of roles
    /// and frameworks no longer there are not set, and the next render drops
    /// them.
    fn refresh_shares(&self, master: &Master, state: &crate::ClusterState) {
        metrics::with_local_recorder(&self.recorder, || {
            for role in master.roles() {
                let name = role.role.clone();
                metrics::gauge!("agora_master_role_dominant_share", "role" => name.clone()).set(role.dominant_share);
                metrics::gauge!("agora_master_role_weight", "role" => name).set(role.weight);
                refresh_quota(&role);
            }
            for framework in &state.frameworks {
                let id = framework.id.to_string();
                metrics::gauge!("agora_master_framework_dominant_share", "framework_id" => id)
                    .set(framework.dominant_share);
            }
        });
    }

    /// Exports every field of `Stats` by name, so that a counter added to the
    /// core shows up without touching this file.
    fn refresh_counters(&mut self, master: &Master) {
        let fields = match serde_json::to_value(master.stats()) {
            Ok(serde_json::Value::Object(fields)) => fields,
            Ok(other) => {
                tracing::warn!(?other, "Stats did not serialize to an object; counters not exported");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read Stats; counters not exported");
                return;
            }
        };
        for (field, value) in fields {
            let Some(value) = value.as_u64() else {
                continue;
            };
            let recorder = &self.recorder;
            let counter = self.counters.entry(field).or_insert_with_key(|field| {
                metrics::with_local_recorder(recorder, || {
                    let name = format!("{PREFIX}{field}_total");
                    metrics::describe_counter!(
                        name.clone(),
                        format!("The master core's Stats::{field} since it started")
                    );
                    metrics::counter!(name)
                })
            });
            counter.absolute(value);
        }
    }
}
