//! [`Resources`]: named cpus, mem, disk, ports… with exact arithmetic.
//!
//! Semantics follow Mesos (`include/mesos/resources.hpp`):
//!
//! - A resource is keyed by its name *and* its reservation (the role it is
//!   reserved for, or none: unreserved, written `*`). `cpus` and `cpus(ads)`
//!   are different resources: [`Resources::contains`] and subtraction match on
//!   both; [`Resources::scalar`] and [`Resources::ports`] sum over reservations.
//! - Scalars are fixed point with three decimals ([`Scalar`]), so sums and
//!   differences are exact; the wire carries a `double` that is rounded once.
//! - Ranges ([`RangeSet`], e.g. ports) and sets add by union and subtract by
//!   difference. Unlike scalars they are not a group: `(a + b) - b == a` only
//!   holds when `b`'s ranges and set items are disjoint from `a`'s, as they are
//!   for offered versus allocated ports.
//! - Subtraction ([`Resources::saturating_sub`], `-`) removes what is present
//!   and never goes negative; [`Resources::checked_sub`] refuses unless the
//!   right side is [contained](Resources::contains).
//! - Zero scalars, empty ranges and empty sets are never stored, so `==` means
//!   "the same resources".
//!
//! # Text form
//!
//! [`Resources`] parses and prints the Mesos `--resources` syntax:
//! `cpus:4;mem:8GiB;ports:[31000-32000];cpus(ads):2;zones:{a,b,c}`.
//!
//! - Entries are `name[(role)]:value`, separated by `;` (whitespace around
//!   separators and empty entries are ignored). Role `*` means unreserved.
//! - Names are non-empty and use only `A-Z a-z 0-9 _ . -`. Roles are non-empty
//!   and contain no whitespace and none of `( ) ; : ,` (so `eng/backend` is fine).
//! - Values are a scalar (`4`, `0.5`), ranges (`[31000-32000,33000]`, a single
//!   value `[80]` meaning `[80-80]`) or a set (`{a,b}`; items are non-empty and
//!   contain no whitespace and none of `, ; { }`).
//! - A scalar may carry a byte unit, converted to MiB (the unit of mem and
//!   disk): `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, matched without
//!   regard to case; `MB` means MiB, as in Mesos. Units are accepted on every
//!   scalar (a custom `gpu_mem:8GiB` works too); a unit-less number is taken as
//!   is. Decimals are parsed exactly and rounded to the nearest thousandth.
//! - The same name and reservation given twice adds up; the same name given as
//!   two kinds (`ports:4;ports:[1-2]`) is an error.
//!
//! [`Display`](fmt::Display) prints scalars first, then ranges, then sets,
//! each in name then reservation order, with scalars as plain numbers
//! (`mem:8192`); its output parses back to an equal value. Serde uses this same
//! text form for [`Resources`].

mod range_set;
mod scalar;
mod sorted_map;
mod text;
mod wire;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use range_set::RangeSet;
pub use scalar::Scalar;
use sorted_map::SortedMap;

