//! The agent's checkpoint: what a restarted agent needs to carry on where
//! the old one stopped, kept in one file of its work directory
//! ([`FILE_NAME`] under `meta/`).
//!
//! It holds the machine's boot id (a reboot means the tasks are gone), the
//! agent id, the tasks (their `TaskInfo`, latest state, a kill under way,
//! and their main process: pid, start time and cgroup), and every status
//! update not yet acknowledged, in order per task. Frameworks are known by
//! the tasks that name them.
//!
//! **Format.** A header line, then the state as JSON:
//!
//! ```text
//! agora-agent-checkpoint v1 <length of the JSON in bytes> <FNV-1a 64 of the JSON, hex>
//! {"boot_id":"…","incarnation":3,"agent_id":"S-1","tasks":[…],"updates":[…]}
//! ```
//!
//! **Crash safety.** [`write()`] writes a temporary file in the same directory,
//! flushes it to disk, renames it over the old file and flushes the
//! directory, so a crash at any point leaves the old checkpoint or the new
//! one, never a torn one. The length and checksum catch what renaming cannot
//! (a damaged disk, a hand edit): such a file is [`CheckpointError::Corrupt`],
//! naming the file, and the agent refuses to start on it rather than
//! silently forget tasks.
//!
//! **Recovery decisions** are pure: [`plan_recovery_with`] takes the
//! checkpoint, the current boot id, a probe of process start times and one
//! of recorded exit statuses ([`exit_file`](crate::exit_file)), and says for
//! each task whether to reattach to it or report that it ended, and how.

use crate::containerizer::ContainerId;
use crate::exit_file::{ExitFileError, TaskExit};
use agora_proto::{AgentId, FrameworkId, TaskId, TaskInfo, TaskReason, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoint's file, under `meta/` in the work directory.
pub const FILE_NAME: &str = "agent-checkpoint";

/// The first word of the header.
const MAGIC: &str = "agora-agent-checkpoint";

/// The format version written; another version is refused.
const VERSION: u32 = 1;

/// The checkpoint file of the agent whose work directory is `work_dir`.
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("meta").join(FILE_NAME)
}

/// What the agent checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `/proc/sys/kernel/random/boot_id` when it was written.
    pub boot_id: String,
    /// How many times an agent started on this work directory; mixed into
    /// the seed of status update uuids so that a restart with a fixed
    /// `--seed` does not reuse the uuids of the previous run.
    pub incarnation: u64,
    /// The id the master gave the agent.
    pub agent_id: Option<AgentId>,
    /// Live tasks, and ended tasks whose updates are unacknowledged.
    pub tasks: Vec<CheckpointedTask>,
    /// Unacknowledged status updates, oldest first within each task.
    pub updates: Vec<PendingUpdates>,
}

/// One task as checkpointed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointedTask {
    /// Whose task it is.
    pub framework_id: FrameworkId,
    /// The task as launched.
    pub info: TaskInfo,
    /// Its latest state (terminal for an ended task whose final update is
    /// unacknowledged).
    pub state: TaskState,
    /// A kill was asked for, with the reason to report (re-issued on
    /// recovery: the old agent's kill sequence died with it).
    pub kill: Option<KillRequest>,
    /// Its main process, once it exists.
    pub container: Option<ContainerRecord>,
}

impl CheckpointedTask {
    /// The task's container id.
    pub fn container_id(&self) -> ContainerId {
        ContainerId::new(self.framework_id.clone(), self.info.task_id.clone())
    }
}

/// A kill asked for before the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillRequest {
    /// The reason to report once the task has ended.
    pub reason: Option<TaskReason>,
}

/// What identifies a container's main process across agent restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Its pid.
    pub pid: u32,
    /// Its start time (field 22 of `/proc/<pid>/stat`, clock ticks since
    /// boot): a pid reused by another process has another start time.
    pub start_time: u64,
    /// Its cgroups (one directory per hierarchy), if it has any.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

/// The unacknowledged updates of one task, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdates {
    /// Whose task.
    pub framework_id: FrameworkId,
    /// The task.
    pub task_id: TaskId,
    /// The updates, oldest (the one in flight) first.
    pub statuses: Vec<TaskStatus>,
}

impl PendingUpdates {
    /// The task's container id.
    pub fn container_id(&self) -> ContainerId {
        ContainerId::new(self.framework_id.clone(), self.task_id.clone())
    }
}

