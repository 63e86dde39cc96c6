//! What the real containerizers share: a tokio task per container that
//! reaps its main process (the task's waiter, see [`launch`](super::launch)),
//! reads the task's exit status the waiter recorded, lets the isolation
//! clean up (leftover processes, cgroups) off the runtime's threads, and
//! pushes the exit on a channel; the
//! kill sequence (SIGTERM, grace, SIGKILL); and, when asked for, launching in
//! the background on a few blocking threads (as many as the cores).

use super::{ContainerError, ContainerId, ExitStatus, UsageProbe};
use crate::checkpoint::{ContainerRecord, process_start_time};
use crate::exit_file::{self, TaskExit};
use agora_proto::TaskReason;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tracing::warn;

/// Where a real containerizer pushes the exits of its containers; the
/// driver feeds each into the core as
/// [`Input::ContainerExited`](crate::Input::ContainerExited).
pub type ExitReceiver = UnboundedReceiver<(ContainerId, ExitStatus)>;

/// Where a containerizer that launches in the background pushes each
/// container whose main process has started; the driver feeds each into the
/// core as [`Input::ContainerStarted`](crate::Input::ContainerStarted).
pub type StartedReceiver = UnboundedReceiver<ContainerId>;

/// What a launch makes: the main process and how to stop and clean it up.
pub(crate) type Launched = (tokio::process::Child, Arc<dyn Isolation>);

