//! The process containerizer (feature `link`): each task runs as a plain
//! process in its own session (so its own process group), with its sandbox
//! as working directory, and no resource limits. A kill signals the whole
//! process group; when the main process ends, what is left of its group is
//! killed. Usage is read from `/proc/<pid>/stat` of the task's process (its
//! CPU time including reaped children, resident memory, threads): the only
//! child of the main process, the task's waiter.
//!
//! For machines where cgroups cannot be written; prefer
//! [`CgroupsContainerizer`](super::CgroupsContainerizer).

use super::launch::{create_sandbox, spawn};
use super::supervisor::{ExitReceiver, Isolation, StartedReceiver, Supervisor};
use super::{ContainerError, ContainerId, Containerizer, ExitStatus, UsageProbe};
use crate::checkpoint::ContainerRecord;
use crate::exit_file;
use agora_proto::{TaskInfo, TaskUsage, Timestamp};
use nix::sys::signal::Signal;
use nix::unistd::{Pid, SysconfVar, sysconf};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// Runs tasks as plain processes; see the [module docs](self).
#[derive(Debug)]
pub struct ProcessContainerizer {
    work_dir: PathBuf,
    supervisor: Supervisor,
}

impl ProcessContainerizer {
    /// A containerizer whose sandboxes live under `work_dir`, and the
    /// channel on which it pushes exits. Must be called within a tokio
    /// runtime (it spawns a task per container there); panics otherwise.
    pub fn new(work_dir: &Path) -> (Self, ExitReceiver) {
        let (supervisor, exits) = Supervisor::new(work_dir);
        let containerizer = Self {
            work_dir: work_dir.to_owned(),
            supervisor,
        };
        (containerizer, exits)
    }

    /// The containers whose exit has not been pushed yet.
    pub fn live(&self) -> Vec<ContainerId> {
        self.supervisor.live()
    }

    /// From now on, launches run in the background, several at once:
    /// [`launch`](Containerizer::launch) returns once the launch is queued,
    /// each container whose process has started is pushed on the returned
    /// channel, and a launch that fails is pushed as an exit with
    /// `REASON_CONTAINER_LAUNCH_FAILED`.
    pub fn launch_in_background(&mut self) -> StartedReceiver {
        self.supervisor.launch_in_background()
    }
}