/// Why a checkpoint cannot be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("cannot {action} the agent checkpoint {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file (or directory).
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file exists but is not a whole, valid checkpoint.
    #[error(
        "the agent checkpoint {path} is corrupt ({reason}); refusing to start, since its tasks would be \
         forgotten. Move it away or start with --discard-corrupt-checkpoint to start afresh as a new agent"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// FNV-1a, 64 bits: enough to tell a damaged file from a whole one (this is
/// no defence against a forger).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The bytes of `checkpoint` as written to its file.
pub fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    // Serializing plain data with string keys cannot fail.
    let body = serde_json::to_vec(checkpoint).unwrap_or_default();
    let mut bytes = format!("{MAGIC} v{VERSION} {} {:016x}\n", body.len(), fnv1a(&body)).into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// The checkpoint in `bytes` (as read from `path`, which errors name).
pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header line".to_owned()))?;
    let (header, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let header = std::str::from_utf8(header).map_err(|_| corrupt("the header is not text".to_owned()))?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, length, checksum] = fields[..] else {
        return Err(corrupt(format!("malformed header {header:?}")));
    };
    if magic != MAGIC {
        return Err(corrupt(format!("not an agent checkpoint (header {header:?})")));
    }
    if version != format!("v{VERSION}") {
        return Err(corrupt(format!("format {version} is not v{VERSION}")));
    }
    let length: usize = length
        .parse()
        .map_err(|_| corrupt(format!("malformed length {length:?}")))?;
    if body.len() != length {
        return Err(corrupt(format!(
            "{} bytes of state, the header says {length}",
            body.len()
        )));
    }
    let checksum =
        u64::from_str_radix(checksum, 16).map_err(|_| corrupt(format!("malformed checksum {checksum:?}")))?;
    if fnv1a(body) != checksum {
        return Err(corrupt("checksum mismatch".to_owned()));
    }
    serde_json::from_slice(body).map_err(|e| corrupt(format!("invalid state: {e}")))
}