/// How a container's processes are told to stop, and cleaned up after.
/// The methods block (file I/O, freezing); they run on blocking threads.
pub(crate) trait Isolation: UsageProbe + 'static {
    /// Asks every process to stop (SIGTERM).
    fn terminate(&self);
    /// Kills every process (SIGKILL).
    fn force_kill(&self);
    /// The main process has been reaped: kill what it left behind, amend
    /// `exit` (limits hit), and remove what the container held.
    fn ended(&self, exit: &mut ExitStatus);
    /// The container's cgroups, for the checkpoint (none by default).
    fn cgroups(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// A container's main process (the task's waiter): a child of this agent,
/// or one that outlived a previous agent (reattached; not our child, so it
/// cannot be waited for, but it records the task's status all the same).
pub(crate) enum MainProcess {
    Child(tokio::process::Child),
    Reattached(ContainerRecord),
}

/// How often a reattached process is looked for in `/proc`. (A pidfd would
/// wake at once, but `pidfd_open` has no safe wrapper in our `nix`, and the
/// workspace allows one `unsafe` function.)
const REATTACHED_POLL: Duration = Duration::from_millis(100);

struct Live {
    /// `None` while a background launch is queued or under way.
    isolation: Option<Arc<dyn Isolation>>,
    /// The main process, once it exists (for the checkpoint).
    record: Option<ContainerRecord>,
    killed: bool,
    /// A kill asked for while launching: its grace, for once the process exists.
    kill_pending: Option<Duration>,
    kill: Option<JoinHandle<()>>,
}

type Table = Arc<Mutex<BTreeMap<ContainerId, Live>>>;

fn lock(table: &Table) -> MutexGuard<'_, BTreeMap<ContainerId, Live>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Watches the containers' main processes and runs their kills.
pub(crate) struct Supervisor {
    runtime: Handle,
    /// Where the containers' exit status files are ([`exit_file::path`]).
    work_dir: Arc<Path>,
    exits: UnboundedSender<(ContainerId, ExitStatus)>,
    live: Table,
    background: Option<Background>,
}

/// Background launching: started containers are pushed on `started`; at
/// most `launchers` launches run at once (FIFO).
#[derive(Clone)]
struct Background {
    started: UnboundedSender<ContainerId>,
    launchers: Arc<Semaphore>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("live", &lock(&self.live).keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor on the current tokio runtime (panics outside one) for
    /// containers whose exit status files are under `work_dir`, and the
    /// channel its exits come on.
    pub(crate) fn new(work_dir: &Path) -> (Self, ExitReceiver) {
        let (exits, rx) = unbounded_channel();
        let supervisor = Self {
            runtime: Handle::current(),
            work_dir: Arc::from(work_dir),
            exits,
            live: Arc::default(),
            background: None,
        };
        (supervisor, rx)
    }

    /// From now on, [`launch`](Self::launch) returns once the launch is
    /// queued; the launch runs on a blocking thread (at most as many at once
    /// as the machine has cores), its container is pushed on the returned
    /// channel once its main process exists, and a failed launch is pushed as
    /// an exit with [`TaskReason::ContainerLaunchFailed`].
    pub(crate) fn launch_in_background(&mut self) -> StartedReceiver {
        let (started, rx) = unbounded_channel();
        let launchers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        self.background = Some(Background {
            started,
            launchers: Arc::new(Semaphore::new(launchers)),
        });
        rx
    }

    /// Whether [`launch`](Self::launch) runs in the background.
    pub(crate) fn in_background(&self) -> bool {
        self.background.is_some()
    }

    /// Launches container `id` with `start` (blocking work: sandbox,
    /// cgroups, fork and exec) and watches its main process: at once, or in
    /// the background (see [`launch_in_background`](Self::launch_in_background)).
    pub(crate) fn launch(
        &self,
        id: &ContainerId,
        start: impl FnOnce() -> Result<Launched, ContainerError> + Send + 'static,
    ) -> Result<(), ContainerError> {
        let mut live = lock(&self.live);
        if live.contains_key(id) {
            return Err(ContainerError::AlreadyExists(id.clone()));
        }
        let Some(background) = self.background.clone() else {
            drop(live);
            let (child, isolation) = start()?;
            self.watch(id.clone(), child, isolation);
            return Ok(());
        };
        live.insert(
            id.clone(),
            Live {
                isolation: None,
                record: None,
                killed: false,
                kill_pending: None,
                kill: None,
            },
        );
        drop(live);
        let id = id.clone();
        let table = Arc::clone(&self.live);
        let exits = self.exits.clone();
        let runtime = self.runtime.clone();
        let work_dir = Arc::clone(&self.work_dir);
        self.runtime.spawn(async move {
            let Ok(_permit) = background.launchers.acquire().await else {
                return;
            };
            // A container killed before its turn is not started at all.
            let killed_early = lock(&table).get(&id).is_none_or(|l| l.killed);
            let result = if killed_early {
                Err(None)
            } else {
                match tokio::task::spawn_blocking(start).await {
                    Ok(result) => result.map_err(Some),
                    Err(e) => Err(Some(ContainerError::Launch(format!("the launch failed: {e}")))),
                }
            };
            match result {
                Ok((child, isolation)) => {
                    // Recorded before the start is pushed, so that the
                    // checkpoint written after the start has the pid.
                    let record = child_record(&child, isolation.as_ref());
                    if let Some(live) = lock(&table).get_mut(&id) {
                        live.record.clone_from(&record);
                    }
                    // Pushed before the exit can be: the watch starts after.
                    let _ = background.started.send(id.clone());
                    let context = Context {
                        runtime: &runtime,
                        table: &table,
                        exits: &exits,
                        work_dir: &work_dir,
                    };
                    supervise(&context, id, MainProcess::Child(child), isolation);
                }
                Err(error) => {
                    let killed = lock(&table).remove(&id).is_some_and(|l| l.killed);
                    let exit = match error {
                        Some(error) => ExitStatus {
                            limitation: Some(TaskReason::ContainerLaunchFailed),
                            message: error.to_string(),
                            killed,
                            ..ExitStatus::default()
                        },
                        None => ExitStatus {
                            message: "killed before it started".to_owned(),
                            ..ExitStatus::killed()
                        },
                    };
                    let _ = exits.send((id, exit));
                }
            }
        });
        Ok(())
    }

    /// The containers whose exit has not been pushed yet.
    pub(crate) fn live(&self) -> Vec<ContainerId> {
        lock(&self.live).keys().cloned().collect()
    }

    pub(crate) fn probes(&self) -> Vec<(ContainerId, Arc<dyn UsageProbe>)> {
        lock(&self.live)
            .iter()
            .filter_map(|(id, live)| {
                let isolation = live.isolation.as_ref()?;
                Some((id.clone(), Arc::clone(isolation) as Arc<dyn UsageProbe>))
            })
            .collect()
    }

    /// Watches `child`, the main process of container `id`.
    fn watch(&self, id: ContainerId, child: tokio::process::Child, isolation: Arc<dyn Isolation>) {
        supervise(&self.context(), id, MainProcess::Child(child), isolation);
    }

    fn context(&self) -> Context<'_> {
        Context {
            runtime: &self.runtime,
            table: &self.live,
            exits: &self.exits,
            work_dir: &self.work_dir,
        }
    }

    /// Supervises again container `id`, whose main process `record` outlived
    /// the previous agent: its kill and cleanup go through `isolation`; its
    /// end is noticed by polling `/proc` and reported with the status its
    /// waiter recorded, or, if none was, with
    /// [`TaskReason::ExecutorTerminated`] (unless the agent killed it).
    pub(crate) fn reattach(
        &self,
        id: &ContainerId,
        record: ContainerRecord,
        isolation: Arc<dyn Isolation>,
    ) -> Result<(), ContainerError> {
        if lock(&self.live).contains_key(id) {
            return Err(ContainerError::AlreadyExists(id.clone()));
        }
        supervise(&self.context(), id.clone(), MainProcess::Reattached(record), isolation);
        Ok(())
    }

    /// Runs `work` (blocking) in the background.
    pub(crate) fn run_blocking(&self, work: impl FnOnce() + Send + 'static) {
        drop(self.runtime.spawn_blocking(work));
    }

    /// The main process of every container that has one.
    pub(crate) fn records(&self) -> Vec<(ContainerId, ContainerRecord)> {
        lock(&self.live)
            .iter()
            .filter_map(|(id, live)| Some((id.clone(), live.record.clone()?)))
            .collect()
    }

    /// SIGTERM now, SIGKILL after `grace`. A second kill restarts the
    /// sequence with its own grace (shutdown shortens a long one). A
    /// container still launching is killed once its process exists (or not
    /// started, if its launch has not begun).
    pub(crate) fn kill(&self, id: &ContainerId, grace: Duration) {
        let mut live = lock(&self.live);
        let Some(entry) = live.get_mut(id) else {
            return;
        };
        entry.killed = true;
        if entry.isolation.is_none() {
            entry.kill_pending = Some(grace);
            return;
        }
        start_kill(&self.runtime, entry, grace);
    }
}

/// What [`supervise`] works with: the supervisor's parts (a background
/// launch has clones of them, not the supervisor).
struct Context<'a> {
    runtime: &'a Handle,
    table: &'a Table,
    exits: &'a UnboundedSender<(ContainerId, ExitStatus)>,
    work_dir: &'a Arc<Path>,
}

