//! v2 `memory`: `memory.max`, no swap, OOM events, usage.

use crate::containerizer::cgroups::{CgroupError, Limits, fs};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    fs::write(&dir.join("memory.max"), limits.memory_bytes)?;
    // v2 limits swap separately: none, so the limit cannot be escaped.
    fs::write_if_exists(&dir.join("memory.swap.max"), 0)?;
    Ok(())
}

/// A counter of `memory.events`.
pub(super) fn events(dir: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let path = dir.join("memory.events");
    fs::keyed(&path, &fs::read(&path)?, key)
}

/// Memory charged now.
pub(super) fn current(dir: &Path) -> Result<u64, CgroupError> {
    fs::read_u64(&dir.join("memory.current"))
}
