//! Pieces of the simulator benchmark that need no clock (the command line
//! times them): a bare event loop on the same queue, and the peak memory of
//! the process.

use crate::queue::EventQueue;
use agora_proto::Timestamp;

/// Pops and pushes `events` events on an [`EventQueue`] holding `pending`
/// events, with no work per event: the engine's floor. Each popped event is
/// re-scheduled a pseudo-random few milliseconds later (xorshift, so the
/// cost is the queue's). Returns a checksum so the loop is not optimised away.
pub fn bare_loop(events: u64, pending: usize) -> u64 {
    let mut q: EventQueue<u64> = EventQueue::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let next = |x: &mut u64| {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    };
    for i in 0..pending as u64 {
        q.push(Timestamp::from_micros(next(&mut x) % 1_000_000), i);
    }
    let mut sum = 0u64;
    for _ in 0..events {
        let Some((at, item)) = q.pop() else { break };
        sum = sum.wrapping_add(item ^ at.as_micros());
        q.push(Timestamp::from_micros(at.as_micros() + next(&mut x) % 5_000), item);
    }
    sum
}

/// Peak resident memory of this process in KiB (`VmHWM` in
/// `/proc/self/status`); `None` where that file does not exist.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_loop_runs_and_memory_is_readable_on_linux() {
        assert_ne!(bare_loop(1000, 100), 0);
        if cfg!(target_os = "linux") {
            assert!(peak_memory_kib().is_some_and(|k| k > 0));
        }
    }
}
