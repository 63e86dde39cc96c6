//! The operator API client the commands share: connecting to the first
//! master that answers, and errors a person can act on.

use agora_proto::pb;
use agora_proto::pb::operator_client::OperatorClient;
use anyhow::anyhow;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Time allowed to open a connection to one master.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to a master's operator API.
#[derive(Clone, Debug)]
pub(crate) struct Operator {
    /// The address it answered on, as given.
    pub(crate) address: String,
    pub(crate) client: OperatorClient<Channel>,
}

impl Operator {
    /// Connects to the first of `masters` that accepts a connection.
    pub(crate) async fn connect(masters: &[String]) -> anyhow::Result<Self> {
        let addresses: Vec<&str> = masters
            .iter()
            .flat_map(|m| m.split(','))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        let mut failures = Vec::new();
        for address in &addresses {
            match connect_one(address).await {
                Ok(client) => {
                    return Ok(Self {
                        address: (*address).to_owned(),
                        client,
                    });
                }
                Err(why) => failures.push(format!("cannot reach the master at {address}: {why}")),
            }
        }
        if failures.is_empty() {
            return Err(anyhow!("no master address given (--master or AGORA_MASTER)"));
        }
        Err(anyhow!(
            "{} (is `agora local` or `agora master` running?)",
            failures.join("; ")
        ))
    }

    /// The cluster's state.
    pub(crate) async fn state(&mut self) -> anyhow::Result<pb::ClusterState> {
        self.client
            .get_state(pb::GetStateRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| {
                anyhow!(
                    "the master at {} cannot give its state: {}",
                    self.address,
                    describe(&status)
                )
            })
    }
}

async fn connect_one(address: &str) -> Result<OperatorClient<Channel>, String> {
    let uri = agora_sdk::driver::master_uri(address).map_err(|e| e.to_string())?;
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| format!("invalid address: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT);
    match endpoint.connect().await {
        Ok(channel) => Ok(OperatorClient::new(channel)),
        Err(e) => Err(root_cause(&e)),
    }
}

/// The innermost cause of a transport error, in words: tonic's own message
/// ("transport error") says nothing a person can act on.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    if let Some(io) = current.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "timed out".to_owned(),
            _ => io.to_string(),
        };
    }
    let text = current.to_string();
    if text.contains("timed out") || text.contains("elapsed") {
        "timed out".to_owned()
    } else {
        text
    }
}

/// A gRPC status as one line: the master's message, or the code if it gave none.
pub(crate) fn describe(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else if status.code() == tonic::Code::Unavailable && status.message().contains("transport") {
        "the master went away".to_owned()
    } else {
        status.message().to_owned()
    }
}