/// Why resources (text or wire) were rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// [`Scalar::from_f64`] got NaN, an infinity, a negative number, or a
    /// number of thousandths that does not fit in a `u64`.
    #[error("invalid scalar {value}: expected a finite non-negative number")]
    InvalidNumber {
        /// The number, as Rust prints an `f64`.
        value: String,
    },
    /// [`RangeSet::from_ranges`] got a range whose begin is after its end.
    #[error("invalid range [{begin}-{end}]: begin is greater than end")]
    InvertedRange {
        /// The range's first value.
        begin: u64,
        /// The range's last value.
        end: u64,
    },
    /// A text entry is not `name[(role)]:value`, or its ranges or set miss
    /// their closing bracket.
    #[error("malformed resource \"{token}\": expected {expected}")]
    Malformed {
        /// The offending entry, as written.
        token: String,
        /// What the parser was looking for.
        expected: &'static str,
    },
    /// A resource name is empty or has a character outside `A-Za-z0-9_.-`.
    #[error("invalid resource name \"{name}\": names are non-empty and use only letters, digits, '_', '.' and '-'")]
    InvalidName {
        /// The offending name.
        name: String,
    },
    /// A role is empty or contains whitespace or one of `( ) ; : ,`.
    #[error(
        "invalid role \"{role}\" for resource \"{name}\": roles are non-empty and contain no whitespace, '(', ')', ';', ':' or ','"
    )]
    InvalidRole {
        /// The resource the role was given for.
        name: String,
        /// The offending role.
        role: String,
    },
    /// A scalar is not a non-negative decimal number (or overflows), or is
    /// NaN, infinite or negative on the wire.
    #[error("invalid scalar \"{value}\" for resource \"{name}\": expected a non-negative number")]
    InvalidScalar {
        /// The resource the scalar was given for.
        name: String,
        /// The offending value, as written (or as Rust prints the `f64`).
        value: String,
    },
    /// A scalar in text carries a unit other than B, KB, KiB, MB, MiB, GB,
    /// GiB, TB, TiB.
    #[error("unknown unit \"{unit}\" in \"{token}\"")]
    UnknownUnit {
        /// The offending unit.
        unit: String,
        /// The whole entry, as written.
        token: String,
    },
    /// One range of a ranges value is not `begin-end` or a single integer,
    /// or its begin is after its end.
    #[error("invalid range \"{range}\" for resource \"{name}\": {reason}")]
    InvalidRange {
        /// The resource the range was given for.
        name: String,
        /// The offending range, as written (`begin-end` on the wire).
        range: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A set item is empty or contains whitespace or one of `, ; { }`.
    #[error(
        "invalid item \"{item}\" in set resource \"{name}\": items are non-empty and contain no whitespace, ',', ';', '{{' or '}}'"
    )]
    InvalidSetItem {
        /// The resource the set was given for.
        name: String,
        /// The offending item.
        item: String,
    },
    /// The same resource name was given as two different kinds.
    #[error("resource \"{name}\" given both as {first} and as {second}")]
    KindConflict {
        /// The resource name.
        name: String,
        /// The kind it was given as first.
        first: ResourceKind,
        /// The conflicting kind it was given as later.
        second: ResourceKind,
    },
    /// A wire resource has an empty name.
    #[error("resource #{index} has no name")]
    MissingName {
        /// Zero-based position in the wire list.
        index: usize,
    },
    /// A wire resource has no value (none of scalar, ranges, set).
    #[error("resource #{index} (\"{name}\") has no value")]
    MissingValue {
        /// Zero-based position in the wire list.
        index: usize,
        /// The resource's name.
        name: String,
    },
}

/// The kind of a resource's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    /// A [`Scalar`] such as cpus or mem.
    Scalar,
    /// A [`RangeSet`] such as ports.
    Ranges,
    /// A set of strings.
    Set,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scalar => "a scalar",
            Self::Ranges => "ranges",
            Self::Set => "a set",
        })
    }
}

/// Role a resource is reserved for; None means unreserved ("*").
pub type Reservation = Option<String>;

/// What identifies a resource within [`Resources`]: its name and reservation.
///
/// Orders by name, then unreserved before reserved, then by role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    /// The resource name, such as `cpus`. The well-known names are borrowed
    /// from static strings ([`ResourceKey::new`] does it), so that copying
    /// resources, which the master does on every offer, allocates nothing
    /// for them.
    pub name: Cow<'static, str>,
    /// The role it is reserved for, or `None` if unreserved (this crate
    /// never builds `Some("*")`).
    pub reservation: Reservation,
}

impl ResourceKey {
    /// A key; a reservation of `Some("*")` means unreserved, like `None`.
    pub fn new(name: &str, reservation: Option<&str>) -> Self {
        Self {
            name: intern(name),
            reservation: reservation.filter(|r| *r != "*").map(str::to_owned),
        }
    }

    /// The role, if reserved.
    pub fn role(&self) -> Option<&str> {
        self.reservation.as_deref()
    }
}

/// The well-known names borrowed, any other copied.
fn intern(name: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 5] = [
        Resources::CPUS,
        Resources::MEM,
        Resources::DISK,
        Resources::PORTS,
        Resources::GPUS,
    ];
    match KNOWN.iter().find(|known| **known == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

/// Byte order, as `str`'s, written out: names are a few bytes and usually
/// differ in the first, where calling `memcmp` would cost more than the work.
fn compare_names(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for ResourceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_names(&self.name, &other.name).then_with(|| self.reservation.cmp(&other.reservation))
    }
}

