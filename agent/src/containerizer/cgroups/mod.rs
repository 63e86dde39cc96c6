//! Linux control groups: the file-system layer (v1 and v2, each a directory
//! of control files under a root that tests point at a fixture directory)
//! and, with the `link` feature, the [`CgroupsContainerizer`] that runs each
//! task in its own cgroup.
//!
//! In the style of youki's `libcgroups`: one file per controller under
//! [`v1`] and [`v2`], one [`CgroupManager`] trait, the [`Cgroup`] enum that
//! dispatches over the two, and every I/O error names the path it failed on
//! ([`CgroupError`]). (`cgroups-rs` 0.5.1 was not used: it always works on
//! the mounts of the running system, so it cannot target a fixture root, and
//! it pulls in a D-Bus stack.)
//!
//! | limit | v1 | v2 |
//! | ----- | -- | -- |
//! | cpu share | `cpu.shares` = 1024 × cpus, at least 2 | `cpu.weight` converted from the shares |
//! | cpu quota (optional) | `cpu.cfs_period_us` = 100 ms, `cpu.cfs_quota_us` = cpus × period | `cpu.max` = `quota period` |
//! | memory | `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where it exists) = mem, at least 32 MiB | `memory.max` (and `memory.swap.max` = 0 where it exists) |
//! | processes | `pids.max` | `pids.max` |
//!
//! A task's cgroup is `<root>/<framework>/<task>` (root `agora` by default)
//! in each v1 hierarchy (cpu, cpuacct, memory, pids, freezer) or in the
//! unified one.

mod fs;
pub mod mount;
pub mod v1;
pub mod v2;

#[cfg(feature = "link")]
mod containerizer;
#[cfg(test)]
pub(crate) mod testdir;

#[cfg(feature = "link")]
pub use containerizer::CgroupsContainerizer;
pub use mount::{CgroupMode, CgroupMounts, parse_mountinfo};

use crate::config::CgroupsConfig;
use agora_proto::Resources;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The CFS period: 100 ms.
pub const CFS_PERIOD_US: u64 = 100_000;
/// The smallest `cpu.shares` (the kernel's minimum).
pub const MIN_CPU_SHARES: u64 = 2;
/// The smallest memory limit: 32 MiB (as Mesos).
pub const MIN_MEMORY_BYTES: u64 = 32 << 20;

/// A cgroup operation that failed; each names the path it failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// Writing a control file failed.
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Why it failed.
        source: io::Error,
    },
    /// Reading a control file failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// A control file holds something unexpected.
    #[error("cannot parse {}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Creating a cgroup directory failed.
    #[error("cannot create cgroup {}: {source}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// Removing a cgroup directory failed.
    #[error("cannot remove cgroup {}: {source}", path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The freezer did not reach the state asked for in time.
    #[error("{} did not become {state} in time", path.display())]
    Freeze {
        /// The freezer's control file.
        path: PathBuf,
        /// The state asked for.
        state: &'static str,
    },
    /// No usable cgroup hierarchy is mounted.
    #[error("no usable cgroup hierarchy: {0}")]
    NotMounted(String),
}

/// The limits of one task's cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `cpu.shares` (v1); v2 converts it to `cpu.weight`.
    pub cpu_shares: u64,
    /// CFS quota per [`CFS_PERIOD_US`], in µs; `None` for no quota.
    pub cfs_quota_us: Option<u64>,
    /// Hard memory limit in bytes.
    pub memory_bytes: u64,
    /// Most processes and threads at once.
    pub pids_max: u64,
}

impl Limits {
    /// The limits of a task holding `resources` (cpus, mem in MiB).
    pub fn for_task(resources: &Resources, config: &CgroupsConfig) -> Self {
        let cpu_milli = resources.cpus().milli();
        let mem_milli = resources.mem().milli();
        Self {
            cpu_shares: (cpu_milli.saturating_mul(1024) / 1000).max(MIN_CPU_SHARES),
            cfs_quota_us: (config.cfs_quota && cpu_milli > 0)
                .then(|| (cpu_milli.saturating_mul(CFS_PERIOD_US) / 1000).max(1000)),
            memory_bytes: (mem_milli.saturating_mul(1 << 20) / 1000).max(MIN_MEMORY_BYTES),
            pids_max: config.pids_limit,
        }
    }