impl Containerizer for ProcessContainerizer {
    fn launch(&mut self, _now: Timestamp, id: &ContainerId, task: &TaskInfo) -> Result<(), ContainerError> {
        let (work_dir, container, task) = (self.work_dir.clone(), id.clone(), task.clone());
        self.supervisor.launch(id, move || {
            let sandbox = create_sandbox(&work_dir, &container)?;
            let child = spawn(&task, &sandbox, &[], &exit_file::path(&work_dir, &container))?;
            let pid = child
                .id()
                .and_then(|pid| i32::try_from(pid).ok())
                .ok_or_else(|| ContainerError::Launch("the task's process has no id".to_owned()))?;
            Ok((child, Arc::new(Group { pid }) as Arc<dyn Isolation>))
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

    fn reattach(
        &mut self,
        _now: Timestamp,
        id: &ContainerId,
        _task: &TaskInfo,
        record: &ContainerRecord,
    ) -> Result<(), ContainerError> {
        let pid = i32::try_from(record.pid).map_err(|_| ContainerError::Reattach(format!("bad pid {}", record.pid)))?;
        // The task started its own session, so its group id is still its pid.
        self.supervisor.reattach(id, record.clone(), Arc::new(Group { pid }))
    }
}

/// A task's process group: its main process started a session, so the
/// group id is its pid.
#[derive(Debug)]
struct Group {
    pid: i32,
}

impl Group {
    fn signal(&self, signal: Signal) {
        match nix::sys::signal::killpg(Pid::from_raw(self.pid), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(error) => warn!(pgid = self.pid, %signal, %error, "cannot signal the task's process group"),
        }
    }
}

impl Isolation for Group {
    fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    fn force_kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    fn ended(&self, _exit: &mut ExitStatus) {
        // Right after the reap, the group id is still held by any member
        // left, so it names no other process. (The killed members are
        // reaped by their new parent, init, in its own time.)
        self.signal(Signal::SIGKILL);
    }
}

impl UsageProbe for Group {
    fn read(&self, now: Timestamp) -> Result<TaskUsage, String> {
        // The waiter's one child is the task. Once the task is reaped (or
        // where the kernel lists no children), the waiter's own figures
        // count the reaped task's CPU time.
        let children = format!("/proc/{0}/task/{0}/children", self.pid);
        let task = std::fs::read_to_string(children)
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u32>().ok());
        let pid = task.map_or_else(|| self.pid.to_string(), |pid| pid.to_string());
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        parse_stat(&text, now).ok_or_else(|| format!("cannot parse {path}"))
    }
}

/// Usage from the text of `/proc/<pid>/stat`.
fn parse_stat(text: &str, now: Timestamp) -> Option<TaskUsage> {
    // The command name (field 2) may hold spaces and parentheses: skip to
    // the last `)`; what follows starts at field 3.
    let fields: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = (field(14)? + field(15)? + field(16)? + field(17)?) as f64;
    let ticks_per_second = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as u64;
    Some(TaskUsage {
        cpu_seconds: ticks / ticks_per_second,
        mem_bytes: field(24)?.saturating_mul(page),
        pids: field(20)?,
        timestamp: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, CommandInfo, FrameworkId, TaskId, TaskReason};

    fn task(name: &str, command: CommandInfo) -> (ContainerId, TaskInfo) {
        let task_id = TaskId::new(name).expect("valid");
        let id = ContainerId::new(FrameworkId::new("f1").expect("valid"), task_id.clone());
        let info = TaskInfo {
            name: name.to_owned(),
            task_id,
            agent_id: AgentId::new("a1").expect("valid"),
            resources: "cpus:0.1".parse().expect("valid"),
            command,
            kill_grace_period: None,
        };
        (id, info)
    }

    #[tokio::test]
    async fn background_launches_push_starts_and_failures() {
        let work = std::env::temp_dir().join(format!("agora-process-bg-{}", std::process::id()));
        let (mut c, mut exits) = ProcessContainerizer::new(&work);
        let mut started = c.launch_in_background();
        assert!(c.launches_in_background());
        let now = Timestamp::ZERO;
        let within = Duration::from_secs(5);

        let (ok, info) = task("ok", CommandInfo::shell("exit 4"));
        c.launch(now, &ok, &info).expect("queued");
        assert!(
            matches!(c.launch(now, &ok, &info), Err(ContainerError::AlreadyExists(_))),
            "a queued launch is a live container"
        );
        let first = tokio::time::timeout(within, started.recv()).await.expect("in time");
        assert_eq!(first, Some(ok.clone()));
        let (who, exit) = tokio::time::timeout(within, exits.recv())
            .await
            .expect("in time")
            .expect("alive");
        assert_eq!((who, exit.code), (ok, Some(4)));

        let (bad, info) = task("bad", CommandInfo::exec("/nonexistent/program", Vec::<String>::new()));
        c.launch(now, &bad, &info).expect("queued");
        let (who, exit) = tokio::time::timeout(within, exits.recv())
            .await
            .expect("in time")
            .expect("alive");
        assert_eq!(who, bad);
        assert_eq!(exit.limitation, Some(TaskReason::ContainerLaunchFailed));
        assert!(exit.message.contains("/nonexistent/program"), "{exit:?}");
        assert!(started.try_recv().is_err(), "a failed launch never started");
        assert_eq!(c.live(), []);
        let _ = std::fs::remove_dir_all(&work);
    }

    #[test]
    fn stat_is_parsed() {
        let text = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194304 100 0 0 0 150 50 20 30 20 0 3 0 100 1000000 256 18446744073709551615";
        let usage = parse_stat(text, Timestamp::from_secs(5)).expect("parses");
        let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
        assert!((usage.cpu_seconds - 250.0 / hz).abs() < 1e-9);
        assert_eq!(usage.pids, 3);
        let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as u64;
        assert_eq!(usage.mem_bytes, 256 * page);
        assert_eq!(usage.timestamp, Timestamp::from_secs(5));
        assert_eq!(parse_stat("garbage", Timestamp::ZERO), None);
    }
}
