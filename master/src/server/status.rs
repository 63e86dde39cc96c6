//! The one place where errors become gRPC statuses.

use super::core_loop::{ChangeError, CoreGone};
use super::registry::RegistryError;
use crate::{MasterError, ReservationError};
use agora_proto::ProtoError;
use tonic::Status;

/// Why a service refused a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    /// The request did not validate; the message names the field.
    #[error(transparent)]
    Invalid(#[from] ProtoError),
    /// The master core refused it.
    #[error(transparent)]
    Refused(#[from] MasterError),
    /// The server is shutting down.
    #[error(transparent)]
    Unavailable(#[from] CoreGone),
    /// The registry could not be written, so the change was not made.
    #[error("{0}")]
    NotPersisted(RegistryError),
}

impl From<ChangeError> for ServiceError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Refused(refusal) => Self::Refused(refusal),
            ChangeError::NotPersisted(error) => Self::NotPersisted(error),
        }
    }
}

/// Folds the core loop's answer (it may be gone; the core may refuse) into
/// one service error.
pub(crate) fn answer<T, E: Into<ServiceError>>(reply: Result<Result<T, E>, CoreGone>) -> Result<T, ServiceError> {
    reply?.map_err(Into::into)
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::Invalid(_) => Self::invalid_argument(message),
            ServiceError::NotPersisted(_) => Self::unavailable(format!("nothing changed: {message}")),
            ServiceError::Refused(refusal) => match refusal {
                MasterError::UnknownFramework(_) | MasterError::UnknownAgent(_) | MasterError::UnknownTask(_) => {
                    Self::not_found(message)
                }
                MasterError::AmbiguousTask { .. } => Self::invalid_argument(message),
                MasterError::FrameworkNotSubscribed(_)
                | MasterError::FrameworkRemoved(_)
                | MasterError::ConnectionInUse(_) => Self::failed_precondition(message),
                MasterError::UnknownRole { .. }
                | MasterError::InvalidUpdate { .. }
                | MasterError::InvalidWeight { .. }
                | MasterError::InvalidQuota { .. } => Self::invalid_argument(message),
                MasterError::Reservation { reason, .. } => match *reason {
                    ReservationError::Empty
                    | ReservationError::NoRole(_)
                    | ReservationError::SeveralRoles(_)
                    | ReservationError::InvalidRole(_) => Self::invalid_argument(message),
                    // Well formed, but the agent's state does not allow it.
                    ReservationError::AgentUnreachable
                    | ReservationError::NotReregistered
                    | ReservationError::NotAvailable { .. }
                    | ReservationError::StaticReservation(_)
                    | ReservationError::NotDynamicallyReserved { .. } => Self::failed_precondition(message),
                },
            },
            ServiceError::Unavailable(_) => Self::unavailable(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, FrameworkId, Resources};
    use tonic::Code;

    fn code(error: impl Into<ServiceError>) -> (Code, String) {
        let status = Status::from(error.into());
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn errors_map_to_the_documented_codes() {
        let f = FrameworkId::new("f1").expect("valid id");
        let a = AgentId::new("a1").expect("valid id");
        let cases: Vec<(ServiceError, Code)> = vec![
            (ProtoError::missing("framework_id").into(), Code::InvalidArgument),
            (MasterError::UnknownFramework(f.clone()).into(), Code::NotFound),
            (MasterError::UnknownAgent(a).into(), Code::NotFound),
            (
                MasterError::FrameworkNotSubscribed(f.clone()).into(),
                Code::FailedPrecondition,
            ),
            (
                MasterError::FrameworkRemoved(f.clone()).into(),
                Code::FailedPrecondition,
            ),
            (MasterError::ConnectionInUse(f.clone()).into(), Code::FailedPrecondition),
            (
                MasterError::UnknownRole {
                    framework_id: f.clone(),
                    role: "r".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                MasterError::InvalidUpdate {
                    framework_id: f,
                    reason: "no".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                MasterError::InvalidWeight {
                    field: "weights[0].weight".into(),
                    reason: "no".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                MasterError::InvalidQuota {
                    field: "quotas[0].role".into(),
                    reason: "no".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                MasterError::Reservation {
                    operation: crate::ReservationOperation::Reserve,
                    agent_id: AgentId::new("a1").expect("valid id"),
                    resources: Box::new(Resources::new()),
                    reason: Box::new(ReservationError::Empty),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                MasterError::Reservation {
                    operation: crate::ReservationOperation::Unreserve,
                    agent_id: AgentId::new("a1").expect("valid id"),
                    resources: Box::new(Resources::new()),
                    reason: Box::new(ReservationError::AgentUnreachable),
                }
                .into(),
                Code::FailedPrecondition,
            ),
            (CoreGone.into(), Code::Unavailable),
        ];
        for (error, expected) in cases {
            let description = error.to_string();
            let (actual, message) = code(error);
            assert_eq!(actual, expected, "{description}");
            assert_eq!(message, description);
        }
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let (code, message) = code(ProtoError::missing("framework_info").within("subscribe"));
        assert_eq!(code, Code::InvalidArgument);
        assert!(message.contains("subscribe.framework_info"), "{message}");
    }
}
