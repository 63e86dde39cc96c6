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
//!
//! Offers made, declined and rescinded are `Stats` counters
//! (`agora_master_offers_{made,declined,rescinded}_total`). A role or
//! framework that disappears keeps its series, set to 0 (the exporter has no
//! way to drop one).

use crate::{AgentStatus, Master};
use agora_proto::Timestamp;
use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
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
    /// Per-role dominant share and weight gauges, by role, made when first seen.
    roles: BTreeMap<String, (Gauge, Gauge)>,
    /// Per-framework dominant share gauges, by framework id, made when first seen.
    frameworks: BTreeMap<String, Gauge>,
    /// One counter per field of `Stats`, made when first seen.
    counters: BTreeMap<String, Counter>,
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
            roles: BTreeMap::new(),
            frameworks: BTreeMap::new(),
            counters: BTreeMap::new(),
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

    /// Per-role and per-framework gauges; those no longer known drop to 0.
    fn refresh_shares(&mut self, master: &Master, state: &crate::ClusterState) {
        let recorder = &self.recorder;
        let mut seen = BTreeSet::new();
        for role in master.roles() {
            let (share, weight) = self.roles.entry(role.role.clone()).or_insert_with_key(|name| {
                metrics::with_local_recorder(recorder, || {
                    (
                        metrics::gauge!("agora_master_role_dominant_share", "role" => name.clone()),
                        metrics::gauge!("agora_master_role_weight", "role" => name.clone()),
                    )
                })
            });
            share.set(role.dominant_share);
            weight.set(role.weight);
            seen.insert(role.role);
        }
        for (name, (share, _)) in &self.roles {
            if !seen.contains(name) {
                share.set(0.0);
            }
        }
        seen.clear();
        for framework in &state.frameworks {
            let id = framework.id.to_string();
            let gauge = self.frameworks.entry(id.clone()).or_insert_with_key(|id| {
                metrics::with_local_recorder(
                    recorder,
                    || metrics::gauge!("agora_master_framework_dominant_share", "framework_id" => id.clone()),
                )
            });
            gauge.set(framework.dominant_share);
            seen.insert(id);
        }
        for (id, gauge) in &self.frameworks {
            if !seen.contains(id) {
                gauge.set(0.0);
            }
        }
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
