//! [`RangeSet`]: normalised inclusive integer intervals, such as ports.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ResourceError;

/// Inclusive integer intervals, normalised: sorted, non-overlapping, and with
/// adjacent intervals coalesced (`[1-2],[3-4]` is `[1-4]`), so `==` compares
/// the integers covered.
///
/// Displays Mesos style, `[31000-32000,33000-33000]`; serde represents it as a
/// list of `[begin, end]` pairs and normalises (and validates) on the way in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<(u64, u64)>")]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Normalises the given inclusive `(begin, end)` ranges, in any order,
    /// overlapping or not. A range with `begin > end` is an error.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Result<Self, ResourceError> {
        let ranges = ranges
            .into_iter()
            .map(|(begin, end)| {
                if begin <= end {
                    Ok((begin, end))
                } else {
                    Err(ResourceError::InvertedRange { begin, end })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::normalize(ranges))
    }

    /// Sorts and merges ranges whose `begin <= end` has been checked.
    pub(super) fn normalize(mut ranges: Vec<(u64, u64)>) -> Self {
        ranges.sort_unstable();
        ranges.dedup_by(|next, prev| {
            let touches = next.0 <= prev.1.saturating_add(1);
            if touches {
                prev.1 = prev.1.max(next.1);
            }
            touches
        });
        Self(ranges)
    }

    /// Adds `[begin-end]`; nothing if `begin > end`.
    pub fn insert(&mut self, begin: u64, end: u64) {
        if begin > end {
            return;
        }
        // Ranges in `first..last` overlap or touch the new one.
        let first = self.0.partition_point(|r| r.1.saturating_add(1) < begin);
        let last = self.0.partition_point(|r| r.0 <= end.saturating_add(1));
        let (mut begin, mut end) = (begin, end);
        if first < last {
            begin = begin.min(self.0[first].0);
            end = end.max(self.0[last - 1].1);
        }
        self.0.splice(first..last, [(begin, end)]);
    }

    /// Removes `[begin-end]`; nothing if `begin > end`.
    pub fn remove(&mut self, begin: u64, end: u64) {
        if begin > end {
            return;
        }
        // Ranges in `first..last` overlap the removed one.
        let first = self.0.partition_point(|r| r.1 < begin);
        let last = self.0.partition_point(|r| r.0 <= end);
        if first == last {
            return;
        }
        let head = self.0[first].0;
        let tail = self.0[last - 1].1;
        let left = (head < begin).then(|| (head, begin - 1));
        let right = (tail > end).then(|| (end + 1, tail));
        self.0.splice(first..last, left.into_iter().chain(right));
    }

    /// Whether every integer of `other` is in `self`.
    pub fn contains(&self, other: &Self) -> bool {
        let mut i = 0;
        other.0.iter().all(|&(begin, end)| {
            while self.0.get(i).is_some_and(|r| r.1 < begin) {
                i += 1;
            }
            self.0.get(i).is_some_and(|r| r.0 <= begin && end <= r.1)
        })
    }

    /// The integers in `self` or `other`.
    pub fn union(&self, other: &Self) -> Self {
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            let Some(&(begin, end)) = next else { break };
            match merged.last_mut() {
                Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((begin, end)),
            }
        }
        Self(merged)
    }

    /// Adds every integer of `other` to `self`.
    pub fn union_with(&mut self, other: &Self) {
        match other.0.as_slice() {
            [] => {}
            &[(begin, end)] => self.insert(begin, end),
            _ if self.0.is_empty() => self.0.clone_from(&other.0),
            // Common in the books (the same ports allocated again): no new vector.
            _ if self.contains(other) => {}
            _ => *self = self.union(other),
        }
    }

    /// The integers in `self` but not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        let theirs = &other.0;
        let mut out = Vec::with_capacity(self.0.len());
        let mut j = 0;
        for &(begin, end) in &self.0 {
            while theirs.get(j).is_some_and(|r| r.1 < begin) {
                j += 1;
            }
            // `cur` is the first integer of `[begin-end]` not yet accounted for.
            let mut cur = Some(begin);
            while let (Some(start), Some(&(b, e))) = (cur, theirs.get(j)) {
                if b > end {
                    break;
                }
                if b > start {
                    out.push((start, b - 1));
                }
                if e >= end {
                    // `theirs[j]` may overlap the next range of `self` too.
                    cur = None;
                } else {
                    cur = Some(e + 1);
                    j += 1;
                }
            }
            if let Some(start) = cur {
                out.push((start, end));
            }
        }
        Self(out)
    }

    /// Removes every integer of `other` from `self`.
    pub fn difference_with(&mut self, other: &Self) {
        match other.0.as_slice() {
            [] => {}
            &[(begin, end)] => self.remove(begin, end),
            _ => *self = self.difference(other),
        }
    }

    /// The number of integers covered (saturating at `u64::MAX`).
    pub fn len(&self) -> u64 {
        self.0
            .iter()
            .fold(0, |n: u64, r| n.saturating_add((r.1 - r.0).saturating_add(1)))
    }

    /// Whether no integer is covered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The inclusive `(begin, end)` ranges, ascending.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, u64)> + '_ {
        self.0.iter().copied()
    }

    /// The `n` smallest integers (say, `n` ports to give a task), or `None`
    /// if there are fewer than `n`.
    pub fn take_first(&self, n: u64) -> Option<Self> {
        let mut left = n;
        let mut taken = Vec::new();
        for &(begin, end) in &self.0 {
            if left == 0 {
                break;
            }
            let size = (end - begin).saturating_add(1);
            if size <= left {
                taken.push((begin, end));
                left -= size;
            } else {
                taken.push((begin, begin + (left - 1)));
                left = 0;
            }
        }
        (left == 0).then_some(Self(taken))
    }
}

