//! Reconnection delays: exponential, capped, with jitter supplied by the
//! caller (so this stays pure and testable).

use std::time::Duration;

/// Exponential backoff between reconnection attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// Half a second, doubling up to 30 seconds.
    pub const DEFAULT: Self = Self {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    /// The delay before retry number `attempt` (0 for the first), with
    /// `jitter` in `[0, 1)` picking a point in the upper half of the
    /// exponential step ("equal jitter"): never shorter than half the step,
    /// so a crowd of frameworks spreads out without hammering a master.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let step = self
            .initial
            .checked_mul(2u32.saturating_pow(attempt.min(31)))
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        step.mul_f64(0.5 + 0.5 * jitter)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_millis(750));
        assert_eq!(b.delay(1, f64::NAN), Duration::from_millis(100));
    }
}
