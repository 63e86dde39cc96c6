//! The registry: what must survive a master restart or failover.
//!
//! Two layers. A backend ([`Registry`]) is a dumb store of JSON entries by
//! key that applies a batch of changes atomically: the embedded file store
//! ([`FileRegistry`], the default) or etcd (behind the `etcd` feature). The
//! typed layer ([`RegistryState`]) says what the entries mean and turns a
//! change of state into the few entries that changed, so a write costs what
//! changed, not the whole registry (one key per agent or framework in etcd).
//!
//! Keys: `roles` (operators' weights and quotas), and one entry per record
//! of the master core (`crate::durable`): `agents/<id>`, `frameworks/<id>`,
//! `gone/<id>`.

#[cfg(feature = "etcd")]
mod etcd;
mod file;

#[cfg(feature = "etcd")]
pub use etcd::{DEFAULT_MAX_TXN_OPS, DEFAULT_TIMEOUT, EtcdRegistry, EtcdRegistryConfig};
pub use file::{FILE_NAME, FileRegistry};

use crate::durable::{DurableChange, Records};
use agora_proto::{QuotaLimit, RoleQuota};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// An entry's value: any JSON document.
pub type Value = serde_json::Value;

/// One change in a batch: `Some` puts the entry, `None` deletes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The entry's key (`roles`, `agents/<id>`, ...): printable, no spaces.
    pub key: String,
    /// Its new value, or `None` to delete it.
    pub value: Option<Value>,
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Reading, writing, flushing or renaming a file failed.
    #[error("registry {path}: cannot {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The stored data is not a registry this master understands; it is
    /// left as is (starting empty would silently drop what was stored).
    #[error("registry {path} is corrupt or not a registry: {reason}")]
    Corrupt {
        /// Where it is (a file, or an etcd key).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry's server could not be reached or refused the request.
    #[error("registry at {endpoint}: {reason}")]
    Unavailable {
        /// The server.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// This master is no longer the leader: the write was refused (fenced)
    /// and nothing changed.
    #[error("this master is no longer the leader; the write was refused")]
    Deposed,
}

/// Where the registry lives: a store of JSON entries by key.
pub trait Registry: std::fmt::Debug + Send {
    /// Every stored entry; empty when nothing was ever stored.
    fn load(&mut self) -> Result<BTreeMap<String, Value>, RegistryError>;
    /// Applies `changes` atomically (all or none), in order (a later change
    /// of the same key wins). When this returns `Ok`, they survive a crash of
    /// the process or the machine.
    fn apply(&mut self, changes: &[Change]) -> Result<(), RegistryError>;
}

/// The key of the roles entry (weights and quotas).
const ROLES: &str = "roles";
/// Key prefixes of the core's records, each followed by the object's id.
const AGENTS: &str = "agents/";
const FRAMEWORKS: &str = "frameworks/";
const GONE: &str = "gone/";

/// What the registry holds, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryState {
    /// Role weights and quotas set by an operator.
    pub roles: StoredRoles,
    /// The master core's records: agents, frameworks, gone agents.
    pub records: Records,
}

/// Role weights and quotas as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRoles {
    /// Role weights set by an operator (roles not listed weigh 1.0).
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Role quotas set by an operator.
    #[serde(default)]
    pub quotas: BTreeMap<String, StoredQuota>,
}

/// A role's quota as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredQuota {
    /// Its limit, by scalar name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<QuotaLimit>,
    /// Its guarantee, by scalar name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<QuotaLimit>,
}

impl From<StoredQuota> for RoleQuota {
    fn from(q: StoredQuota) -> Self {
        Self {
            limit: q.limit,
            guarantee: q.guarantee,
        }
    }
}

