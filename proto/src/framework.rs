//! Frameworks and roles: who asks for resources, under which roles, and the
//! filters they attach to declines.

use crate::error::ProtoError;
use crate::ids::FrameworkId;
use crate::ids::optional_id;
use crate::offer::Attributes;
use crate::pb;
use crate::resources::{Resources, Scalar};
use crate::time::duration_from_secs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The role of frameworks that name none, as in Mesos.
pub const DEFAULT_ROLE: &str = "*";

/// Checks a role name as Mesos does (`docs/roles.md`): `*`, or one or more
/// `/`-separated components, none empty, `.` or `..`, none starting with
/// `-`, and no whitespace, control characters, `(`, `)`, `;`, `:` or `,`
/// (they would break the resource spec `cpus(role):2`).
pub fn validate_role(role: &str) -> Result<(), String> {
    if role == DEFAULT_ROLE {
        return Ok(());
    }
    if role.is_empty() {
        return Err("a role name must not be empty".to_owned());
    }
    for component in role.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(format!("role {role:?} has an empty, '.' or '..' component"));
        }
        if component.starts_with('-') {
            return Err(format!("role {role:?} has a component starting with '-'"));
        }
        if let Some(c) = component
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || "();:,*".contains(*c))
        {
            return Err(format!("role {role:?} contains the character {c:?}"));
        }
    }
    Ok(())
}

/// Optional behaviours a framework opts into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Capability {
    /// Sees UNREACHABLE, DROPPED, GONE and UNKNOWN instead of LOST.
    PartitionAware,
    /// Sees TASK_KILLING while a kill is in progress.
    TaskKillingState,
}

/// A framework's description of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// Set when re-subscribing with the id the master gave.
    pub id: Option<FrameworkId>,
    /// A name for people.
    pub name: String,
    /// The user its tasks run as by default.
    pub user: String,
    /// The roles it receives offers for; never empty (`*` by default).
    pub roles: Vec<String>,
    /// How long the master keeps its tasks after it disconnects.
    pub failover_timeout: Duration,
    /// Behaviours it opts into.
    pub capabilities: BTreeSet<Capability>,
    /// Where it runs, for people.
    pub hostname: String,
    /// It is only offered agents whose attributes match all of these.
    #[serde(default)]
    pub offer_constraints: Vec<OfferConstraint>,
    /// Per role, alternative minimum quantities (scalars; reservations are
    /// ignored): it is offered an agent for the role only when the offer holds
    /// at least one of them, on top of the master's global minimum (Mesos'
    /// `offer_filters.min_allocatable_resources`). A role with no entry, or an
    /// empty list, has no minimum of its own.
    #[serde(default)]
    pub min_allocatable: BTreeMap<String, Vec<Resources>>,
}

/// An agent attribute that must have this exact value (`rack` equals `r1`);
/// an agent without the attribute does not match.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OfferConstraint {
    /// The attribute's key.
    pub attribute: String,
    /// The value it must have.
    pub equals: String,
}

impl OfferConstraint {
    /// Whether an agent with these attributes satisfies the constraint.
    pub fn matches(&self, attributes: &Attributes) -> bool {
        attributes.0.get(&self.attribute).is_some_and(|v| *v == self.equals)
    }

    /// Whether an agent with these attributes satisfies every constraint.
    pub fn all_match(constraints: &[Self], attributes: &Attributes) -> bool {
        constraints.iter().all(|c| c.matches(attributes))
    }
}

impl FrameworkInfo {
    /// A framework named `name` in the default role, with no failover timeout.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            id: None,
            name: name.into(),
            user: String::new(),
            roles: vec![DEFAULT_ROLE.to_owned()],
            failover_timeout: Duration::ZERO,
            capabilities: BTreeSet::new(),
            hostname: String::new(),
            offer_constraints: Vec::new(),
            min_allocatable: BTreeMap::new(),
        }
    }

    /// Whether the framework opted into `capability`.
    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }
}

/// Checks a role weight: finite and greater than 0.
pub fn validate_weight(weight: f64) -> Result<(), String> {
    if weight.is_finite() && weight > 0.0 {
        Ok(())
    } else {
        Err(format!("a weight must be finite and greater than 0, not {weight}"))
    }
}