impl PartialOrd for ResourceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `cpus` or `cpus(ads)`.
impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reservation {
            None => f.write_str(&self.name),
            Some(role) => write!(f, "{}({role})", self.name),
        }
    }
}

/// A bag of named resources: scalars (cpus, mem in MiB, disk in MiB, gpus…),
/// ranges (ports) and sets, each keyed by name and reservation.
///
/// See the [module documentation](self) for the semantics and the text form.
/// Values built through the typed API are not validated: names, roles and set
/// items that the text form forbids, or one name used with two kinds, are
/// kept as given, but then [`Display`](fmt::Display) does not parse back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    scalars: SortedMap<ResourceKey, Scalar>,
    ranges: SortedMap<ResourceKey, RangeSet>,
    sets: SortedMap<ResourceKey, BTreeSet<String>>,
}

impl Resources {
    /// CPUs (scalar).
    pub const CPUS: &str = "cpus";
    /// Memory in MiB (scalar).
    pub const MEM: &str = "mem";
    /// Disk in MiB (scalar).
    pub const DISK: &str = "disk";
    /// GPUs (scalar).
    pub const GPUS: &str = "gpus";
    /// Ports (ranges).
    pub const PORTS: &str = "ports";

    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are no resources at all.
    pub fn is_empty(&self) -> bool {
        self.scalars.is_empty() && self.ranges.is_empty() && self.sets.is_empty()
    }

    /// Adds a scalar (nothing if zero). A reservation of `Some("*")` means unreserved.
    pub fn add_scalar(&mut self, name: &str, reservation: Option<&str>, value: Scalar) {
        self.insert(ResourceKey::new(name, reservation), Value::Scalar(value));
    }

    /// Adds ranges (nothing if empty). A reservation of `Some("*")` means unreserved.
    pub fn add_ranges(&mut self, name: &str, reservation: Option<&str>, ranges: RangeSet) {
        self.insert(ResourceKey::new(name, reservation), Value::Ranges(ranges));
    }

    /// Adds set items (nothing if empty). A reservation of `Some("*")` means unreserved.
    pub fn add_set(&mut self, name: &str, reservation: Option<&str>, items: BTreeSet<String>) {
        self.insert(ResourceKey::new(name, reservation), Value::Set(items));
    }

    /// [`add_scalar`](Self::add_scalar), builder style.
    #[must_use]
    pub fn with_scalar(mut self, name: &str, reservation: Option<&str>, value: Scalar) -> Self {
        self.add_scalar(name, reservation, value);
        self
    }

    /// [`add_ranges`](Self::add_ranges), builder style.
    #[must_use]
    pub fn with_ranges(mut self, name: &str, reservation: Option<&str>, ranges: RangeSet) -> Self {
        self.add_ranges(name, reservation, ranges);
        self
    }

    /// [`add_set`](Self::add_set), builder style.
    #[must_use]
    pub fn with_set(mut self, name: &str, reservation: Option<&str>, items: BTreeSet<String>) -> Self {
        self.add_set(name, reservation, items);
        self
    }

    fn insert(&mut self, key: ResourceKey, value: Value) {
        match value {
            Value::Scalar(v) if v.is_zero() => {}
            Value::Scalar(v) => match self.scalars.get_mut(&key) {
                Some(mine) => *mine += v,
                None => self.scalars.insert(key, v),
            },
            Value::Ranges(r) if r.is_empty() => {}
            Value::Ranges(r) => match self.ranges.get_mut(&key) {
                Some(mine) => mine.union_with(&r),
                None => {
                    self.ranges.insert(key, r);
                }
            },
            Value::Set(s) if s.is_empty() => {}
            Value::Set(mut s) => match self.sets.get_mut(&key) {
                Some(mine) => mine.append(&mut s),
                None => {
                    self.sets.insert(key, s);
                }
            },
        }
    }