/// Records `isolation` for container `id` (whose entry a background launch
/// made, or a new one), starts a kill asked for while it launched, and
/// spawns the task that waits for `child`, reads the status its waiter
/// recorded, cleans up and pushes the exit.
fn supervise(context: &Context<'_>, id: ContainerId, main: MainProcess, isolation: Arc<dyn Isolation>) {
    let Context {
        runtime,
        table,
        exits,
        work_dir,
    } = *context;
    let status_file = exit_file::path(work_dir, &id);
    let record = match &main {
        MainProcess::Child(child) => child_record(child, isolation.as_ref()),
        MainProcess::Reattached(record) => Some(record.clone()),
    };
    {
        let mut live = lock(table);
        let entry = live.entry(id.clone()).or_insert_with(|| Live {
            isolation: None,
            record: None,
            killed: false,
            kill_pending: None,
            kill: None,
        });
        entry.isolation = Some(Arc::clone(&isolation));
        entry.record = record;
        if let Some(grace) = entry.kill_pending.take() {
            start_kill(runtime, entry, grace);
        }
    }
    let live = Arc::clone(table);
    let exits = exits.clone();
    runtime.spawn(async move {
        let mut exit = match main {
            MainProcess::Child(mut child) => match child.wait().await {
                // The waiter ends as the task did; its record says so too,
                // and is preferred (it also tells a task killed by SIGKILL
                // from a waiter killed by the kill sequence).
                Ok(status) => match read_exit(&status_file).await {
                    Ok(Some(recorded)) => from_record(recorded),
                    Ok(None) => ExitStatus {
                        code: status.code(),
                        signal: status.signal(),
                        ..ExitStatus::default()
                    },
                    Err(error) => ExitStatus {
                        code: status.code(),
                        signal: status.signal(),
                        message: error.to_string(),
                        ..ExitStatus::default()
                    },
                },
                Err(e) => ExitStatus {
                    message: format!("cannot wait for the task's process: {e}"),
                    ..ExitStatus::default()
                },
            },
            MainProcess::Reattached(record) => {
                while process_start_time(record.pid) == Some(record.start_time) {
                    tokio::time::sleep(REATTACHED_POLL).await;
                }
                // Its parent (init) reaped the waiter; the task's status is
                // what the waiter recorded before it ended.
                match read_exit(&status_file).await {
                    Ok(Some(recorded)) => from_record(recorded),
                    Ok(None) => ExitStatus {
                        limitation: Some(TaskReason::ExecutorTerminated),
                        message: format!(
                            "the task's waiter (pid {}) ended after an agent restart without recording the task's \
                             exit status; it is unknown",
                            record.pid
                        ),
                        ..ExitStatus::default()
                    },
                    Err(error) => ExitStatus {
                        limitation: Some(TaskReason::ExecutorTerminated),
                        message: format!(
                            "the task's process ended after an agent restart; its exit status is unknown: {error}"
                        ),
                        ..ExitStatus::default()
                    },
                }
            }
        };
        // The kill sequence has nothing left to do but the cleanup's.
        if let Some(kill) = lock(&live).get_mut(&id).and_then(|l| l.kill.take()) {
            kill.abort();
        }
        let fallback = exit.clone();
        exit = tokio::task::spawn_blocking(move || {
            isolation.ended(&mut exit);
            exit
        })
        .await
        .unwrap_or(fallback);
        if let Some(entry) = lock(&live).remove(&id) {
            exit.killed |= entry.killed;
        }
        let _ = exits.send((id, exit));
    });
}