/// The checkpoint at `path`; `None` if there is none.
pub fn read(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    match fs::read(path) {
        Ok(bytes) => decode(&bytes, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Replaces the checkpoint at `path` with `checkpoint`, crash-safely (see
/// the [module docs](self)). Creates the directory if missing.
pub fn write(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    write_bytes(path, &encode(checkpoint))
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |action: &'static str, at: &Path| {
        let path = at.to_owned();
        move |source| CheckpointError::Io { action, path, source }
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io("create the directory of", dir))?;
    let temp = temp_path(path);
    let mut file = File::create(&temp).map_err(io("create", &temp))?;
    file.write_all(bytes).map_err(io("write", &temp))?;
    file.sync_all().map_err(io("flush", &temp))?;
    drop(file);
    fs::rename(&temp, path).map_err(io("rename over", path))?;
    // The rename is durable once the directory is flushed.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush the directory of", path))
}

/// The temporary file a write goes through: a leftover one (from a crash
/// mid-write) is never read, and the next write replaces it.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Moves a corrupt checkpoint aside (`<file>.corrupt`) so the agent can
/// start afresh; returns where it went.
pub fn set_aside(path: &Path) -> Result<PathBuf, CheckpointError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".corrupt");
    let aside = path.with_file_name(name);
    fs::rename(path, &aside).map_err(|source| CheckpointError::Io {
        action: "move aside",
        path: path.to_owned(),
        source,
    })?;
    Ok(aside)
}

// ----- the machine --------------------------------------------------------

/// This boot's id (`/proc/sys/kernel/random/boot_id`); empty if unknown,
/// which never equals a checkpointed id, so an unknown boot counts as a
/// reboot (the safe side: nothing is reattached by mistake).
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The start time of live process `pid` (field 22 of `/proc/<pid>/stat`);
/// `None` if there is no such process or it is a zombie (it has ended).
pub fn process_start_time(pid: u32) -> Option<u64> {
    parse_start_time(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time in the text of `/proc/<pid>/stat`; `None` for a zombie
/// or malformed text.
fn parse_start_time(stat: &str) -> Option<u64> {
    // The command (field 2) may hold spaces and parentheses: fields 3 on
    // follow the last `)`.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    if *fields.first()? == "Z" || *fields.first()? == "X" {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

// ----- recovery decisions --------------------------------------------------

/// What a restarted agent does, decided from its checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecoveryPlan {
    /// The agent id to re-register with; `None` registers a new agent.
    pub agent_id: Option<AgentId>,
    /// This start's incarnation (one more than the checkpoint's).
    pub incarnation: u64,
    /// The machine rebooted since the checkpoint: the old tasks are gone
    /// and the agent registers as a new one (the old id is here for logs).
    pub rebooted_from: Option<AgentId>,
    /// What becomes of each checkpointed task.
    pub tasks: Vec<RecoveredTask>,
    /// The unacknowledged updates to send again, oldest first per task.
    pub updates: Vec<PendingUpdates>,
}

/// One checkpointed task and what becomes of it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveredTask {
    /// The task as checkpointed.
    pub task: CheckpointedTask,
    /// Reattach, or report its end.
    pub fate: Fate,
}

/// What becomes of a checkpointed task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Its process still runs (same pid, same start time): keep supervising it.
    Reattach(ContainerRecord),
    /// It was live, and its process ended while the agent was down; its
    /// waiter recorded how: report that.
    Exited(TaskExit),
    /// It was live, but its process ended while the agent was down with no
    /// status recorded (or never was recorded itself): report its end,
    /// saying why its status is unknown.
    Ended(String),
    /// It had ended before; only its updates await acknowledgement.
    AlreadyEnded,
}

/// Decides what to do with each task of `checkpoint` on a machine whose boot
/// id is `boot_id`, where `start_time(pid)` is the start time of live
/// process `pid` ([`process_start_time`] outside tests), with no exit
/// status recorded for any task (the simulated containerizer's case; see
/// [`plan_recovery_with`]).
pub fn plan_recovery(
    checkpoint: Option<Checkpoint>,
    boot_id: &str,
    start_time: impl Fn(u32) -> Option<u64>,
) -> RecoveryPlan {
    plan_recovery_with(checkpoint, boot_id, start_time, |_| Ok(None))
}

/// [`plan_recovery`], where `recorded_exit(id)` reads the exit status the
/// waiter of container `id` recorded, if any
/// ([`exit_file::read`](crate::exit_file::read) of
/// [`exit_file::path`](crate::exit_file::path) outside tests). It is asked
/// only about tasks whose process is gone, after that was seen: the waiter
/// writes the file before it ends, so a gone waiter's record is complete.
pub fn plan_recovery_with(
    checkpoint: Option<Checkpoint>,
    boot_id: &str,
    start_time: impl Fn(u32) -> Option<u64>,
    recorded_exit: impl Fn(&ContainerId) -> Result<Option<TaskExit>, ExitFileError>,
) -> RecoveryPlan {
    let Some(checkpoint) = checkpoint else {
        return RecoveryPlan::default();
    };
    let incarnation = checkpoint.incarnation.saturating_add(1);
    if checkpoint.boot_id.is_empty() || checkpoint.boot_id != boot_id {
        return RecoveryPlan {
            incarnation,
            rebooted_from: checkpoint.agent_id,
            ..RecoveryPlan::default()
        };
    }
    // A gone process: what its waiter recorded, else why nothing is known.
    let ended = |task: &CheckpointedTask, unknown: String| match recorded_exit(&task.container_id()) {
        Ok(Some(exit)) => Fate::Exited(exit),
        Ok(None) => Fate::Ended(unknown),
        Err(error) => Fate::Ended(format!("{unknown}: {error}")),
    };
    let tasks = checkpoint
        .tasks
        .into_iter()
        .map(|task| {
            let fate = if task.state.is_terminal() {
                Fate::AlreadyEnded
            } else {
                match &task.container {
                    None => Fate::Ended(
                        "the agent restarted before the task's process was recorded; it may never have started"
                            .to_owned(),
                    ),
                    Some(record) => match start_time(record.pid) {
                        Some(started) if started == record.start_time => Fate::Reattach(record.clone()),
                        Some(_) => ended(
                            &task,
                            format!(
                                "the task's process (pid {}) ended while the agent was down (its pid now belongs to \
                                 another process) and no exit status was recorded; its exit status is unknown",
                                record.pid
                            ),
                        ),
                        None => ended(
                            &task,
                            format!(
                                "the task's process (pid {}) ended while the agent was down and no exit status was \
                                 recorded; its exit status is unknown",
                                record.pid
                            ),
                        ),
                    },
                }
            };
            RecoveredTask { task, fate }
        })
        .collect();
    RecoveryPlan {
        agent_id: checkpoint.agent_id,
        incarnation,
        rebooted_from: None,
        tasks,
        updates: checkpoint.updates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{CommandInfo, StatusUuid, Timestamp};

    fn task(name: &str, state: TaskState, container: Option<ContainerRecord>) -> CheckpointedTask {
        CheckpointedTask {
            framework_id: FrameworkId::new("f1").expect("valid"),
            info: TaskInfo {
                name: name.to_owned(),
                task_id: TaskId::new(name).expect("valid"),
                agent_id: AgentId::new("S-1").expect("valid"),
                resources: "cpus:0.5;mem:32MiB".parse().expect("valid"),
                command: CommandInfo::shell("sleep 30"),
                kill_grace_period: None,
            },
            state,
            kill: None,
            container,
        }
    }

    fn record(pid: u32, start_time: u64) -> ContainerRecord {
        ContainerRecord {
            pid,
            start_time,
            cgroups: vec![PathBuf::from("/sys/fs/cgroup/memory/agora/f1/t1")],
        }
    }

    fn sample() -> Checkpoint {
        let mut status = TaskStatus::new(
            TaskId::new("t1").expect("valid"),
            TaskState::Running,
            Timestamp::from_secs(7),
        );
        status.uuid = Some(StatusUuid::from_u128(42));
        Checkpoint {
            boot_id: "boot-a".to_owned(),
            incarnation: 2,
            agent_id: Some(AgentId::new("S-1").expect("valid")),
            tasks: vec![
                task("t1", TaskState::Running, Some(record(100, 5000))),
                task("t2", TaskState::Finished, None),
            ],
            updates: vec![PendingUpdates {
                framework_id: FrameworkId::new("f1").expect("valid"),
                task_id: TaskId::new("t1").expect("valid"),
                statuses: vec![status],
            }],
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agora-checkpoint-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn checkpoint_round_trips() {
        let bytes = encode(&sample());
        assert_eq!(decode(&bytes, Path::new("x")).expect("decodes"), sample());
        let dir = scratch("round-trip");
        let file = path(&dir);
        assert!(read(&file).expect("no file is no error").is_none());
        write(&file, &sample()).expect("writes");
        assert_eq!(read(&file).expect("reads"), Some(sample()));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_truncation_or_flipped_byte_is_detected_as_corrupt() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            let result = decode(&bytes[..cut], Path::new("/w/meta/agent-checkpoint"));
            match result {
                Err(CheckpointError::Corrupt { path, .. }) => assert_eq!(path, Path::new("/w/meta/agent-checkpoint")),
                other => panic!("a file cut at byte {cut} decoded: {other:?}"),
            }
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert!(
                decode(&damaged, Path::new("x")).is_err(),
                "a flipped byte at {at} went unnoticed"
            );
        }
    }

    #[test]
    fn a_write_cut_at_any_byte_leaves_the_previous_checkpoint() {
        let dir = scratch("cut");
        let file = path(&dir);
        let old = sample();
        write(&file, &old).expect("writes");
        let mut new = sample();
        new.incarnation = 3;
        new.tasks.clear();
        let bytes = encode(&new);
        // A crash mid-write leaves a partial temporary file and the old
        // checkpoint: what `write_bytes` does before its rename.
        for cut in (0..bytes.len()).step_by(5) {
            fs::write(temp_path(&file), &bytes[..cut]).expect("partial temp file");
            assert_eq!(read(&file).expect("reads"), Some(old.clone()), "cut at {cut}");
        }
        // The next complete write replaces both.
        write(&file, &new).expect("writes");
        assert_eq!(read(&file).expect("reads"), Some(new));
        assert!(!temp_path(&file).exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it_and_can_be_set_aside() {
        let dir = scratch("corrupt");
        let file = path(&dir);
        fs::create_dir_all(file.parent().expect("parent")).expect("dir");
        fs::write(&file, b"agora-agent-checkpoint v1 10 0000000000000000\n{\"boot\"").expect("write");
        let error = read(&file).expect_err("corrupt");
        let message = error.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("--discard-corrupt-checkpoint"), "{message}");
        let aside = set_aside(&file).expect("moved");
        assert!(aside.exists() && !file.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn recovery_reattaches_running_processes_and_reports_ended_ones() {
        let mut checkpoint = sample();
        checkpoint
            .tasks
            .push(task("gone", TaskState::Running, Some(record(200, 6000))));
        checkpoint
            .tasks
            .push(task("reused", TaskState::Running, Some(record(300, 7000))));
        checkpoint.tasks.push(task("unrecorded", TaskState::Staging, None));
        let alive = |pid| match pid {
            100 => Some(5000),
            300 => Some(7777), // another process got pid 300
            _ => None,
        };
        let plan = plan_recovery(Some(checkpoint), "boot-a", alive);
        assert_eq!(plan.agent_id, AgentId::new("S-1").ok());
        assert_eq!(plan.incarnation, 3);
        assert_eq!(plan.rebooted_from, None);
        assert_eq!(plan.updates, sample().updates);
        let fates: Vec<(&str, &Fate)> = plan
            .tasks
            .iter()
            .map(|t| (t.task.info.name.as_str(), &t.fate))
            .collect();
        assert_eq!(fates[0], ("t1", &Fate::Reattach(record(100, 5000))));
        assert_eq!(fates[1], ("t2", &Fate::AlreadyEnded));
        assert!(matches!(fates[2], ("gone", Fate::Ended(why)) if why.contains("pid 200") && why.contains("ended")));
        assert!(matches!(fates[3], ("reused", Fate::Ended(why)) if why.contains("another process")));
        assert!(matches!(fates[4], ("unrecorded", Fate::Ended(why)) if why.contains("restarted")));
    }

    #[test]
    fn recovery_reports_the_recorded_exit_of_a_gone_process() {
        let mut checkpoint = sample();
        for name in ["three", "zero", "nine", "silent", "torn"] {
            checkpoint
                .tasks
                .push(task(name, TaskState::Running, Some(record(200, 6000))));
        }
        // t1 still runs: its record is never asked for.
        let recorded = |id: &ContainerId| match id.task_id.as_str() {
            "three" => Ok(Some(TaskExit::Exited(3))),
            "zero" => Ok(Some(TaskExit::Exited(0))),
            "nine" => Ok(Some(TaskExit::Signaled(9))),
            "torn" => Err(ExitFileError::Malformed {
                path: PathBuf::from("/w/exit-status"),
                reason: "no final newline".to_owned(),
            }),
            "t1" => panic!("asked about a running task"),
            _ => Ok(None),
        };
        let plan = plan_recovery_with(Some(checkpoint), "boot-a", |pid| (pid == 100).then_some(5000), recorded);
        let fates: Vec<(&str, &Fate)> = plan
            .tasks
            .iter()
            .map(|t| (t.task.info.name.as_str(), &t.fate))
            .collect();
        assert_eq!(fates[0], ("t1", &Fate::Reattach(record(100, 5000))));
        assert_eq!(fates[2], ("three", &Fate::Exited(TaskExit::Exited(3))));
        assert_eq!(fates[3], ("zero", &Fate::Exited(TaskExit::Exited(0))));
        assert_eq!(fates[4], ("nine", &Fate::Exited(TaskExit::Signaled(9))));
        assert!(
            matches!(fates[5], ("silent", Fate::Ended(why)) if why.contains("no exit status was recorded")),
            "{:?}",
            fates[5]
        );
        assert!(
            matches!(fates[6], ("torn", Fate::Ended(why)) if why.contains("/w/exit-status") && why.contains("unknown")),
            "{:?}",
            fates[6]
        );
    }

    #[test]
    fn a_rebooted_machine_starts_as_a_new_agent_without_the_old_tasks() {
        let plan = plan_recovery(Some(sample()), "boot-b", |_| Some(5000));
        assert_eq!(plan.agent_id, None);
        assert_eq!(plan.rebooted_from, AgentId::new("S-1").ok());
        assert!(plan.tasks.is_empty() && plan.updates.is_empty());
        assert_eq!(plan.incarnation, 3);
        // An unknown boot id is taken as a reboot.
        let plan = plan_recovery(Some(sample()), "", |_| Some(5000));
        assert_eq!(plan.agent_id, None);
        assert_eq!(plan_recovery(None, "boot-a", |_| None), RecoveryPlan::default());
    }

    #[test]
    fn start_times_come_from_proc_stat() {
        let stat = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194304 100 0 0 0 150 50 20 30 20 0 3 0 98765 1000000 256";
        assert_eq!(parse_start_time(stat), Some(98765));
        let zombie = stat.replace(") S ", ") Z ");
        assert_eq!(parse_start_time(&zombie), None);
        assert_eq!(parse_start_time("garbage"), None);
        let me = std::process::id();
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(me), process_start_time(me));
        assert!(!boot_id().is_empty());
    }
}