/// The (role, weight) pairs of an operator's `UpdateWeights`, checked: each
/// role valid and listed once, each weight finite and greater than 0.
pub fn role_weights_from_wire(wire: Vec<pb::RoleWeight>) -> Result<Vec<(String, f64)>, ProtoError> {
    let mut weights: Vec<(String, f64)> = Vec::with_capacity(wire.len());
    for (i, w) in wire.into_iter().enumerate() {
        validate_role(&w.role).map_err(|reason| ProtoError::invalid(format!("weights[{i}].role"), reason))?;
        validate_weight(w.weight).map_err(|reason| ProtoError::invalid(format!("weights[{i}].weight"), reason))?;
        if weights.iter().any(|(role, _)| *role == w.role) {
            return Err(ProtoError::invalid(
                format!("weights[{i}].role"),
                format!("role {:?} is listed twice", w.role),
            ));
        }
        weights.push((w.role, w.weight));
    }
    Ok(weights)
}

/// A role's quota limit: the most it may hold of each named scalar.
pub type QuotaLimit = BTreeMap<String, Scalar>;

/// A role's quota as an operator sets it: a limit, a guarantee, both, or
/// neither (the role's quota removed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleQuota {
    /// The most the role may hold of each named scalar.
    pub limit: Option<QuotaLimit>,
    /// What each allocation cycle serves the role first (at most the limit).
    pub guarantee: Option<QuotaLimit>,
}

impl RoleQuota {
    /// The first name whose guarantee exceeds the limit, with both values.
    pub fn guarantee_over_limit(&self) -> Option<(&str, Scalar, Scalar)> {
        let (Some(limit), Some(guarantee)) = (&self.limit, &self.guarantee) else {
            return None;
        };
        guarantee
            .iter()
            .find_map(|(name, g)| limit.get(name).filter(|l| g > *l).map(|l| (name.as_str(), *g, *l)))
    }
}

/// The (role, quota) pairs of an operator's `UpdateQuota`, checked: each
/// role valid and listed once; each limit and guarantee entry an unreserved
/// scalar, finite and non-negative, its name listed once; a guarantee at
/// most the limit for every name both list. Empty lists are `None`.
pub fn role_quotas_from_wire(wire: Vec<pb::RoleQuota>) -> Result<Vec<(String, RoleQuota)>, ProtoError> {
    let mut quotas: Vec<(String, RoleQuota)> = Vec::with_capacity(wire.len());
    for (i, q) in wire.into_iter().enumerate() {
        validate_role(&q.role).map_err(|reason| ProtoError::invalid(format!("quotas[{i}].role"), reason))?;
        if quotas.iter().any(|(role, _)| *role == q.role) {
            return Err(ProtoError::invalid(
                format!("quotas[{i}].role"),
                format!("role {:?} is listed twice", q.role),
            ));
        }
        let limit = quota_limit_from_wire(q.limit, &format!("quotas[{i}].limit"))?;
        let guarantee = quota_limit_from_wire(q.guarantee, &format!("quotas[{i}].guarantee"))?;
        let quota = RoleQuota {
            limit: (!limit.is_empty()).then_some(limit),
            guarantee: (!guarantee.is_empty()).then_some(guarantee),
        };
        if let Some((name, g, l)) = quota.guarantee_over_limit() {
            return Err(ProtoError::invalid(
                format!("quotas[{i}].guarantee"),
                format!("the guarantee of {name} ({g}) exceeds the limit ({l})"),
            ));
        }
        quotas.push((q.role, quota));
    }
    Ok(quotas)
}

/// One quota limit from the wire (see [`role_quotas_from_wire`]); `field` names the list.
fn quota_limit_from_wire(wire: Vec<pb::Resource>, field: &str) -> Result<QuotaLimit, ProtoError> {
    let mut limit = QuotaLimit::new();
    for (j, resource) in wire.into_iter().enumerate() {
        let field = format!("{field}[{j}]");
        // Checks the name and the number (zero included, which `Resources` would drop).
        Resources::try_from(vec![resource.clone()]).map_err(|e| ProtoError::resources(field.clone(), e))?;
        let Some(pb::resource::Value::Scalar(value)) = resource.value else {
            return Err(ProtoError::invalid(field, "a quota limit holds scalar resources only"));
        };
        if !matches!(resource.reservation.as_str(), "" | "*") {
            return Err(ProtoError::invalid(
                field,
                "a quota limit names unreserved quantities only",
            ));
        }
        let value = Scalar::from_f64(value)
            .map_err(|_| ProtoError::invalid(field.clone(), format!("invalid scalar {value}")))?;
        if limit.insert(resource.name.clone(), value).is_some() {
            return Err(ProtoError::invalid(
                field,
                format!("resource {:?} is listed twice", resource.name),
            ));
        }
    }
    Ok(limit)
}

