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
    /// How long an unreachable agent may stay away before the master gives
    /// up on it: its tasks become TASK_GONE and, if it ever comes back, it
    /// is told to kill them. Mesos keeps unreachable agents for
    /// `--registry_max_agent_age` (14 days) and never declares their tasks
    /// gone on its own; 15 minutes is Mesos' agent recovery timeout, the
    /// longest a restarting agent is expected to take.
    pub agent_unreachable_timeout: Duration,
    /// At most this many agents are marked unreachable per period (Mesos'
    /// `--agent_removal_rate_limit`, e.g. `1/1mins`); agents past their
    /// deadline wait in a queue. Off by default, as in Mesos.
    pub agent_removal_rate_limit: Option<RateLimit>,
    /// After a restart, allocation waits until this fraction of the agents
    /// the registry lists have re-registered (Mesos' `AGENT_RECOVERY_FACTOR`,
    /// 0.8), so that quota and shares are not judged on a cluster that looks
    /// nearly empty. Clamped to `0..=1`; 0 does not wait.
    pub recovery_agent_fraction: f64,
    /// ... or until this long after the restart (Mesos'
    /// `ALLOCATION_HOLD_OFF_RECOVERY_TIMEOUT`, 10 minutes).
    pub recovery_timeout: Duration,
}

/// A number of permits per period, as Mesos writes it: `1/1mins`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Permits per period (at least 1).
    pub permits: u32,
    /// The period (not zero).
    pub per: Duration,
}

impl RateLimit {
    /// The time between two permits: the period spread evenly.
    pub fn spacing(&self) -> Duration {
        self.per / self.permits.max(1)
    }
}

/// Why a rate limit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// Not of the form `N/DURATION`.
    #[error("expected PERMITS/DURATION (e.g. 1/1mins), got {0:?}")]
    Format(String),
    /// The permit count is not a positive integer.
    #[error("the number of permits must be a positive integer, got {0:?}")]
    Permits(String),
    /// The period is not a duration or is zero.
    #[error("the period must be a non-zero duration, got {0:?}")]
    Period(String),
}

impl std::str::FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (permits, per) = s.split_once('/').ok_or_else(|| RateLimitError::Format(s.to_owned()))?;
        let permits: u32 = match permits.trim().parse() {
            Ok(n) if n > 0 => n,
            _ => return Err(RateLimitError::Permits(permits.to_owned())),
        };
        let per = parse_period(per.trim()).ok_or_else(|| RateLimitError::Period(per.to_owned()))?;
        Ok(Self { permits, per })
    }
}

/// `30secs`, `1mins`, `2hrs`, `1days` (Mesos' spellings), also `30s`, `1m`,
/// `2h`, `1d`; a plain number is seconds. Zero is refused.
fn parse_period(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hr" | "hrs" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(unit_secs)?;
    (secs > 0).then(|| Duration::from_secs(secs))
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
            agent_unreachable_timeout: Duration::from_secs(15 * 60),
            agent_removal_rate_limit: None,
            recovery_agent_fraction: 0.8,
            recovery_timeout: Duration::from_secs(10 * 60),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_as_mesos_writes_them() {
        let one_a_minute = RateLimit {
            permits: 1,
            per: Duration::from_secs(60),
        };
        assert_eq!("1/1mins".parse(), Ok(one_a_minute));
        assert_eq!("1/60".parse(), Ok(one_a_minute));
        assert_eq!("1/1m".parse(), Ok(one_a_minute));
        let ten = "10/2hrs".parse::<RateLimit>().map(|r| r.spacing());
        assert_eq!(ten, Ok(Duration::from_secs(720)));
    }

    #[test]
    fn bad_rate_limits_are_refused_with_the_reason() {
        assert!(matches!("1mins".parse::<RateLimit>(), Err(RateLimitError::Format(_))));
        assert!(matches!(
            "0/1mins".parse::<RateLimit>(),
            Err(RateLimitError::Permits(_))
        ));
        assert!(matches!(
            "x/1mins".parse::<RateLimit>(),
            Err(RateLimitError::Permits(_))
        ));
        assert!(matches!("1/0mins".parse::<RateLimit>(), Err(RateLimitError::Period(_))));
        assert!(matches!(
            "1/1weeks".parse::<RateLimit>(),
            Err(RateLimitError::Period(_))
        ));
    }
}