    /// The scalar `name`, summed over every reservation (zero if absent).
    pub fn scalar(&self, name: &str) -> Scalar {
        self.scalars
            .iter()
            .filter(|(k, _)| k.name == name)
            .map(|(_, &v)| v)
            .sum()
    }

    /// [`scalar`](Self::scalar)`("cpus")`.
    pub fn cpus(&self) -> Scalar {
        self.scalar(Self::CPUS)
    }

    /// [`scalar`](Self::scalar)`("mem")`, in MiB.
    pub fn mem(&self) -> Scalar {
        self.scalar(Self::MEM)
    }

    /// [`scalar`](Self::scalar)`("disk")`, in MiB.
    pub fn disk(&self) -> Scalar {
        self.scalar(Self::DISK)
    }

    /// The ranges `name`, united over every reservation (empty if absent).
    pub fn range_set(&self, name: &str) -> RangeSet {
        let mut all = RangeSet::new();
        for (_, r) in self.ranges.iter().filter(|(k, _)| k.name == name) {
            all.union_with(r);
        }
        all
    }

    /// [`range_set`](Self::range_set)`("ports")`.
    pub fn ports(&self) -> RangeSet {
        self.range_set(Self::PORTS)
    }

    /// The set `name`, united over every reservation (empty if absent).
    pub fn item_set(&self, name: &str) -> BTreeSet<String> {
        self.sets
            .iter()
            .filter(|(k, _)| k.name == name)
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }

    /// Adds `other` to `self`: scalars add, ranges and sets unite.
    pub fn add(&mut self, other: &Self) {
        for (key, &v) in &other.scalars {
            *self.scalars.get_or_insert_with(key, || key.clone(), Scalar::default) += v;
        }
        for (key, r) in &other.ranges {
            match self.ranges.get_mut(key) {
                Some(mine) => mine.union_with(r),
                None => self.ranges.insert(key.clone(), r.clone()),
            }
        }
        for (key, s) in &other.sets {
            match self.sets.get_mut(key) {
                Some(mine) => mine.extend(s.iter().cloned()),
                None => self.sets.insert(key.clone(), s.clone()),
            }
        }
    }

    /// Removes from `self` what `other` has under the same key, without going
    /// below zero; what `self` lacks is ignored.
    fn remove(&mut self, other: &Self) {
        for (key, &v) in &other.scalars {
            if let Some(mine) = self.scalars.get_mut(key) {
                *mine -= v;
                if mine.is_zero() {
                    self.scalars.remove(key);
                }
            }
        }
        for (key, r) in &other.ranges {
            if let Some(mine) = self.ranges.get_mut(key) {
                mine.difference_with(r);
                if mine.is_empty() {
                    self.ranges.remove(key);
                }
            }
        }
        for (key, s) in &other.sets {
            if let Some(mine) = self.sets.get_mut(key) {
                for item in s {
                    mine.remove(item);
                }
                if mine.is_empty() {
                    self.sets.remove(key);
                }
            }
        }
    }

    /// Whether every resource of `other` is within `self` under the same key
    /// (name and reservation): scalars no larger, ranges and sets subsets.
    pub fn contains(&self, other: &Self) -> bool {
        other
            .scalars
            .iter()
            .all(|(k, v)| self.scalars.get(k).is_some_and(|mine| mine >= v))
            && other
                .ranges
                .iter()
                .all(|(k, r)| self.ranges.get(k).is_some_and(|mine| mine.contains(r)))
            && other
                .sets
                .iter()
                .all(|(k, s)| self.sets.get(k).is_some_and(|mine| mine.is_superset(s)))
    }

    /// `self - other` if `self` [contains](Self::contains) `other`, else `None`.
    pub fn checked_sub(&self, other: &Self) -> Option<Self> {
        self.contains(other).then(|| self.saturating_sub(other))
    }

    /// `self` without what `other` has under the same key: scalars subtract
    /// down to zero at most, ranges and sets lose `other`'s elements.
    #[must_use]
    pub fn saturating_sub(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.remove(other);
        out
    }

