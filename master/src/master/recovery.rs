//! The master's durable records: building them from the state, and a
//! restarted master's recovery from them (see `crate::durable`).
//!
//! Recovery rules (issue 6, Mesos' master failover with MESOS-4659 fixed):
//! - Recovered agents are expected back: each waits, disconnected, for the
//!   agent timeout (`ping_interval × max_missed_pings`) as any agent whose
//!   stream closed does, then becomes unreachable and, later, gone. Their
//!   dynamic reservations are re-applied when they re-register.
//! - Allocation is held until `recovery_agent_fraction` of them are back or
//!   `recovery_timeout` passed (Mesos' `AGENT_RECOVERY_FACTOR` and
//!   `ALLOCATION_HOLD_OFF_RECOVERY_TIMEOUT`): offering the first agents back
//!   against a cluster that looks nearly empty would misjudge quota and
//!   fair shares.
//! - Recovered frameworks are disconnected and keep their failover deadline
//!   across the restart: `disconnected_at + failover_timeout` if they were
//!   disconnected; if they were connected, the master failed and not they,
//!   so the timeout counts from the restart, and at least for the agent
//!   timeout (a framework with a zero failover timeout must get the time
//!   to find the new master that its agents get).
//! - Gone agents stay gone.

use super::{Agent, AgentStatus, Framework, GoneAgent, Master};
use crate::durable::{AgentRecord, DurableChange, DurableKey, FrameworkRecord, GoneRecord, GoneTask, Records};
use agora_proto::{AgentId, AgentInfo, Attributes, Resources, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Allocation held after a restart until enough recovered agents are back.
#[derive(Debug)]
pub(super) struct Hold {
    /// Recovered agents not back yet.
    waiting: BTreeSet<AgentId>,
    /// Released when no more than this many are still waiting.
    release_at: usize,
    /// Released at this time in any case.
    until: Timestamp,
}

impl Master {
    /// Restores what a previous master kept, before any other input: call it
    /// once, on a fresh master, with the time of the restart.
    pub fn recover(&mut self, now: Timestamp, records: Records) {
        let agent_timeout = self.config.agent_timeout();
        for (id, record) in records.agents {
            let info = AgentInfo {
                hostname: record.hostname,
                resources: Resources::new(),
                attributes: Attributes::default(),
            };
            self.agents.insert(
                id,
                Agent {
                    info,
                    conn: None,
                    status: AgentStatus::Disconnected,
                    registered_at: now,
                    deadline: now + agent_timeout,
                    removal_queued: false,
                    orphans: BTreeMap::new(),
                    next_ping: now,
                    offers: BTreeSet::new(),
                    tasks: BTreeSet::new(),
                    reserved: record.reserved,
                    recovered: true,
                },
            );
        }
        for (id, record) in records.frameworks {
            let FrameworkRecord {
                mut info,
                registered_at,
                disconnected_at,
            } = record;
            info.id = Some(id.clone());
            let timeout = info.failover_timeout;
            let (disconnected_at, deadline) = match disconnected_at {
                Some(at) => (at, at + timeout),
                None => {
                    // Written down, so that a second restart does not restart the clock.
                    self.durable_dirty.insert(DurableKey::Framework(id.clone()));
                    (now, now + timeout.max(agent_timeout))
                }
            };
            self.allocator.add_framework(&id, &info.roles, &[]);
            self.allocator.set_framework_constraints(&id, &info.offer_constraints);
            self.allocator.set_framework_min_allocatable(&id, &info.min_allocatable);
            self.allocator.set_framework_active(&id, false);
            self.frameworks.insert(
                id,
                Framework {
                    info,
                    conn: None,
                    registered_at,
                    next_heartbeat: now,
                    failover_deadline: Some(deadline),
                    disconnected_at: Some(disconnected_at),
                    from_report: false,
                    tasks: BTreeMap::new(),
                    offers: BTreeSet::new(),
                },
            );
        }
        let mut gone: Vec<GoneRecord> = records.gone.into_values().collect();
        gone.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        for record in gone {
            let tasks = record
                .tasks
                .into_iter()
                .map(|t| ((t.framework_id, t.task_id), t.role))
                .collect();
            self.gone_order.push_back(record.id.clone());
            self.gone_agents.insert(record.id, GoneAgent { at: record.at, tasks });
        }
        self.forget_oldest_gone();

        let expected = self.agents.len();
        // The fraction is clamped: a bad setting must not hold allocation for ever.
        let fraction = self.config.recovery_agent_fraction.clamp(0.0, 1.0);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let needed = ((expected as f64) * fraction).ceil() as usize;
        if needed > 0 {
            self.recovery = Some(Hold {
                waiting: self.agents.keys().cloned().collect(),
                release_at: expected - needed.min(expected),
                until: now + self.config.recovery_timeout,
            });
        }
    }

    /// Whether allocation is held after a restart; releases the hold once
    /// its time is up.
    pub(super) fn allocation_held(&mut self, now: Timestamp) -> bool {
        match &self.recovery {
            Some(hold) if hold.until <= now => {
                self.recovery = None;
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// When a hold on allocation ends at the latest (`ZERO` when none).
    pub(super) fn allocation_hold_until(&self) -> Timestamp {
        self.recovery.as_ref().map_or(Timestamp::ZERO, |hold| hold.until)
    }

    /// Whether allocation is held after a restart, waiting for agents.
    pub fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// A recovered agent re-registered: the hold ends once enough are back.
    pub(super) fn agent_back(&mut self, agent_id: &AgentId) {
        if let Some(hold) = &mut self.recovery {
            hold.waiting.remove(agent_id);
            if hold.waiting.len() <= hold.release_at {
                self.recovery = None;
                self.request_allocation();
            }
        }
    }

    /// The records changed since the last call, each as it is now (`None`:
    /// deleted), in key order. The driver writes them; a record changed many
    /// times in between is taken once.
    pub fn take_durable_changes(&mut self) -> Vec<DurableChange> {
        std::mem::take(&mut self.durable_dirty)
            .into_iter()
            .map(|key| match key {
                DurableKey::Agent(id) => {
                    let record = self.agent_record(&id);
                    DurableChange::Agent(id, record)
                }
                DurableKey::Framework(id) => {
                    let record = self.frameworks.get(&id).and_then(framework_record);
                    DurableChange::Framework(id, record)
                }
                DurableKey::Gone(id) => {
                    let record = self.gone_agents.get(&id).map(|gone| gone_record(&id, gone));
                    DurableChange::Gone(id, record)
                }
            })
            .collect()
    }

    /// Every record as it is now: what a master restarted at this point
    /// would recover (the fault harness and tests use it).
    pub fn durable_records(&self) -> Records {
        Records {
            agents: self
                .agents
                .keys()
                .filter_map(|id| Some((id.clone(), self.agent_record(id)?)))
                .collect(),
            frameworks: self
                .frameworks
                .iter()
                .filter_map(|(id, f)| Some((id.clone(), framework_record(f)?)))
                .collect(),
            gone: self
                .gone_agents
                .iter()
                .map(|(id, gone)| (id.clone(), gone_record(id, gone)))
                .collect(),
        }
    }

    fn agent_record(&self, id: &AgentId) -> Option<AgentRecord> {
        self.agents.get(id).map(|agent| AgentRecord {
            id: id.clone(),
            hostname: agent.info.hostname.clone(),
            reserved: agent.reserved.clone(),
        })
    }
}

fn framework_record(framework: &Framework) -> Option<FrameworkRecord> {
    (!framework.from_report).then(|| FrameworkRecord {
        info: framework.info.clone(),
        registered_at: framework.registered_at,
        disconnected_at: framework.disconnected_at,
    })
}

fn gone_record(id: &AgentId, gone: &GoneAgent) -> GoneRecord {
    GoneRecord {
        id: id.clone(),
        at: gone.at,
        tasks: gone
            .tasks
            .iter()
            .map(|((framework_id, task_id), role)| GoneTask {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                role: role.clone(),
            })
            .collect(),
    }
}
