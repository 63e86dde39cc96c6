//! The cgroups containerizer: each task in its own cgroup, joined before
//! exec, limited by its resources, killed as a whole.

use super::{Cgroup, CgroupError, CgroupManager, Hierarchy, Limits, remove_empty_tree};
use crate::checkpoint::ContainerRecord;
use crate::config::CgroupsConfig;
use crate::containerizer::launch::{create_sandbox, spawn};
use crate::containerizer::supervisor::{ExitReceiver, Isolation, StartedReceiver, Supervisor, signal, wait_for};
use crate::containerizer::{ContainerError, ContainerId, Containerizer, ExitStatus, UsageProbe};
use crate::exit_file;
use agora_proto::{TaskInfo, TaskReason, TaskUsage, Timestamp};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// Runs each task in its own cgroup (v1 or v2), with cpu shares and quota,
/// a memory limit and a pids limit from its resources and the
/// [`CgroupsConfig`].
///
/// - **launch**: creates `<root>/<framework>/<task>` in each hierarchy,
///   writes the limits, creates the sandbox, and starts the command, which
///   writes itself into the cgroups' `cgroup.procs` before it execs.
/// - **kill**: SIGTERM to every process of the cgroup, then after the grace
///   period SIGKILL to all at once: v2 `cgroup.kill`, else freeze, SIGKILL
///   each, thaw (a frozen cgroup cannot fork away from the kill).
/// - **exit**: once the main process is reaped, anything left in the
///   cgroup is killed; an OOM kill (v1 `oom_kill` of `memory.oom_control`,
///   or `memory.failcnt` with a SIGKILL on old kernels; v2 `oom_kill` of
///   `memory.events`) makes the exit a [`TaskReason::ContainerLimitationMemory`];
///   the cgroup is removed (retried while the kernel still counts a dying
///   process), then the exit is pushed.
/// - **usage**: CPU time (`cpuacct.usage` / `cpu.stat`), memory
///   (`memory.usage_in_bytes` / `memory.current`) and `pids.current`.
#[derive(Debug)]
pub struct CgroupsContainerizer {
    work_dir: PathBuf,
    config: CgroupsConfig,
    hierarchy: Hierarchy,
    supervisor: Supervisor,
}

impl CgroupsContainerizer {
    /// A containerizer on this machine's cgroup hierarchy (detected from the
    /// mount table), with sandboxes under `work_dir`, and the channel on
    /// which it pushes exits. Must be called within a tokio runtime.
    pub fn new(work_dir: &Path, config: CgroupsConfig) -> Result<(Self, ExitReceiver), CgroupError> {
        Ok(Self::with_hierarchy(work_dir, config, Hierarchy::detect()?))
    }

    /// The same on a given hierarchy.
    pub fn with_hierarchy(work_dir: &Path, config: CgroupsConfig, hierarchy: Hierarchy) -> (Self, ExitReceiver) {
        let (supervisor, exits) = Supervisor::new(work_dir);
        let containerizer = Self {
            work_dir: work_dir.to_owned(),
            config,
            hierarchy,
            supervisor,
        };
        (containerizer, exits)
    }

    /// The hierarchy used.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The cgroup of container `id` (whether or not it exists).
    pub fn cgroup(&self, id: &ContainerId) -> Cgroup {
        self.hierarchy.cgroup(&self.relative(id))
    }

    /// The containers whose exit has not been pushed yet.
    pub fn live(&self) -> Vec<ContainerId> {
        self.supervisor.live()
    }

    /// From now on, launches run in the background, several at once:
    /// [`launch`](Containerizer::launch) returns once the launch is queued,
    /// each container whose process has started is pushed on the returned
    /// channel, and a launch that fails is pushed as an exit with
    /// `REASON_CONTAINER_LAUNCH_FAILED` (its cgroup removed).
    pub fn launch_in_background(&mut self) -> StartedReceiver {
        self.supervisor.launch_in_background()
    }

    fn relative(&self, id: &ContainerId) -> PathBuf {
        Path::new(&self.config.root)
            .join(id.framework_id.as_str())
            .join(id.task_id.as_str())
    }
}

/// Creates the cgroup with `limits`, the sandbox of `id` under `work_dir`,
/// and starts `task` in them.
fn start(
    work_dir: &Path,
    id: &ContainerId,
    task: &TaskInfo,
    cgroup: &Cgroup,
    limits: &Limits,
) -> Result<tokio::process::Child, ContainerError> {
    cgroup
        .create(limits)
        .map_err(|e| ContainerError::Launch(e.to_string()))?;
    let sandbox = create_sandbox(work_dir, id)?;
    spawn(task, &sandbox, &cgroup.procs_files(), &exit_file::path(work_dir, id))
}

impl Containerizer for CgroupsContainerizer {
    fn launch(&mut self, _now: Timestamp, id: &ContainerId, task: &TaskInfo) -> Result<(), ContainerError> {
        let cgroup = self.cgroup(id);
        let limits = Limits::for_task(&task.resources, &self.config);
        let (work_dir, container, task) = (self.work_dir.clone(), id.clone(), task.clone());
        self.supervisor.launch(id, move || {
            match start(&work_dir, &container, &task, &cgroup, &limits) {
                Ok(child) => Ok((child, Arc::new(Contained { cgroup, limits }) as Arc<dyn Isolation>)),
                Err(error) => {
                    if let Err(e) = cgroup.remove() {
                        warn!(error = %e, "cannot remove the cgroup of a task that failed to start");
                    }
                    Err(error)
                }
            }
        })
    }

