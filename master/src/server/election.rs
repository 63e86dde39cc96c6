//! Leader election through an etcd lease.
//!
//! Each master grants itself a lease with the leader TTL and tries to create
//! the leader key (`<prefix>/leader`, holding its advertised address) in a
//! transaction that succeeds only if the key is absent. The winner keeps the
//! lease alive; the others watch the key and try again when it is deleted
//! (the leader resigned, or its lease expired because it died or was cut off).
//!
//! The key's create revision is the leadership's *fencing token* ([`Fence`]):
//! etcd never reuses a revision, so a registry write conditioned on it
//! (`server/registry/etcd.rs`) succeeds only while this very incarnation of
//! the key exists. A master whose lease expired and whose key was re-created
//! by another master can change nothing, even if it does not know yet.
//!
//! Losing leadership is final ([`Leadership::Lost`]): the server stops and
//! the process exits nonzero, as a Mesos master does. Stepping back to
//! standby in-process would need every piece of leader state (streams,
//! offers, timers) to be torn down exactly; a fresh process is simpler and
//! certainly clean, and a supervisor restarts it as a standby.

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// How long to wait before asking etcd again after a failure.
const RETRY: Duration = Duration::from_millis(250);
/// How long a resigning leader waits for etcd to revoke its lease.
const RESIGN_TIMEOUT: Duration = Duration::from_secs(1);

/// The etcd keys a cluster of masters uses, all under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The leader key: the elected master's advertised address.
    pub leader: String,
    /// The prefix of the registry's entries (one key per entry).
    pub registry: String,
    /// The prefix of the registry's journal (batches too large for one
    /// transaction, `server/registry/etcd.rs`).
    pub journal: String,
}

impl Keys {
    /// The keys under `prefix` (e.g. `/agora`): `/agora/leader`,
    /// `/agora/registry/`, `/agora/registry-journal/`.
    pub fn under(prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        Self {
            leader: format!("{prefix}/leader"),
            registry: format!("{prefix}/registry/"),
            journal: format!("{prefix}/registry-journal/"),
        }
    }
}

/// Proof of leadership that a registry write is conditioned on: the leader
/// key and the revision that created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The leader key.
    pub key: String,
    /// Its create revision while this master holds it.
    pub create_revision: i64,
}

/// Where this master stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// Another master leads (its address), or none is known yet.
    Follower {
        /// The leader's advertised address, when known.
        leader: Option<String>,
    },
    /// This master leads; registry writes carry the fence.
    Leader(Fence),
    /// This master led and lost the leadership (why). Final.
    Lost(String),
}

impl Leadership {
    /// The fence, while leading.
    pub fn fence(&self) -> Option<Fence> {
        match self {
            Self::Leader(fence) => Some(fence.clone()),
            _ => None,
        }
    }
}

/// What a master campaigns with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// etcd's client URLs.
    pub endpoints: Vec<String>,
    /// The keys.
    pub keys: Keys,
    /// The address other masters send callers to when this one leads.
    pub advertise: String,
    /// The lease's TTL: a leader that stops renewing loses the key this
    /// long after its last renewal. Rounded up to whole seconds (etcd's
    /// unit); etcd itself may raise it to its minimum.
    pub ttl: Duration,
}

/// A running campaign. Dropping it stops campaigning (a held lease then
/// expires after its TTL); [`Election::resign`] gives the key up at once.
#[derive(Debug)]
pub struct Election {
    state: watch::Receiver<Leadership>,
    resign: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Election {
    /// Starts campaigning on the current tokio runtime.
    pub fn start(config: ElectionConfig) -> Self {
        let (state_tx, state) = watch::channel(Leadership::Follower { leader: None });
        let (resign, resigned) = oneshot::channel();
        let task = tokio::spawn(campaign(config, state_tx, resigned));
        Self {
            state,
            resign: Some(resign),
            task,
        }
    }

    /// Follows where this master stands.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.state.clone()
    }

    /// Where this master stands now.
    pub fn current(&self) -> Leadership {
        self.state.borrow().clone()
    }