/// A quota limit as the wire's `repeated Resource` (zero limits included).
pub fn quota_limit_to_wire(limit: &QuotaLimit) -> Vec<pb::Resource> {
    limit
        .iter()
        .map(|(name, value)| pb::Resource {
            name: name.clone(),
            value: Some(pb::resource::Value::Scalar(value.as_f64())),
            reservation: String::new(),
        })
        .collect()
}

impl TryFrom<pb::FrameworkInfo> for FrameworkInfo {
    type Error = ProtoError;
    fn try_from(wire: pb::FrameworkInfo) -> Result<Self, ProtoError> {
        if wire.name.trim().is_empty() {
            return Err(ProtoError::missing("name"));
        }
        let mut roles = Vec::with_capacity(wire.roles.len().max(1));
        for (i, role) in wire.roles.into_iter().enumerate() {
            validate_role(&role).map_err(|reason| ProtoError::invalid(format!("roles[{i}]"), reason))?;
            if roles.contains(&role) {
                return Err(ProtoError::invalid(
                    format!("roles[{i}]"),
                    format!("role {role:?} is listed twice"),
                ));
            }
            roles.push(role);
        }
        if roles.is_empty() {
            roles.push(DEFAULT_ROLE.to_owned());
        }
        let failover_timeout = duration_from_secs(wire.failover_timeout_seconds).ok_or_else(|| {
            ProtoError::invalid(
                "failover_timeout_seconds",
                format!(
                    "{} is not a non-negative number of seconds",
                    wire.failover_timeout_seconds
                ),
            )
        })?;
        let mut capabilities = BTreeSet::new();
        for (i, raw) in wire.capabilities.into_iter().enumerate() {
            match pb::FrameworkCapability::try_from(raw) {
                Ok(pb::FrameworkCapability::PartitionAware) => capabilities.insert(Capability::PartitionAware),
                Ok(pb::FrameworkCapability::TaskKillingState) => capabilities.insert(Capability::TaskKillingState),
                Ok(pb::FrameworkCapability::CapabilityUnspecified) | Err(_) => {
                    return Err(ProtoError::invalid(
                        format!("capabilities[{i}]"),
                        format!("unknown capability {raw}"),
                    ));
                }
            };
        }
        let mut offer_constraints = Vec::with_capacity(wire.offer_constraints.len());
        for (i, c) in wire.offer_constraints.into_iter().enumerate() {
            if c.attribute.trim().is_empty() {
                return Err(ProtoError::missing(format!("offer_constraints[{i}].attribute")));
            }
            offer_constraints.push(OfferConstraint {
                attribute: c.attribute,
                equals: c.equals,
            });
        }
        let mut min_allocatable = BTreeMap::new();
        for (role, min) in wire.min_allocatable {
            let field = format!("min_allocatable[{role:?}]");
            validate_role(&role).map_err(|reason| ProtoError::invalid(field.clone(), reason))?;
            let mut quantities = Vec::with_capacity(min.quantities.len());
            for (i, quantity) in min.quantities.into_iter().enumerate() {
                let field = format!("{field}.quantities[{i}]");
                let resources = Resources::try_from(quantity.resources)
                    .map_err(|e| ProtoError::resources(format!("{field}.resources"), e))?;
                if resources.ranges().next().is_some() || resources.sets().next().is_some() {
                    return Err(ProtoError::invalid(field, "a minimum holds scalar resources only"));
                }
                quantities.push(resources);
            }
            min_allocatable.insert(role, quantities);
        }
        Ok(Self {
            id: optional_id(wire.id, "id")?,
            name: wire.name,
            user: wire.user,
            roles,
            failover_timeout,
            capabilities,
            hostname: wire.hostname,
            offer_constraints,
            min_allocatable,
        })
    }
}

