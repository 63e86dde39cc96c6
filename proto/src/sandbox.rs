//! What operators see of a running task: the files in its sandbox and the
//! resources its container uses.

use crate::error::ProtoError;
use crate::pb;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A file in a task's sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxFile {
    /// The task's standard output.
    Stdout,
    /// The task's standard error.
    Stderr,
}

impl SandboxFile {
    /// The file's name in the sandbox directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    /// Converts the wire enum; `field` names it in the error.
    pub fn from_wire(value: i32, field: &str) -> Result<Self, ProtoError> {
        match pb::SandboxFile::try_from(value) {
            Ok(pb::SandboxFile::Stdout) => Ok(Self::Stdout),
            Ok(pb::SandboxFile::Stderr) => Ok(Self::Stderr),
            Ok(pb::SandboxFile::Unspecified) => Err(ProtoError::missing(field)),
            Err(_) => Err(ProtoError::invalid(field, format!("unknown sandbox file {value}"))),
        }
    }
}

impl From<SandboxFile> for i32 {
    fn from(file: SandboxFile) -> Self {
        match file {
            SandboxFile::Stdout => pb::SandboxFile::Stdout as Self,
            SandboxFile::Stderr => pb::SandboxFile::Stderr as Self,
        }
    }
}

impl fmt::Display for SandboxFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Part of a sandbox file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// The bytes read.
    pub data: Vec<u8>,
    /// Where they start in the file.
    pub offset: u64,
    /// The file's size when it was read.
    pub size: u64,
}

/// What a task's container uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskUsage {
    /// CPU time used since it started (user + system), in seconds.
    pub cpu_seconds: f64,
    /// Memory in use now, in bytes.
    pub mem_bytes: u64,
    /// Processes and threads in its container now.
    pub pids: u64,
    /// When it was measured.
    pub timestamp: Timestamp,
}

impl TryFrom<pb::TaskUsage> for TaskUsage {
    type Error = ProtoError;
    fn try_from(wire: pb::TaskUsage) -> Result<Self, ProtoError> {
        let check = |v: f64, field: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(ProtoError::invalid(field, format!("{v} is not a non-negative number")))
            }
        };
        Ok(Self {
            cpu_seconds: check(wire.cpu_seconds, "cpu_seconds")?,
            mem_bytes: wire.mem_bytes,
            pids: wire.pids,
            timestamp: Timestamp::from_micros((check(wire.timestamp, "timestamp")? * 1e6) as u64),
        })
    }
}

impl From<TaskUsage> for pb::TaskUsage {
    fn from(u: TaskUsage) -> Self {
        Self {
            cpu_seconds: u.cpu_seconds,
            mem_bytes: u.mem_bytes,
            pids: u.pids,
            timestamp: u.timestamp.as_secs_f64(),
        }
    }
}
