//! How a master that is not the leader points callers at the one that is.
//!
//! With several masters (`agora master --etcd ...`), only the elected leader
//! serves. Every other master answers every gRPC call with `UNAVAILABLE` and
//! the leader's address (`host:port`) in the [`LEADER_METADATA`] trailer
//! (absent while no leader is known); Mesos' HTTP API gets a
//! `307 Temporary Redirect` to the leader, as Mesos answers. Clients (the SDK
//! driver, the agent, the CLI) take a list of masters and, told of a leader,
//! go there next.

/// The gRPC metadata key that carries the leader's address.
pub const LEADER_METADATA: &str = "agora-leader";

/// The answer of a master that is not the leader: `UNAVAILABLE`, saying
/// where the leader is when it is known.
#[cfg(feature = "grpc")]
pub fn not_leader(leader: Option<&str>) -> tonic::Status {
    let Some(leader) = leader else {
        return tonic::Status::unavailable("this master is not the leader, and no leader is elected yet");
    };
    let mut status = tonic::Status::unavailable(format!("this master is not the leader; the leader is at {leader}"));
    if let Ok(value) = leader.parse() {
        status.metadata_mut().insert(LEADER_METADATA, value);
    }
    status
}

/// The leader's address a refusal names, if it is one.
#[cfg(feature = "grpc")]
pub fn leader_hint(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let value = status.metadata().get(LEADER_METADATA)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// How every refusal of [`not_leader`] begins, with or without a leader.
#[cfg(feature = "grpc")]
const NOT_LEADER_PREFIX: &str = "this master is not the leader";

/// Whether `status` is a refusal of [`not_leader`], with or without a
/// leader named: clients tell "no leader is elected yet" (wait and retry)
/// apart from a master that is down or failing.
#[cfg(feature = "grpc")]
pub fn is_not_leader(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        && (leader_hint(status).is_some() || status.message().starts_with(NOT_LEADER_PREFIX))
}

#[cfg(all(test, feature = "grpc"))]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_leader_and_only_unavailable_counts() {
        let status = not_leader(Some("10.0.0.2:5050"));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(leader_hint(&status).as_deref(), Some("10.0.0.2:5050"));
        assert!(status.message().contains("10.0.0.2:5050"));
        assert_eq!(leader_hint(&not_leader(None)), None);
        let mut other = tonic::Status::internal("boom");
        if let Ok(value) = "10.0.0.2:5050".parse() {
            other.metadata_mut().insert(LEADER_METADATA, value);
        }
        assert_eq!(leader_hint(&other), None);
    }

    #[test]
    fn both_refusals_say_not_the_leader() {
        assert!(is_not_leader(&not_leader(Some("10.0.0.2:5050"))));
        assert!(is_not_leader(&not_leader(None)));
        assert!(!is_not_leader(&tonic::Status::unavailable("connection reset")));
    }
}
