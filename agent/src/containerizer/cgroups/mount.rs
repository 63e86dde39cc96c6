//! Which cgroup hierarchies are mounted where, from the mount table
//! (`/proc/self/mountinfo`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layout of the cgroup file systems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 hierarchies, one or more controllers each.
    V1,
    /// Only the unified (v2) hierarchy.
    V2,
    /// v1 hierarchies for the controllers, and a unified hierarchy beside
    /// them (systemd's "hybrid" layout); the controllers are used through v1.
    Hybrid,
}

/// The cgroup mounts found in a mount table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// Each v1 controller (`cpu`, `memory`, `name=systemd`, ...) and where
    /// its hierarchy is mounted (the first mount, if several).
    pub v1: BTreeMap<String, PathBuf>,
    /// Where the unified hierarchy is mounted.
    pub unified: Option<PathBuf>,
}

impl CgroupMounts {
    /// Reads the mount table of this process; `None` when it cannot be read.
    pub fn current() -> Option<Self> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .map(|text| parse_mountinfo(&text))
    }

    /// The layout, or `None` when no cgroup file system is mounted.
    pub fn mode(&self) -> Option<CgroupMode> {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, true) => Some(CgroupMode::V2),
            (false, false) => Some(CgroupMode::V1),
            (false, true) => Some(CgroupMode::Hybrid),
            (true, false) => None,
        }
    }

    /// Where the v1 hierarchy of `controller` is mounted.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(PathBuf::as_path)
    }
}

/// Parses the text of a `mountinfo` file (see proc(5)): `cgroup` mounts give
/// their controllers from the super options, `cgroup2` the unified mount.
/// Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mut right = right.split_whitespace();
        let (Some(fs_type), Some(_source), Some(options)) = (right.next(), right.next(), right.next()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        match fs_type {
            "cgroup2" => {
                mounts.unified.get_or_insert(mount_point);
            }
            "cgroup" => {
                for option in options.split(',') {
                    let flag = matches!(
                        option,
                        "rw" | "ro" | "xattr" | "noprefix" | "clone_children" | "cpuset_v2_mode" | "favordynmods"
                    );
                    if !flag && !option.starts_with("release_agent=") {
                        mounts
                            .v1
                            .entry(option.to_owned())
                            .or_insert_with(|| mount_point.clone());
                    }
                }
            }
            _ => {}
        }
    }
    mounts
}

/// Undoes the octal escapes of mountinfo (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
";

    const V2: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime shared:7 - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:8 - cgroup cgroup rw,cpu,cpuacct
36 31 0:33 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:10 - cgroup cgroup rw,freezer
";

    #[test]
    fn v1_controllers_and_their_mounts() {
        let mounts = parse_mountinfo(V1);
        assert_eq!(mounts.mode(), Some(CgroupMode::V1));
        assert_eq!(mounts.v1_mount("cpu"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(
            mounts.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(mounts.v1_mount("memory"), Some(Path::new("/sys/fs/cgroup/memory")));
        assert_eq!(
            mounts.v1_mount("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(mounts.v1_mount("rw"), None);
        assert_eq!(mounts.v1_mount("xattr"), None);
        assert_eq!(mounts.unified, None);
    }

    #[test]
    fn v2_is_the_unified_mount_alone() {
        let mounts = parse_mountinfo(V2);
        assert_eq!(mounts.mode(), Some(CgroupMode::V2));
        assert_eq!(mounts.unified.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert!(mounts.v1.is_empty());
    }

    #[test]
    fn hybrid_has_both() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.mode(), Some(CgroupMode::Hybrid));
        assert_eq!(mounts.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(mounts.v1_mount("pids"), Some(Path::new("/sys/fs/cgroup/pids")));
    }

    #[test]
    fn no_cgroups_and_escapes() {
        assert_eq!(parse_mountinfo("garbage\n\n1 2 3").mode(), None);
        let line = r"40 31 0:37 / /mnt/my\040cgroups rw - cgroup2 none rw";
        assert_eq!(
            parse_mountinfo(line).unified.as_deref(),
            Some(Path::new("/mnt/my cgroups"))
        );
    }
}
