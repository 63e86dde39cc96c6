//! What the real containerizers share: a tokio task per container that
//! reaps its main process, lets the isolation clean up (leftover processes,
//! cgroups) off the runtime's threads, and pushes the exit on a channel; and
//! the kill sequence (SIGTERM, grace, SIGKILL).

use super::{ContainerId, ExitStatus, UsageProbe};
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tracing::warn;

/// Where a real containerizer pushes the exits of its containers; the
/// driver feeds each into the core as
/// [`Input::ContainerExited`](crate::Input::ContainerExited).
pub type ExitReceiver = UnboundedReceiver<(ContainerId, ExitStatus)>;

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
}

struct Live {
    isolation: Arc<dyn Isolation>,
    killed: bool,
    kill: Option<JoinHandle<()>>,
}

type Table = Arc<Mutex<BTreeMap<ContainerId, Live>>>;

fn lock(table: &Table) -> MutexGuard<'_, BTreeMap<ContainerId, Live>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Watches the containers' main processes and runs their kills.
pub(crate) struct Supervisor {
    runtime: Handle,
    exits: UnboundedSender<(ContainerId, ExitStatus)>,
    live: Table,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("live", &lock(&self.live).keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor on the current tokio runtime (panics outside one), and
    /// the channel its exits come on.
    pub(crate) fn new() -> (Self, ExitReceiver) {
        let (exits, rx) = unbounded_channel();
        let supervisor = Self {
            runtime: Handle::current(),
            exits,
            live: Arc::default(),
        };
        (supervisor, rx)
    }

    pub(crate) fn contains(&self, id: &ContainerId) -> bool {
        lock(&self.live).contains_key(id)
    }

    /// The containers whose exit has not been pushed yet.
    pub(crate) fn live(&self) -> Vec<ContainerId> {
        lock(&self.live).keys().cloned().collect()
    }

    pub(crate) fn probes(&self) -> Vec<(ContainerId, Arc<dyn UsageProbe>)> {
        lock(&self.live)
            .iter()
            .map(|(id, live)| (id.clone(), Arc::clone(&live.isolation) as Arc<dyn UsageProbe>))
            .collect()
    }

    /// Watches `child`, the main process of container `id`.
    pub(crate) fn watch(&self, id: ContainerId, mut child: tokio::process::Child, isolation: Arc<dyn Isolation>) {
        lock(&self.live).insert(
            id.clone(),
            Live {
                isolation: Arc::clone(&isolation),
                killed: false,
                kill: None,
            },
        );
        let live = Arc::clone(&self.live);
        let exits = self.exits.clone();
        self.runtime.spawn(async move {
            let mut exit = match child.wait().await {
                Ok(status) => ExitStatus {
                    code: status.code(),
                    signal: status.signal(),
                    ..ExitStatus::default()
                },
                Err(e) => ExitStatus {
                    message: format!("cannot wait for the task's process: {e}"),
                    ..ExitStatus::default()
                },
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

    /// SIGTERM now, SIGKILL after `grace`. A second kill restarts the
    /// sequence with its own grace (shutdown shortens a long one).
    pub(crate) fn kill(&self, id: &ContainerId, grace: Duration) {
        let mut live = lock(&self.live);
        let Some(entry) = live.get_mut(id) else {
            return;
        };
        entry.killed = true;
        if let Some(previous) = entry.kill.take() {
            previous.abort();
        }
        let isolation = Arc::clone(&entry.isolation);
        entry.kill = Some(self.runtime.spawn(async move {
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
