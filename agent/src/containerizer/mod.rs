//! Where tasks run: the [`Containerizer`] trait the agent core drives, and
//! the containerizers that implement it.
//!
//! | containerizer | runs | isolation | exits |
//! | ------------- | ---- | --------- | ----- |
//! | [`simulated`] | nothing: a task lasts as long as its `sleep N` says, on the agent's clock | none | polled |
//! | `process` (feature `link`) | the command, in its own session and process group | none | pushed |
//! | [`cgroups`] (its containerizer with feature `link`) | the command, in its own cgroup, joined before exec | cpu shares and quota, memory (OOM reported), pids | pushed |
//!
//! The real containerizers give each task a sandbox,
//! [`sandbox_dir`]`(work_dir, id)`: its working directory, holding its
//! `stdout` and `stderr`, and run it under a waiter that records its exit
//! status in [`exit_file::path`](crate::exit_file::path)`(work_dir, id)`
//! (see [`crate::exit_file`]). A kill sends SIGTERM to every process of the task,
//! waits the grace period, then SIGKILLs what is left; when the task's main
//! process ends, whatever it left behind is killed too, so a task leaves no
//! process behind.
//!
//! # Contract
//!
//! The core calls [`Containerizer::launch`] once per task and
//! [`Containerizer::kill`] at most once per launched task. For every launch
//! that returned `Ok`, the containerizer reports **exactly one** exit, in one
//! of two ways:
//!
//! - **polled** (pure containerizers, such as [`simulated`]): the core calls
//!   [`Containerizer::poll_exit`] after every input and arms a timer at
//!   [`Containerizer::poll_timeout`];
//! - **pushed** (real processes, whose exits arrive on a channel): the driver
//!   feeds [`Input::ContainerExited`](crate::Input::ContainerExited) into the
//!   core; such a containerizer returns `None` from both poll methods.
//!
//! A containerizer whose [`Containerizer::launches_in_background`] is true
//! (the real ones, once told to) returns `Ok` from `launch` as soon as the
//! launch is queued: the core holds the task in TASK_STAGING, and reports
//! TASK_RUNNING when the driver feeds
//! [`Input::ContainerStarted`](crate::Input::ContainerStarted) (or, at the
//! latest, just before the task's end). A launch that fails then is its one
//! exit, with [`TaskReason::ContainerLaunchFailed`] as its limitation.

pub mod cgroups;
#[cfg(feature = "link")]
mod launch;
#[cfg(feature = "link")]
pub mod process;
pub mod simulated;
#[cfg(feature = "link")]
mod supervisor;

use crate::checkpoint::ContainerRecord;
use agora_proto::{FileChunk, FrameworkId, SandboxFile, TaskId, TaskInfo, TaskReason, TaskUsage, Timestamp};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "link")]
pub use cgroups::CgroupsContainerizer;
#[cfg(feature = "link")]
pub use process::ProcessContainerizer;
pub use simulated::SimulatedContainerizer;
#[cfg(feature = "link")]
pub use supervisor::{ExitReceiver, StartedReceiver};

/// The sandbox of a task: `{work_dir}/sandboxes/{framework_id}/{task_id}`
/// (ids contain no `/` and are neither `.` nor `..`).
pub fn sandbox_dir(work_dir: &Path, id: &ContainerId) -> PathBuf {
    work_dir
        .join("sandboxes")
        .join(id.framework_id.as_str())
        .join(id.task_id.as_str())
}

/// The most bytes one [`read_sandbox_file`] returns (below gRPC's 4 MiB
/// message limit).
pub const MAX_READ_BYTES: u64 = 1 << 20;

