//! Resource detection: what an agent offers when `--resources` does not say,
//! by the rules of Mesos' agent (`slave/containerizer/containerizer.cpp`).
//!
//! - `cpus`: the number of CPUs the machine has;
//! - `mem`: total memory less 1 GiB left to the system, or half of it when
//!   the machine has less than 2 GiB;
//! - `disk`: the size of the filesystem holding the work directory less
//!   5 GiB, or half of it when it holds less than 10 GiB;
//! - `ports`: `[31000-32000]`.
//!
//! `mem` and `disk` are in MiB. The rules are the pure [`mesos_rules`];
//! [`detect_resources`] only reads the machine. [`with_overrides`] applies a
//! `--resources` flag over detected values per resource name, as Mesos does.

use agora_proto::{RangeSet, Resources, Scalar};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Memory left to the operating system.
const MEM_RESERVED: u64 = GIB;
/// Below this much memory, half is offered instead.
const MEM_HALF_BELOW: u64 = 2 * GIB;
/// Disk left to the operating system and the agent's own files.
const DISK_RESERVED: u64 = 5 * GIB;
/// Below this much disk, half is offered instead.
const DISK_HALF_BELOW: u64 = 10 * GIB;
/// The port range Mesos agents offer by default.
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);

/// Detection could not read what it needs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// The work directory does not exist or cannot be resolved.
    #[error("cannot resolve the work directory {path}: {reason}")]
    WorkDir {
        /// The directory as given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The machine's CPUs or memory cannot be read.
    #[error("cannot read the machine's {what}: {reason}")]
    System {
        /// `cpus`, `memory` or `disks`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// No mounted filesystem holds the work directory.
    #[error("no mounted filesystem holds the work directory {0} (give `disk` in --resources)")]
    NoDisk(PathBuf),
}

/// Detects the resources of this machine, the disk being the filesystem that
/// holds `work_dir` (which must exist).
pub fn detect_resources(work_dir: &Path) -> Result<Resources, DetectError> {
    let dir = work_dir.canonicalize().map_err(|e| DetectError::WorkDir {
        path: work_dir.to_owned(),
        reason: e.to_string(),
    })?;
    let mut system = new_system()?;
    system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let cpus = match system.cpus().len() {
        0 => {
            return Err(DetectError::System {
                what: "cpus",
                reason: "no CPU is listed".to_owned(),
            });
        }
        n => n as u64,
    };
    let mem_bytes = total_memory()?;
    let disk_bytes = disk_of(&dir)?;
    Ok(mesos_rules(cpus, mem_bytes, disk_bytes))
}

fn new_system() -> Result<sysinfo::System, DetectError> {
    sysinfo::System::new().map_err(|e| DetectError::System {
        what: "cpus and memory",
        reason: e.to_string(),
    })
}

fn total_memory() -> Result<u64, DetectError> {
    let mut system = new_system()?;
    system.refresh_memory();
    match system.total_memory() {
        0 => Err(DetectError::System {
            what: "memory",
            reason: "the total is reported as 0".to_owned(),
        }),
        total => Ok(total),
    }
}

/// The total size of the filesystem mounted at the longest prefix of `dir`.
fn disk_of(dir: &Path) -> Result<u64, DetectError> {
    let disks = sysinfo::Disks::new_with_refreshed_list().map_err(|e| DetectError::System {
        what: "disks",
        reason: e.to_string(),
    })?;
    let mounts = disks.iter().map(|d| (d.mount_point(), d.total_space()));
    holding_mount(dir, mounts).ok_or_else(|| DetectError::NoDisk(dir.to_owned()))
}

/// Of `(mount point, size)` pairs, the size of the one whose mount point is
/// the longest prefix of `dir` (by path components, so `/var/lib` does not
/// hold `/var/library`).
fn holding_mount<'a>(dir: &Path, mounts: impl IntoIterator<Item = (&'a Path, u64)>) -> Option<u64> {
    mounts
        .into_iter()
        .filter(|(mount, _)| dir.starts_with(mount))
        .max_by_key(|(mount, _)| mount.components().count())
        .map(|(_, size)| size)
}

