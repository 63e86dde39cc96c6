//! Agents as the master sees them ([`AgentInfo`], [`Attributes`]) and the
//! offers it makes of their resources ([`Offer`], [`Operation`]).

use crate::error::ProtoError;
use crate::ids::{AgentId, FrameworkId, OfferId, required_id};
use crate::pb;
use crate::resources::Resources;
use crate::task::TaskInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// `key:value` pairs describing an agent (`rack:r1;zone:a`), used by
/// frameworks to constrain placement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attributes(pub BTreeMap<String, String>);

/// A malformed `--attributes` spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid attribute {entry:?}: {reason}")]
pub struct AttributeError {
    /// The offending `key:value` entry.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Attributes {
    type Err = AttributeError;
    fn from_str(spec: &str) -> Result<Self, AttributeError> {
        let mut map = BTreeMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |reason| AttributeError {
                entry: entry.to_owned(),
                reason,
            };
            let (key, value) = entry.split_once(':').ok_or_else(|| err("expected key:value"))?;
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(err("the key is empty"));
            }
            if map.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(err("the key is given twice"));
            }
        }
        Ok(Self(map))
    }
}

impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}:{v}")?;
        }
        Ok(())
    }
}

impl TryFrom<Vec<pb::Attribute>> for Attributes {
    type Error = ProtoError;
    fn try_from(wire: Vec<pb::Attribute>) -> Result<Self, ProtoError> {
        let mut map = BTreeMap::new();
        for (i, a) in wire.into_iter().enumerate() {
            if a.name.is_empty() {
                return Err(ProtoError::missing(format!("attributes[{i}].name")));
            }
            if map.insert(a.name.clone(), a.value).is_some() {
                return Err(ProtoError::invalid(
                    format!("attributes[{i}].name"),
                    format!("attribute {:?} is given twice", a.name),
                ));
            }
        }
        Ok(Self(map))
    }
}

impl From<&Attributes> for Vec<pb::Attribute> {
    fn from(a: &Attributes) -> Self {
        a.0.iter()
            .map(|(name, value)| pb::Attribute {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }
}

/// What an agent reports about itself when it registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The machine's name.
    pub hostname: String,
    /// Everything it offers to the cluster.
    pub resources: Resources,
    /// Its attributes.
    pub attributes: Attributes,
}

impl TryFrom<pb::AgentInfo> for AgentInfo {
    type Error = ProtoError;
    fn try_from(wire: pb::AgentInfo) -> Result<Self, ProtoError> {
        if wire.hostname.is_empty() {
            return Err(ProtoError::missing("hostname"));
        }
        Ok(Self {
            hostname: wire.hostname,
            resources: Resources::try_from(wire.resources).map_err(|e| ProtoError::resources("resources", e))?,
            attributes: Attributes::try_from(wire.attributes)?,
        })
    }
}

impl From<AgentInfo> for pb::AgentInfo {
    fn from(a: AgentInfo) -> Self {
        Self {
            hostname: a.hostname,
            resources: (&a.resources).into(),
            attributes: (&a.attributes).into(),
        }
    }
}

/// Resources on one agent, offered to one framework for one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The offer.
    pub id: OfferId,
    /// The framework it is made to.
    pub framework_id: FrameworkId,
    /// The agent whose resources these are.
    pub agent_id: AgentId,
    /// The agent's hostname.
    pub hostname: String,
    /// What is offered.
    pub resources: Resources,
    /// The agent's attributes.
    pub attributes: Attributes,
    /// The role the resources are allocated to.
    pub role: String,
}

impl TryFrom<pb::Offer> for Offer {
    type Error = ProtoError;
    fn try_from(wire: pb::Offer) -> Result<Self, ProtoError> {
        Ok(Self {
            id: required_id(wire.id, "id")?,
            framework_id: required_id(wire.framework_id, "framework_id")?,
            agent_id: required_id(wire.agent_id, "agent_id")?,
            hostname: wire.hostname,
            resources: Resources::try_from(wire.resources).map_err(|e| ProtoError::resources("resources", e))?,
            attributes: Attributes::try_from(wire.attributes)?,
            role: wire.role,
        })
    }
}