/// Reads at most `max_bytes` (and at most [`MAX_READ_BYTES`]) of `file` in
/// the sandbox of `id`, from `offset`. The chunk gives the file's current
/// size; reading at or past the end gives no data. A missing sandbox or file
/// is an error saying so.
pub fn read_sandbox_file(
    work_dir: &Path,
    id: &ContainerId,
    file: SandboxFile,
    offset: u64,
    max_bytes: u64,
) -> Result<FileChunk, String> {
    let sandbox = sandbox_dir(work_dir, id);
    if !sandbox.is_dir() {
        return Err(format!(
            "task {} has no sandbox (no directory {})",
            id.task_id,
            sandbox.display()
        ));
    }
    let path = sandbox.join(file.file_name());
    let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    let mut f = std::fs::File::open(&path).map_err(|e| fail("open", e))?;
    let size = f.metadata().map_err(|e| fail("stat", e))?.len();
    let mut data = Vec::new();
    if offset < size {
        f.seek(SeekFrom::Start(offset)).map_err(|e| fail("seek in", e))?;
        f.take(max_bytes.min(MAX_READ_BYTES).min(size - offset))
            .read_to_end(&mut data)
            .map_err(|e| fail("read", e))?;
    }
    Ok(FileChunk { data, offset, size })
}

/// Measures what a running container uses. Reading may do (cheap) file
/// I/O, so drivers call it off their event loop.
pub trait UsageProbe: fmt::Debug + Send + Sync {
    /// The usage now (`now` is the measurement's timestamp).
    fn read(&self, now: Timestamp) -> Result<TaskUsage, String>;
}

/// The container of one task: the task's framework and id, which together
/// are unique among the tasks an agent runs (task ids are unique only within
/// their framework).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId {
    /// Whose task it is.
    pub framework_id: FrameworkId,
    /// The task.
    pub task_id: TaskId,
}

impl ContainerId {
    /// The container of `task_id` of `framework_id`.
    pub const fn new(framework_id: FrameworkId, task_id: TaskId) -> Self {
        Self { framework_id, task_id }
    }
}

impl fmt::Display for ContainerId {
    /// `framework/task`; ids contain no `/`, so this is unambiguous and
    /// usable as a relative path (sandbox, cgroup).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.framework_id, self.task_id)
    }
}

/// How a container ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code of the task's process, when it exited normally.
    pub code: Option<i32>,
    /// The signal that ended it, when a signal did.
    pub signal: Option<i32>,
    /// Whether it ended because the agent killed it.
    pub killed: bool,
    /// Set by an isolating containerizer when a limit ended the task, such as
    /// [`TaskReason::ContainerLimitationMemory`] for an OOM kill.
    pub limitation: Option<TaskReason>,
    /// Details for people (empty when there is nothing to add).
    pub message: String,
}

impl ExitStatus {
    /// The process exited with `code`.
    pub fn exited(code: i32) -> Self {
        Self {
            code: Some(code),
            ..Self::default()
        }
    }

    /// The process was ended by `signal`, not at the agent's request.
    pub fn signaled(signal: i32) -> Self {
        Self {
            signal: Some(signal),
            ..Self::default()
        }
    }

    /// The agent killed the container.
    pub fn killed() -> Self {
        Self {
            killed: true,
            ..Self::default()
        }
    }

