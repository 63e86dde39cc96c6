//! The exit status of a task's process, recorded durably by its waiter so
//! that it survives the agent.
//!
//! The real containerizers start each task under a *waiter*: a process that
//! is the task's parent, waits for it, and writes how it ended to
//! [`path`]`(work_dir, id)` (`<work_dir>/meta/runs/<framework>/<task>/exit-status`)
//! before it exits itself. The agent reads the file when the waiter ends,
//! whether the waiter is its child or one it reattached to after a restart,
//! and when it recovers a task whose waiter ended while the agent was down.
//!
//! **Format.** One line: `agora-exit-status v1 exited 3` or
//! `agora-exit-status v1 signaled 9`, then `\n`. The waiter writes it to
//! `exit-status.tmp`, flushes it, renames it over `exit-status` and flushes
//! the directory, so the file is whole or absent; anything else (a torn or
//! hand-edited file) is [`ExitFileError::Malformed`], never a guess.
//!
//! [`encode`] allocates nothing and cannot panic: the waiter is a forked
//! copy of the agent that may only make async-signal-safe calls.

use crate::containerizer::ContainerId;
use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the task's run directory.
pub const FILE_NAME: &str = "exit-status";

/// The first words of the line, with the format version.
const MAGIC: &[u8] = b"agora-exit-status v1 ";

/// The longest line [`encode`] writes (magic, word, an `i32`, newline).
pub const MAX_LEN: usize = 48;

/// How a task's process ended, as its waiter saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskExit {
    /// It exited with this status.
    Exited(i32),
    /// This signal ended it.
    Signaled(i32),
}

impl TaskExit {
    /// Whether it exited with status 0.
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }

    /// The exit code a shell would report: the status, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled(signal) => 128_i32.saturating_add(signal),
        }
    }
}

impl fmt::Display for TaskExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with status {code}"),
            Self::Signaled(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// The run directory of container `id`: `<work_dir>/meta/runs/<framework>/<task>`
/// (kept out of the sandbox, which the task may write).
pub fn run_dir(work_dir: &Path, id: &ContainerId) -> PathBuf {
    work_dir
        .join("meta")
        .join("runs")
        .join(id.framework_id.as_str())
        .join(id.task_id.as_str())
}

/// The exit status file of container `id`.
pub fn path(work_dir: &Path, id: &ContainerId) -> PathBuf {
    run_dir(work_dir, id).join(FILE_NAME)
}

/// The temporary file the waiter writes before renaming it over `file`; it
/// is never read.
pub fn temp_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    file.with_file_name(name)
}

/// Why an exit status file cannot be read or written. Both name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExitFileError {
    /// Reading or writing failed.
    #[error("cannot {action} the exit status file {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not one whole record.
    #[error("the exit status file {path} is malformed ({reason})")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Writes the line recording `exit` into `buf` and returns its length.