impl TryFrom<Vec<(u64, u64)>> for RangeSet {
    type Error = ResourceError;
    fn try_from(ranges: Vec<(u64, u64)>) -> Result<Self, ResourceError> {
        Self::from_ranges(ranges)
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (begin, end)) in self.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{begin}-{end}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
// A panicking test is a failing test; unwrap keeps the assertions short.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn set(ranges: &[(u64, u64)]) -> RangeSet {
        RangeSet::from_ranges(ranges.iter().copied()).unwrap()
    }

    /// The integers covered.
    fn model(r: &RangeSet) -> BTreeSet<u64> {
        r.iter().flat_map(|(begin, end)| begin..=end).collect()
    }

    fn is_normalized(r: &RangeSet) -> bool {
        r.0.iter().all(|&(begin, end)| begin <= end) && r.0.windows(2).all(|w| w[0].1.saturating_add(1) < w[1].0)
    }

    fn arb_ranges() -> impl Strategy<Value = Vec<(u64, u64)>> {
        prop::collection::vec((0..60u64, 0..8u64).prop_map(|(begin, len)| (begin, begin + len)), 0..6)
    }

    #[test]
    fn from_ranges_sorts_merges_and_coalesces_adjacent() {
        let r = set(&[(10, 12), (5, 6), (1, 2), (3, 4), (11, 20), (22, 22)]);
        assert_eq!(r.iter().collect::<Vec<_>>(), [(1, 6), (10, 20), (22, 22)]);
        assert_eq!(r.len(), 18);
        assert_eq!(r, set(&[(22, 22), (1, 6), (10, 20)]));
        assert_eq!(
            RangeSet::from_ranges([(1, 2), (5, 3)]),
            Err(ResourceError::InvertedRange { begin: 5, end: 3 })
        );
        assert_eq!(
            RangeSet::from_ranges([(5, 3)]).unwrap_err().to_string(),
            "invalid range [5-3]: begin is greater than end"
        );
    }

    #[test]
    fn display_is_mesos_style() {
        assert_eq!(
            set(&[(31000, 32000), (33000, 33000)]).to_string(),
            "[31000-32000,33000-33000]"
        );
        assert_eq!(set(&[(80, 80)]).to_string(), "[80-80]");
        assert_eq!(RangeSet::new().to_string(), "[]");
    }

    #[test]
    fn insert_and_remove_split_and_merge() {
        let mut r = set(&[(1, 3), (10, 12)]);
        r.insert(4, 9);
        assert_eq!(r, set(&[(1, 12)]));
        r.remove(5, 6);
        assert_eq!(r, set(&[(1, 4), (7, 12)]));
        r.remove(0, 1);
        r.remove(12, 100);
        assert_eq!(r, set(&[(2, 4), (7, 11)]));
        r.insert(6, 5);
        r.remove(9, 8);
        assert_eq!(r, set(&[(2, 4), (7, 11)]));
        r.remove(0, u64::MAX);
        assert!(r.is_empty());
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut r = set(&[(u64::MAX - 1, u64::MAX), (0, 0)]);
        r.insert(1, u64::MAX - 2);
        assert_eq!(r, set(&[(0, u64::MAX)]));
        assert_eq!(r.len(), u64::MAX);
        r.remove(u64::MAX, u64::MAX);
        r.remove(0, 0);
        assert_eq!(r, set(&[(1, u64::MAX - 1)]));
        assert_eq!(r.take_first(2), Some(set(&[(1, 2)])));
        assert!(set(&[(0, u64::MAX)]).contains(&r));
        assert_eq!(
            set(&[(0, u64::MAX)]).difference(&r),
            set(&[(0, 0), (u64::MAX, u64::MAX)])
        );
    }

    #[test]
    fn difference_and_contains() {
        let ports = set(&[(31000, 32000)]);
        let used = set(&[(30000, 31000), (31500, 31599), (32000, 40000)]);
        assert_eq!(ports.difference(&used), set(&[(31001, 31499), (31600, 31999)]));
        assert!(ports.contains(&set(&[(31000, 31000), (31999, 32000)])));
        assert!(!ports.contains(&set(&[(31999, 32001)])));
        assert!(!set(&[(1, 2), (4, 5)]).contains(&set(&[(2, 4)])));
        assert!(ports.contains(&RangeSet::new()));
    }

    #[test]
    fn take_first_takes_the_lowest_integers() {
        let r = set(&[(80, 80), (443, 443), (8000, 8009)]);
        assert_eq!(r.take_first(0), Some(RangeSet::new()));
        assert_eq!(r.take_first(3), Some(set(&[(80, 80), (443, 443), (8000, 8000)])));
        assert_eq!(r.take_first(12), Some(r.clone()));
        assert_eq!(r.take_first(13), None);
    }

    proptest! {
        #[test]
        fn from_ranges_covers_exactly_its_inputs(ranges in arb_ranges()) {
            let r = set(&ranges);
            prop_assert!(is_normalized(&r));
            let expected: BTreeSet<u64> = ranges.iter().flat_map(|&(b, e)| b..=e).collect();
            prop_assert_eq!(model(&r), expected);
        }

        #[test]
        fn operations_agree_with_a_set_of_integers(
            a in arb_ranges(), b in arb_ranges(), lo in 0..70u64, hi in 0..70u64, n in 0..40u64,
        ) {
            let (a, b) = (set(&a), set(&b));
            let (ma, mb) = (model(&a), model(&b));

            let union = a.union(&b);
            prop_assert!(is_normalized(&union));
            prop_assert_eq!(model(&union), &ma | &mb);
            let mut in_place = a.clone();
            in_place.union_with(&b);
            prop_assert_eq!(&in_place, &union);

            let difference = a.difference(&b);
            prop_assert!(is_normalized(&difference));
            prop_assert_eq!(model(&difference), &ma - &mb);
            let mut in_place = a.clone();
            in_place.difference_with(&b);
            prop_assert_eq!(&in_place, &difference);

            prop_assert_eq!(a.contains(&b), mb.is_subset(&ma));
            prop_assert_eq!(a.len(), ma.len() as u64);
            prop_assert_eq!(a.is_empty(), ma.is_empty());

            let span: BTreeSet<u64> = (lo..=hi).collect();
            let mut inserted = a.clone();
            inserted.insert(lo, hi);
            prop_assert!(is_normalized(&inserted));
            prop_assert_eq!(model(&inserted), &ma | &span);
            let mut removed = a.clone();
            removed.remove(lo, hi);
            prop_assert!(is_normalized(&removed));
            prop_assert_eq!(model(&removed), &ma - &span);

            let first = a.take_first(n);
            prop_assert_eq!(first.is_some(), n <= a.len());
            if let Some(first) = first {
                prop_assert!(is_normalized(&first));
                prop_assert_eq!(model(&first), ma.iter().copied().take(n as usize).collect::<BTreeSet<_>>());
            }
        }
    }
}
