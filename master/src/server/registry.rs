//! The registry: what an operator set that must survive a master restart.
//!
//! Today it holds role weights and quotas (limits and guarantees), written by
//! the core loop after the core accepts an operator's change and read back
//! at startup. Admitted agents, frameworks and their failover timeouts,
//! reservations and maintenance state belong here too and come with the
//! high-availability work, as does the etcd backend; the [`Registry`] trait
//! is the seam for both.
//!
//! The file backend is crash-safe: the new state is written to a temporary
//! file in the same directory, flushed to disk, and renamed over the old one
//! (then the directory is flushed), so a crash at any point leaves either
//! the old state or the new one, never a torn file.

use agora_proto::{QuotaLimit, RoleQuota};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format version written; a file with another version is refused.
const VERSION: u32 = 1;

/// The registry's file inside the master's work directory.
pub const FILE_NAME: &str = "registry.json";

/// What the registry holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryState {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Role weights set by an operator (roles not listed weigh 1.0).
    pub weights: BTreeMap<String, f64>,
    /// Role quotas set by an operator.
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
    /// The file is not a registry this master understands; it is left as is
    /// (starting empty would silently drop what operators set).
    #[error("registry {path} is corrupt or not a registry: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where the registry lives.
pub trait Registry: std::fmt::Debug + Send {
    /// The stored state; empty when nothing was ever stored.
    fn load(&self) -> Result<RegistryState, RegistryError>;
    /// Replaces the stored state; when this returns `Ok`, the state survives
    /// a crash of the process or the machine.
    fn store(&mut self, state: &RegistryState) -> Result<(), RegistryError>;
}

/// The embedded file backend: `registry.json` in a directory.
#[derive(Debug)]
pub struct FileRegistry {
    dir: PathBuf,
    /// Test hook: the write stops (as if the process died) after this many
    /// bytes of the temporary file.
    #[cfg(test)]
    crash_after: Option<usize>,
}

impl FileRegistry {
    /// The registry in `dir`, which is created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| RegistryError::Io {
            path: dir.clone(),
            action: "create the directory",
            source,
        })?;
        Ok(Self {
            dir,
            #[cfg(test)]
            crash_after: None,
        })
    }

    /// The registry file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn temp_path(&self) -> PathBuf {
        self.dir.join(format!("{FILE_NAME}.new"))
    }
}

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.to_owned();
    move |source| RegistryError::Io { path, action, source }
}

impl Registry for FileRegistry {
    fn load(&self) -> Result<RegistryState, RegistryError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryState::default()),
            Err(source) => return Err(io(&path, "read")(source)),
        };
        let state: RegistryState = serde_json::from_str(&text).map_err(|e| RegistryError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if state.version != VERSION {
            return Err(RegistryError::Corrupt {
                path,
                reason: format!("format version {} (this master reads version {VERSION})", state.version),
            });
        }
        Ok(state)
    }

    fn store(&mut self, state: &RegistryState) -> Result<(), RegistryError> {
        let state = RegistryState {
            version: VERSION,
            ..state.clone()
        };
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| RegistryError::Corrupt {
            path: self.path(),
            reason: format!("cannot encode: {e}"),
        })?;
        let temp = self.temp_path();
        let mut file = File::create(&temp).map_err(io(&temp, "create"))?;
        #[cfg(test)]
        if let Some(n) = self.crash_after {
            // Part of the new state reaches the disk, then the process "dies".
            file.write_all(&bytes[..n.min(bytes.len())])
                .map_err(io(&temp, "write"))?;
            return Ok(());
        }
        file.write_all(&bytes).map_err(io(&temp, "write"))?;
        file.sync_all().map_err(io(&temp, "flush"))?;
        drop(file);
        let path = self.path();
        fs::rename(&temp, &path).map_err(io(&path, "replace"))?;
        // The rename itself is durable only once the directory is flushed.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(&self.dir, "flush the directory"))?;
        Ok(())
    }
}

/// The registry state that describes `weights` and the `quotas` of `roles`.
pub(crate) fn state_of(
    weights: &BTreeMap<String, f64>,
    quotas: impl IntoIterator<Item = (String, Option<QuotaLimit>, Option<QuotaLimit>)>,
) -> RegistryState {
    RegistryState {
        version: VERSION,
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

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agora-registry-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample(cpus: u64) -> RegistryState {
        let limit: QuotaLimit = [("cpus".to_owned(), Scalar::from_units(cpus))].into_iter().collect();
        state_of(
            &[("web".to_owned(), 2.5)].into_iter().collect(),
            [("web".to_owned(), Some(limit.clone()), Some(limit))],
        )
    }

    #[test]
    fn an_empty_directory_is_an_empty_registry_and_a_stored_state_reads_back() {
        let dir = temp_dir("roundtrip");
        let mut registry = FileRegistry::open(&dir).unwrap();
        assert_eq!(registry.load().unwrap(), RegistryState::default());
        registry.store(&sample(4)).unwrap();
        assert_eq!(FileRegistry::open(&dir).unwrap().load().unwrap(), sample(4));
        fs::remove_dir_all(dir).unwrap();
    }

    /// A crash at any byte of a write leaves the state acknowledged before
    /// it, never a torn file.
    #[test]
    fn a_crash_mid_write_loses_nothing_that_was_stored() {
        let dir = temp_dir("crash");
        let mut registry = FileRegistry::open(&dir).unwrap();
        registry.store(&sample(4)).unwrap();
        let size = serde_json::to_vec_pretty(&sample(8)).unwrap().len();
        for crash_after in [0, 1, size / 2, size - 1, size] {
            registry.crash_after = Some(crash_after);
            registry.store(&sample(8)).unwrap();
            // A restarted master opens the directory afresh.
            assert_eq!(
                FileRegistry::open(&dir).unwrap().load().unwrap(),
                sample(4),
                "crash after {crash_after} bytes"
            );
        }
        registry.crash_after = None;
        registry.store(&sample(8)).unwrap();
        assert_eq!(registry.load().unwrap(), sample(8));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_refused_with_its_path() {
        let dir = temp_dir("corrupt");
        let registry = FileRegistry::open(&dir).unwrap();
        fs::write(registry.path(), "{\"version\": 1, \"weights\": ").unwrap();
        let err = registry.load().unwrap_err().to_string();
        assert!(err.contains("registry.json is corrupt"), "{err}");
        fs::write(registry.path(), "{\"version\": 9, \"weights\": {}, \"quotas\": {}}").unwrap();
        let err = registry.load().unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }
}
