//! What can end a [`Driver`](super::Driver) run other than a requested exit.

/// Why the driver stopped without the scheduler asking it to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The configuration names no master.
    #[error("no master address given")]
    NoMasters,
    /// A master address cannot be connected to.
    #[error("invalid master address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The master refused the subscription for a reason retrying cannot fix
    /// (invalid framework description, unknown framework id after its
    /// failover timeout, permission denied, …).
    #[error("master {master} rejected the subscription ({code:?}): {message}")]
    SubscribeRejected {
        /// The master that answered.
        master: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The master's explanation.
        message: String,
    },
    /// The master sent an ERROR event, which ends the framework's subscription.
    #[error("the master reported a fatal framework error: {0}")]
    Fatal(String),
    /// Every attempt to reach a master failed, `attempts` times in a row.
    #[error("no master reachable after {attempts} attempts; last failure: {last}")]
    Unreachable {
        /// Consecutive failed attempts.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}
