//! The etcd backend: one etcd key per entry under a prefix
//! (`/agora/registry/<entry key>`), JSON values; every write fenced by the
//! leadership (`server/election.rs`).
//!
//! **Threading.** [`Registry`] is synchronous and is called from the core
//! loop, a task on the server's runtime, where blocking on a future of the
//! same runtime (`Handle::block_on`) would panic or deadlock. So the etcd
//! client lives on an OS thread of its own with a current-thread runtime;
//! the caller sends a request over a std channel and blocks until the
//! answer comes back, as the file backend blocks on its fsync.
//!
//! **Fencing.** A batch is one etcd transaction whose condition is that the
//! leader key still has the create revision this master was elected with
//! ([`Fence`]). A master whose lease expired, or whose key was deleted and
//! re-created by another master, fails the condition: the write is refused
//! with [`RegistryError::Deposed`] and nothing changes.
//!
//! **Large batches.** etcd refuses a transaction of more than
//! `--max-txn-ops` operations (128 by default) or `--max-request-bytes`
//! (1.5 MiB). A batch over either limit goes through a journal under its
//! own prefix (outside the entries): (1) the batch is written as journal
//! parts (after deleting any older journal), each in its own fenced
//! transaction; (2) one fenced put of the journal's commit
//! key, the moment the batch becomes durable; (3) the entries are written
//! in fenced chunks; (4) the journal is deleted. Whoever loads the registry
//! first finishes a committed journal (steps 3–4) and deletes an
//! uncommitted one, so a reader sees the old entries or the new, never part
//! of a batch. Once (2) succeeded the batch is durable and `apply` returns
//! `Ok` even if this master is deposed during (3): the next leader finishes
//! the journal on load.

use super::{Change, Registry, RegistryError, Value};
use crate::server::election::{Fence, Keys};
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, KvClient, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;
/// The most bytes of keys and values one transaction carries: under etcd's
/// default `--max-request-bytes` (1.5 MiB), with room for the envelope.
const MAX_TXN_BYTES: usize = 1024 * 1024;
/// Keys read per range request when loading.
const PAGE: i64 = 500;
/// Responses this large are accepted (a page of large entries).
const MAX_DECODE: usize = 64 * 1024 * 1024;
/// How long one request to etcd may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The journal's commit key and part keys, under [`Keys::journal`].
const COMMIT: &str = "commit";
const PART: &str = "part/";

/// Where the current fence comes from (the election, or a fixed one).
type FenceSource = Arc<dyn Fn() -> Option<Fence> + Send + Sync>;

/// The etcd registry. Clones share the client thread, which ends when the
/// last clone is dropped.
#[derive(Clone)]
pub struct EtcdRegistry {
    requests: mpsc::Sender<Request>,
    endpoint: String,
    fence: FenceSource,
}

impl std::fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("endpoint", &self.endpoint)
            .field("fence", &(self.fence)())
            .finish_non_exhaustive()
    }
}

/// How to reach etcd and where the entries are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdRegistryConfig {
    /// etcd's client URLs.
    pub endpoints: Vec<String>,
    /// The keys (entries, journal).
    pub keys: Keys,
    /// How long one request may take before the registry is unavailable.
    pub timeout: Duration,
    /// The most operations per transaction (etcd's `--max-txn-ops`).
    pub max_txn_ops: usize,
}

impl EtcdRegistryConfig {
    /// Defaults for `endpoints` and the keys under `prefix`.
    pub fn new(endpoints: Vec<String>, prefix: &str) -> Self {
        Self {
            endpoints,
            keys: Keys::under(prefix),
            timeout: DEFAULT_TIMEOUT,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
        }
    }
}

type Reply<T> = mpsc::SyncSender<Result<T, RegistryError>>;

enum Request {
    Load(Option<Fence>, Reply<BTreeMap<String, Value>>),
    Apply(Vec<Change>, Fence, Reply<()>),
}

