//! v1 `pids`: the process count limit.

use crate::containerizer::cgroups::{CgroupError, Limits, fs};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    fs::write(&dir.join("pids.max"), limits.pids_max)
}

/// Processes and threads now.
pub(super) fn current(dir: &Path) -> Result<u64, CgroupError> {
    fs::read_u64(&dir.join("pids.current"))
}