impl From<FrameworkInfo> for pb::FrameworkInfo {
    fn from(f: FrameworkInfo) -> Self {
        Self {
            id: f.id.map(Into::into),
            name: f.name,
            user: f.user,
            roles: f.roles,
            failover_timeout_seconds: f.failover_timeout.as_secs_f64(),
            capabilities: f
                .capabilities
                .into_iter()
                .map(|c| match c {
                    Capability::PartitionAware => pb::FrameworkCapability::PartitionAware as i32,
                    Capability::TaskKillingState => pb::FrameworkCapability::TaskKillingState as i32,
                })
                .collect(),
            hostname: f.hostname,
            offer_constraints: f
                .offer_constraints
                .into_iter()
                .map(|c| pb::OfferConstraint {
                    attribute: c.attribute,
                    equals: c.equals,
                })
                .collect(),
            min_allocatable: f
                .min_allocatable
                .into_iter()
                .map(|(role, quantities)| {
                    let quantities = quantities
                        .iter()
                        .map(|q| pb::ResourceQuantity { resources: q.into() })
                        .collect();
                    (role, pb::MinAllocatable { quantities })
                })
                .collect(),
        }
    }
}

/// Filters attached to a decline (or to the unused part of an accept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// How long the declined resources are not re-offered to the framework
    /// on that agent.
    pub refuse: Duration,
}

impl Filters {
    /// Mesos' default `refuse_seconds`.
    pub const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
    /// The cap Mesos puts on `refuse_seconds`: 365 days.
    pub const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

    /// Filters refusing for `refuse`, capped at [`Self::MAX_REFUSE`].
    pub fn refuse(refuse: Duration) -> Self {
        Self {
            refuse: refuse.min(Self::MAX_REFUSE),
        }
    }

    /// Converts the wire form: unset or negative means the default, values
    /// above 365 days are capped, NaN is an error.
    pub fn from_wire(wire: Option<pb::Filters>) -> Result<Self, ProtoError> {
        let Some(secs) = wire.and_then(|f| f.refuse_seconds) else {
            return Ok(Self::default());
        };
        if secs.is_nan() {
            return Err(ProtoError::invalid(
                "filters.refuse_seconds",
                "NaN is not a number of seconds",
            ));
        }
        if secs < 0.0 {
            return Ok(Self::default());
        }
        Ok(Self::refuse(duration_from_secs(secs).unwrap_or(Self::MAX_REFUSE)))
    }
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            refuse: Self::DEFAULT_REFUSE,
        }
    }
}

