//! cgroup v1: one hierarchy per controller (or per group of controllers
//! mounted together), a directory per cgroup in each.

mod cpu;
mod cpuacct;
mod freezer;
mod memory;
mod pids;

use super::{CgroupError, CgroupManager, CgroupMounts, CgroupUsage, Limits, fs};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The v1 controllers a task's cgroup spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// Shares and CFS quota.
    Cpu,
    /// CPU time accounting.
    Cpuacct,
    /// Memory limit and OOM accounting.
    Memory,
    /// Process count limit.
    Pids,
    /// Freezing, for a kill that races no fork.
    Freezer,
}

impl Controller {
    /// Every controller used.
    pub const ALL: [Self; 5] = [Self::Cpu, Self::Cpuacct, Self::Memory, Self::Pids, Self::Freezer];

    /// Its name in the mount options and in `/proc/<pid>/cgroup`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Freezer => "freezer",
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where each controller's hierarchy is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    mounts: BTreeMap<Controller, PathBuf>,
}

impl Hierarchy {
    /// Every controller mounted at `root/<controller>` (the usual layout,
    /// and the shape of a fixture directory).
    pub fn under(root: &Path) -> Self {
        Self {
            mounts: Controller::ALL.iter().map(|&c| (c, root.join(c.name()))).collect(),
        }
    }

