//! The protocol and the vocabulary every Agora crate shares.
//!
//! [`pb`] holds the code generated from `proto/agora/v1/*.proto` (the wire).
//! The rest of the crate is the validated domain the cores work with: typed
//! ids, [`Resources`] with exact arithmetic, task states and statuses,
//! framework and agent descriptions, offers. Every wire message converts into
//! the domain through `TryFrom`, which returns a [`ProtoError`] naming the bad
//! or missing field; the domain converts back to the wire with `From`.
//!
//! ```text
//!   network ──pb::*──► TryFrom (validate) ──► domain ──► master / agent / SDK cores
//!   network ◄─pb::*─── From ◄──────────────── domain ◄──┘
//! ```

pub mod pb {
    //! Generated wire types (package `agora.v1`).
    #![allow(missing_docs, unreachable_pub, unused_qualifications, clippy::all)]
    #![allow(missing_debug_implementations)]
    include!(concat!(env!("OUT_DIR"), "/agora.v1.rs"));
}

mod agent_protocol;
mod error;
mod framework;
mod ids;
pub mod leader;
pub mod masters;
mod offer;
pub mod resources;
mod sandbox;
mod scheduler;
mod task;
mod time;

pub use agent_protocol::{AgentMessage, MasterMessage, RunningTask};
pub use error::{ProtoError, ProtoErrorKind};
pub use framework::{
    Capability, DEFAULT_ROLE, Filters, FrameworkInfo, OfferConstraint, QuotaLimit, RoleQuota, quota_limit_to_wire,
    role_quotas_from_wire, role_weights_from_wire, validate_role, validate_weight,
};
pub use ids::{AgentId, FrameworkId, MAX_ID_LEN, OfferId, TaskId, validate_id};
pub use offer::{AgentInfo, AttributeError, Attributes, Offer, Operation};
pub use resources::{RangeSet, ResourceError, ResourceKey, Resources, Scalar};
pub use sandbox::{FileChunk, SandboxFile, TaskUsage};
pub use scheduler::{Call, Event, FrameworkCall, WireCall};
pub use task::{CommandInfo, StatusUuid, TaskInfo, TaskReason, TaskSource, TaskState, TaskStatus};
pub use time::{Timestamp, duration_from_secs};
