//! The event queue: a binary heap ordered by (time, sequence number), so
//! events at the same instant come out in the order they were scheduled and
//! a run never depends on how the heap breaks ties.

use agora_proto::Timestamp;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A min-queue of `T` by virtual time, FIFO among equal times.
#[derive(Debug)]
pub struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    at: Timestamp,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> EventQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `item` at `at`.
    pub fn push(&mut self, at: Timestamp, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, item });
    }

    /// The earliest event, removed.
    pub fn pop(&mut self) -> Option<(Timestamp, T)> {
        self.heap.pop().map(|e| (e.at, e.item))
    }

    /// When the earliest event is due.
    pub fn peek_time(&self) -> Option<Timestamp> {
        self.heap.peek().map(|e| e.at)
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Events ever scheduled.
    pub const fn scheduled(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(Timestamp::from_secs(2), "c");
        q.push(Timestamp::from_secs(1), "a");
        q.push(Timestamp::from_secs(2), "d");
        q.push(Timestamp::from_secs(1), "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, x)| x)).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
        assert_eq!(q.scheduled(), 4);
    }
}