    /// Stops campaigning and, if leading, revokes the lease so that another
    /// master takes over at once instead of after the TTL.
    pub async fn resign(mut self) {
        if let Some(resign) = self.resign.take() {
            let _ = resign.send(());
        }
        // The task revokes within RESIGN_TIMEOUT, then ends.
        let _ = (&mut self.task).await;
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The campaign task: runs until resigned or the leadership is lost.
async fn campaign(config: ElectionConfig, state: watch::Sender<Leadership>, resigned: oneshot::Receiver<()>) {
    // The lease this master holds the key with (0: none), for resigning.
    let held = Arc::new(AtomicI64::new(0));
    let mut client = None;
    tokio::select! {
        lost = elect_and_hold(&config, &state, &held, &mut client) => {
            tracing::error!(reason = %lost, "lost the leadership");
            state.send_replace(Leadership::Lost(lost));
        }
        _ = resigned => {
            let lease = held.load(Ordering::SeqCst);
            if let (Some(mut client), true) = (client, lease != 0) {
                match timeout(RESIGN_TIMEOUT, client.lease_revoke(lease)).await {
                    Ok(Ok(_)) => tracing::info!("resigned the leadership"),
                    Ok(Err(error)) => tracing::warn!(%error, "cannot revoke the leader lease; it expires after its TTL"),
                    Err(_) => tracing::warn!("revoking the leader lease timed out; it expires after its TTL"),
                }
            }
            state.send_replace(Leadership::Lost("resigned".to_owned()));
        }
    }
}

/// Connects (retrying), campaigns until elected, then holds the leadership
/// until it is lost; returns why.
async fn elect_and_hold(
    config: &ElectionConfig,
    state: &watch::Sender<Leadership>,
    held: &AtomicI64,
    client_slot: &mut Option<Client>,
) -> String {
    let ttl_secs = i64::try_from(config.ttl.as_secs() + u64::from(config.ttl.subsec_nanos() > 0))
        .unwrap_or(i64::MAX)
        .max(1);
    let options = ConnectOptions::new()
        .with_connect_timeout(config.ttl)
        .with_timeout(config.ttl);
    let mut client = loop {
        match Client::connect(&config.endpoints, Some(options.clone())).await {
            Ok(client) => break client,
            Err(error) => {
                tracing::warn!(%error, endpoints = ?config.endpoints, "cannot reach etcd; retrying");
                sleep(RETRY).await;
            }
        }
    };
    *client_slot = Some(client.clone());
    let key = config.keys.leader.as_str();
    loop {
        // Measured before the grant, so our idea of the lease's expiry is
        // never later than etcd's.
        let granted_at = Instant::now();
        let lease = match client.lease_grant(ttl_secs, None).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(%error, "cannot grant a lease; retrying");
                sleep(RETRY).await;
                continue;
            }
        };
        held.store(lease.id(), Ordering::SeqCst);
        let create = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                config.advertise.as_str(),
                Some(PutOptions::new().with_lease(lease.id())),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = match client.txn(create).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%error, "campaign failed; retrying");
                revoke_quietly(&mut client, held).await;
                sleep(RETRY).await;
                continue;
            }
        };
        let revision = response.header().map_or(0, |h| h.revision());
        if response.succeeded() {
            let fence = Fence {
                key: key.to_owned(),
                create_revision: revision,
            };
            tracing::info!(advertise = %config.advertise, revision, ttl = lease.ttl(), "elected leader");
            state.send_replace(Leadership::Leader(fence.clone()));
            let ttl = Duration::from_secs(u64::try_from(lease.ttl()).unwrap_or(1).max(1));
            return hold(&mut client, lease.id(), granted_at + ttl, ttl, &fence).await;
        }
        revoke_quietly(&mut client, held).await;
        let leader = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.value_str().map(str::to_owned)),
            _ => None,
        });
        let leader = match leader {
            Some(Ok(leader)) => Some(leader),
            Some(Err(error)) => {
                tracing::warn!(%error, "the leader key does not hold an address");
                None
            }
            // Deleted between the compare and the get: campaign again.
            None => continue,
        };
        state.send_replace(Leadership::Follower { leader });
        wait_for_vacancy(&mut client, key, revision, state).await;
    }
}

async fn revoke_quietly(client: &mut Client, held: &AtomicI64) {
    let lease = held.swap(0, Ordering::SeqCst);
    if lease != 0 {
        let _ = client.lease_revoke(lease).await;
    }
}

/// Returns when the leader key is (probably) gone: deleted after
/// `revision`, or the watch failed (the caller then looks again).
async fn wait_for_vacancy(client: &mut Client, key: &str, revision: i64, state: &watch::Sender<Leadership>) {
    let options = WatchOptions::new().with_start_revision(revision + 1);
    let mut stream = match client.watch(key, Some(options)).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the leader key; looking again");
            sleep(RETRY).await;
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                for event in response.events() {
                    match event.event_type() {
                        EventType::Delete => return,
                        EventType::Put => {
                            let leader = event.kv().and_then(|kv| kv.value_str().ok()).map(str::to_owned);
                            state.send_replace(Leadership::Follower { leader });
                        }
                    }
                }
                if response.canceled() {
                    return;
                }
            }
            Ok(None) | Err(_) => {
                sleep(RETRY).await;
                return;
            }
        }
    }
}

