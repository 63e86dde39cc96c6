//! File operations on cgroup control files; every error names the path.

use super::CgroupError;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// Writes `value` to the control file `path` (created if absent, as in a
/// fixture directory; the kernel's files always exist).
pub(crate) fn write(path: &Path, value: impl ToString) -> Result<(), CgroupError> {
    let value = value.to_string();
    fs::write(path, value.as_bytes()).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value,
        source,
    })
}

/// Writes `value` to `path` when the file exists; `Ok(false)` when it does not.
pub(crate) fn write_if_exists(path: &Path, value: impl ToString) -> Result<bool, CgroupError> {
    if !path.exists() {
        return Ok(false);
    }
    write(path, value).map(|()| true)
}

/// The contents of a control file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A control file holding one number (`max` reads as `u64::MAX`).
pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    number(path, read(path)?.trim())
}

/// Parses a number read from `path` (`max` is `u64::MAX`).
pub(crate) fn number(path: &Path, text: &str) -> Result<u64, CgroupError> {
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        reason: format!("{text:?} is not a number"),
    })
}

/// The value of `key` in the text of a flat keyed file read from `path`
/// (`key value` per line, as `memory.events`, `cpu.stat`,
/// `memory.oom_control`); `None` when the key is absent.
pub(crate) fn keyed(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    text.lines()
        .filter_map(|line| line.split_once(char::is_whitespace))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| number(path, v.trim()))
        .transpose()
}

/// The process ids in `cgroup.procs` of `dir`.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    read(&path)?
        .split_whitespace()
        .map(|pid| {
            pid.parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                reason: format!("{pid:?} is not a process id"),
            })
        })
        .collect()
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir(dir: &Path) -> Result<(), CgroupError> {
    fs::create_dir_all(dir).map_err(|source| CgroupError::Create {
        path: dir.to_owned(),
        source,
    })
}

/// Removes the cgroup directory `dir`; `Ok` if it is already gone. The
/// kernel refuses (EBUSY) while a process, even a zombie, is in it.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), CgroupError> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CgroupError::Remove {
            path: dir.to_owned(),
            source,
        }),
    }
}