    /// The memory limit for people: `64 MiB`.
    pub fn memory_text(&self) -> String {
        format!("{} MiB", self.memory_bytes.div_ceil(1 << 20))
    }
}

/// What a cgroup has used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time since the cgroup was created.
    pub cpu_time: Duration,
    /// Memory charged now, in bytes.
    pub memory_bytes: u64,
    /// Processes and threads now.
    pub pids: u64,
}

/// One task's cgroup, in whichever hierarchies it spans.
pub trait CgroupManager {
    /// Creates the cgroup (and missing ancestors) and applies `limits`.
    fn create(&self, limits: &Limits) -> Result<(), CgroupError>;
    /// The `cgroup.procs` files a process writes `0` into to join the
    /// cgroup (one per hierarchy).
    fn procs_files(&self) -> Vec<PathBuf>;
    /// The processes in the cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Freezes every process of the cgroup and waits until they are.
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Thaws the cgroup.
    fn thaw(&self) -> Result<(), CgroupError>;
    /// Kills every process at once where the kernel can (v2 `cgroup.kill`):
    /// `Ok(true)`; `Ok(false)` when the caller must freeze, signal and thaw.
    fn kill_all(&self) -> Result<bool, CgroupError>;
    /// How many processes the OOM killer killed in the cgroup; `None` when
    /// the kernel does not count them (old v1), then `memory.failcnt` stands
    /// in, with `Some(0)` meaning the limit was never hit.
    fn oom_kills(&self) -> Result<Option<u64>, CgroupError>;
    /// How many times the memory limit was hit (v1 `memory.failcnt`, v2
    /// `max` in `memory.events`).
    fn memory_limit_hits(&self) -> Result<u64, CgroupError>;
    /// What the cgroup uses.
    fn usage(&self) -> Result<CgroupUsage, CgroupError>;
    /// Removes the cgroup's directories (every process must have been reaped).
    fn remove(&self) -> Result<(), CgroupError>;
    /// The cgroup's directories.
    fn dirs(&self) -> Vec<PathBuf>;
}

/// A cgroup in a v1 or v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cgroup {
    /// In the v1 hierarchies.
    V1(v1::Cgroup),
    /// In the unified hierarchy.
    V2(v2::Cgroup),
}

macro_rules! dispatch {
    ($self:ident, $cg:ident => $e:expr) => {
        match $self {
            Self::V1($cg) => $e,
            Self::V2($cg) => $e,
        }
    };
}

impl CgroupManager for Cgroup {
    fn create(&self, limits: &Limits) -> Result<(), CgroupError> {
        dispatch!(self, c => c.create(limits))
    }
    fn procs_files(&self) -> Vec<PathBuf> {
        dispatch!(self, c => c.procs_files())
    }
    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        dispatch!(self, c => c.pids())
    }
    fn freeze(&self) -> Result<(), CgroupError> {
        dispatch!(self, c => c.freeze())
    }
    fn thaw(&self) -> Result<(), CgroupError> {
        dispatch!(self, c => c.thaw())
    }
    fn kill_all(&self) -> Result<bool, CgroupError> {
        dispatch!(self, c => c.kill_all())
    }
    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        dispatch!(self, c => c.oom_kills())
    }
    fn memory_limit_hits(&self) -> Result<u64, CgroupError> {
        dispatch!(self, c => c.memory_limit_hits())
    }
    fn usage(&self) -> Result<CgroupUsage, CgroupError> {
        dispatch!(self, c => c.usage())
    }
    fn remove(&self) -> Result<(), CgroupError> {
        dispatch!(self, c => c.remove())
    }
    fn dirs(&self) -> Vec<PathBuf> {
        dispatch!(self, c => c.dirs())
    }
}