    fn launches_in_background(&self) -> bool {
        self.supervisor.in_background()
    }

    fn kill(&mut self, _now: Timestamp, id: &ContainerId, grace: Duration) {
        self.supervisor.kill(id, grace);
    }

    fn poll_exit(&mut self, _now: Timestamp) -> Option<(ContainerId, ExitStatus)> {
        None
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }

    fn usage_probes(&self) -> Vec<(ContainerId, Arc<dyn UsageProbe>)> {
        self.supervisor.probes()
    }

    fn containers(&self) -> Vec<(ContainerId, ContainerRecord)> {
        self.supervisor.records()
    }

    /// The task's cgroup is taken as it is (its limits were written at
    /// launch); a missing one is an error, since the kill and the cleanup
    /// go through it.
    fn reattach(
        &mut self,
        _now: Timestamp,
        id: &ContainerId,
        task: &TaskInfo,
        record: &ContainerRecord,
    ) -> Result<(), ContainerError> {
        let cgroup = self.cgroup(id);
        if let Some(missing) = cgroup.dirs().into_iter().find(|dir| !dir.is_dir()) {
            return Err(ContainerError::Reattach(format!(
                "its cgroup {} is gone",
                missing.display()
            )));
        }
        let limits = Limits::for_task(&task.resources, &self.config);
        self.supervisor
            .reattach(id, record.clone(), Arc::new(Contained { cgroup, limits }))
    }

    /// Kills what the task left in its cgroup and removes the cgroup, as
    /// after any exit (off the event loop).
    fn clean_up_after_restart(&mut self, id: &ContainerId, task: &TaskInfo) {
        let cgroup = self.cgroup(id);
        if !cgroup.dirs().iter().any(|dir| dir.is_dir()) {
            return;
        }
        let contained = Contained {
            cgroup,
            limits: Limits::for_task(&task.resources, &self.config),
        };
        self.supervisor
            .run_blocking(move || contained.ended(&mut ExitStatus::default()));
    }

    fn cleanup(&mut self) {
        for mount in self.hierarchy.mounts() {
            for removed in remove_empty_tree(&mount.join(&self.config.root)) {
                debug!(cgroup = %removed.display(), "removed");
            }
        }
    }
}

/// A running task's cgroup.
#[derive(Debug)]
struct Contained {
    cgroup: Cgroup,
    limits: Limits,
}

/// Attempts 10 ms apart to wait for a cgroup to empty or to be removed.
const ATTEMPTS: u32 = 300;
const STEP: Duration = Duration::from_millis(10);

impl Contained {
    fn signal_all(&self, sig: Signal) {
        match self.cgroup.pids() {
            Ok(pids) => {
                for pid in pids {
                    if let Err(error) = signal(pid, sig) {
                        warn!(pid, %sig, %error, "cannot signal a task's process");
                    }
                }
            }
            Err(error) => warn!(%error, "cannot list the task's processes"),
        }
    }

    fn kill_everything(&self) -> Result<(), CgroupError> {
        if self.cgroup.kill_all()? {
            return Ok(());
        }
        self.cgroup.freeze()?;
        self.signal_all(Signal::SIGKILL);
        self.cgroup.thaw()
    }

    fn oom_killed(&self, exit: &ExitStatus) -> Result<bool, CgroupError> {
        Ok(match self.cgroup.oom_kills()? {
            Some(kills) => kills > 0,
            None => exit.signal == Some(Signal::SIGKILL as i32) && self.cgroup.memory_limit_hits()? > 0,
        })
    }
}

impl Isolation for Contained {
    fn terminate(&self) {
        self.signal_all(Signal::SIGTERM);
    }

    fn force_kill(&self) {
        if let Err(error) = self.kill_everything() {
            warn!(%error, "cannot kill the task's cgroup");
            self.signal_all(Signal::SIGKILL);
        }
    }

    fn cgroups(&self) -> Vec<PathBuf> {
        self.cgroup.dirs()
    }

    fn ended(&self, exit: &mut ExitStatus) {
        let empty = wait_for(ATTEMPTS, STEP, || {
            if self.cgroup.pids().is_ok_and(|p| p.is_empty()) {
                return true;
            }
            self.force_kill();
            false
        });
        if !empty {
            warn!(cgroup = ?self.cgroup.dirs(), "processes are left in the task's cgroup");
        }
        match self.oom_killed(exit) {
            Ok(true) => {
                exit.limitation = Some(TaskReason::ContainerLimitationMemory);
                exit.message = format!("memory limit of {} exceeded", self.limits.memory_text());
            }
            Ok(false) => {}
            Err(error) => warn!(%error, "cannot tell whether the task ran out of memory"),
        }
        let mut last = Ok(());
        let removed = wait_for(ATTEMPTS, STEP, || {
            last = self.cgroup.remove();
            last.is_ok()
        });
        if !removed && let Err(error) = last {
            warn!(%error, "cannot remove the task's cgroup");
        }
    }
}

impl UsageProbe for Contained {
    fn read(&self, now: Timestamp) -> Result<TaskUsage, String> {
        let usage = self.cgroup.usage().map_err(|e| e.to_string())?;
        Ok(TaskUsage {
            cpu_seconds: usage.cpu_time.as_secs_f64(),
            mem_bytes: usage.memory_bytes,
            pids: usage.pids,
            timestamp: now,
        })
    }
}