    /// The resources whose key satisfies `keep`.
    pub fn filter(&self, mut keep: impl FnMut(&ResourceKey) -> bool) -> Self {
        fn pick<V: Clone>(
            map: &SortedMap<ResourceKey, V>,
            keep: &mut impl FnMut(&ResourceKey) -> bool,
        ) -> SortedMap<ResourceKey, V> {
            SortedMap::from_sorted(
                map.iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        }
        Self {
            scalars: pick(&self.scalars, &mut keep),
            ranges: pick(&self.ranges, &mut keep),
            sets: pick(&self.sets, &mut keep),
        }
    }

    /// The same resources, every one re-keyed to `reservation` (`None` or
    /// `Some("*")`: unreserved); equal keys merge.
    pub fn with_reservation(&self, reservation: Option<&str>) -> Self {
        let mut out = Self::new();
        for (key, value) in self.scalars() {
            out.add_scalar(&key.name, reservation, value);
        }
        for (key, ranges) in self.ranges() {
            out.add_ranges(&key.name, reservation, ranges.clone());
        }
        for (key, items) in self.sets() {
            out.add_set(&key.name, reservation, items.clone());
        }
        out
    }

    /// The unreserved (`*`) resources.
    pub fn unreserved(&self) -> Self {
        self.filter(|k| k.reservation.is_none())
    }

    /// The resources reserved for `role` (exactly; no role hierarchy).
    pub fn reserved(&self, role: &str) -> Self {
        self.filter(|k| k.role() == Some(role))
    }

    /// What a framework in `role` may be offered: the unreserved resources
    /// plus those reserved for `role`.
    pub fn allocatable_to(&self, role: &str) -> Self {
        self.filter(|k| k.role().is_none_or(|r| r == role))
    }

    /// The scalars, by key.
    pub fn scalars(&self) -> impl Iterator<Item = (&ResourceKey, Scalar)> {
        self.scalars.iter().map(|(k, &v)| (k, v))
    }

    /// The ranges, by key.
    pub fn ranges(&self) -> impl Iterator<Item = (&ResourceKey, &RangeSet)> {
        self.ranges.iter()
    }

    /// The sets, by key.
    pub fn sets(&self) -> impl Iterator<Item = (&ResourceKey, &BTreeSet<String>)> {
        self.sets.iter()
    }

    /// The distinct names of the scalar resources, ascending (the resources
    /// DRF computes shares of).
    pub fn scalar_names(&self) -> impl Iterator<Item = &str> {
        let mut previous: Option<&str> = None;
        self.scalars.keys().filter_map(move |k| {
            let name: &str = &k.name;
            (previous != Some(name)).then(|| {
                previous = Some(name);
                name
            })
        })
    }
}

impl AddAssign<&Self> for Resources {
    fn add_assign(&mut self, rhs: &Self) {
        Self::add(self, rhs);
    }
}

/// Moves `rhs`'s entries rather than cloning them.
impl AddAssign for Resources {
    fn add_assign(&mut self, rhs: Self) {
        let scalars = rhs.scalars.into_iter().map(|(k, v)| (k, Value::Scalar(v)));
        let ranges = rhs.ranges.into_iter().map(|(k, v)| (k, Value::Ranges(v)));
        let sets = rhs.sets.into_iter().map(|(k, v)| (k, Value::Set(v)));
        for (key, value) in scalars.chain(ranges).chain(sets) {
            self.insert(key, value);
        }
    }
}

impl Add<&Self> for Resources {
    type Output = Self;
    fn add(mut self, rhs: &Self) -> Self {
        self += rhs;
        self
    }
}

impl Add for Resources {
    type Output = Self;
    fn add(mut self, rhs: Self) -> Self {
        self += rhs;
        self
    }
}

impl Add for &Resources {
    type Output = Resources;
    fn add(self, rhs: Self) -> Resources {
        self.clone() + rhs
    }
}

/// Saturating, like [`Resources::saturating_sub`].
impl SubAssign<&Self> for Resources {
    fn sub_assign(&mut self, rhs: &Self) {
        self.remove(rhs);
    }
}

impl SubAssign for Resources {
    fn sub_assign(&mut self, rhs: Self) {
        self.remove(&rhs);
    }
}

impl Sub<&Self> for Resources {
    type Output = Self;
    fn sub(mut self, rhs: &Self) -> Self {
        self.remove(rhs);
        self
    }
}

impl Sub for Resources {
    type Output = Self;
    fn sub(mut self, rhs: Self) -> Self {
        self.remove(&rhs);
        self
    }
}

impl Sub for &Resources {
    type Output = Resources;
    fn sub(self, rhs: Self) -> Resources {
        self.saturating_sub(rhs)
    }
}

impl Sum for Resources {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::new(), |acc, r| acc + r)
    }
}

