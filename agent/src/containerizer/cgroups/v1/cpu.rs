//! v1 `cpu`: shares and the CFS quota.

use crate::containerizer::cgroups::{CFS_PERIOD_US, CgroupError, Limits, fs};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.shares"), limits.cpu_shares)?;
    fs::write(&dir.join("cpu.cfs_period_us"), CFS_PERIOD_US)?;
    match limits.cfs_quota_us {
        Some(quota) => fs::write(&dir.join("cpu.cfs_quota_us"), quota),
        None => fs::write(&dir.join("cpu.cfs_quota_us"), -1),
    }
}
