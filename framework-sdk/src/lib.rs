//! Placeholder while the SDK is being written.
mod calls;
pub mod frameworks;
mod matching;
mod scheduler;
mod session;
pub use calls::Calls;
pub use matching::{LaunchPlan, PlacedTask, Placement, Strategy, TaskRequest, place};
pub use scheduler::{Scheduler, Subscribed};
pub use session::{AckMode, DEFAULT_MISSED_HEARTBEATS, Session};
