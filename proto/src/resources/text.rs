//! The text form of [`Resources`]: `cpus:4;mem:8GiB;ports:[31000-32000]`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::{
    BEGIN_AFTER_END, Builder, RangeSet, ResourceError, ResourceKey, Resources, Scalar, Value, check_item, check_name,
    check_role,
};

/// The text form, e.g. `cpus:4;mem:8192;ports:[31000-32000]`; empty for no resources.
impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (key, v) in &self.scalars {
            write!(f, "{sep}{key}:{v}")?;
            sep = ";";
        }
        for (key, r) in &self.ranges {
            write!(f, "{sep}{key}:{r}")?;
            sep = ";";
        }
        for (key, s) in &self.sets {
            write!(f, "{sep}{key}:{{")?;
            for (i, item) in s.iter().enumerate() {
                let comma = if i == 0 { "" } else { "," };
                write!(f, "{comma}{item}")?;
            }
            f.write_str("}")?;
            sep = ";";
        }
        Ok(())
    }
}

/// Parses the text form; see the [module documentation](crate::resources).
impl FromStr for Resources {
    type Err = ResourceError;
    fn from_str(s: &str) -> Result<Self, ResourceError> {
        let mut builder = Builder::default();
        for token in s.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, value) = parse_entry(token)?;
            builder.insert(key, value)?;
        }
        Ok(builder.resources)
    }
}

/// Parses one trimmed, non-empty `name[(role)]:value` entry.
fn parse_entry(token: &str) -> Result<(ResourceKey, Value), ResourceError> {
    let malformed = |expected| ResourceError::Malformed {
        token: token.to_owned(),
        expected,
    };
    let (head, value) = token
        .split_once(':')
        .ok_or_else(|| malformed("\"name:value\" or \"name(role):value\""))?;
    let (head, value) = (head.trim(), value.trim());
    let (name, role) = match head.split_once('(') {
        None => (head, None),
        Some((name, rest)) => {
            let role = rest
                .strip_suffix(')')
                .ok_or_else(|| malformed("\"name(role):value\" with a closing ')'"))?;
            (name.trim(), Some(role))
        }
    };
    check_name(name)?;
    if let Some(role) = role {
        check_role(name, role)?;
    }
    let value = if let Some(inner) = value.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| malformed("ranges like \"[31000-32000,33000]\""))?;
        Value::Ranges(parse_ranges(name, inner)?)
    } else if let Some(inner) = value.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| malformed("a set like \"{a,b,c}\""))?;
        Value::Set(parse_set(name, inner)?)
    } else {
        Value::Scalar(parse_scalar(name, value, token)?)
    };
    Ok((ResourceKey::new(name, role), value))
}

