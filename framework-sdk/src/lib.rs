//! Write Agora frameworks: a scheduler that receives offers from the master
//! and launches tasks on them (two-level scheduling, as in Mesos).
//!
//! This crate owns the framework side of the scheduler API:
//!
//! - [`Scheduler`], the pure trait a framework implements, and [`Calls`],
//!   through which its callbacks answer (accept, decline, kill, …) and read
//!   the time;
//! - [`Session`], the pure protocol logic shared by the driver and the
//!   simulator: it runs the callbacks for each event, acknowledges status
//!   updates, reconciles after each subscription, and remembers the framework
//!   id for re-subscription;
//! - offer matching ([`TaskRequest`], [`place`]): fitting tasks into offers,
//!   allocating ports, first-fit or spread placement, one agent per ACCEPT;
//! - [`frameworks`]: ready-made [`Batch`](frameworks::Batch) and
//!   [`Service`](frameworks::Service) schedulers;
//! - with the default `driver` feature, [`driver`]: the tokio/tonic driver
//!   that connects a scheduler to a master, with heartbeat watchdog and
//!   reconnection; given several masters, it follows the one that leads.
//!
//! It does not own the protocol vocabulary ([`agora_proto`]: ids,
//! [`Resources`](agora_proto::Resources), offers, task states), the master's
//! side of the API, or the simulator, which drives [`Session`] on virtual time.
//! Without the `driver` feature the crate uses no tokio, tonic or clock.
//!
//! # A scheduler
//!
//! ```
//! use agora_proto::{CommandInfo, Event, Filters, FrameworkInfo, Offer, TaskId, TaskInfo, TaskStatus, Timestamp};
//! use agora_sdk::{Calls, Scheduler, Session, TaskRequest};
//!
//! /// Runs `echo hello` once, on the first offer that fits.
//! #[derive(Debug, Default)]
//! struct Hello {
//!     launched: bool,
//! }
//!
//! impl Scheduler for Hello {
//!     fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
//!         let request = TaskRequest::new("cpus:0.1;mem:32".parse().expect("valid resources"));
//!         for offer in offers {
//!             match request.allocate(&offer.resources) {
//!                 Some(resources) if !self.launched => {
//!                     self.launched = true;
//!                     let task = TaskInfo {
//!                         name: "hello".into(),
//!                         task_id: TaskId::new("hello-1").expect("valid id"),
//!                         agent_id: offer.agent_id.clone(),
//!                         resources,
//!                         command: CommandInfo::exec("echo", ["hello"]),
//!                         kill_grace_period: None,
//!                     };
//!                     calls.launch(vec![offer.id], vec![task]);
//!                 }
//!                 _ => calls.decline(vec![offer.id], Filters::default()),
//!             }
//!         }
//!     }
//!
//!     fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
//!         if status.state.is_terminal() {
//!             calls.teardown(); // also asks the driver to exit
//!         }
//!     }
//! }
//!
//! // The driver (or a simulator) feeds events to a session and sends the calls it returns:
//! let mut session = Session::new(Hello::default(), FrameworkInfo::new("hello"));
//! # let framework_id = agora_proto::FrameworkId::new("fw-1").expect("id");
//! let calls = session.handle(
//!     Timestamp::ZERO,
//!     Event::Subscribed { framework_id, heartbeat_interval: std::time::Duration::from_secs(15), master_id: "m".into() },
//! );
//! assert_eq!(calls.len(), 1); // the implicit reconciliation
//! ```
//!
//! With the driver, the same scheduler runs against a master:
//!
//! ```
//! # #[cfg(feature = "driver")]
//! # async fn run(scheduler: impl agora_sdk::Scheduler) -> Result<(), agora_sdk::driver::DriverError> {
//! use agora_sdk::driver::{Driver, DriverConfig};
//! let config = DriverConfig::new(["127.0.0.1:5050"], agora_proto::FrameworkInfo::new("hello"));
//! let mut driver = Driver::new(config, scheduler)?;
//! driver.run().await?;
//! # Ok(())
//! # }
//! ```

mod calls;
#[cfg(feature = "driver")]
pub mod driver;
pub mod frameworks;
mod matching;
mod scheduler;
mod session;

pub use calls::Calls;
pub use matching::{LaunchPlan, PlacedTask, Placement, Strategy, TaskRequest, place};
pub use scheduler::{Scheduler, Subscribed};
pub use session::{AckMode, DEFAULT_MISSED_HEARTBEATS, Reconciliation, Session};