    /// Whether this is a successful end: exit code 0, not killed, no limit hit.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none() && !self.killed && self.limitation.is_none()
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.killed, self.code, self.signal) {
            (true, _, _) => f.write_str("killed by the agent")?,
            (false, _, Some(signal)) => write!(f, "terminated by signal {signal}")?,
            (false, Some(code), None) => write!(f, "exited with code {code}")?,
            (false, None, None) => f.write_str("ended")?,
        }
        if let Some(limitation) = self.limitation {
            write!(f, " ({limitation})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Why a container could not be launched. The task then fails with
/// `REASON_CONTAINER_LAUNCH_FAILED` and this error as its message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// A container with this id already runs.
    #[error("container {0} already exists")]
    AlreadyExists(ContainerId),
    /// The task's command cannot be run by this containerizer.
    #[error("unsupported command: {0}")]
    UnsupportedCommand(String),
    /// The containerizer failed to create the container (I/O, cgroups, ...).
    #[error("launch failed: {0}")]
    Launch(String),
    /// A container that survived an agent restart cannot be supervised again.
    #[error("cannot reattach: {0}")]
    Reattach(String),
}

/// Runs tasks in containers; see the [module docs](self) for the contract.
pub trait Containerizer: fmt::Debug {
    /// Starts `task` in container `id`. `Ok` means the task runs (the core
    /// then reports TASK_RUNNING).
    fn launch(&mut self, now: Timestamp, id: &ContainerId, task: &TaskInfo) -> Result<(), ContainerError>;

    /// Whether `Ok` from [`launch`](Self::launch) only means the launch is
    /// queued (see the [module docs](self)). `false` by default.
    fn launches_in_background(&self) -> bool {
        false
    }

    /// Stops container `id`: politely at once, forcibly after `grace`. The
    /// exit is reported later, as for any other end. Unknown ids are ignored.
    fn kill(&mut self, now: Timestamp, id: &ContainerId, grace: Duration);

    /// The next container that has ended by `now`, if any (polled
    /// containerizers; pushed ones return `None`).
    fn poll_exit(&mut self, now: Timestamp) -> Option<(ContainerId, ExitStatus)>;

    /// When [`poll_exit`](Self::poll_exit) will next have something to
    /// report, if known.
    fn poll_timeout(&self) -> Option<Timestamp>;

    /// A usage probe for each running container that can report usage
    /// (none by default).
    fn usage_probes(&self) -> Vec<(ContainerId, Arc<dyn UsageProbe>)> {
        Vec::new()
    }

    /// Called once by the driver when the agent stops, after every container
    /// has ended: removes what the containerizer made for all containers
    /// (such as its root cgroups). Nothing by default.
    fn cleanup(&mut self) {}

    /// The main process of each container that has one, for the checkpoint
    /// (none by default: such a containerizer's tasks cannot survive an
    /// agent restart).
    fn containers(&self) -> Vec<(ContainerId, ContainerRecord)> {
        Vec::new()
    }

    /// Supervises again container `id`, whose main process (`record`, still
    /// running: the caller checked its pid and start time) outlived the
    /// previous agent. Its exit is reported as any other, with the status
    /// the task's waiter recorded (the process is not this agent's child, so
    /// the agent cannot wait for it). Unsupported by default.
    fn reattach(
        &mut self,
        _now: Timestamp,
        id: &ContainerId,
        _task: &TaskInfo,
        _record: &ContainerRecord,
    ) -> Result<(), ContainerError> {
        Err(ContainerError::Reattach(format!(
            "this containerizer cannot take over container {id}"
        )))
    }

    /// Removes what is left of container `id`, whose main process ended
    /// while the agent was down (or was never recorded): processes it left
    /// behind, its cgroup. Runs in the background; nothing by default.
    fn clean_up_after_restart(&mut self, _id: &ContainerId, _task: &TaskInfo) {}
}

impl<C: Containerizer + ?Sized> Containerizer for Box<C> {
    fn launch(&mut self, now: Timestamp, id: &ContainerId, task: &TaskInfo) -> Result<(), ContainerError> {
        (**self).launch(now, id, task)
    }

    fn launches_in_background(&self) -> bool {
        (**self).launches_in_background()
    }

    fn kill(&mut self, now: Timestamp, id: &ContainerId, grace: Duration) {
        (**self).kill(now, id, grace);
    }

    fn poll_exit(&mut self, now: Timestamp) -> Option<(ContainerId, ExitStatus)> {
        (**self).poll_exit(now)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        (**self).poll_timeout()
    }

    fn usage_probes(&self) -> Vec<(ContainerId, Arc<dyn UsageProbe>)> {
        (**self).usage_probes()
    }

    fn cleanup(&mut self) {
        (**self).cleanup();
    }

    fn containers(&self) -> Vec<(ContainerId, ContainerRecord)> {
        (**self).containers()
    }

    fn reattach(
        &mut self,
        now: Timestamp,
        id: &ContainerId,
        task: &TaskInfo,
        record: &ContainerRecord,
    ) -> Result<(), ContainerError> {
        (**self).reattach(now, id, task, record)
    }

    fn clean_up_after_restart(&mut self, id: &ContainerId, task: &TaskInfo) {
        (**self).clean_up_after_restart(id, task);
    }
}
