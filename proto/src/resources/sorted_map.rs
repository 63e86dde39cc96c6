//! [`SortedMap`]: the map behind [`Resources`](super::Resources).
//!
//! A bag of resources holds a handful of keys (cpus, mem, disk, ports, and a
//! reserved copy or two), and the master adds, subtracts and compares bags on
//! every offer. A `BTreeMap` allocates a node of eleven slots for even one
//! entry and chases pointers to find it; a sorted `Vec` allocates once,
//! keeps the entries next to each other, and an empty one allocates nothing.

use std::borrow::Borrow;

/// A map kept as a `Vec` of entries sorted by key (unique keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct SortedMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub(super) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    /// Inserts or replaces.
    pub(super) fn insert(&mut self, key: K, value: V) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// The value under `key`, inserted with `make` (given the key by
    /// reference, cloned only when missing) if absent.
    pub(super) fn get_or_insert_with<Q: Ord + ?Sized>(
        &mut self,
        key: &Q,
        make_key: impl FnOnce() -> K,
        make: impl FnOnce() -> V,
    ) -> &mut V
    where
        K: Borrow<Q>,
    {
        let i = match self.find(key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (make_key(), make()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub(super) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    #[cfg(test)]
    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Entries already in key order (as iterated from another map), no duplicates.
    pub(super) fn from_sorted(entries: Vec<(K, V)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        Self(entries)
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_unique() {
        let mut m = SortedMap::default();
        m.insert(3, "c");
        m.insert(1, "a");
        m.insert(2, "b");
        m.insert(1, "A");
        assert_eq!(
            m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
            [(1, "A"), (2, "b"), (3, "c")]
        );
        assert_eq!(m.remove(&2), Some("b"));
        assert_eq!(m.get(&2), None);
        *m.get_or_insert_with(&0, || 0, || "z") = "zero";
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [0, 1, 3]);
        assert_eq!(m.get(&0), Some(&"zero"));
        assert_eq!(m.into_iter().collect::<Vec<_>>(), [(0, "zero"), (1, "A"), (3, "c")]);
    }
}
