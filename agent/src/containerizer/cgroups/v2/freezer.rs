//! v2 core files: `cgroup.kill` (Linux 5.14+) and `cgroup.freeze`.

use crate::containerizer::cgroups::{CgroupError, fs};
use std::path::Path;
use std::time::Duration;

/// How often to look whether the cgroup is frozen, 1 ms apart.
const ATTEMPTS: u32 = 2000;

/// SIGKILLs every process of the cgroup through `cgroup.kill`; `Ok(false)`
/// when the kernel has no such file.
pub(super) fn kill(dir: &Path) -> Result<bool, CgroupError> {
    fs::write_if_exists(&dir.join("cgroup.kill"), 1)
}

/// Freezes (or thaws) the cgroup; when freezing, waits until
/// `cgroup.events` says `frozen 1` (if the kernel reports it).
pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.freeze");
    fs::write(&path, u8::from(frozen))?;
    if !frozen {
        return Ok(());
    }
    let events = dir.join("cgroup.events");
    for _ in 0..ATTEMPTS {
        let Ok(text) = std::fs::read_to_string(&events) else {
            return Ok(());
        };
        if fs::keyed(&events, &text, "frozen")? != Some(0) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(CgroupError::Freeze { path, state: "1" })
}
