//! The embedded file backend: every entry in one JSON file,
//! `registry.json` in the master's work directory.
//!
//! Crash-safe: the new contents are written to a temporary file in the same
//! directory, flushed to disk, and renamed over the old one (then the
//! directory is flushed), so a crash at any point leaves either the old
//! contents or the new, never a torn file. A batch rewrites the whole file;
//! the core loop batches changes, so this stays cheap at the write rates a
//! master sees.

use super::{Change, Registry, RegistryError, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format version written; a file with another version is refused.
const VERSION: u32 = 2;

/// The registry's file inside the master's work directory.
pub const FILE_NAME: &str = "registry.json";

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    version: u32,
    entries: BTreeMap<String, Value>,
}

/// The embedded file backend: `registry.json` in a directory.
#[derive(Debug)]
pub struct FileRegistry {
    dir: PathBuf,
    /// What the file holds (read at the first `load` or `apply`).
    entries: Option<BTreeMap<String, Value>>,
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
            entries: None,
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

impl FileRegistry {
    fn read(&self) -> Result<BTreeMap<String, Value>, RegistryError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(io(&path, "read")(source)),
        };
        let contents: Contents = serde_json::from_str(&text).map_err(|e| RegistryError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if contents.version != VERSION {
            return Err(RegistryError::Corrupt {
                path,
                reason: format!(
                    "format version {} (this master reads version {VERSION})",
                    contents.version
                ),
            });
        }
        Ok(contents.entries)
    }

    fn write(&mut self, entries: &BTreeMap<String, Value>) -> Result<(), RegistryError> {
        let contents = Contents {
            version: VERSION,
            entries: entries.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&contents).map_err(|e| RegistryError::Corrupt {
            path: self.path(),
            reason: format!("cannot encode: {e}"),
        })?;
        let temp = self.temp_path();
        let mut file = File::create(&temp).map_err(io(&temp, "create"))?;
        #[cfg(test)]
        if let Some(n) = self.crash_after {
            // Part of the new contents reach the disk, then the process "dies".
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

impl Registry for FileRegistry {
    fn load(&mut self) -> Result<BTreeMap<String, Value>, RegistryError> {
        let entries = self.read()?;
        self.entries = Some(entries.clone());
        Ok(entries)
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), RegistryError> {
        let mut entries = match self.entries.take() {
            Some(entries) => entries,
            None => self.read()?,
        };
        for change in changes {
            match &change.value {
                Some(value) => entries.insert(change.key.clone(), value.clone()),
                None => entries.remove(&change.key),
            };
        }
        let written = self.write(&entries);
        // After a failure the file holds the old contents or the new: read
        // it again next time rather than guess.
        self.entries = written.is_ok().then_some(entries);
        written
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agora-registry-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn put(key: &str, value: Value) -> Change {
        Change {
            key: key.to_owned(),
            value: Some(value),
        }
    }

    fn entries(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn an_empty_directory_is_an_empty_registry_and_applied_changes_read_back() {
        let dir = temp_dir("roundtrip");
        let mut registry = FileRegistry::open(&dir).unwrap();
        assert!(registry.load().unwrap().is_empty());
        registry
            .apply(&[put("a", json!(1)), put("b", json!({"x": 2})), put("a", json!(3))])
            .unwrap();
        registry
            .apply(&[Change {
                key: "b".to_owned(),
                value: None,
            }])
            .unwrap();
        let reopened = FileRegistry::open(&dir).unwrap().load().unwrap();
        assert_eq!(reopened, entries(&[("a", json!(3))]));
        fs::remove_dir_all(dir).unwrap();
    }

    /// A crash at any byte of a write leaves what was applied before it,
    /// never a torn file.
    #[test]
    fn a_crash_mid_write_loses_nothing_that_was_applied() {
        let dir = temp_dir("crash");
        let mut registry = FileRegistry::open(&dir).unwrap();
        registry.apply(&[put("roles", json!({"cpus": 4}))]).unwrap();
        let size = serde_json::to_vec_pretty(&Contents {
            version: VERSION,
            entries: entries(&[("roles", json!({"cpus": 8}))]),
        })
        .unwrap()
        .len();
        for crash_after in [0, 1, size / 2, size - 1, size] {
            registry.crash_after = Some(crash_after);
            registry.apply(&[put("roles", json!({"cpus": 8}))]).unwrap();
            // A restarted master opens the directory afresh.
            assert_eq!(
                FileRegistry::open(&dir).unwrap().load().unwrap(),
                entries(&[("roles", json!({"cpus": 4}))]),
                "crash after {crash_after} bytes"
            );
            registry.entries = None;
        }
        registry.crash_after = None;
        registry.apply(&[put("roles", json!({"cpus": 8}))]).unwrap();
        assert_eq!(registry.load().unwrap(), entries(&[("roles", json!({"cpus": 8}))]));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_refused_with_its_path() {
        let dir = temp_dir("corrupt");
        let mut registry = FileRegistry::open(&dir).unwrap();
        fs::write(registry.path(), "{\"version\": 2, \"entries\": ").unwrap();
        let err = registry.load().unwrap_err().to_string();
        assert!(err.contains("registry.json is corrupt"), "{err}");
        fs::write(registry.path(), "{\"version\": 9, \"entries\": {}}").unwrap();
        let err = registry.load().unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        // Nothing is written over a file that could not be read.
        assert!(registry.apply(&[put("a", json!(1))]).is_err());
        assert!(fs::read_to_string(registry.path()).unwrap().contains("\"version\": 9"));
        fs::remove_dir_all(dir).unwrap();
    }
}
