//! cgroup v2: one unified hierarchy; a cgroup is one directory, and a
//! controller works in it once every ancestor lists it in
//! `cgroup.subtree_control`.

mod cpu;
mod freezer;
mod memory;
mod pids;

use super::{CgroupError, CgroupManager, CgroupUsage, Limits, fs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The controllers enabled for our cgroups.
const CONTROLLERS: &str = "+cpu +memory +pids";

/// The unified hierarchy, mounted at a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    mount: PathBuf,
}

impl Hierarchy {
    /// The unified hierarchy mounted at `mount` (or a fixture directory).
    pub fn new(mount: &Path) -> Self {
        Self {
            mount: mount.to_owned(),
        }
    }

    /// Where it is mounted.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The cgroup at `relative`.
    pub fn cgroup(&self, relative: &Path) -> Cgroup {
        Cgroup {
            mount: self.mount.clone(),
            dir: self.mount.join(relative),
        }
    }
}

/// One cgroup: a directory of the unified hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    mount: PathBuf,
    dir: PathBuf,
}

impl Cgroup {
    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl CgroupManager for Cgroup {
    fn create(&self, limits: &Limits) -> Result<(), CgroupError> {
        // Enable the controllers from the mount down to the parent; no
        // process lives in those (the root cgroup is exempt from the rule).
        let relative = self.dir.strip_prefix(&self.mount).unwrap_or(Path::new(""));
        let mut parent = self.mount.clone();
        for part in relative.iter() {
            fs::create_dir(&parent)?;
            fs::write(&parent.join("cgroup.subtree_control"), CONTROLLERS)?;
            parent.push(part);
        }
        fs::create_dir(&self.dir)?;
        cpu::apply(&self.dir, limits)?;
        memory::apply(&self.dir, limits)?;
        pids::apply(&self.dir, limits)
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::procs(&self.dir)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        freezer::freeze(&self.dir, true)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        freezer::freeze(&self.dir, false)
    }

    fn kill_all(&self) -> Result<bool, CgroupError> {
        freezer::kill(&self.dir)
    }

    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        memory::events(&self.dir, "oom_kill").map(|n| Some(n.unwrap_or(0)))
    }

    fn memory_limit_hits(&self) -> Result<u64, CgroupError> {
        memory::events(&self.dir, "max").map(Option::unwrap_or_default)
    }

    fn usage(&self) -> Result<CgroupUsage, CgroupError> {
        Ok(CgroupUsage {
            cpu_time: Duration::from_micros(cpu::usage_usec(&self.dir)?),
            memory_bytes: memory::current(&self.dir)?,
            pids: pids::current(&self.dir)?,
        })
    }

    fn remove(&self) -> Result<(), CgroupError> {
        fs::remove_dir(&self.dir)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerizer::cgroups::testdir::TestDir;

    fn limits() -> Limits {
        Limits {
            cpu_shares: 2048,
            cfs_quota_us: Some(200_000),
            memory_bytes: 64 << 20,
            pids_max: 1024,
        }
    }

    #[test]
    fn create_writes_the_limits_and_enables_controllers() {
        let root = TestDir::new("v2-create");
        let cg = Hierarchy::new(root.path()).cgroup(Path::new("agora/f1/t1"));
        std::fs::create_dir_all(cg.dir()).expect("mkdir");
        std::fs::write(cg.dir().join("memory.swap.max"), "max").expect("write");
        cg.create(&limits()).expect("create");
        let read = |p: &str| std::fs::read_to_string(root.path().join(p)).expect(p);
        assert_eq!(read("agora/f1/t1/cpu.max"), "200000 100000");
        assert_eq!(read("agora/f1/t1/cpu.weight"), "79");
        assert_eq!(read("agora/f1/t1/memory.max"), "67108864");
        assert_eq!(read("agora/f1/t1/memory.swap.max"), "0");
        assert_eq!(read("agora/f1/t1/pids.max"), "1024");
        for dir in ["", "agora/", "agora/f1/"] {
            assert_eq!(read(&format!("{dir}cgroup.subtree_control")), "+cpu +memory +pids");
        }
        assert!(!root.path().join("agora/f1/t1/cgroup.subtree_control").exists());
        cg.create(&Limits {
            cfs_quota_us: None,
            cpu_shares: 2,
            ..limits()
        })
        .expect("create again");
        assert_eq!(read("agora/f1/t1/cpu.max"), "max 100000");
        assert_eq!(read("agora/f1/t1/cpu.weight"), "1");
        assert_eq!(cg.procs_files(), [root.path().join("agora/f1/t1/cgroup.procs")]);
    }

    #[test]
    fn kill_writes_cgroup_kill_where_the_kernel_has_it() {
        let root = TestDir::new("v2-kill");
        let cg = Hierarchy::new(root.path()).cgroup(Path::new("agora/f1/t1"));
        std::fs::create_dir_all(cg.dir()).expect("mkdir");
        assert!(!cg.kill_all().expect("no cgroup.kill before 5.14"));
        std::fs::write(cg.dir().join("cgroup.kill"), "").expect("write");
        assert!(cg.kill_all().expect("kill"));
        assert_eq!(
            std::fs::read_to_string(cg.dir().join("cgroup.kill")).expect("read"),
            "1"
        );
        std::fs::write(cg.dir().join("cgroup.events"), "populated 1\nfrozen 1\n").expect("write");
        cg.freeze().expect("freeze");
        assert_eq!(
            std::fs::read_to_string(cg.dir().join("cgroup.freeze")).expect("read"),
            "1"
        );
    }

    #[test]
    fn oom_and_usage_from_fixtures() {
        let root = TestDir::new("v2-read");
        let cg = Hierarchy::new(root.path()).cgroup(Path::new("agora/f1/t1"));
        std::fs::create_dir_all(cg.dir()).expect("mkdir");
        let write = |f: &str, v: &str| std::fs::write(cg.dir().join(f), v).expect(f);
        write(
            "memory.events",
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        write(
            "cpu.stat",
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n",
        );
        write("memory.current", "1048576\n");
        write("pids.current", "7\n");
        write("cgroup.procs", "");
        assert_eq!(cg.oom_kills().expect("events"), Some(1));
        assert_eq!(cg.memory_limit_hits().expect("events"), 12);
        assert_eq!(
            cg.usage().expect("usage"),
            CgroupUsage {
                cpu_time: Duration::from_millis(2500),
                memory_bytes: 1 << 20,
                pids: 7,
            }
        );
        assert_eq!(cg.pids().expect("pids"), Vec::<i32>::new());
        write("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
        assert_eq!(cg.oom_kills().expect("events"), Some(0));
    }
}
