//! The error every wire-to-domain conversion returns.

use crate::resources::ResourceError;

/// A wire message that cannot become a domain value. `field` is the dotted
/// path of the offending field (`task_infos[2].resources`), so the sender
/// can tell exactly what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {kind}")]
pub struct ProtoError {
    /// Dotted path of the field that is missing or invalid.
    pub field: String,
    /// What is wrong with it.
    pub kind: ProtoErrorKind,
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoErrorKind {
    /// A required field is absent or empty.
    #[error("is required but missing")]
    Missing,
    /// The field is present but its value is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The field holds resources that do not parse.
    #[error(transparent)]
    Resources(#[from] ResourceError),
}

impl ProtoError {
    /// A required field is missing.
    pub fn missing(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: ProtoErrorKind::Missing,
        }
    }

    /// A field holds a value that is not acceptable, for `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: ProtoErrorKind::Invalid(reason.into()),
        }
    }

    /// Resources in `field` failed to validate.
    pub fn resources(field: impl Into<String>, error: ResourceError) -> Self {
        Self {
            field: field.into(),
            kind: ProtoErrorKind::Resources(error),
        }
    }

    /// Prefixes the field path with the enclosing field, as the error
    /// travels up through nested conversions.
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Unwraps a required message field or names it as missing.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ProtoError> {
    value.ok_or_else(|| ProtoError::missing(field))
}