impl<'a> Sum<&'a Self> for Resources {
    fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        iter.fold(Self::new(), |acc, r| acc + r)
    }
}

/// As the text form (a string), validated on the way in.
impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A validated resource value.
enum Value {
    Scalar(Scalar),
    Ranges(RangeSet),
    Set(BTreeSet<String>),
}

impl Value {
    const fn kind(&self) -> ResourceKind {
        match self {
            Self::Scalar(_) => ResourceKind::Scalar,
            Self::Ranges(_) => ResourceKind::Ranges,
            Self::Set(_) => ResourceKind::Set,
        }
    }
}

/// Accumulates validated entries, rejecting a name given as two kinds (even
/// when one of them is zero or empty, and so not stored).
#[derive(Default)]
struct Builder {
    resources: Resources,
    kinds: BTreeMap<String, ResourceKind>,
}

impl Builder {
    fn insert(&mut self, key: ResourceKey, value: Value) -> Result<(), ResourceError> {
        let second = value.kind();
        match self.kinds.get(key.name.as_ref()) {
            Some(&first) if first != second => {
                return Err(ResourceError::KindConflict {
                    name: key.name.into_owned(),
                    first,
                    second,
                });
            }
            Some(_) => {}
            None => {
                self.kinds.insert(key.name.to_string(), second);
            }
        }
        self.resources.insert(key, value);
        Ok(())
    }
}

const BEGIN_AFTER_END: &str = "begin is greater than end";

fn check_name(name: &str) -> Result<(), ResourceError> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if !name.is_empty() && name.chars().all(valid) {
        Ok(())
    } else {
        Err(ResourceError::InvalidName { name: name.to_owned() })
    }
}

