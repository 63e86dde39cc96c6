//! v1 `freezer`: stops every process of a cgroup, so that a kill cannot
//! race a fork.

use crate::containerizer::cgroups::{CgroupError, fs};
use std::path::Path;
use std::time::Duration;

pub(super) const FROZEN: &str = "FROZEN";
pub(super) const THAWED: &str = "THAWED";

/// How often to look whether the state was reached, 1 ms apart (freezing
/// takes microseconds unless a process sleeps uninterruptibly).
const ATTEMPTS: u32 = 2000;

/// Asks for `state` and waits until `freezer.state` reads it.
pub(super) fn set(dir: &Path, state: &'static str) -> Result<(), CgroupError> {
    let path = dir.join("freezer.state");
    for attempt in 0..ATTEMPTS {
        if attempt % 100 == 0 {
            // Re-asked now and then: a FREEZING cgroup gets a new chance.
            fs::write(&path, state)?;
        }
        if fs::read(&path)?.trim() == state {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(CgroupError::Freeze { path, state })
}