impl From<Offer> for pb::Offer {
    fn from(o: Offer) -> Self {
        Self {
            id: Some(o.id.into()),
            framework_id: Some(o.framework_id.into()),
            agent_id: Some(o.agent_id.into()),
            hostname: o.hostname,
            resources: (&o.resources).into(),
            attributes: (&o.attributes).into(),
            role: o.role,
        }
    }
}

/// What a framework does with accepted offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Launch tasks on the offers' agent.
    Launch(Vec<TaskInfo>),
    /// Reserve offered unreserved resources for the offer's role: every
    /// resource names that role as its reservation.
    Reserve(Resources),
    /// Unreserve offered reserved resources: every resource names the role
    /// it is reserved for.
    Unreserve(Resources),
}

impl TryFrom<pb::Operation> for Operation {
    type Error = ProtoError;
    fn try_from(wire: pb::Operation) -> Result<Self, ProtoError> {
        match wire.operation {
            None => Err(ProtoError::missing("operation")),
            Some(pb::operation::Operation::Launch(launch)) => {
                let tasks = launch
                    .task_infos
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| TaskInfo::try_from(t).map_err(|e| e.within(&format!("launch.task_infos[{i}]"))))
                    .collect::<Result<_, _>>()?;
                Ok(Self::Launch(tasks))
            }
            Some(pb::operation::Operation::Reserve(reserve)) => Ok(Self::Reserve(
                Resources::try_from(reserve.resources).map_err(|e| ProtoError::resources("reserve.resources", e))?,
            )),
            Some(pb::operation::Operation::Unreserve(unreserve)) => Ok(Self::Unreserve(
                Resources::try_from(unreserve.resources)
                    .map_err(|e| ProtoError::resources("unreserve.resources", e))?,
            )),
        }
    }
}

impl From<Operation> for pb::Operation {
    fn from(op: Operation) -> Self {
        match op {
            Operation::Launch(tasks) => Self {
                operation: Some(pb::operation::Operation::Launch(pb::LaunchOperation {
                    task_infos: tasks.into_iter().map(Into::into).collect(),
                })),
            },
            Operation::Reserve(resources) => Self {
                operation: Some(pb::operation::Operation::Reserve(pb::ReserveOperation {
                    resources: (&resources).into(),
                })),
            },
            Operation::Unreserve(resources) => Self {
                operation: Some(pb::operation::Operation::Unreserve(pb::UnreserveOperation {
                    resources: (&resources).into(),
                })),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_and_format() {
        let a: Attributes = "rack:r1; zone:a".parse().expect("valid");
        assert_eq!(a.to_string(), "rack:r1;zone:a");
        assert_eq!(
            "rack".parse::<Attributes>().expect_err("no colon").to_string(),
            "invalid attribute \"rack\": expected key:value"
        );
        assert!("a:1;a:2".parse::<Attributes>().is_err());
    }

    #[test]
    fn operation_error_names_the_task() {
        let wire = pb::Operation {
            operation: Some(pb::operation::Operation::Launch(pb::LaunchOperation {
                task_infos: vec![pb::TaskInfo::default()],
            })),
        };
        let err = Operation::try_from(wire).expect_err("task without id");
        assert_eq!(err.field, "launch.task_infos[0].task_id");
    }

    #[test]
    fn reserve_and_unreserve_round_trip() {
        let r: Resources = "cpus(ads):1;mem(ads):64".parse().expect("valid");
        for op in [Operation::Reserve(r.clone()), Operation::Unreserve(r.clone())] {
            let wire = pb::Operation::from(op.clone());
            assert_eq!(Operation::try_from(wire).expect("round trip"), op);
        }
        let bad = pb::Operation {
            operation: Some(pb::operation::Operation::Reserve(pb::ReserveOperation {
                resources: vec![pb::Resource::default()],
            })),
        };
        assert_eq!(
            Operation::try_from(bad).expect_err("no name").field,
            "reserve.resources"
        );
    }
}