fn check_role(name: &str, role: &str) -> Result<(), ResourceError> {
    let invalid = |c: char| c.is_whitespace() || matches!(c, '(' | ')' | ';' | ':' | ',');
    if role.is_empty() || role.contains(invalid) {
        Err(ResourceError::InvalidRole {
            name: name.to_owned(),
            role: role.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_item(name: &str, item: &str) -> Result<(), ResourceError> {
    let invalid = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | '{' | '}');
    if item.is_empty() || item.contains(invalid) {
        Err(ResourceError::InvalidSetItem {
            name: name.to_owned(),
            item: item.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
// A panicking test is a failing test; unwrap keeps the assertions short.
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Resources with a few names, some reserved to roles: four scalars,
    /// `ports` ranges and a `zones` set.
    pub(super) fn arb_resources() -> impl Strategy<Value = Resources> {
        let role = || prop::sample::select(vec![None, Some("ads"), Some("batch")]);
        let scalar = (
            prop::sample::select(vec!["cpus", "mem", "disk", "gpus"]),
            role(),
            0..50_000u64,
        )
            .prop_map(|(name, role, milli)| Resources::new().with_scalar(name, role, Scalar::from_milli(milli)));
        let ranges = (role(), prop::collection::vec((0..300u64, 0..20u64), 0..4)).prop_map(|(role, ranges)| {
            let ranges = RangeSet::from_ranges(ranges.into_iter().map(|(begin, len)| (begin, begin + len)));
            Resources::new().with_ranges("ports", role, ranges.unwrap())
        });
        let items = prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c", "d"]), 0..4);
        let sets = (role(), items).prop_map(|(role, items)| {
            Resources::new().with_set("zones", role, items.into_iter().map(str::to_owned).collect())
        });
        prop::collection::vec(prop_oneof![3 => scalar, 1 => ranges, 1 => sets], 0..8)
            .prop_map(|parts| parts.into_iter().sum())
    }

    pub(super) fn parse(text: &str) -> Resources {
        text.parse().unwrap()
    }

    /// No zero scalar, empty ranges or empty set is stored.
    fn assert_canonical(r: &Resources) {
        assert!(r.scalars.values().all(|v| !v.is_zero()), "zero scalar in {r:?}");
        assert!(r.ranges.values().all(|v| !v.is_empty()), "empty ranges in {r:?}");
        assert!(r.sets.values().all(|v| !v.is_empty()), "empty set in {r:?}");
    }

    /// `b` without the range and set elements of `a`.
    fn without_discrete_of(b: &Resources, a: &Resources) -> Resources {
        let discrete = Resources {
            scalars: SortedMap::default(),
            ranges: a.ranges.clone(),
            sets: a.sets.clone(),
        };
        b - &discrete
    }

    #[test]
    fn addition_sums_scalars_and_unites_ranges_and_sets() {
        let a = parse("cpus:1.5;ports:[1-5];zones:{a}");
        let b = parse("cpus:2.25;cpus(ads):1;ports:[6-8,10];zones:{b}");
        assert_eq!(&a + &b, parse("cpus:3.75;cpus(ads):1;ports:[1-8,10];zones:{a,b}"));
        let mut c = a.clone();
        // `c.add(..)` would pick `Add::add`, which is in scope here.
        Resources::add(&mut c, &b);
        let mut d = a.clone();
        d += &b;
        assert_eq!(c, d);
        assert_eq!(c, a + b);
    }

    #[test]
    fn subtraction_saturates_and_drops_what_reaches_zero() {
        let a = parse("cpus:2;mem:100;ports:[1-10];zones:{a,b}");
        let b = parse("cpus:3;mem:40;disk:5;ports:[3-4];zones:{a,c};cpus(ads):1");
        assert_eq!(&a - &b, parse("mem:60;ports:[1-2,5-10];zones:{b}"));
        assert_eq!(a.saturating_sub(&a), Resources::new());
        assert!((&a - &a).is_empty());
        assert_eq!(a.checked_sub(&b), None);
        assert_eq!(
            a.checked_sub(&parse("cpus:0.5;ports:[10]")),
            Some(parse("cpus:1.5;mem:100;ports:[1-9];zones:{a,b}"))
        );
    }

    #[test]
    fn contains_matches_name_and_reservation() {
        let a = parse("cpus:2;cpus(ads):1;ports(ads):[1-10]");
        assert!(a.contains(&parse("cpus:2;cpus(ads):1")));
        assert!(!a.contains(&parse("cpus(ads):2")));
        assert!(!a.contains(&parse("cpus(batch):0.001")));
        assert!(!a.contains(&parse("ports:[1]")));
        assert!(a.contains(&parse("ports(ads):[2-3,9]")));
        assert!(!a.contains(&parse("ports(ads):[10-11]")));
        assert!(a.contains(&Resources::new()));
    }

    #[test]
    fn zero_and_empty_values_are_not_stored() {
        let r = Resources::new()
            .with_scalar("cpus", None, Scalar::ZERO)
            .with_ranges("ports", None, RangeSet::new())
            .with_set("zones", None, BTreeSet::new());
        assert!(r.is_empty());
        assert_eq!(r, Resources::default());
        assert_eq!(parse("cpus:0;ports:[];zones:{}"), Resources::new());
    }

    #[test]
    fn star_reservation_means_unreserved() {
        let r = Resources::new().with_scalar("cpus", Some("*"), Scalar::from_units(1));
        assert_eq!(r, parse("cpus:1"));
        assert_eq!(parse("cpus(*):1"), parse("cpus:1"));
    }

    #[test]
    fn lookups_sum_over_reservations() {
        let r = parse(
            "cpus:1;cpus(ads):2;cpus(batch):0.5;mem:1024;disk:10;ports:[1-3];ports(ads):[4-5,9];zones:{a};zones(ads):{b}",
        );
        assert_eq!(r.cpus(), Scalar::from_milli(3_500));
        assert_eq!(r.mem(), Scalar::from_units(1024));
        assert_eq!(r.disk(), Scalar::from_units(10));
        assert_eq!(r.scalar("gpus"), Scalar::ZERO);
        assert_eq!(r.ports().to_string(), "[1-5,9-9]");
        assert_eq!(r.item_set("zones"), BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(r.scalar_names().collect::<Vec<_>>(), ["cpus", "disk", "mem"]);
    }

    #[test]
    fn reservation_filters() {
        let r = parse("cpus:1;cpus(ads):2;cpus(batch):4;ports(ads):[1-2];zones:{a}");
        assert_eq!(r.unreserved(), parse("cpus:1;zones:{a}"));
        assert_eq!(r.reserved("ads"), parse("cpus(ads):2;ports(ads):[1-2]"));
        assert_eq!(r.reserved("nobody"), Resources::new());
        assert_eq!(
            r.allocatable_to("ads"),
            parse("cpus:1;cpus(ads):2;ports(ads):[1-2];zones:{a}")
        );
        assert_eq!(r.allocatable_to("batch").cpus(), Scalar::from_units(5));
    }

    #[test]
    fn iterators_are_ordered_by_name_then_reservation() {
        let r = parse("mem:1;cpus(ads):2;cpus:1");
        let keys: Vec<String> = r.scalars().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["cpus=1", "cpus(ads)=2", "mem=1"]);
        assert_eq!(r.ranges().count() + r.sets().count(), 0);
    }

    #[test]
    fn serde_uses_the_text_form() {
        use serde::de::IntoDeserializer;
        let text: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            "cpus(ads):2; mem:1GiB".into_deserializer();
        assert_eq!(Resources::deserialize(text).unwrap(), parse("cpus(ads):2;mem:1024"));
        let bad: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = "cpus:x".into_deserializer();
        let error = Resources::deserialize(bad).unwrap_err().to_string();
        assert_eq!(
            error,
            r#"invalid scalar "x" for resource "cpus": expected a non-negative number"#
        );
    }

    proptest! {
        #[test]
        fn adding_then_subtracting_is_identity_when_discrete_parts_are_disjoint(a in arb_resources(), b in arb_resources()) {
            let b = without_discrete_of(&b, &a);
            prop_assert_eq!((a.clone() + &b) - &b, a);
        }

        #[test]
        fn adding_then_subtracting_scalars_is_identity(a in arb_resources(), b in arb_resources()) {
            let b = b.filter(|k| !matches!(k.name.as_ref(), "ports" | "zones"));
            prop_assert_eq!(&(&a + &b) - &b, a);
        }

        #[test]
        fn a_sum_contains_its_terms(a in arb_resources(), b in arb_resources()) {
            let sum = &a + &b;
            prop_assert!(sum.contains(&a));
            prop_assert!(sum.contains(&b));
            prop_assert_eq!(&sum, &(b + a));
            assert_canonical(&sum);
        }

        #[test]
        fn checked_sub_succeeds_exactly_when_contained(a in arb_resources(), b in arb_resources()) {
            let sum = &a + &b;
            let unreserved = a.unreserved();
            for (x, y) in [(&a, &b), (&b, &a), (&sum, &a), (&sum, &b), (&a, &unreserved)] {
                let difference = x.checked_sub(y);
                prop_assert_eq!(difference.is_some(), x.contains(y));
                if let Some(difference) = difference {
                    assert_canonical(&difference);
                    prop_assert_eq!(&(difference + y), x);
                }
            }
        }

        #[test]
        fn saturating_sub_stays_within_the_minuend(a in arb_resources(), b in arb_resources()) {
            let difference = a.saturating_sub(&b);
            assert_canonical(&difference);
            prop_assert!(a.contains(&difference));
            prop_assert_eq!(&difference, &(a.clone() - b.clone()));
            let mut in_place = a.clone();
            in_place -= &b;
            prop_assert_eq!(&in_place, &difference);
        }

        #[test]
        fn filters_partition_by_reservation(a in arb_resources()) {
            let reserved = a.reserved("ads") + a.reserved("batch");
            prop_assert_eq!(a.unreserved() + &reserved, a.clone());
            prop_assert_eq!(a.allocatable_to("ads"), a.unreserved() + a.reserved("ads"));
        }
    }
}
