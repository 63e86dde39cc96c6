//! The operator API client the commands share: finding the master that
//! leads, and errors a person can act on.
//!
//! Several masters may run, and only the leader serves: the others refuse
//! every call, naming the leader when they know it
//! ([`agora_proto::leader`]). So connecting is not enough; [`Operator::call`]
//! issues the call and, refused, follows the hint to the leader (at most
//! [`MAX_REDIRECTS`](agora_proto::masters::MAX_REDIRECTS) times in a row), or
//! asks the other masters. While the masters say no leader is elected yet it
//! waits and asks again, up to `--leader-wait`.

use crate::cli::MasterAddrs;
use agora_proto::leader::{is_not_leader, leader_hint};
use agora_proto::masters::{MasterList, Redirect};
use agora_proto::pb;
use agora_proto::pb::operator_client::OperatorClient;
use anyhow::anyhow;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

/// Time allowed to open a connection to one master.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The first pause between rounds of asking every master for a leader;
/// doubled each round. An election takes a few seconds.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// Why [`Operator::call`] got no answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The leader answered with an error.
    Refused(tonic::Status),
    /// No master served: none leads, or none could be reached. Says why
    /// for each master asked.
    NoLeader(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(status) => f.write_str(&describe(status)),
            Self::NoLeader(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CallError {}

/// A connection to the operator API of the masters, following the leader.
#[derive(Clone, Debug)]
pub(crate) struct Operator {
    /// The master that answered last, as a URI.
    pub(crate) address: String,
    client: OperatorClient<Channel>,
    /// Every master known: those given, then leaders learned from refusals.
    masters: MasterList,
    leader_wait: Duration,
}

impl Operator {
    /// Connects to the first of the masters that accepts a connection.
    /// Whether it leads is found out by the first [`call`](Self::call).
    pub(crate) async fn connect(args: &MasterAddrs) -> anyhow::Result<Self> {
        let uris = args
            .masters
            .iter()
            .flat_map(|m| m.split(','))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| agora_sdk::driver::master_uri(m).map_err(|e| anyhow!(e)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let Some(mut masters) = MasterList::new(uris) else {
            return Err(anyhow!("no master address given (--master or AGORA_MASTER)"));
        };
        let mut failures = Vec::new();
        for _ in 0..masters.uris().len() {
            let uri = masters.next_to_try().to_owned();
            match connect_one(&uri).await {
                Ok(client) => {
                    return Ok(Self {
                        address: uri,
                        client,
                        masters,
                        leader_wait: args.leader_wait,
                    });
                }
                Err(why) => failures.push(format!("cannot reach the master at {}: {why}", shown(&uri))),
            }
        }
        Err(anyhow!(
            "{} (is `agora local` or `agora master` running?)",
            failures.join("; ")
        ))
    }

    /// Every master known, the one that answered last first: what a
    /// framework driver started by a command should try.
    pub(crate) fn masters(&self) -> Vec<String> {
        let mut masters = vec![self.address.clone()];
        masters.extend(self.masters.uris().iter().filter(|m| **m != self.address).cloned());
        masters
    }

    /// Runs `rpc` on the leader: on a master's refusal as a master that is
    /// not the leader, goes where it points or asks the others, and waits
    /// (up to `--leader-wait`) while none leads. Any other failure is the
    /// call's answer. Refused calls were not carried out, so asking again
    /// elsewhere is safe.
    #[allow(clippy::disallowed_methods)] // an I/O client: `--leader-wait` reads the clock
    pub(crate) async fn call<T, F, Fut>(&mut self, mut rpc: F) -> Result<T, CallError>
    where
        F: FnMut(OperatorClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.leader_wait;
        let mut pause = FIRST_PAUSE;
        let mut uri = self.address.clone();
        let mut client = Some(self.client.clone());
        // Why each master asked since the last pause did not serve.
        let mut failures: Vec<String> = Vec::new();
        let mut none_leads = false;
        loop {
            let connected = match client.take() {
                Some(client) => Ok(client),
                None => connect_one(&uri).await,
            };
            let outcome = match connected {
                Err(why) => Err(format!("cannot reach the master at {}: {why}", shown(&uri))),
                Ok(connected) => match rpc(connected.clone()).await {
                    Ok(response) => {
                        if self.masters.served(&uri) {
                            tracing::info!(master = shown(&uri), "the leading master");
                        }
                        self.address = uri;
                        self.client = connected;
                        return Ok(response.into_inner());
                    }
                    Err(status) if !is_not_leader(&status) => return Err(CallError::Refused(status)),
                    Err(status) => match leader_hint(&status).map(|hint| self.masters.redirect(&hint)) {
                        Some(Redirect::Now {
                            uri: leader,
                            new_leader,
                        }) => {
                            if new_leader {
                                tracing::info!(master = shown(&leader), "following the leading master");
                            }
                            Ok(())
                        }
                        // A stale view during an election; one may be elected soon.
                        Some(Redirect::AfterBackoff { .. }) => {
                            none_leads = true;
                            Err(format!(
                                "the masters keep redirecting to each other (last {})",
                                shown(&uri)
                            ))
                        }
                        Some(Redirect::Invalid) | None => {
                            none_leads = true;
                            Err(format!(
                                "the master at {} is not the leader and knows of none",
                                shown(&uri)
                            ))
                        }
                    },
                },
            };
            match outcome {
                // Told where the leader is: go there now (the list made it next).
                Ok(()) => {
                    uri = self.masters.next_to_try().to_owned();
                    continue;
                }
                Err(why) => failures.push(why),
            }
            if failures.len() < self.masters.uris().len() {
                uri = self.masters.next_to_try().to_owned();
                continue;
            }
            // Every master asked, none served. Unreachable masters fail at
            // once; masters without a leader may elect one soon.
            let now = Instant::now();
            if !none_leads || now >= deadline {
                let what = if none_leads {
                    "no master leads the cluster (an election may be in progress)"
                } else {
                    "no master answered as the leader"
                };
                return Err(CallError::NoLeader(format!("{what}: {}", failures.join("; "))));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = pause.saturating_mul(2);
            self.masters.backing_off();
            failures.clear();
            none_leads = false;
            uri = self.masters.next_to_try().to_owned();
        }
    }

    /// The cluster's state.
    pub(crate) async fn state(&mut self) -> anyhow::Result<pb::ClusterState> {
        self.call(|mut client| async move { client.get_state(pb::GetStateRequest {}).await })
            .await
            .map_err(|error| match error {
                CallError::Refused(_) => {
                    anyhow!("the master at {} cannot give its state: {error}", shown(&self.address))
                }
                CallError::NoLeader(_) => anyhow!("cannot get the cluster's state: {error}"),
            })
    }
}

/// A master's URI as a person wrote it: `host:port`.
fn shown(uri: &str) -> &str {
    uri.strip_prefix("http://").unwrap_or(uri)
}

async fn connect_one(uri: &str) -> Result<OperatorClient<Channel>, String> {
    let endpoint = Endpoint::from_shared(uri.to_owned())
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
fn describe(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else if status.code() == tonic::Code::Unavailable && status.message().contains("transport") {
        "the master went away".to_owned()
    } else {
        status.message().to_owned()
    }
}
