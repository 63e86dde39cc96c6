//! Agora's agent: it registers with a master, runs the tasks the master
//! sends it behind a [`Containerizer`], and reports every change of a task's
//! state in a status update that it re-sends until the framework
//! acknowledges it.
//!
//! ```text
//!   master ◄──── one gRPC stream (AgentLink/Attach) ────► link (feature `link`: tokio, tonic)
//!                                                          │ real clock, reconnect with backoff,
//!                                                          │ next master on each failure
//!                                     Input (now, message) ▼ ▲ Output (send, reconnect, ...)
//!                              ┌──────────── AgentCore (pure) ─────────────┐
//!                              │ registration: agent id, re-registration   │
//!                              │   with the running tasks, master liveness │
//!                              │ task lifecycle: RUNNING → FINISHED/FAILED │
//!                              │   /KILLED, TASK_DROPPED for unknown kills │
//!                              │ status update manager: per-task queues,   │
//!                              │   head in flight, retry 10 s doubling to  │
//!                              │   10 min until acknowledged               │
//!                              └────────────┬──────────────────▲───────────┘
//!                          launch / kill    ▼                  │ exits (polled, or pushed
//!                              ┌────── Containerizer ──────┐   │ by the driver as input)
//!                              │ simulated (pure, clock)   │───┘
//!                              │ process, cgroups (`link`) │ exits pushed on a channel
//!                              └───────────────────────────┘ that the link feeds in
//! ```
//!
//! **What it owns.** [`AgentCore`] is a sans-IO state machine (inputs in,
//! outputs out, `poll_timeout` for timers; time and a seed are arguments): the
//! registration state, the task lifecycle and the status update manager.
//! The [`Containerizer`] trait is where tasks run; see [`containerizer`] for
//! its contract (every launch ends in exactly one exit, either polled from the
//! containerizer by the core or pushed by the driver as
//! [`Input::ContainerExited`]). [`SimulatedContainerizer`] runs nothing: a
//! `sleep N` task lasts `N` seconds of the agent's clock, so one process can
//! emulate thousands of agents. With the default `link` feature come the real
//! containerizers: `CgroupsContainerizer` (each task in its own cgroup, v1
//! or v2, with cpu shares and CFS quota, a memory limit whose OOM kill fails
//! the task with REASON_CONTAINER_LIMITATION_MEMORY, a pids limit, and a kill
//! of the whole cgroup) and `ProcessContainerizer` (a process group per task,
//! no limits); both run each task in its sandbox
//! ([`sandbox_dir`]: its working directory, with its stdout and stderr).
//! [`ContainerizerKind::best_available`] picks cgroups where this process can
//! write them. The cgroup file layer ([`containerizer::cgroups`]: mount-table
//! detection, v1 and v2 control files under any root) is pure `std` and
//! builds without the feature.
//!
//! With `link`, [`run`] drives the core over the network: it feeds pushed
//! exits into the core, answers sandbox file reads and reports the tasks'
//! usage (both off its event loop), and on shutdown kills every task, waits
//! until each is reaped and its cgroup removed, and removes the empty root
//! cgroups. Without `link` the crate is pure and builds without tokio, tonic,
//! libc or nix.
//!
//! **Unsafe code.** One function, `join_before_exec` in the launcher, is
//! allowed `unsafe`: the code between fork and exec that starts a session,
//! writes the task into its cgroups and forks the task's waiter (which
//! records the task's exit status, see [`exit_file`]), with async-signal-safe
//! calls only.
//!
//! **Choices.** The agent reports TASK_RUNNING directly once the
//! containerizer started a task (no TASK_STARTING). A kill of a task the agent
//! does not know is answered TASK_DROPPED (reason TASK_UNKNOWN). A shut-down
//! framework's unacknowledged updates are forgotten and the final updates of
//! its tasks (TASK_KILLED, reason FRAMEWORK_REMOVED) are sent once, since no
//! one will acknowledge them. Re-registration lists the live tasks, and
//! the ended tasks whose final update is unacknowledged with that final
//! state (so the master does not take them for lost); the unacknowledged
//! updates are re-sent right after registration.
//!
//! A task dead by a signal reports exit code 128 + the signal, as a shell
//! does. Tasks run as the agent's user: a `user` in the command that differs
//! is logged and ignored (running as another user is not supported yet).
//!
//! **Recovery.** With [`AgentConfig::checkpoint`] (on in `agora agent`) the
//! driver writes a [`checkpoint`] of the core (agent id, tasks and their
//! processes, unacknowledged updates) to the work directory before it
//! carries out the core's outputs; an agent started again on the same work
//! directory re-registers under the same id, reattaches to the tasks whose
//! processes still run, reports the others with the exit status their
//! waiter recorded (or as failed, saying why it is unknown), and re-sends
//! every unacknowledged update. A graceful stop still kills the tasks.
//!
//! **What comes next.** Sandbox (and run directory) garbage collection;
//! running tasks as another user.

pub mod checkpoint;
pub mod containerizer;
pub mod detect;
pub mod exit_file;

mod config;
mod core;
#[cfg(feature = "link")]
mod link;
mod status_updates;

pub use crate::config::{
    AgentConfig, CgroupsConfig, ConfigError, ContainerizerKind, DEFAULT_MASTER, ReconnectBackoff, detect_hostname,
};
#[cfg(feature = "link")]
pub use crate::containerizer::{CgroupsContainerizer, ExitReceiver, ProcessContainerizer};
pub use crate::containerizer::{
    ContainerError, ContainerId, Containerizer, ExitStatus, SimulatedContainerizer, UsageProbe, read_sandbox_file,
    sandbox_dir,
};
pub use crate::core::{AgentCore, CoreConfig, Input, Output, ReconnectReason, Warning};
#[cfg(feature = "link")]
pub use crate::link::{AgentError, run};
pub use crate::status_updates::RetryPolicy;
