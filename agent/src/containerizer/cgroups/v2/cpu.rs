//! v2 `cpu`: weight and `cpu.max`.

use crate::containerizer::cgroups::{CFS_PERIOD_US, CgroupError, Limits, fs};
use std::path::Path;

/// The v2 weight (1..=10000) of v1 shares (2..=262144), as runc and the
/// kernel documentation convert them.
pub(super) fn weight_of_shares(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.weight"), weight_of_shares(limits.cpu_shares))?;
    let max = match limits.cfs_quota_us {
        Some(quota) => format!("{quota} {CFS_PERIOD_US}"),
        None => format!("max {CFS_PERIOD_US}"),
    };
    fs::write(&dir.join("cpu.max"), max)
}

/// CPU time used, in µs, from `cpu.stat`.
pub(super) fn usage_usec(dir: &Path) -> Result<u64, CgroupError> {
    let path = dir.join("cpu.stat");
    fs::keyed(&path, &fs::read(&path)?, "usage_usec")?.ok_or_else(|| CgroupError::Parse {
        path,
        reason: "no usage_usec".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(weight_of_shares(2), 1);
        assert_eq!(weight_of_shares(1024), 39);
        assert_eq!(weight_of_shares(262_144), 10_000);
        assert_eq!(weight_of_shares(u64::MAX), 10_000);
    }
}
