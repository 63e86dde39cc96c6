//! Conversions between [`Resources`] and the wire's `repeated pb::Resource`.

use super::{
    BEGIN_AFTER_END, Builder, RangeSet, ResourceError, ResourceKey, Resources, Scalar, Value, check_item, check_name,
    check_role,
};
use crate::pb;

/// Validates every resource: a name, a valid role (`""` and `"*"` mean
/// unreserved), a value; scalars finite and non-negative; ranges with
/// `begin <= end`; one kind per name.
impl TryFrom<Vec<pb::Resource>> for Resources {
    type Error = ResourceError;
    fn try_from(resources: Vec<pb::Resource>) -> Result<Self, ResourceError> {
        from_wire(resources)
    }
}

/// As for `Vec<pb::Resource>`.
impl TryFrom<&[pb::Resource]> for Resources {
    type Error = ResourceError;
    fn try_from(resources: &[pb::Resource]) -> Result<Self, ResourceError> {
        from_wire(resources.iter().cloned())
    }
}

/// One `pb::Resource` per key: scalars, then ranges, then sets.
impl From<&Resources> for Vec<pb::Resource> {
    fn from(r: &Resources) -> Self {
        let scalars = r.scalars.iter().map(|(k, v)| (k.clone(), scalar_to_wire(*v)));
        let ranges = r.ranges.iter().map(|(k, v)| (k.clone(), ranges_to_wire(v)));
        let sets = r.sets.iter().map(|(k, v)| {
            let set = pb::Set {
                item: v.iter().cloned().collect(),
            };
            (k.clone(), pb::resource::Value::Set(set))
        });
        scalars.chain(ranges).chain(sets).map(to_wire).collect()
    }
}

/// One `pb::Resource` per key: scalars, then ranges, then sets.
impl From<Resources> for Vec<pb::Resource> {
    fn from(r: Resources) -> Self {
        let scalars = r.scalars.into_iter().map(|(k, v)| (k, scalar_to_wire(v)));
        let ranges = r.ranges.into_iter().map(|(k, v)| (k, ranges_to_wire(&v)));
        let sets = r.sets.into_iter().map(|(k, v)| {
            let set = pb::Set {
                item: v.into_iter().collect(),
            };
            (k, pb::resource::Value::Set(set))
        });
        scalars.chain(ranges).chain(sets).map(to_wire).collect()
    }
}

fn scalar_to_wire(v: Scalar) -> pb::resource::Value {
    pb::resource::Value::Scalar(v.as_f64())
}

fn ranges_to_wire(r: &RangeSet) -> pb::resource::Value {
    let range = r.iter().map(|(begin, end)| pb::Range { begin, end }).collect();
    pb::resource::Value::Ranges(pb::Ranges { range })
}

fn to_wire((key, value): (ResourceKey, pb::resource::Value)) -> pb::Resource {
    pb::Resource {
        name: key.name.into_owned(),
        value: Some(value),
        reservation: key.reservation.unwrap_or_default(),
    }
}

fn from_wire(resources: impl IntoIterator<Item = pb::Resource>) -> Result<Resources, ResourceError> {
    let mut builder = Builder::default();
    for (index, resource) in resources.into_iter().enumerate() {
        let pb::Resource {
            name,
            value,
            reservation,
        } = resource;
        if name.is_empty() {
            return Err(ResourceError::MissingName { index });
        }
        check_name(&name)?;
        let reservation = match reservation.as_str() {
            "" | "*" => None,
            role => {
                check_role(&name, role)?;
                Some(reservation)
            }
        };
        let value = match value {
            None => return Err(ResourceError::MissingValue { index, name }),
            Some(pb::resource::Value::Scalar(x)) => match Scalar::from_f64(x) {
                Ok(v) => Value::Scalar(v),
                Err(_) => {
                    return Err(ResourceError::InvalidScalar {
                        name,
                        value: x.to_string(),
                    });
                }
            },
            Some(pb::resource::Value::Ranges(ranges)) => {
                let mut checked = Vec::with_capacity(ranges.range.len());
                for pb::Range { begin, end } in ranges.range {
                    if begin > end {
                        return Err(ResourceError::InvalidRange {
                            name,
                            range: format!("{begin}-{end}"),
                            reason: BEGIN_AFTER_END,
                        });
                    }
                    checked.push((begin, end));
                }
                Value::Ranges(RangeSet::normalize(checked))
            }
            Some(pb::resource::Value::Set(set)) => {
                for item in &set.item {
                    check_item(&name, item)?;
                }
                Value::Set(set.item.into_iter().collect())
            }
        };
        let mut key = ResourceKey::new(&name, None);
        key.reservation = reservation;
        builder.insert(key, value)?;
    }
    Ok(builder.resources)
}

