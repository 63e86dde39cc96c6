//! Settings of the master core.

use crate::allocator::DrfConfig;
use std::time::Duration;

/// Settings of the master core. The defaults are Mesos'.
#[derive(Clone, Debug, PartialEq)]
pub struct MasterConfig {
    /// This master's id; it prefixes every id the master makes.
    pub master_id: String,
    /// How often frameworks get a HEARTBEAT event.
    pub heartbeat_interval: Duration,
    /// How often agents are pinged.
    pub agent_ping_interval: Duration,
    /// Pings an agent may miss before it is marked unreachable.
    pub max_missed_pings: u32,
    /// Allocation runs at most once per interval, batching the events that
    /// trigger it.
    pub allocation_interval: Duration,
    /// Settings of the DRF allocator.
    pub drf: DrfConfig,
    /// Ended tasks kept for the operator API.
    pub max_completed_tasks: usize,
    /// An offer outstanding longer than this is rescinded and its resources
    /// go back to the allocator (off by default, as in Mesos).
    pub offer_timeout: Option<Duration>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            master_id: "master".to_owned(),
            heartbeat_interval: Duration::from_secs(15),
            agent_ping_interval: Duration::from_secs(15),
            max_missed_pings: 5,
            allocation_interval: Duration::from_secs(1),
            drf: DrfConfig::default(),
            max_completed_tasks: 1000,
            offer_timeout: None,
        }
    }
}

impl MasterConfig {
    /// How long an agent may stay silent or disconnected before it is
    /// marked unreachable.
    pub fn agent_timeout(&self) -> Duration {
        self.agent_ping_interval * self.max_missed_pings
    }
}
