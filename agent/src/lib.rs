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
//!                              │ next: process, cgroups    │
//!                              └───────────────────────────┘
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
//! emulate thousands of agents. With the default `link` feature, [`run`]
//! drives the core over the network; without it the crate is pure and builds
//! without tokio or tonic.
//!
//! **Choices.** The agent reports TASK_RUNNING directly once the
//! containerizer started a task (no TASK_STARTING). A kill of a task the agent
//! does not know is answered TASK_DROPPED (reason TASK_UNKNOWN). A shut-down
//! framework's unacknowledged updates are forgotten and the final updates of
//! its tasks (TASK_KILLED, reason FRAMEWORK_REMOVED) are sent once, since no
//! one will acknowledge them. Re-registration lists the live (non-terminal)
//! tasks; ended tasks with unacknowledged updates are reported by re-sending
//! those updates right after registration.
//!
//! **What comes next.** The process and cgroups containerizers (cpu shares,
//! memory limits, OOM as REASON_CONTAINER_LIMITATION_MEMORY, sandboxes),
//! resource detection when `--resources` is not given, and checkpoints in the
//! work directory (agent id, tasks, unacknowledged updates) so that a
//! restarted agent recovers its tasks.

pub mod containerizer;
pub mod detect;

mod config;
mod core;
#[cfg(feature = "link")]
mod link;
mod status_updates;

pub use crate::config::{
    AgentConfig, ConfigError, ContainerizerKind, DEFAULT_MASTER, ReconnectBackoff, detect_hostname,
};
pub use crate::containerizer::{ContainerError, ContainerId, Containerizer, ExitStatus, SimulatedContainerizer};
pub use crate::core::{AgentCore, CoreConfig, Input, Output, ReconnectReason, Warning};
#[cfg(feature = "link")]
pub use crate::link::{AgentError, run};
pub use crate::status_updates::RetryPolicy;