#[cfg(test)]
// A panicking test is a failing test; unwrap keeps the assertions short.
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::resources::tests::{arb_resources, parse};

    fn scalar(name: &str, reservation: &str, x: f64) -> pb::Resource {
        pb::Resource {
            name: name.to_owned(),
            value: Some(pb::resource::Value::Scalar(x)),
            reservation: reservation.to_owned(),
        }
    }

    fn ranges(name: &str, ranges: &[(u64, u64)]) -> pb::Resource {
        let range = ranges.iter().map(|&(begin, end)| pb::Range { begin, end }).collect();
        pb::Resource {
            name: name.to_owned(),
            value: Some(pb::resource::Value::Ranges(pb::Ranges { range })),
            reservation: String::new(),
        }
    }

    fn error(wire: Vec<pb::Resource>) -> String {
        Resources::try_from(wire).unwrap_err().to_string()
    }

    #[test]
    fn converts_one_wire_resource_per_key() {
        let r = parse("cpus:0.1;cpus(ads):2;ports:[1-2,4];zones:{a,b}");
        let wire = Vec::<pb::Resource>::from(&r);
        assert_eq!(wire.len(), 4);
        assert_eq!(wire[0], scalar("cpus", "", 0.1));
        assert_eq!(wire[1], scalar("cpus", "ads", 2.0));
        assert_eq!(wire[2], ranges("ports", &[(1, 2), (4, 4)]));
        assert_eq!(wire, Vec::<pb::Resource>::from(r.clone()));
        assert_eq!(Resources::try_from(wire.as_slice()), Ok(r));
    }

    #[test]
    fn wire_values_are_rounded_merged_and_star_is_unreserved() {
        let wire = vec![
            scalar("cpus", "*", 0.1),
            scalar("cpus", "", 0.2),
            scalar("mem", "ads", 0.0),
            ranges("ports", &[(5, 6), (1, 4)]),
            ranges("ports", &[]),
        ];
        assert_eq!(Resources::try_from(wire), Ok(parse("cpus:0.3;ports:[1-6]")));
    }

    #[test]
    fn invalid_wire_resources_are_rejected() {
        assert_eq!(
            error(vec![scalar("cpus", "", 1.0), scalar("", "", 1.0)]),
            "resource #1 has no name"
        );
        let no_value = pb::Resource {
            name: "cpus".to_owned(),
            value: None,
            reservation: String::new(),
        };
        assert_eq!(error(vec![no_value]), r#"resource #0 ("cpus") has no value"#);
        assert_eq!(
            error(vec![scalar("cpus", "", f64::NAN)]),
            r#"invalid scalar "NaN" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error(vec![scalar("cpus", "", -1.0)]),
            r#"invalid scalar "-1" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error(vec![scalar("cpus", "", f64::INFINITY)]),
            r#"invalid scalar "inf" for resource "cpus": expected a non-negative number"#
        );
        assert_eq!(
            error(vec![ranges("ports", &[(1, 2), (9, 3)])]),
            r#"invalid range "9-3" for resource "ports": begin is greater than end"#
        );
        assert_eq!(
            error(vec![ranges("ports", &[(1, 2)]), scalar("ports", "ads", 1.0)]),
            r#"resource "ports" given both as ranges and as a scalar"#
        );
        assert_eq!(
            error(vec![scalar("cpus", "a b", 1.0)]),
            r#"invalid role "a b" for resource "cpus": roles are non-empty and contain no whitespace, '(', ')', ';', ':' or ','"#
        );
        assert!(matches!(
            Resources::try_from(vec![scalar("cpus;", "", 1.0)]),
            Err(ResourceError::InvalidName { .. })
        ));
        let set = pb::Resource {
            name: "zones".to_owned(),
            value: Some(pb::resource::Value::Set(pb::Set {
                item: vec!["a".to_owned(), "b,c".to_owned()],
            })),
            reservation: String::new(),
        };
        assert!(
            matches!(Resources::try_from(vec![set]), Err(ResourceError::InvalidSetItem { item, .. }) if item == "b,c")
        );
    }

    proptest! {
        #[test]
        fn wire_round_trip(r in arb_resources()) {
            prop_assert_eq!(Resources::try_from(Vec::<pb::Resource>::from(&r)), Ok(r.clone()));
            prop_assert_eq!(Resources::try_from(Vec::<pb::Resource>::from(r.clone())), Ok(r));
        }
    }
}