/// The exit status recorded at `file`, read off the runtime's threads.
async fn read_exit(file: &Path) -> Result<Option<TaskExit>, exit_file::ExitFileError> {
    let path = file.to_owned();
    let read = tokio::task::spawn_blocking(move || exit_file::read(&path)).await;
    read.unwrap_or_else(|e| {
        Err(exit_file::ExitFileError::Io {
            action: "read",
            path: file.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

/// The exit of a task whose waiter recorded `exit`.
fn from_record(exit: TaskExit) -> ExitStatus {
    match exit {
        TaskExit::Exited(code) => ExitStatus::exited(code),
        TaskExit::Signaled(signal) => ExitStatus::signaled(signal),
    }
}

/// What identifies `child` across agent restarts. Read while it is our
/// unreaped child, so its pid cannot have been reused.
fn child_record(child: &tokio::process::Child, isolation: &dyn Isolation) -> Option<ContainerRecord> {
    let pid = child.id()?;
    Some(ContainerRecord {
        pid,
        start_time: process_start_time(pid)?,
        cgroups: isolation.cgroups(),
    })
}

/// Starts the kill sequence of a running container (restarting one under way).
fn start_kill(runtime: &Handle, entry: &mut Live, grace: Duration) {
    if let Some(previous) = entry.kill.take() {
        previous.abort();
    }
    let Some(isolation) = entry.isolation.clone() else {
        return;
    };
    entry.kill = Some(runtime.spawn(async move {
        let polite = Arc::clone(&isolation);
        if let Err(error) = tokio::task::spawn_blocking(move || polite.terminate()).await {
            warn!(%error, "SIGTERM failed");
        }
        tokio::time::sleep(grace).await;
        if let Err(error) = tokio::task::spawn_blocking(move || isolation.force_kill()).await {
            warn!(%error, "SIGKILL failed");
        }
    }));
}

/// Sends `signal` to process `pid`; a process already gone is no error.
pub(crate) fn signal(pid: i32, signal: nix::sys::signal::Signal) -> Result<(), nix::Error> {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Waits `attempts` × `step` at most for `done`.
pub(crate) fn wait_for(attempts: u32, step: Duration, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..attempts {
        if done() {
            return true;
        }
        std::thread::sleep(step);
    }
    done()
}