impl EtcdRegistry {
    /// A registry whose writes are fenced by whatever `fence` returns at the
    /// time of each write (`None`: not the leader, every write is refused).
    /// Connects lazily, on the first request.
    pub fn new(
        config: EtcdRegistryConfig,
        fence: impl Fn() -> Option<Fence> + Send + Sync + 'static,
    ) -> Result<Self, RegistryError> {
        let endpoint = config.endpoints.join(",");
        let (requests, incoming) = mpsc::channel();
        let unavailable = |reason: String| RegistryError::Unavailable {
            endpoint: endpoint.clone(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("cannot start the client's runtime: {e}")))?;
        let worker = Worker {
            config,
            endpoint: endpoint.clone(),
            client: None,
        };
        std::thread::Builder::new()
            .name("agora-etcd-registry".to_owned())
            .spawn(move || runtime.block_on(worker.serve(incoming)))
            .map_err(|e| unavailable(format!("cannot start the client's thread: {e}")))?;
        Ok(Self {
            requests,
            endpoint,
            fence: Arc::new(fence),
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::Unavailable {
            endpoint: self.endpoint.clone(),
            reason: reason.into(),
        }
    }

    /// Sends a request and blocks until the client thread answers.
    fn round_trip<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, RegistryError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(request(reply))
            .map_err(|_| self.unavailable("the etcd client thread stopped"))?;
        answer
            .recv()
            .map_err(|_| self.unavailable("the etcd client thread stopped"))?
    }
}

impl Registry for EtcdRegistry {
    fn load(&mut self) -> Result<BTreeMap<String, Value>, RegistryError> {
        let fence = (self.fence)();
        self.round_trip(|reply| Request::Load(fence, reply))
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), RegistryError> {
        if changes.is_empty() {
            return Ok(());
        }
        // Not (or no longer) the leader: refuse without asking etcd.
        let fence = (self.fence)().ok_or(RegistryError::Deposed)?;
        let changes = changes.to_vec();
        self.round_trip(|reply| Request::Apply(changes, fence, reply))
    }
}

/// A journal part: some of a batch's changes, in order.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    changes: Vec<(String, Option<Value>)>,
}

/// The journal's commit record.
#[derive(Debug, Serialize, Deserialize)]
struct Commit {
    parts: usize,
}

/// The client thread's state.
struct Worker {
    config: EtcdRegistryConfig,
    endpoint: String,
    /// Connected on first use, dropped after a failure to connect again.
    client: Option<Client>,
}