fn parse_ranges(name: &str, inner: &str) -> Result<RangeSet, ResourceError> {
    if inner.trim().is_empty() {
        return Ok(RangeSet::new());
    }
    let ranges = inner
        .split(',')
        .map(|range| {
            let range = range.trim();
            let error = |reason| ResourceError::InvalidRange {
                name: name.to_owned(),
                range: range.to_owned(),
                reason,
            };
            let (begin, end) = range.split_once('-').unwrap_or((range, range));
            match (begin.trim().parse(), end.trim().parse()) {
                (Ok(begin), Ok(end)) if begin <= end => Ok((begin, end)),
                (Ok(_), Ok(_)) => Err(error(BEGIN_AFTER_END)),
                _ => Err(error(
                    "expected \"begin-end\" or a single integer, with non-negative integers",
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(RangeSet::normalize(ranges))
}

fn parse_set(name: &str, inner: &str) -> Result<BTreeSet<String>, ResourceError> {
    if inner.trim().is_empty() {
        return Ok(BTreeSet::new());
    }
    inner
        .split(',')
        .map(|item| {
            let item = item.trim();
            check_item(name, item)?;
            Ok(item.to_owned())
        })
        .collect()
}

/// Units of scalars, as (name, numerator, denominator) of their size in MiB.
const UNITS: [(&str, u128, u128); 9] = [
    ("B", 1, 1 << 20),
    ("KB", 1, 1 << 10),
    ("KiB", 1, 1 << 10),
    ("MB", 1, 1),
    ("MiB", 1, 1),
    ("GB", 1 << 10, 1),
    ("GiB", 1 << 10, 1),
    ("TB", 1 << 20, 1),
    ("TiB", 1 << 20, 1),
];

/// Parses `4`, `0.5`, `8GiB`, `1.5 TB`… exactly, rounding to the nearest
/// thousandth (halves up).
fn parse_scalar(name: &str, value: &str, token: &str) -> Result<Scalar, ResourceError> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = (&value[..split], value[split..].trim());
    let invalid = || ResourceError::InvalidScalar {
        name: name.to_owned(),
        value: value.to_owned(),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let (multiplier, divisor) = if unit.is_empty() {
        (1, 1)
    } else {
        let &(_, m, d) = UNITS
            .iter()
            .find(|(u, _, _)| u.eq_ignore_ascii_case(unit))
            .ok_or_else(|| ResourceError::UnknownUnit {
                unit: unit.to_owned(),
                token: token.to_owned(),
            })?;
        (m, d)
    };
    to_milli(int, frac, multiplier, divisor)
        .map(Scalar::from_milli)
        .ok_or_else(invalid)
}

/// `int.frac * multiplier / divisor` in thousandths, rounded half up, or
/// `None` on overflow. `int` and `frac` are ASCII digits.
fn to_milli(int: &str, frac: &str, multiplier: u128, divisor: u128) -> Option<u64> {
    // The value is digits / 10^frac.len(), so
    // milli = digits * 1000 * multiplier / (10^frac.len() * divisor).
    let frac = frac.trim_end_matches('0');
    let digits = int
        .trim_start_matches('0')
        .bytes()
        .chain(frac.bytes())
        .try_fold(0u128, |n, b| n.checked_mul(10)?.checked_add(u128::from(b - b'0')))?;
    let numerator = digits.checked_mul(1000)?.checked_mul(multiplier)?;
    let denominator = 10u128
        .checked_pow(u32::try_from(frac.len()).ok()?)?
        .checked_mul(divisor)?;
    let rounded = numerator.checked_add(denominator / 2)? / denominator;
    u64::try_from(rounded).ok()
}

#[cfg(test)]
// A panicking test is a failing test; unwrap keeps the assertions short.
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::resources::ResourceKind;
    use crate::resources::tests::{arb_resources, parse};

    fn error(text: &str) -> String {
        text.parse::<Resources>().unwrap_err().to_string()
    }

    #[test]
    fn parses_the_mesos_resources_flag() {
        let r = parse("cpus:4;mem:8GiB;disk:10GiB;ports:[31000-32000]");
        assert_eq!(r.cpus(), Scalar::from_units(4));
        assert_eq!(r.mem(), Scalar::from_units(8192));
        assert_eq!(r.disk(), Scalar::from_units(10240));
        assert_eq!(r.ports(), RangeSet::from_ranges([(31000, 32000)]).unwrap());
        assert_eq!(r.to_string(), "cpus:4;disk:10240;mem:8192;ports:[31000-32000]");
    }

    #[test]
    fn units_convert_to_mib() {
        let mem = |text: &str| parse(&format!("mem:{text}")).mem().to_string();
        assert_eq!(mem("512MB"), "512");
        assert_eq!(mem("512MiB"), "512");
        assert_eq!(mem("1536KiB"), "1.5");
        assert_eq!(mem("1536KB"), "1.5");
        assert_eq!(mem("1.5 GiB"), "1536");
        assert_eq!(mem("2gb"), "2048");
        assert_eq!(mem("1TiB"), "1048576");
        assert_eq!(mem("1TB"), "1048576");
        assert_eq!(mem("1048576B"), "1");
        assert_eq!(mem("1024B"), "0.001");
        assert_eq!(mem("512B"), "0");
        assert_eq!(mem("0.0005"), "0.001");
        assert_eq!(mem("0.00049999"), "0");
        assert_eq!(mem(".5"), "0.5");
        assert_eq!(mem("2."), "2");
        assert_eq!(mem("18446744073709551.615"), "18446744073709551.615");
        assert_eq!(parse("gpu_mem:1GiB").scalar("gpu_mem"), Scalar::from_units(1024));
    }

    #[test]
    fn roles_ranges_and_sets() {
        let r =
            parse(" cpus(ads):2 ; mem(ads):1024;cpus(*):1;ports:[80, 443,8000-8009];zones:{ a,b ,c};ports(eng/web):[]");
        assert_eq!(r.reserved("ads"), parse("cpus(ads):2;mem(ads):1024"));
        assert_eq!(r.unreserved().cpus(), Scalar::from_units(1));
        assert_eq!(r.ports().to_string(), "[80-80,443-443,8000-8009]");
        assert_eq!(r.item_set("zones").len(), 3);
        assert_eq!(
            r.to_string(),
            "cpus:1;cpus(ads):2;mem(ads):1024;ports:[80-80,443-443,8000-8009];zones:{a,b,c}"
        );
    }

    #[test]
    fn repeated_entries_add_up() {
        assert_eq!(
            parse("cpus:1;cpus:0.5;ports:[1-2];ports:[3];zones:{a};zones:{b}"),
            parse("cpus:1.5;ports:[1-3];zones:{a,b}")
        );
    }

    #[test]
    fn empty_text_is_empty_resources() {
        assert_eq!(parse(""), Resources::new());
        assert_eq!(parse(" ; ;"), Resources::new());
        assert_eq!(Resources::new().to_string(), "");
    }

    #[test]
    fn bad_scalars_are_rejected_with_the_offending_text() {
        assert_eq!(
            error("cpus:abc"),
            r#"invalid scalar "abc" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error("cpus:-4"),
            r#"invalid scalar "-4" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error("cpus:"),
            r#"invalid scalar "" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error("cpus:1.2.3"),
            r#"invalid scalar "1.2.3" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error("cpus:18446744073709551.616"),
            r#"invalid scalar "18446744073709551.616" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(error("mem:4XB"), r#"unknown unit "XB" in "mem:4XB""#);
        assert_eq!(error("cpus:1;mem:1e3"), r#"unknown unit "e3" in "mem:1e3""#);
        assert_eq!(
            "mem:4XB".parse::<Resources>(),
            Err(ResourceError::UnknownUnit {
                unit: "XB".to_owned(),
                token: "mem:4XB".to_owned()
            })
        );
    }

    #[test]
    fn bad_structure_is_rejected_with_the_offending_text() {
        assert_eq!(
            error("cpus4"),
            r#"malformed resource "cpus4": expected "name:value" or "name(role):value""#
        );
        assert_eq!(
            error("cpus(ads:2"),
            r#"malformed resource "cpus(ads:2": expected "name(role):value" with a closing ')'"#
        );
        assert_eq!(
            error("ports:[1-2"),
            r#"malformed resource "ports:[1-2": expected ranges like "[31000-32000,33000]""#
        );
        assert_eq!(
            error("zones:{a"),
            r#"malformed resource "zones:{a": expected a set like "{a,b,c}""#
        );
        assert_eq!(
            error(":4"),
            r#"invalid resource name "": names are non-empty and use only letters, digits, '_', '.' and '-'"#
        );
        assert_eq!(
            error("cp us:4"),
            r#"invalid resource name "cp us": names are non-empty and use only letters, digits, '_', '.' and '-'"#
        );
        assert_eq!(
            error("cpus(a b):4"),
            r#"invalid role "a b" for resource "cpus": roles are non-empty and contain no whitespace, '(', ')', ';', ':' or ','"#
        );
        assert_eq!(
            "cpus():4".parse::<Resources>(),
            Err(ResourceError::InvalidRole {
                name: "cpus".to_owned(),
                role: String::new()
            })
        );
    }

    #[test]
    fn bad_ranges_and_sets_are_rejected() {
        assert_eq!(
            error("ports:[5-3]"),
            r#"invalid range "5-3" for resource "ports": begin is greater than end"#
        );
        assert_eq!(
            error("ports:[1-2,x]"),
            r#"invalid range "x" for resource "ports": expected "begin-end" or a single integer, with non-negative integers"#
        );
        assert_eq!(
            error("ports:[1-2,]"),
            r#"invalid range "" for resource "ports": expected "begin-end" or a single integer, with non-negative integers"#
        );
        assert_eq!(
            error("zones:{a,,b}"),
            r#"invalid item "" in set resource "zones": items are non-empty and contain no whitespace, ',', ';', '{' or '}'"#
        );
    }

    #[test]
    fn one_name_cannot_have_two_kinds() {
        assert_eq!(
            error("ports:[1-2];ports:4"),
            r#"resource "ports" given both as ranges and as a scalar"#
        );
        assert_eq!(
            error("ports:4;ports(ads):[1-2]"),
            r#"resource "ports" given both as a scalar and as ranges"#
        );
        assert_eq!(
            "zones:{};zones:0".parse::<Resources>(),
            Err(ResourceError::KindConflict {
                name: "zones".to_owned(),
                first: ResourceKind::Set,
                second: ResourceKind::Scalar,
            })
        );
    }

    proptest! {
        #[test]
        fn display_parses_back(r in arb_resources()) {
            prop_assert_eq!(r.to_string().parse::<Resources>(), Ok(r));
        }

        #[test]
        fn any_scalar_parses_back_exactly(milli: u64) {
            let r = Resources::new().with_scalar("mem", Some("eng/web"), Scalar::from_milli(milli));
            prop_assert_eq!(r.to_string().parse::<Resources>(), Ok(r));
        }
    }
}
