//! v1 `cpuacct`: CPU time used.

use crate::containerizer::cgroups::{CgroupError, fs};
use std::path::Path;

/// CPU time used by the cgroup's tasks, in nanoseconds.
pub(super) fn usage_ns(dir: &Path) -> Result<u64, CgroupError> {
    fs::read_u64(&dir.join("cpuacct.usage"))
}