/// An entry that does not decode: `where_` names the backend's location.
fn corrupt(where_: &str, key: &str, reason: impl std::fmt::Display) -> RegistryError {
    RegistryError::Corrupt {
        path: PathBuf::from(where_),
        reason: format!("entry {key}: {reason}"),
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Value, RegistryError> {
    serde_json::to_value(value).map_err(|e| corrupt("(encoding)", key, e))
}

impl RegistryState {
    /// Decodes the entries a backend loaded; `where_` says where they came
    /// from, for errors. An unknown key is refused: it was written by a newer
    /// master, and ignoring it could drop what that master promised to keep.
    pub fn from_entries(entries: BTreeMap<String, Value>, where_: &str) -> Result<Self, RegistryError> {
        let mut state = Self::default();
        for (key, value) in entries {
            let decode_err = |e: serde_json::Error| corrupt(where_, &key, e);
            let records = &mut state.records;
            if key == ROLES {
                state.roles = serde_json::from_value(value).map_err(decode_err)?;
            } else if let Some(id) = key.strip_prefix(AGENTS) {
                let record: crate::durable::AgentRecord = serde_json::from_value(value).map_err(decode_err)?;
                check_id(where_, &key, id, record.id.as_str())?;
                records.agents.insert(record.id.clone(), record);
            } else if let Some(id) = key.strip_prefix(FRAMEWORKS) {
                let record: crate::durable::FrameworkRecord = serde_json::from_value(value).map_err(decode_err)?;
                let Some(framework_id) = record.info.id.clone() else {
                    return Err(corrupt(where_, &key, "the framework has no id"));
                };
                check_id(where_, &key, id, framework_id.as_str())?;
                records.frameworks.insert(framework_id, record);
            } else if let Some(id) = key.strip_prefix(GONE) {
                let record: crate::durable::GoneRecord = serde_json::from_value(value).map_err(decode_err)?;
                check_id(where_, &key, id, record.id.as_str())?;
                records.gone.insert(record.id.clone(), record);
            } else {
                return Err(corrupt(where_, &key, "unknown entry (written by a newer master?)"));
            }
        }
        Ok(state)
    }

    /// The changes that turn `self`'s roles into `next`'s (records change
    /// through [`durable_change`]).
    pub fn changes_to(&self, next: &Self) -> Result<Vec<Change>, RegistryError> {
        let mut changes = Vec::new();
        if self.roles != next.roles {
            let value = (next.roles != StoredRoles::default())
                .then(|| encode(ROLES, &next.roles))
                .transpose()?;
            changes.push(Change {
                key: ROLES.to_owned(),
                value,
            });
        }
        Ok(changes)
    }
}

/// The entry a change of the core's records writes or deletes.
pub fn durable_change(change: &DurableChange) -> Result<Change, RegistryError> {
    let (key, value) = match change {
        DurableChange::Agent(id, record) => {
            let key = format!("{AGENTS}{id}");
            let value = record.as_ref().map(|r| encode(&key, r)).transpose()?;
            (key, value)
        }
        DurableChange::Framework(id, record) => {
            let key = format!("{FRAMEWORKS}{id}");
            let value = record.as_ref().map(|r| encode(&key, r)).transpose()?;
            (key, value)
        }
        DurableChange::Gone(id, record) => {
            let key = format!("{GONE}{id}");
            let value = record.as_ref().map(|r| encode(&key, r)).transpose()?;
            (key, value)
        }
    };
    Ok(Change { key, value })
}

/// A record must be stored under its own id.
fn check_id(where_: &str, key: &str, in_key: &str, in_record: &str) -> Result<(), RegistryError> {
    if in_key == in_record {
        Ok(())
    } else {
        Err(corrupt(where_, key, format!("the record is of {in_record}")))
    }
}

/// The roles entry that describes `weights` and the `quotas` of `roles`.
pub(crate) fn roles_of(
    weights: &BTreeMap<String, f64>,
    quotas: impl IntoIterator<Item = (String, Option<QuotaLimit>, Option<QuotaLimit>)>,
) -> StoredRoles {
    StoredRoles {
        weights: weights.clone(),
        quotas: quotas
            .into_iter()
            .filter(|(_, limit, guarantee)| limit.is_some() || guarantee.is_some())
            .map(|(role, limit, guarantee)| (role, StoredQuota { limit, guarantee }))
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use agora_proto::Scalar;

    pub(super) fn sample(cpus: u64) -> RegistryState {
        let limit: QuotaLimit = [("cpus".to_owned(), Scalar::from_units(cpus))].into_iter().collect();
        RegistryState {
            roles: roles_of(
                &[("web".to_owned(), 2.5)].into_iter().collect(),
                [("web".to_owned(), Some(limit.clone()), Some(limit))],
            ),
            records: Records::default(),
        }
    }

    #[test]
    fn changes_roundtrip_through_entries_and_only_what_changed_is_written() {
        let empty = RegistryState::default();
        assert!(empty.changes_to(&empty).unwrap().is_empty());
        let changes = empty.changes_to(&sample(4)).unwrap();
        assert_eq!(changes.len(), 1);
        let entries: BTreeMap<_, _> = changes.into_iter().filter_map(|c| Some((c.key, c.value?))).collect();
        assert_eq!(RegistryState::from_entries(entries, "test").unwrap(), sample(4));
        // Back to nothing deletes the entry.
        let back = sample(4).changes_to(&empty).unwrap();
        assert_eq!(
            back,
            vec![Change {
                key: ROLES.to_owned(),
                value: None
            }]
        );
    }

    #[test]
    fn an_unknown_or_malformed_entry_is_refused_with_its_key() {
        let unknown = [("moons/1".to_owned(), Value::Null)].into_iter().collect();
        let err = RegistryState::from_entries(unknown, "here").unwrap_err().to_string();
        assert!(err.contains("entry moons/1: unknown entry"), "{err}");
        let malformed = [(ROLES.to_owned(), serde_json::json!({"weights": 3}))]
            .into_iter()
            .collect();
        let err = RegistryState::from_entries(malformed, "here").unwrap_err().to_string();
        assert!(err.contains("here is corrupt") && err.contains("entry roles"), "{err}");
    }

    #[test]
    fn records_roundtrip_through_one_entry_each() {
        use crate::durable::{AgentRecord, FrameworkRecord, GoneRecord, GoneTask};
        use agora_proto::{AgentId, FrameworkId, FrameworkInfo, TaskId, Timestamp};
        let agent_id = AgentId::new("a-1").unwrap();
        let framework_id = FrameworkId::new("f-1").unwrap();
        let mut info = FrameworkInfo::new("f");
        info.id = Some(framework_id.clone());
        info.failover_timeout = std::time::Duration::from_secs(600);
        let changes = [
            DurableChange::Agent(
                agent_id.clone(),
                Some(AgentRecord {
                    id: agent_id.clone(),
                    hostname: "h".to_owned(),
                    reserved: "cpus(web):2".parse().unwrap(),
                }),
            ),
            DurableChange::Framework(
                framework_id.clone(),
                Some(FrameworkRecord {
                    info,
                    registered_at: Timestamp::from_secs(1),
                    disconnected_at: Some(Timestamp::from_secs(2)),
                }),
            ),
            DurableChange::Gone(
                agent_id.clone(),
                Some(GoneRecord {
                    id: agent_id.clone(),
                    at: Timestamp::from_secs(3),
                    tasks: vec![GoneTask {
                        framework_id,
                        task_id: TaskId::new("t").unwrap(),
                        role: "web".to_owned(),
                    }],
                }),
            ),
        ];
        let entries: BTreeMap<_, _> = changes
            .iter()
            .map(|c| durable_change(c).unwrap())
            .map(|c| (c.key, c.value.unwrap()))
            .collect();
        assert_eq!(
            entries.keys().map(String::as_str).collect::<Vec<_>>(),
            ["agents/a-1", "frameworks/f-1", "gone/a-1"]
        );
        let state = RegistryState::from_entries(entries.clone(), "test").unwrap();
        let mut expected = Records::default();
        expected.apply(changes.clone());
        assert_eq!(state.records, expected);
        // A record under another object's key is refused.
        let mut moved = entries;
        let value = moved.remove("agents/a-1").unwrap();
        moved.insert("agents/a-2".to_owned(), value);
        let err = RegistryState::from_entries(moved, "test").unwrap_err().to_string();
        assert!(err.contains("entry agents/a-2: the record is of a-1"), "{err}");
    }
}