impl Worker {
    async fn serve(mut self, incoming: mpsc::Receiver<Request>) {
        // Blocking on the std channel is fine: this thread serves nothing
        // else. The client's background tasks (connection upkeep) pause
        // between requests and catch up during the next one.
        while let Ok(request) = incoming.recv() {
            match request {
                Request::Load(fence, reply) => {
                    let result = self.timed(|kv, config| load(kv, config, fence)).await;
                    let _ = reply.send(result);
                }
                Request::Apply(changes, fence, reply) => {
                    let result = self.timed(|kv, config| apply(kv, config, changes, fence)).await;
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// Runs `op` with a connected client (connecting first if needed). Every
    /// etcd request of `op` times out after the configured timeout.
    async fn timed<T, F>(&mut self, op: impl FnOnce(KvClient, EtcdRegistryConfig) -> F) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>>,
    {
        let unavailable = |reason: String| RegistryError::Unavailable {
            endpoint: self.endpoint.clone(),
            reason,
        };
        if self.client.is_none() {
            let options = ConnectOptions::new()
                .with_connect_timeout(self.config.timeout)
                .with_timeout(self.config.timeout);
            let client = tokio::time::timeout(
                self.config.timeout,
                Client::connect(&self.config.endpoints, Some(options)),
            )
            .await
            .map_err(|_| unavailable("timed out connecting".to_owned()))?
            .map_err(|e| unavailable(format!("cannot connect: {e}")))?;
            self.client = Some(client);
        }
        let Some(client) = self.client.as_ref() else {
            return Err(unavailable("not connected".to_owned()));
        };
        let kv = client.kv_client().max_decoding_message_size(MAX_DECODE);
        let result = op(kv, self.config.clone()).await;
        if matches!(result, Err(RegistryError::Unavailable { .. })) {
            self.client = None;
        }
        result.map_err(|e| match e {
            RegistryError::Unavailable { reason, .. } => unavailable(reason),
            other => other,
        })
    }
}

fn etcd_error(e: etcd_client::Error) -> RegistryError {
    RegistryError::Unavailable {
        endpoint: String::new(),
        reason: e.to_string(),
    }
}

fn corrupt(key: &[u8], reason: impl std::fmt::Display) -> RegistryError {
    RegistryError::Corrupt {
        path: String::from_utf8_lossy(key).into_owned().into(),
        reason: reason.to_string(),
    }
}

/// The end of the range of keys starting with `prefix` (etcd's convention:
/// the prefix with its last byte incremented).
fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn fenced(fence: &Fence) -> Compare {
    Compare::create_revision(fence.key.as_str(), CompareOp::Equal, fence.create_revision)
}

/// Every key and value under `prefix`, as of one revision (paged).
async fn read_prefix(kv: &mut KvClient, prefix: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, RegistryError> {
    let end = range_end(prefix);
    let mut from = prefix.as_bytes().to_vec();
    let mut revision = 0;
    let mut out = Vec::new();
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision != 0 {
            // Later pages at the first page's revision: one consistent snapshot.
            options = options.with_revision(revision);
        }
        let mut response = kv.get(from.clone(), Some(options)).await.map_err(etcd_error)?;
        if revision == 0 {
            revision = response.header().map_or(0, |h| h.revision());
        }
        let more = response.more();
        let kvs = response.take_kvs();
        let Some(last) = kvs.last().map(|kv| kv.key().to_vec()) else {
            return Ok(out);
        };
        out.extend(kvs.into_iter().map(|kv| (kv.key().to_vec(), kv.value().to_vec())));
        if !more {
            return Ok(out);
        }
        from = last;
        from.push(0);
    }
}

async fn load(
    mut kv: KvClient,
    config: EtcdRegistryConfig,
    fence: Option<Fence>,
) -> Result<BTreeMap<String, Value>, RegistryError> {
    let keys = &config.keys;
    let journal = read_journal(&mut kv, keys).await?;
    let mut entries = BTreeMap::new();
    for (key, value) in read_prefix(&mut kv, &keys.registry).await? {
        let name = std::str::from_utf8(&key[keys.registry.len()..])
            .map_err(|e| corrupt(&key, format!("the key is not UTF-8: {e}")))?
            .to_owned();
        let value: Value = serde_json::from_slice(&value).map_err(|e| corrupt(&key, e))?;
        entries.insert(name, value);
    }
    match (journal, fence) {
        (Journal::None, _) => {}
        // A committed batch: finish writing it, or (not leading) show it.
        (Journal::Committed(changes), Some(fence)) => {
            tracing::info!(changes = changes.len(), "finishing a committed registry batch");
            write_entries(&mut kv, &config, &changes, &fence).await?;
            delete_journal(&mut kv, keys, &fence).await?;
            overlay(&mut entries, changes);
        }
        (Journal::Committed(changes), None) => overlay(&mut entries, changes),
        (Journal::Uncommitted, Some(fence)) => delete_journal(&mut kv, keys, &fence).await?,
        (Journal::Uncommitted, None) => {}
    }
    Ok(entries)
}

fn overlay(entries: &mut BTreeMap<String, Value>, changes: Vec<(String, Option<Value>)>) {
    for (key, value) in changes {
        match value {
            Some(value) => entries.insert(key, value),
            None => entries.remove(&key),
        };
    }
}

enum Journal {
    None,
    Uncommitted,
    Committed(Vec<(String, Option<Value>)>),
}

async fn read_journal(kv: &mut KvClient, keys: &Keys) -> Result<Journal, RegistryError> {
    let stored = read_prefix(kv, &keys.journal).await?;
    if stored.is_empty() {
        return Ok(Journal::None);
    }
    let commit_key = format!("{}{COMMIT}", keys.journal);
    let Some((_, commit)) = stored.iter().find(|(key, _)| key == commit_key.as_bytes()) else {
        return Ok(Journal::Uncommitted);
    };
    let commit: Commit = serde_json::from_slice(commit).map_err(|e| corrupt(commit_key.as_bytes(), e))?;
    let mut changes = Vec::new();
    for index in 0..commit.parts {
        let key = part_key(keys, index);
        let (_, value) = stored
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .ok_or_else(|| corrupt(key.as_bytes(), "a committed journal part is missing"))?;
        let part: Part = serde_json::from_slice(value).map_err(|e| corrupt(key.as_bytes(), e))?;
        changes.extend(part.changes);
    }
    Ok(Journal::Committed(changes))
}

fn part_key(keys: &Keys, index: usize) -> String {
    format!("{}{PART}{index:08}", keys.journal)
}

async fn delete_journal(kv: &mut KvClient, keys: &Keys, fence: &Fence) -> Result<(), RegistryError> {
    let delete = TxnOp::delete(keys.journal.as_str(), Some(DeleteOptions::new().with_prefix()));
    run_fenced(kv, fence, vec![delete]).await
}

/// One fenced transaction; `Deposed` if the fence no longer holds.
async fn run_fenced(kv: &mut KvClient, fence: &Fence, ops: Vec<TxnOp>) -> Result<(), RegistryError> {
    let response = kv
        .txn(Txn::new().when([fenced(fence)]).and_then(ops))
        .await
        .map_err(etcd_error)?;
    if response.succeeded() {
        Ok(())
    } else {
        Err(RegistryError::Deposed)
    }
}

/// The batch with later changes of a key replacing earlier ones (the
/// entries end the same, with fewer operations).
fn collapse(changes: Vec<Change>) -> Vec<(String, Option<Value>)> {
    let mut last: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for change in changes {
        last.insert(change.key, change.value);
    }
    last.into_iter().collect()
}

fn encode(key: &str, value: &impl Serialize) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(value).map_err(|e| corrupt(key.as_bytes(), format!("cannot encode: {e}")))
}

/// The operations writing `changes` to the entries, in chunks that each fit
/// one transaction.
fn entry_chunks(
    config: &EtcdRegistryConfig,
    changes: &[(String, Option<Value>)],
) -> Result<Vec<Vec<TxnOp>>, RegistryError> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0;
    for (key, value) in changes {
        let full = format!("{}{key}", config.keys.registry);
        let (op, size) = match value {
            Some(value) => {
                let value = encode(&full, value)?;
                let size = full.len() + value.len();
                (TxnOp::put(full, value, None), size)
            }
            None => {
                let size = full.len();
                (TxnOp::delete(full, None), size)
            }
        };
        let current = chunks.last().map_or(0, Vec::len);
        if current > 0 && (current >= config.max_txn_ops || bytes + size > MAX_TXN_BYTES) {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(op);
        }
    }
    Ok(chunks)
}

async fn write_entries(
    kv: &mut KvClient,
    config: &EtcdRegistryConfig,
    changes: &[(String, Option<Value>)],
    fence: &Fence,
) -> Result<(), RegistryError> {
    for chunk in entry_chunks(config, changes)? {
        run_fenced(kv, fence, chunk).await?;
    }
    Ok(())
}

async fn apply(
    mut kv: KvClient,
    config: EtcdRegistryConfig,
    changes: Vec<Change>,
    fence: Fence,
) -> Result<(), RegistryError> {
    let changes = collapse(changes);
    let mut chunks = entry_chunks(&config, &changes)?;
    if chunks.len() == 1
        && let Some(ops) = chunks.pop()
    {
        // The usual case: one transaction, atomic by itself.
        return run_fenced(&mut kv, &fence, ops).await;
    }
    // Too large for one transaction: through the journal (module docs).
    let keys = &config.keys;
    let parts = journal_parts(&changes)?;
    // An older journal was finished or abandoned by the load that preceded
    // any write; clear what may remain. (Not in the first part's
    // transaction: etcd refuses a delete and a put of overlapping keys in one.)
    delete_journal(&mut kv, keys, &fence).await?;
    for (index, part) in parts.iter().enumerate() {
        let key = part_key(keys, index);
        let value = encode(&key, part)?;
        run_fenced(&mut kv, &fence, vec![TxnOp::put(key, value, None)]).await?;
    }
    let commit_key = format!("{}{COMMIT}", keys.journal);
    let commit = encode(&commit_key, &Commit { parts: parts.len() })?;
    run_fenced(&mut kv, &fence, vec![TxnOp::put(commit_key, commit, None)]).await?;
    // Durable from here on: a failure below leaves the journal for the next
    // load to finish, so it does not undo the batch.
    let finished = async {
        write_entries(&mut kv, &config, &changes, &fence).await?;
        delete_journal(&mut kv, keys, &fence).await
    };
    if let Err(error) = finished.await {
        tracing::warn!(%error, "a committed registry batch is left in the journal; the next load finishes it");
    }
    Ok(())
}

/// Splits a batch into journal parts of at most [`MAX_TXN_BYTES`] each
/// (one part per transaction).
fn journal_parts(changes: &[(String, Option<Value>)]) -> Result<Vec<Part>, RegistryError> {
    let mut parts = vec![Part { changes: Vec::new() }];
    let mut bytes = 0;
    for (key, value) in changes {
        let size = key.len() + encode(key, value)?.len() + 8;
        let current = parts.last().map_or(0, |p| p.changes.len());
        if current > 0 && bytes + size > MAX_TXN_BYTES {
            parts.push(Part { changes: Vec::new() });
            bytes = 0;
        }
        bytes += size;
        if let Some(part) = parts.last_mut() {
            part.changes.push((key.clone(), value.clone()));
        }
    }
    Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_range_end_covers_exactly_the_prefix() {
        assert_eq!(range_end("/agora/registry/"), b"/agora/registry0".to_vec());
        assert_eq!(range_end(""), vec![0]);
    }

    #[test]
    fn a_batch_is_collapsed_then_chunked_by_the_op_limit() {
        let changes: Vec<Change> = (0..10)
            .map(|i| Change {
                key: format!("k{}", i % 7),
                value: Some(json!(i)),
            })
            .collect();
        let collapsed = collapse(changes);
        assert_eq!(collapsed.len(), 7);
        // The later change of a key wins.
        assert_eq!(collapsed[0], ("k0".to_owned(), Some(json!(7))));
        let mut config = EtcdRegistryConfig::new(vec![], "/t");
        assert_eq!(entry_chunks(&config, &collapsed).unwrap().len(), 1);
        config.max_txn_ops = 3;
        let sizes: Vec<usize> = entry_chunks(&config, &collapsed)
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![3, 3, 1]);
    }

    #[test]
    fn large_values_split_journal_parts_by_bytes() {
        let big = json!("x".repeat(600 * 1024));
        let changes = vec![
            ("a".to_owned(), Some(big.clone())),
            ("b".to_owned(), Some(big)),
            ("c".to_owned(), None),
        ];
        let parts = journal_parts(&changes).unwrap();
        assert_eq!(parts.iter().map(|p| p.changes.len()).collect::<Vec<_>>(), vec![1, 2]);
    }
}