/// Allocates nothing and cannot panic (see the [module docs](self)).
pub fn encode(exit: TaskExit, buf: &mut [u8; MAX_LEN]) -> usize {
    let (word, value): (&[u8], i32) = match exit {
        TaskExit::Exited(code) => (b"exited ", code),
        TaskExit::Signaled(signal) => (b"signaled ", signal),
    };
    // The digits of |value|, least significant first (an i32 has at most 10).
    let mut digits = [0_u8; 10];
    let mut count = 0;
    let mut rest = value.unsigned_abs();
    loop {
        if let Some(slot) = digits.get_mut(count) {
            *slot = b'0' + (rest % 10) as u8;
            count += 1;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let sign: &[u8] = if value < 0 { b"-" } else { b"" };
    let mut len = 0;
    let reversed = digits.iter().take(count).rev();
    for &byte in MAGIC.iter().chain(word).chain(sign).chain(reversed).chain(b"\n") {
        if let Some(slot) = buf.get_mut(len) {
            *slot = byte;
            len += 1;
        }
    }
    len
}

/// The exit recorded in `bytes` (as read from `path`, which errors name).
pub fn decode(bytes: &[u8], path: &Path) -> Result<TaskExit, ExitFileError> {
    let malformed = |reason: String| ExitFileError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let line = bytes
        .strip_suffix(b"\n")
        .ok_or_else(|| malformed(format!("{} bytes without a final newline", bytes.len())))?;
    let rest = line
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("not an agora-exit-status v1 record".to_owned()))?;
    let rest = std::str::from_utf8(rest).map_err(|_| malformed("not text".to_owned()))?;
    let (word, value) = rest
        .split_once(' ')
        .ok_or_else(|| malformed(format!("malformed record {rest:?}")))?;
    let value: i32 = value
        .parse()
        .map_err(|_| malformed(format!("malformed number {value:?}")))?;
    match word {
        "exited" => Ok(TaskExit::Exited(value)),
        "signaled" => Ok(TaskExit::Signaled(value)),
        other => Err(malformed(format!("unknown kind of end {other:?}"))),
    }
}

/// The exit recorded at `path`; `None` if nothing was recorded.
pub fn read(path: &Path) -> Result<Option<TaskExit>, ExitFileError> {
    match fs::read(path) {
        Ok(bytes) => decode(&bytes, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ExitFileError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Records `exit` at `path` as the waiter does (temporary file, flush,
/// rename, flush of the directory), with `std`: for tests and tools. The
/// waiter itself cannot use it (it allocates).
pub fn write(path: &Path, exit: TaskExit) -> Result<(), ExitFileError> {
    let io = |action: &'static str, at: &Path| {
        let path = at.to_owned();
        move |source| ExitFileError::Io { action, path, source }
    };
    let mut buf = [0_u8; MAX_LEN];
    let len = encode(exit, &mut buf);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io("create the directory of", path))?;
    let temp = temp_path(path);
    let mut file = File::create(&temp).map_err(io("create", &temp))?;
    file.write_all(buf.get(..len).unwrap_or_default())
        .map_err(io("write", &temp))?;
    file.sync_all().map_err(io("flush", &temp))?;
    drop(file);
    fs::rename(&temp, path).map_err(io("rename over", path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush the directory of", path))
}

/// Removes what a previous run of the same container id recorded, so a
/// relaunched task is never reported with its predecessor's status.
pub fn clear(path: &Path) -> Result<(), ExitFileError> {
    for file in [path.to_owned(), temp_path(path)] {
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ExitFileError::Io {
                    action: "remove",
                    path: file,
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{FrameworkId, TaskId};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agora-exit-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn line(exit: TaskExit) -> Vec<u8> {
        let mut buf = [0_u8; MAX_LEN];
        let len = encode(exit, &mut buf);
        buf[..len].to_vec()
    }

    #[test]
    fn records_round_trip() {
        assert_eq!(line(TaskExit::Exited(3)), b"agora-exit-status v1 exited 3\n");
        assert_eq!(line(TaskExit::Signaled(9)), b"agora-exit-status v1 signaled 9\n");
        for exit in [
            TaskExit::Exited(0),
            TaskExit::Exited(255),
            TaskExit::Signaled(64),
            TaskExit::Exited(i32::MAX),
            TaskExit::Exited(i32::MIN),
        ] {
            assert_eq!(decode(&line(exit), Path::new("x")).expect("decodes"), exit);
        }
    }

    #[test]
    fn write_then_read_and_an_absent_file_is_none() {
        let dir = scratch("rw");
        let id = ContainerId::new(
            FrameworkId::new("f1").expect("valid"),
            TaskId::new("t1").expect("valid"),
        );
        let file = path(&dir, &id);
        assert_eq!(file, dir.join("meta/runs/f1/t1/exit-status"));
        assert_eq!(read(&file).expect("absent is no error"), None);
        write(&file, TaskExit::Exited(3)).expect("writes");
        assert_eq!(read(&file).expect("reads"), Some(TaskExit::Exited(3)));
        write(&file, TaskExit::Signaled(15)).expect("rewrites");
        assert_eq!(read(&file).expect("reads"), Some(TaskExit::Signaled(15)));
        assert!(!temp_path(&file).exists(), "the temporary file was renamed");
        clear(&file).expect("clears");
        assert_eq!(read(&file).expect("reads"), None);
        clear(&file).expect("clearing nothing is fine");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_or_foreign_file_is_malformed_naming_it() {
        let whole = line(TaskExit::Exited(3));
        for cut in 0..whole.len() {
            match decode(&whole[..cut], Path::new("/w/exit-status")) {
                Err(ExitFileError::Malformed { path, .. }) => assert_eq!(path, Path::new("/w/exit-status")),
                other => panic!("a record cut at byte {cut} decoded: {other:?}"),
            }
        }
        for bad in [
            &b"agora-exit-status v2 exited 3\n"[..],
            b"agora-exit-status v1 vanished 3\n",
            b"agora-exit-status v1 exited three\n",
            b"agora-exit-status v1 exited 3 4\n",
            b"\xff\xfe\n",
        ] {
            let error = decode(bad, Path::new("/w/exit-status")).expect_err("malformed");
            assert!(error.to_string().contains("/w/exit-status"), "{error}");
        }
        // A leftover temporary file (a crash before the rename) is never read.
        let dir = scratch("torn");
        let file = dir.join(FILE_NAME);
        fs::create_dir_all(&dir).expect("dir");
        fs::write(temp_path(&file), &whole[..5]).expect("partial temp");
        assert_eq!(read(&file).expect("reads"), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn exits_are_described_for_people() {
        assert_eq!(TaskExit::Exited(3).to_string(), "exited with status 3");
        assert_eq!(TaskExit::Signaled(9).to_string(), "killed by signal 9");
        assert_eq!(TaskExit::Signaled(9).shell_code(), 137);
        assert!(TaskExit::Exited(0).success() && !TaskExit::Signaled(0).success());
    }
}