/// Where cgroups are made: the v1 hierarchies or the unified one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// v1 (also for the hybrid layout).
    V1(v1::Hierarchy),
    /// v2.
    V2(v2::Hierarchy),
}

impl Hierarchy {
    /// The hierarchy of this machine's mount table.
    pub fn detect() -> Result<Self, CgroupError> {
        let mounts = CgroupMounts::current()
            .ok_or_else(|| CgroupError::NotMounted("cannot read /proc/self/mountinfo".to_owned()))?;
        Self::from_mounts(&mounts)
    }

    /// The hierarchy to use given `mounts`: v1 when the controllers are
    /// there (v1 or hybrid), else the unified one.
    pub fn from_mounts(mounts: &CgroupMounts) -> Result<Self, CgroupError> {
        match (mounts.mode(), &mounts.unified) {
            (Some(CgroupMode::V1 | CgroupMode::Hybrid), _) => v1::Hierarchy::from_mounts(mounts).map(Self::V1),
            (Some(CgroupMode::V2), Some(unified)) => Ok(Self::V2(v2::Hierarchy::new(unified))),
            _ => Err(CgroupError::NotMounted("no cgroup file system is mounted".to_owned())),
        }
    }

    /// The cgroup at `relative` (such as `agora/f1/t1`).
    pub fn cgroup(&self, relative: &Path) -> Cgroup {
        match self {
            Self::V1(h) => Cgroup::V1(h.cgroup(relative)),
            Self::V2(h) => Cgroup::V2(h.cgroup(relative)),
        }
    }

    /// The directories of `relative` in each hierarchy, deduplicated.
    pub fn dirs(&self, relative: &Path) -> Vec<PathBuf> {
        self.cgroup(relative).dirs()
    }

    /// The mount directories (one per v1 hierarchy, or the unified mount).
    pub fn mounts(&self) -> Vec<PathBuf> {
        match self {
            Self::V1(h) => h.mounts(),
            Self::V2(h) => vec![h.mount().to_owned()],
        }
    }

    /// Whether this process may create cgroups here: creates and removes
    /// a probe cgroup `<mount>/<name>` in each hierarchy.
    pub fn probe_writable(&self, name: &str) -> Result<(), CgroupError> {
        for mount in self.mounts() {
            let probe = mount.join(name);
            let existed = probe.is_dir();
            fs::create_dir(&probe)?;
            if !existed {
                fs::remove_dir(&probe)?;
            }
        }
        Ok(())
    }
}

/// Removes the empty cgroups under `root` (depth first, `root` itself
/// included); busy or non-empty ones stay. Returns the ones removed.
pub fn remove_empty_tree(root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                removed.extend(remove_empty_tree(&entry.path()));
            }
        }
    }
    if std::fs::remove_dir(root).is_ok() {
        removed.push(root.to_owned());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_mesos() {
        let config = CgroupsConfig::default();
        let r: Resources = "cpus:0.5;mem:64".parse().expect("valid");
        let l = Limits::for_task(&r, &config);
        assert_eq!(l.cpu_shares, 512);
        assert_eq!(l.cfs_quota_us, Some(50_000));
        assert_eq!(l.memory_bytes, 64 << 20);
        assert_eq!(l.pids_max, 1024);
        assert_eq!(l.memory_text(), "64 MiB");
        let tiny = Limits::for_task(&"cpus:0.001;mem:1".parse().expect("valid"), &config);
        assert_eq!((tiny.cpu_shares, tiny.memory_bytes), (MIN_CPU_SHARES, MIN_MEMORY_BYTES));
        assert_eq!(tiny.cfs_quota_us, Some(1000), "the kernel's minimum quota is 1 ms");
        let none = Limits::for_task(
            &Resources::default(),
            &CgroupsConfig {
                cfs_quota: false,
                ..CgroupsConfig::default()
            },
        );
        assert_eq!(none.cfs_quota_us, None);
        let off = Limits::for_task(
            &r,
            &CgroupsConfig {
                cfs_quota: false,
                ..CgroupsConfig::default()
            },
        );
        assert_eq!(off.cfs_quota_us, None);
    }
}