impl From<Filters> for pb::Filters {
    fn from(f: Filters) -> Self {
        Self {
            refuse_seconds: Some(f.refuse.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_validated_like_mesos() {
        assert!(validate_role("*").is_ok());
        assert!(validate_role("eng/backend").is_ok());
        assert!(validate_role("eng//backend").is_err());
        assert!(validate_role("-x").is_err());
        assert!(validate_role("a b").is_err());
        assert!(validate_role("").is_err());
    }

    #[test]
    fn role_quotas_are_checked_and_errors_name_the_field() {
        let scalar = |name: &str, value: f64| pb::Resource {
            name: name.to_owned(),
            value: Some(pb::resource::Value::Scalar(value)),
            reservation: String::new(),
        };
        let q = |role: &str, limit: Vec<pb::Resource>| pb::RoleQuota {
            role: role.to_owned(),
            limit,
            guarantee: vec![],
        };
        let limit: QuotaLimit = [
            ("cpus".to_owned(), Scalar::from_units(10)),
            ("gpus".to_owned(), Scalar::ZERO),
        ]
        .into();
        assert_eq!(
            role_quotas_from_wire(vec![
                q("web", vec![scalar("cpus", 10.0), scalar("gpus", 0.0)]),
                q("*", vec![])
            ]),
            Ok(vec![
                (
                    "web".to_owned(),
                    RoleQuota {
                        limit: Some(limit.clone()),
                        guarantee: None
                    }
                ),
                ("*".to_owned(), RoleQuota::default())
            ])
        );
        let g = |role: &str, limit: Vec<pb::Resource>, guarantee: Vec<pb::Resource>| pb::RoleQuota {
            role: role.to_owned(),
            limit,
            guarantee,
        };
        let six: QuotaLimit = [("cpus".to_owned(), Scalar::from_units(6))].into();
        assert_eq!(
            role_quotas_from_wire(vec![g("g", vec![], vec![scalar("cpus", 6.0)])]),
            Ok(vec![(
                "g".to_owned(),
                RoleQuota {
                    limit: None,
                    guarantee: Some(six)
                }
            )])
        );
        let field = |wire| role_quotas_from_wire(wire).map_err(|e| e.field);
        assert_eq!(
            field(vec![g(
                "g",
                vec![scalar("cpus", 4.0)],
                vec![scalar("mem", 9.0), scalar("cpus", 6.0)]
            )]),
            Err("quotas[0].guarantee".to_owned())
        );
        assert_eq!(
            field(vec![g("g", vec![], vec![scalar("cpus", -1.0)])]),
            Err("quotas[0].guarantee[0]".to_owned())
        );
        assert_eq!(
            quota_limit_to_wire(&limit),
            vec![scalar("cpus", 10.0), scalar("gpus", 0.0)]
        );
        let field = |wire| role_quotas_from_wire(wire).map_err(|e| e.field);
        assert_eq!(field(vec![q("a b", vec![])]), Err("quotas[0].role".to_owned()));
        assert_eq!(
            field(vec![q("web", vec![]), q("web", vec![])]),
            Err("quotas[1].role".to_owned())
        );
        assert_eq!(
            field(vec![q("web", vec![scalar("cpus", 1.0), scalar("mem", -1.0)])]),
            Err("quotas[0].limit[1]".to_owned())
        );
        assert_eq!(
            field(vec![q("web", vec![scalar("cpus", f64::NAN)])]),
            Err("quotas[0].limit[0]".to_owned())
        );
        assert_eq!(
            field(vec![q("web", vec![scalar("cpus", 1.0), scalar("cpus", 2.0)])]),
            Err("quotas[0].limit[1]".to_owned())
        );
        let ports = pb::Resource {
            name: "ports".to_owned(),
            value: Some(pb::resource::Value::Ranges(pb::Ranges::default())),
            reservation: String::new(),
        };
        assert_eq!(field(vec![q("web", vec![ports])]), Err("quotas[0].limit[0]".to_owned()));
        let reserved = pb::Resource {
            reservation: "web".to_owned(),
            ..scalar("cpus", 1.0)
        };
        assert_eq!(
            field(vec![q("web", vec![reserved])]),
            Err("quotas[0].limit[0]".to_owned())
        );
    }

    #[test]
    fn role_weights_are_checked_and_errors_name_the_field() {
        let w = |role: &str, weight: f64| pb::RoleWeight {
            role: role.to_owned(),
            weight,
        };
        assert_eq!(
            role_weights_from_wire(vec![w("web", 2.0), w("*", 0.5)]),
            Ok(vec![("web".to_owned(), 2.0), ("*".to_owned(), 0.5)])
        );
        let field = |wire| role_weights_from_wire(wire).map_err(|e| e.field);
        assert_eq!(
            field(vec![w("web", 1.0), w("a b", 1.0)]),
            Err("weights[1].role".to_owned())
        );
        assert_eq!(field(vec![w("web", 0.0)]), Err("weights[0].weight".to_owned()));
        assert_eq!(field(vec![w("web", -1.0)]), Err("weights[0].weight".to_owned()));
        assert_eq!(field(vec![w("web", f64::NAN)]), Err("weights[0].weight".to_owned()));
        assert_eq!(
            field(vec![w("web", f64::INFINITY)]),
            Err("weights[0].weight".to_owned())
        );
        assert_eq!(
            field(vec![w("web", 1.0), w("web", 2.0)]),
            Err("weights[1].role".to_owned())
        );
    }

    #[test]
    fn framework_without_roles_gets_the_default_role() {
        let info = FrameworkInfo::try_from(pb::FrameworkInfo {
            name: "f".into(),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(info.roles, vec!["*".to_owned()]);
    }

    #[test]
    fn bad_role_names_its_index() {
        let err = FrameworkInfo::try_from(pb::FrameworkInfo {
            name: "f".into(),
            roles: vec!["ok".into(), "bad role".into()],
            ..Default::default()
        })
        .expect_err("invalid role");
        assert_eq!(err.field, "roles[1]");
    }

    #[test]
    fn filters_default_cap_and_negative() {
        assert_eq!(Filters::from_wire(None), Ok(Filters::default()));
        let negative = Some(pb::Filters {
            refuse_seconds: Some(-1.0),
        });
        assert_eq!(Filters::from_wire(negative), Ok(Filters::default()));
        let huge = Some(pb::Filters {
            refuse_seconds: Some(1e12),
        });
        assert_eq!(Filters::from_wire(huge).map(|f| f.refuse), Ok(Filters::MAX_REFUSE));
    }

    #[test]
    fn offer_constraints_round_trip_match_and_need_an_attribute() {
        let constraint = |attribute: &str, equals: &str| pb::OfferConstraint {
            attribute: attribute.to_owned(),
            equals: equals.to_owned(),
        };
        let wire = pb::FrameworkInfo {
            name: "fw".to_owned(),
            offer_constraints: vec![constraint("rack", "r1"), constraint("zone", "a")],
            ..Default::default()
        };
        let info = FrameworkInfo::try_from(wire.clone()).expect("valid");
        assert_eq!(info.offer_constraints.len(), 2);
        assert_eq!(
            pb::FrameworkInfo::from(info.clone()).offer_constraints,
            wire.offer_constraints
        );
        let attrs = |spec: &str| spec.parse::<Attributes>().expect("valid attributes");
        assert!(OfferConstraint::all_match(
            &info.offer_constraints,
            &attrs("rack:r1;zone:a;os:linux")
        ));
        assert!(!OfferConstraint::all_match(
            &info.offer_constraints,
            &attrs("rack:r2;zone:a")
        ));
        assert!(!OfferConstraint::all_match(&info.offer_constraints, &attrs("rack:r1")));
        assert!(OfferConstraint::all_match(&[], &attrs("")));

        let bad = pb::FrameworkInfo {
            offer_constraints: vec![constraint("rack", "r1"), constraint(" ", "x")],
            ..wire
        };
        let err = FrameworkInfo::try_from(bad).expect_err("an empty attribute is refused");
        assert_eq!(err.field, "offer_constraints[1].attribute");
    }

    #[test]
    fn min_allocatable_round_trips_and_errors_name_the_field() {
        let scalar = |name: &str, value: f64| pb::Resource {
            name: name.to_owned(),
            value: Some(pb::resource::Value::Scalar(value)),
            reservation: String::new(),
        };
        let min = |quantities: Vec<Vec<pb::Resource>>| pb::MinAllocatable {
            quantities: quantities
                .into_iter()
                .map(|resources| pb::ResourceQuantity { resources })
                .collect(),
        };
        let wire = pb::FrameworkInfo {
            name: "fw".to_owned(),
            min_allocatable: [(
                "web".to_owned(),
                min(vec![
                    vec![scalar("cpus", 2.0)],
                    vec![scalar("disk", 1.0), scalar("mem", 512.0)],
                ]),
            )]
            .into(),
            ..Default::default()
        };
        let info = FrameworkInfo::try_from(wire.clone()).expect("valid");
        assert_eq!(info.min_allocatable["web"].len(), 2);
        assert_eq!(info.min_allocatable["web"][0], "cpus:2".parse().expect("valid"));
        assert_eq!(pb::FrameworkInfo::from(info).min_allocatable, wire.min_allocatable);

        let field = |role: &str, quantities| {
            FrameworkInfo::try_from(pb::FrameworkInfo {
                min_allocatable: [(role.to_owned(), min(quantities))].into(),
                ..wire.clone()
            })
            .map(|_| ())
            .map_err(|e| e.field)
        };
        assert_eq!(
            field("bad role", vec![vec![scalar("cpus", 1.0)]]),
            Err("min_allocatable[\"bad role\"]".to_owned())
        );
        assert_eq!(
            field("web", vec![vec![scalar("cpus", 1.0)], vec![scalar("cpus", -1.0)]]),
            Err("min_allocatable[\"web\"].quantities[1].resources".to_owned())
        );
        let ports = pb::Resource {
            name: "ports".to_owned(),
            value: Some(pb::resource::Value::Ranges(pb::Ranges {
                range: vec![pb::Range { begin: 1, end: 2 }],
            })),
            reservation: String::new(),
        };
        assert_eq!(
            field("web", vec![vec![ports]]),
            Err("min_allocatable[\"web\"].quantities[0]".to_owned())
        );
    }
}
