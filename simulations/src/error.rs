//! The simulator's errors: typed, each naming what to fix.

use std::path::PathBuf;

/// A workload config that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The TOML does not parse or does not match the schema.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range; `key` is its dotted path.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// The dotted key (`framework.batch.t_job`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A `--set` or `--sweep` names a key that does not exist.
    #[error("unknown key {key}: {reason}")]
    UnknownKey {
        /// The dotted key as given.
        key: String,
        /// Where the path stopped.
        reason: String,
    },
}

/// A trace file that cannot be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A line is not a valid `task_events` record.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Why a run could not start or was stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The trace is unusable.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The master core broke one of its invariants (checked runs only).
    #[error("at t={at_secs:.6}s the master broke an invariant: {reason}")]
    Invariant {
        /// Virtual time, seconds.
        at_secs: f64,
        /// Which one.
        reason: String,
    },
    /// A framework could not be built.
    #[error("framework {name}: {reason}")]
    Framework {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Writing results failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("cannot draw {path}: {reason}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// The plotting error.
        reason: String,
    },
}