/// Keeps the lease alive and watches the key while leading; returns why the
/// leadership was lost. `deadline` is when the lease expires unless renewed,
/// by our clock (never later than etcd's).
async fn hold(client: &mut Client, lease: i64, mut deadline: Instant, ttl: Duration, fence: &Fence) -> String {
    let mut keeper = client.lease_keep_alive(lease).await.ok();
    // The watch gets a client of its own (a cheap clone sharing the
    // channel) so that renewals can use `client` while it waits.
    let mut watcher = client.clone();
    let mut watch = watch_key(&mut watcher, fence).await;
    let renew_every = ttl / 3;
    let mut next_renewal = Instant::now() + renew_every;
    loop {
        tokio::select! {
            () = sleep_until(deadline) => {
                return format!("the leader lease was not renewed within its TTL ({ttl:?})");
            }
            () = sleep_until(next_renewal) => {
                next_renewal = Instant::now() + renew_every;
                let sent = Instant::now();
                let renewed = match keeper.as_mut() {
                    Some((keeper, responses)) => {
                        let renew = async {
                            keeper.keep_alive().await?;
                            responses.message().await
                        };
                        timeout(deadline.saturating_duration_since(sent), renew).await
                    }
                    None => Ok(Err(etcd_client::Error::LeaseKeepAliveError("no keep-alive stream".to_owned()))),
                };
                match renewed {
                    Ok(Ok(Some(response))) if response.ttl() > 0 => {
                        deadline = sent + Duration::from_secs(u64::try_from(response.ttl()).unwrap_or(0));
                    }
                    Ok(Ok(Some(_))) => return "the leader lease expired".to_owned(),
                    Ok(Ok(None) | Err(_)) => {
                        // The stream broke (etcd restarted, a connection
                        // dropped): open another and try at the next renewal.
                        tracing::warn!("the lease keep-alive stream broke; reopening it");
                        keeper = client.lease_keep_alive(lease).await.ok();
                    }
                    Err(_) => return format!("the leader lease was not renewed within its TTL ({ttl:?})"),
                }
            }
            lost = key_lost(&mut watcher, &mut watch, fence) => {
                if let Some(reason) = lost {
                    return reason;
                }
            }
        }
    }
}

/// A watch of the leader key from just after its creation.
async fn watch_key(client: &mut Client, fence: &Fence) -> Option<etcd_client::WatchStream> {
    let options = WatchOptions::new().with_start_revision(fence.create_revision + 1);
    client.watch(fence.key.as_str(), Some(options)).await.ok()
}

/// Waits for the next news of the leader key: `Some(why)` if this master's
/// key is gone or replaced, `None` if nothing is lost (the watch was
/// re-established after checking the key directly).
async fn key_lost(client: &mut Client, watch: &mut Option<etcd_client::WatchStream>, fence: &Fence) -> Option<String> {
    if let Some(stream) = watch.as_mut()
        && let Ok(Some(response)) = stream.message().await
    {
        for event in response.events() {
            match (event.event_type(), event.kv()) {
                (EventType::Delete, _) => return Some("the leader key was deleted".to_owned()),
                (EventType::Put, Some(kv)) if kv.create_revision() != fence.create_revision => {
                    return Some("the leader key was replaced".to_owned());
                }
                _ => {}
            }
        }
        if !response.canceled() {
            return None;
        }
    }
    // No watch, or it ended: look at the key itself, then watch again.
    sleep(RETRY).await;
    match client.get(fence.key.as_str(), None).await {
        Ok(response) => {
            let ours = response
                .kvs()
                .first()
                .is_some_and(|kv| kv.create_revision() == fence.create_revision);
            if !ours {
                return Some("the leader key is gone or another master's".to_owned());
            }
            *watch = watch_key(client, fence).await;
            None
        }
        // etcd unreachable: the lease deadline decides.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_prefix_with_or_without_a_trailing_slash() {
        let keys = Keys::under("/agora/");
        assert_eq!(keys, Keys::under("/agora"));
        assert_eq!(keys.leader, "/agora/leader");
        assert_eq!(keys.registry, "/agora/registry/");
        assert_eq!(keys.journal, "/agora/registry-journal/");
        assert!(!keys.journal.starts_with(&keys.registry));
    }
}
