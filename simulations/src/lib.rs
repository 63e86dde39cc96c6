//! Agora's discrete-event simulator. It owns virtual time and everything
//! around the real code: an event queue, modelled agents (a task runs for its
//! duration, then reports TASK_FINISHED), a modelled network (delays, order
//! kept per connection), workload generators and a trace reader, metrics and
//! plots. It does not model the master or the schedulers: it drives the real
//! master core (`agora-master` built without its server) and real SDK
//! [`Scheduler`](agora_sdk::Scheduler)s through [`Session`](agora_sdk::Session),
//! so what a simulation says is what the cluster's code does.
//!
//! ```text
//!   workload (config, trace) ──► frameworks (Session<Scheduler>) ◄─┐
//!                                   │ calls after decision time    │ events
//!                                   ▼                              │
//!   event queue (time, seq) ──► network ──► master core ──► network
//!                                   ▲            │
//!                                   └── agents ◄─┘ run task, ack
//! ```
//!
//! Runs are reproducible: one seed drives the workload, the network and the
//! master's choices, and nothing reads a clock (except the measured-decision
//! mode, which is documented as not reproducible).

mod agent;
pub mod bench;
pub mod config;
pub mod dist;
mod engine;
mod error;
pub mod framework;
pub mod metrics;
pub mod output;
pub mod queue;
pub mod scheduler;
pub mod sweep;
pub mod trace;

pub use config::SimConfig;
pub use engine::Simulation;
pub use error::{ConfigError, OutputError, SimError, TraceError};
pub use metrics::Report;

/// Loads `config` (with its trace, if any) and runs it to the end.
pub fn run(config: SimConfig) -> Result<Report, SimError> {
    let trace = config.trace.clone();
    let mut sim = Simulation::new(config)?;
    if let Some(trace) = trace {
        trace::submit_trace(&mut sim, &trace)?;
    }
    sim.run()
}
