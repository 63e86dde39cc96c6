//! v1 `memory`: the hard limit (memory and memory+swap), OOM kills, usage.

use crate::containerizer::cgroups::{CgroupError, Limits, fs};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    // memsw must stay >= the memory limit: set the memory limit first.
    fs::write(&dir.join("memory.limit_in_bytes"), limits.memory_bytes)?;
    // With swap accounting, the same limit for memory+swap: no escape to swap.
    fs::write_if_exists(&dir.join("memory.memsw.limit_in_bytes"), limits.memory_bytes)?;
    Ok(())
}

/// The `oom_kill` counter of `memory.oom_control` (Linux 4.13+).
pub(super) fn oom_kills(dir: &Path) -> Result<Option<u64>, CgroupError> {
    let path = dir.join("memory.oom_control");
    fs::keyed(&path, &fs::read(&path)?, "oom_kill")
}

/// How many times the limit was hit.
pub(super) fn failcnt(dir: &Path) -> Result<u64, CgroupError> {
    fs::read_u64(&dir.join("memory.failcnt"))
}

/// Memory charged now.
pub(super) fn usage(dir: &Path) -> Result<u64, CgroupError> {
    fs::read_u64(&dir.join("memory.usage_in_bytes"))
}