    /// The controllers' mounts from a mount table; every controller of
    /// [`Controller::ALL`] must be mounted.
    pub fn from_mounts(mounts: &CgroupMounts) -> Result<Self, CgroupError> {
        let mounts = Controller::ALL
            .iter()
            .map(|&c| {
                mounts
                    .v1_mount(c.name())
                    .map(|path| (c, path.to_owned()))
                    .ok_or_else(|| CgroupError::NotMounted(format!("the v1 {c} controller is not mounted")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { mounts })
    }

    /// The cgroup at `relative` in every hierarchy.
    pub fn cgroup(&self, relative: &Path) -> Cgroup {
        Cgroup {
            dirs: self.mounts.iter().map(|(&c, m)| (c, m.join(relative))).collect(),
        }
    }

    /// The mount directories, deduplicated (`cpu,cpuacct` share one).
    pub fn mounts(&self) -> Vec<PathBuf> {
        dedup(self.mounts.values().cloned())
    }
}

fn dedup(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// One cgroup: its directory in each controller's hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    dirs: BTreeMap<Controller, PathBuf>,
}

impl Cgroup {
    /// Its directory in the hierarchy of `controller`.
    pub fn dir(&self, controller: Controller) -> &Path {
        // Every controller of ALL is present by construction.
        self.dirs
            .get(&controller)
            .map_or(Path::new("/nonexistent"), PathBuf::as_path)
    }
}

impl CgroupManager for Cgroup {
    fn create(&self, limits: &Limits) -> Result<(), CgroupError> {
        for dir in self.dirs() {
            fs::create_dir(&dir)?;
        }
        cpu::apply(self.dir(Controller::Cpu), limits)?;
        memory::apply(self.dir(Controller::Memory), limits)?;
        pids::apply(self.dir(Controller::Pids), limits)
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::procs(self.dir(Controller::Freezer))
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        freezer::set(self.dir(Controller::Freezer), freezer::FROZEN)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        freezer::set(self.dir(Controller::Freezer), freezer::THAWED)
    }

    fn kill_all(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }

    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        memory::oom_kills(self.dir(Controller::Memory))
    }

    fn memory_limit_hits(&self) -> Result<u64, CgroupError> {
        memory::failcnt(self.dir(Controller::Memory))
    }

    fn usage(&self) -> Result<CgroupUsage, CgroupError> {
        Ok(CgroupUsage {
            cpu_time: Duration::from_nanos(cpuacct::usage_ns(self.dir(Controller::Cpuacct))?),
            memory_bytes: memory::usage(self.dir(Controller::Memory))?,
            pids: pids::current(self.dir(Controller::Pids))?,
        })
    }

    fn remove(&self) -> Result<(), CgroupError> {
        self.dirs().iter().try_for_each(|d| fs::remove_dir(d))
    }

    fn dirs(&self) -> Vec<PathBuf> {
        dedup(self.dirs.values().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerizer::cgroups::testdir::TestDir;

    fn limits() -> Limits {
        Limits {
            cpu_shares: 512,
            cfs_quota_us: Some(50_000),
            memory_bytes: 64 << 20,
            pids_max: 50,
        }
    }

    #[test]
    fn create_writes_the_limits() {
        let root = TestDir::new("v1-create");
        let h = Hierarchy::under(root.path());
        let cg = h.cgroup(Path::new("agora/f1/t1"));
        // The kernel has memsw files only with swap accounting.
        std::fs::create_dir_all(root.path().join("memory/agora/f1/t1")).expect("mkdir");
        std::fs::write(
            root.path().join("memory/agora/f1/t1/memory.memsw.limit_in_bytes"),
            "max",
        )
        .expect("write");
        cg.create(&limits()).expect("create");
        let read = |p: &str| std::fs::read_to_string(root.path().join(p)).expect(p);
        assert_eq!(read("cpu/agora/f1/t1/cpu.shares"), "512");
        assert_eq!(read("cpu/agora/f1/t1/cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu/agora/f1/t1/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("memory/agora/f1/t1/memory.limit_in_bytes"), "67108864");
        assert_eq!(read("memory/agora/f1/t1/memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(read("pids/agora/f1/t1/pids.max"), "50");
        assert!(root.path().join("freezer/agora/f1/t1").is_dir());
        assert!(root.path().join("cpuacct/agora/f1/t1").is_dir());
        assert_eq!(cg.procs_files().len(), 5);

        let no_quota = Limits {
            cfs_quota_us: None,
            ..limits()
        };
        cg.create(&no_quota).expect("create again");
        assert_eq!(read("cpu/agora/f1/t1/cpu.cfs_quota_us"), "-1");
    }

    #[test]
    fn a_shared_mount_is_one_directory() {
        let root = TestDir::new("v1-shared");
        let mut mounts = CgroupMounts::default();
        for c in ["memory", "pids", "freezer"] {
            mounts.v1.insert(c.to_owned(), root.path().join(c));
        }
        for c in ["cpu", "cpuacct"] {
            mounts.v1.insert(c.to_owned(), root.path().join("cpu,cpuacct"));
        }
        let h = Hierarchy::from_mounts(&mounts).expect("all mounted");
        assert_eq!(h.mounts().len(), 4);
        assert_eq!(h.cgroup(Path::new("agora/x")).procs_files().len(), 4);
        mounts.v1.remove("freezer");
        let error = Hierarchy::from_mounts(&mounts).expect_err("freezer missing");
        assert_eq!(
            error.to_string(),
            "no usable cgroup hierarchy: the v1 freezer controller is not mounted"
        );
    }

    #[test]
    fn oom_usage_and_freezer_from_fixtures() {
        let root = TestDir::new("v1-read");
        let cg = Hierarchy::under(root.path()).cgroup(Path::new("agora/f1/t1"));
        for dir in cg.dirs() {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        let write = |p: &str, v: &str| std::fs::write(root.path().join(p), v).expect(p);
        write(
            "memory/agora/f1/t1/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        write("memory/agora/f1/t1/memory.failcnt", "17\n");
        write("memory/agora/f1/t1/memory.usage_in_bytes", "4096\n");
        write("cpuacct/agora/f1/t1/cpuacct.usage", "1500000000\n");
        write("pids/agora/f1/t1/pids.current", "3\n");
        write("freezer/agora/f1/t1/cgroup.procs", "12\n34\n");
        assert_eq!(cg.oom_kills().expect("oom"), Some(2));
        assert_eq!(cg.memory_limit_hits().expect("failcnt"), 17);
        assert_eq!(
            cg.usage().expect("usage"),
            CgroupUsage {
                cpu_time: Duration::from_millis(1500),
                memory_bytes: 4096,
                pids: 3
            }
        );
        assert_eq!(cg.pids().expect("pids"), [12, 34]);
        write(
            "memory/agora/f1/t1/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\n",
        );
        assert_eq!(cg.oom_kills().expect("old kernel"), None);
        cg.freeze().expect("freeze");
        assert_eq!(
            std::fs::read_to_string(root.path().join("freezer/agora/f1/t1/freezer.state")).expect("state"),
            "FROZEN"
        );
        cg.thaw().expect("thaw");
        assert!(!cg.kill_all().expect("no kill switch in v1"));

        write("cpuacct/agora/f1/t1/cpuacct.usage", "lots\n");
        let error = cg.usage().expect_err("garbage");
        assert!(
            error.to_string().contains("cpuacct.usage: \"lots\" is not a number"),
            "{error}"
        );
    }

    #[test]
    fn errors_name_the_path_and_value() {
        let root = TestDir::new("v1-errors");
        let cg = Hierarchy::under(&root.path().join("missing")).cgroup(Path::new("x"));
        let error = fs::write(&cg.dir(Controller::Cpu).join("cpu.cfs_quota_us"), "100000 100000").expect_err("no dir");
        let text = error.to_string();
        assert!(text.starts_with("cannot write \"100000 100000\" to "), "{text}");
        assert!(text.contains("missing/cpu/x/cpu.cfs_quota_us: No such file"), "{text}");
    }
}
