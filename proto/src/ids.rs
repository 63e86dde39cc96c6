//! Typed identifiers. Each wraps a non-empty string; the wire form is a
//! message with one `value` field, as in Mesos.
//!
//! The text is shared (`Arc<str>`): the master copies ids into every offer,
//! allocation, event and index, and a copy is then a reference count, not an
//! allocation.

use crate::error::ProtoError;
use crate::pb;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps `value`; it must be non-empty and printable, see [`validate_id`].
            pub fn new(value: impl Into<String>) -> Result<Self, ProtoError> {
                let value = value.into();
                validate_id(&value).map_err(|reason| ProtoError::invalid("value", reason))?;
                Ok(Self(Arc::from(value)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<pb::$name> for $name {
            type Error = ProtoError;
            fn try_from(wire: pb::$name) -> Result<Self, ProtoError> {
                Self::new(wire.value)
            }
        }

        impl From<$name> for pb::$name {
            fn from(id: $name) -> Self {
                Self { value: id.0.to_string() }
            }
        }

        impl From<&$name> for pb::$name {
            fn from(id: &$name) -> Self {
                Self { value: id.0.to_string() }
            }
        }

        /// As its text.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        /// From its text, checked as [`new`](Self::new) checks it.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                validate_id(&text).map_err(serde::de::Error::custom)?;
                Ok(Self(Arc::from(text)))
            }
        }
    };
}

id!(
    /// A framework, assigned by the master at its first subscription.
    FrameworkId
);
id!(
    /// An agent, assigned by the master at its first registration.
    AgentId
);
id!(
    /// An offer, assigned by the master.
    OfferId
);
id!(
    /// A task, chosen by its framework; unique among the framework's tasks.
    TaskId
);

/// Longest id accepted, to bound what a client can make the master store.
pub const MAX_ID_LEN: usize = 255;

/// Checks an id's text: non-empty, at most [`MAX_ID_LEN`] bytes, no control
/// characters and no `/` (ids name sandbox directories).
pub fn validate_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!("is {} bytes long; at most {MAX_ID_LEN} allowed", value.len()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || *c == '/') {
        return Err(format!(
            "{value:?} contains the character {c:?}, which ids may not hold"
        ));
    }
    if value == "." || value == ".." {
        return Err(format!("{value:?} is not a valid id"));
    }
    Ok(())
}

/// Converts an optional wire id field into a typed id, naming `field` when
/// it is missing or invalid.
pub(crate) fn required_id<W, D>(value: Option<W>, field: &str) -> Result<D, ProtoError>
where
    D: TryFrom<W, Error = ProtoError>,
{
    match value {
        None => Err(ProtoError::missing(field)),
        Some(wire) => D::try_from(wire).map_err(|e| e.within(field)),
    }
}

/// Like [`required_id`] for a field that may be absent.
pub(crate) fn optional_id<W, D>(value: Option<W>, field: &str) -> Result<Option<D>, ProtoError>
where
    D: TryFrom<W, Error = ProtoError>,
{
    value
        .map(|wire| D::try_from(wire).map_err(|e| e.within(field)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_id_names_the_field() {
        let err = required_id::<pb::TaskId, TaskId>(Some(pb::TaskId { value: String::new() }), "task_id")
            .expect_err("empty id must be rejected");
        assert_eq!(err.field, "task_id.value");
        assert_eq!(err.to_string(), "field `task_id.value`: must not be empty");
    }

    #[test]
    fn missing_id_is_missing() {
        let err = required_id::<pb::AgentId, AgentId>(None, "agent_id").expect_err("missing");
        assert_eq!(err, ProtoError::missing("agent_id"));
    }

    #[test]
    fn slash_and_dots_are_rejected() {
        assert!(TaskId::new("a/b").is_err());
        assert!(TaskId::new("..").is_err());
        assert!(TaskId::new("task-1.x").is_ok());
    }
}
