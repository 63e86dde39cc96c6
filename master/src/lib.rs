//! The Agora master: the pure core and, with the `server` feature, the
//! tokio/tonic/HTTP driver around it.
//!
//! The core ([`Master`]) owns agents, frameworks, offers and tasks, and asks
//! an [`Allocator`] (hierarchical DRF by default) who gets what. It is a
//! state machine in the sans-IO style of `quinn-proto`: the driver feeds it
//! [`Input`]s with the current time, drains [`Output`]s, and calls it back at
//! [`Master::poll_timeout`]. It reads no clock, does no I/O and iterates in a
//! deterministic order, so the server and the simulator run the same code.
//!
//! ```text
//!   framework streams ─┐                          ┌─► events to frameworks
//!   agent streams ─────┼─► Input ─► Master ─► Output ─► messages to agents
//!   timers (Tick) ─────┘              │
//!                                Allocator (DRF)
//! ```
//!
//! What must survive a restart is reported as records ([`durable`]); the
//! server keeps them in its registry. Not here: leader election, containers
//! (the agent crate), and scheduling decisions (frameworks, via the SDK).

pub mod allocator;
mod config;
pub mod durable;
mod error;
mod io;
mod master;
mod state;

#[cfg(feature = "server")]
pub mod server;

pub use allocator::{Allocation, Allocator, DrfAllocator, DrfConfig, Policy};
pub use config::{MasterConfig, RateLimit, RateLimitError};
pub use error::{MasterError, ReservationError, ReservationOperation};
pub use io::{ConnectionId, Input, Output};
pub use master::{Master, Task};
pub use state::{AgentStatus, AgentView, ClusterState, FrameworkView, RoleView, Stats, TaskRecord};
