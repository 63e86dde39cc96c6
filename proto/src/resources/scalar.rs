//! [`Scalar`]: fixed-point thousandths.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use super::ResourceError;

/// A non-negative scalar with exactly three decimals (fixed point, thousandths), as Mesos rounds.
///
/// Serde represents it as its number of thousandths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scalar(u64);

impl Scalar {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// The largest scalar, 18446744073709551.615.
    pub const MAX: Self = Self(u64::MAX);

    /// The scalar with `milli` thousandths.
    pub const fn from_milli(milli: u64) -> Self {
        Self(milli)
    }

    /// The number of thousandths.
    pub const fn milli(self) -> u64 {
        self.0
    }

    /// A whole number of units (saturating at [`Scalar::MAX`]).
    pub const fn from_units(units: u64) -> Self {
        Self(units.saturating_mul(1000))
    }

    /// Rounds to the nearest thousandth (halves away from zero). Rejects NaN,
    /// infinities, negative numbers and numbers too large for a `u64` of
    /// thousandths. `Scalar::from_f64(s.as_f64()) == Ok(s)` for every `s` below
    /// 2^50 thousandths (about 10^12 units).
    pub fn from_f64(value: f64) -> Result<Self, ResourceError> {
        // 2^64, exactly representable.
        const LIMIT: f64 = 18_446_744_073_709_551_616.0;
        let milli = (value * 1000.0).round();
        if value.is_finite() && value >= 0.0 && milli < LIMIT {
            Ok(Self(milli as u64))
        } else {
            Err(ResourceError::InvalidNumber {
                value: value.to_string(),
            })
        }
    }

    /// The nearest `f64` (exact for up to 2^53 thousandths).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self - other`, or `None` if `other` is larger.
    pub const fn checked_sub(self, other: Self) -> Option<Self> {
        match self.0.checked_sub(other.0) {
            Some(milli) => Some(Self(milli)),
            None => None,
        }
    }

    /// `self - other`, or zero if `other` is larger.
    pub const fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    /// `self + other`, saturating at [`Scalar::MAX`].
    pub const fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

/// Saturates at [`Scalar::MAX`].
impl Add for Scalar {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Scalar {
    fn add_assign(&mut self, rhs: Self) {
        *self = self.saturating_add(rhs);
    }
}

/// Saturates at zero.
impl Sub for Scalar {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        self.saturating_sub(rhs)
    }
}

impl SubAssign for Scalar {
    fn sub_assign(&mut self, rhs: Self) {
        *self = self.saturating_sub(rhs);
    }
}

impl Sum for Scalar {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

/// The shortest exact decimal: `4`, `0.5`, `0.125`.
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (units, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{units}")
        } else if frac % 100 == 0 {
            write!(f, "{units}.{}", frac / 100)
        } else if frac % 10 == 0 {
            write!(f, "{units}.{:02}", frac / 10)
        } else {
            write!(f, "{units}.{frac:03}")
        }
    }
}

#[cfg(test)]
// A panicking test is a failing test; unwrap keeps the assertions short.
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn from_f64_rounds_to_the_nearest_thousandth() {
        let milli = |x: f64| Scalar::from_f64(x).unwrap().milli();
        assert_eq!(milli(0.1), 100);
        assert_eq!(milli(1.2344), 1_234);
        assert_eq!(milli(1.2346), 1_235);
        assert_eq!(milli(0.0004), 0);
        assert_eq!(milli(-0.0), 0);
        assert_eq!(milli(4.0), 4_000);
        assert_eq!(Scalar::from_f64(0.3).unwrap(), Scalar::from_f64(0.1 + 0.2).unwrap());
    }

    #[test]
    fn from_f64_rejects_nan_infinite_negative_and_huge() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -0.001, 1e17] {
            assert!(Scalar::from_f64(x).is_err(), "{x} accepted");
        }
        assert_eq!(
            Scalar::from_f64(-1.5).unwrap_err().to_string(),
            "invalid scalar -1.5: expected a finite non-negative number"
        );
        assert_eq!(
            Scalar::from_f64(f64::NAN),
            Err(ResourceError::InvalidNumber {
                value: "NaN".to_owned()
            })
        );
    }

    #[test]
    fn display_is_the_shortest_exact_decimal() {
        let shown = |milli| Scalar::from_milli(milli).to_string();
        assert_eq!(shown(4_000), "4");
        assert_eq!(shown(500), "0.5");
        assert_eq!(shown(125), "0.125");
        assert_eq!(shown(50), "0.05");
        assert_eq!(shown(1), "0.001");
        assert_eq!(shown(12_340), "12.34");
        assert_eq!(shown(0), "0");
        assert_eq!(Scalar::MAX.to_string(), "18446744073709551.615");
    }

    #[test]
    fn arithmetic_is_exact_and_saturates() {
        let a = Scalar::from_f64(0.1).unwrap();
        let b = Scalar::from_f64(0.2).unwrap();
        assert_eq!(a + b, Scalar::from_milli(300));
        assert_eq!(a - b, Scalar::ZERO);
        assert_eq!(b - a, a);
        assert_eq!(a.checked_sub(b), None);
        assert_eq!(b.checked_sub(a), Some(a));
        assert_eq!(Scalar::MAX + a, Scalar::MAX);
        assert_eq!(Scalar::from_units(3), Scalar::from_milli(3_000));
        let mut c = a;
        c += b;
        c -= a;
        assert_eq!(c, b);
        assert_eq!([a, b, c].into_iter().sum::<Scalar>(), Scalar::from_milli(500));
        assert_eq!(Scalar::from_units(2).as_f64(), 2.0);
    }

    proptest! {
        #[test]
        fn f64_round_trip_is_exact_below_2_pow_50(milli in 0..(1u64 << 50)) {
            let s = Scalar::from_milli(milli);
            prop_assert_eq!(Scalar::from_f64(s.as_f64()), Ok(s));
        }
    }
}