/// Mesos' rules, from the machine's CPU count and its memory and work-dir
/// disk sizes in bytes. See the [module documentation](self).
pub fn mesos_rules(cpus: u64, mem_bytes: u64, disk_bytes: u64) -> Resources {
    let mem = if mem_bytes < MEM_HALF_BELOW {
        mem_bytes / 2
    } else {
        mem_bytes - MEM_RESERVED
    };
    let disk = if disk_bytes < DISK_HALF_BELOW {
        disk_bytes / 2
    } else {
        disk_bytes - DISK_RESERVED
    };
    let ports = RangeSet::from_ranges([DEFAULT_PORTS]).unwrap_or_default();
    Resources::new()
        .with_scalar(Resources::CPUS, None, Scalar::from_units(cpus))
        .with_scalar(Resources::MEM, None, Scalar::from_units(mem / MIB))
        .with_scalar(Resources::DISK, None, Scalar::from_units(disk / MIB))
        .with_ranges(Resources::PORTS, None, ports)
}

/// `detected`, with every resource named in `given` replaced by what `given`
/// says (all its reservations), as Mesos' `--resources` does.
pub fn with_overrides(detected: &Resources, given: &Resources) -> Resources {
    let named: BTreeSet<&str> = given
        .scalars()
        .map(|(k, _)| k.name.as_ref())
        .chain(given.ranges().map(|(k, _)| k.name.as_ref()))
        .chain(given.sets().map(|(k, _)| k.name.as_ref()))
        .collect();
    detected.filter(|key| !named.contains(key.name.as_ref())) + given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(spec: &str) -> Resources {
        spec.parse().expect("valid resources")
    }

    #[test]
    fn large_machine_keeps_1_gib_of_memory_and_5_gib_of_disk() {
        let detected = mesos_rules(8, 16 * GIB, 100 * GIB);
        assert_eq!(detected, r("cpus:8;mem:15360;disk:97280;ports:[31000-32000]"));
    }

    #[test]
    fn small_machine_offers_half_its_memory_and_disk() {
        let detected = mesos_rules(1, GIB + GIB / 2, 8 * GIB);
        assert_eq!(detected, r("cpus:1;mem:768;disk:4096;ports:[31000-32000]"));
    }

    #[test]
    fn thresholds_are_exclusive_below() {
        // Exactly 2 GiB of memory and 10 GiB of disk use the subtraction.
        let detected = mesos_rules(2, 2 * GIB, 10 * GIB);
        assert_eq!(detected.mem(), Scalar::from_units(1024));
        assert_eq!(detected.disk(), Scalar::from_units(5 * 1024));
        // Just below, the halves.
        let detected = mesos_rules(2, 2 * GIB - 2 * MIB, 10 * GIB - 2 * MIB);
        assert_eq!(detected.mem(), Scalar::from_units(1023));
        assert_eq!(detected.disk(), Scalar::from_units(5 * 1024 - 1));
    }

    #[test]
    fn the_longest_mount_prefix_holds_the_work_dir() {
        let mounts = [
            (Path::new("/"), 1),
            (Path::new("/var"), 2),
            (Path::new("/var/lib"), 3),
            (Path::new("/var/library"), 4),
        ];
        assert_eq!(holding_mount(Path::new("/var/lib/agora"), mounts), Some(3));
        assert_eq!(holding_mount(Path::new("/var/libx"), mounts), Some(2));
        assert_eq!(holding_mount(Path::new("/tmp"), mounts), Some(1));
        assert_eq!(holding_mount(Path::new("/tmp"), [(Path::new("/srv"), 1)]), None);
    }

    #[test]
    fn given_resources_override_detected_ones_by_name() {
        let detected = r("cpus:8;mem:15360;disk:97280;ports:[31000-32000]");
        let given = r("cpus:1000;mem(ads):512;ports:[8000-8001]");
        assert_eq!(
            with_overrides(&detected, &given),
            r("cpus:1000;mem(ads):512;disk:97280;ports:[8000-8001]")
        );
        assert_eq!(with_overrides(&detected, &Resources::new()), detected);
    }

    #[test]
    fn this_machine_is_detected() {
        let dir = std::env::temp_dir();
        let detected = detect_resources(&dir).expect("detection works here");
        assert!(detected.cpus() >= Scalar::from_units(1), "{detected}");
        assert!(detected.mem() > Scalar::ZERO, "{detected}");
        assert!(detected.disk() > Scalar::ZERO, "{detected}");
        assert!(matches!(
            detect_resources(Path::new("/no/such/dir")),
            Err(DetectError::WorkDir { .. })
        ));
    }
}
