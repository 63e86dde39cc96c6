//! The [`Scheduler`] trait: what a framework author implements.

use crate::calls::Calls;
use agora_proto::{AgentId, FrameworkId, Offer, OfferId, TaskStatus};
use std::time::Duration;

/// What the master said when the subscription succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// The framework's id: new on the first subscription, the same one after
    /// a re-subscription within the failover timeout.
    pub framework_id: FrameworkId,
    /// The master's id.
    pub master_id: String,
    /// How often the master sends heartbeats.
    pub heartbeat_interval: Duration,
}

/// A framework's scheduler: callbacks for the events the master sends.
///
/// Every callback but [`disconnected`](Self::disconnected) receives a
/// [`Calls`] through which the scheduler answers (accept, decline, kill, …) and
/// reads the current time. Implementations do no I/O and read no clock, so the
/// same scheduler runs under the async driver and in a simulator.
///
/// Status updates are acknowledged by the session after
/// [`status_update`](Self::status_update) returns, unless the session runs in
/// [`AckMode::Explicit`](crate::AckMode::Explicit).
pub trait Scheduler: Send {
    /// The framework is subscribed (first time or again after a disconnection).
    /// The session reconciles every task right after this returns.
    fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
        let _ = (calls, info);
    }

    /// New offers. Every offer should eventually be accepted or declined;
    /// an offer neither is held until the master rescinds it.
    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>);

    /// An offer is withdrawn; launching with it would fail.
    fn rescinded(&mut self, calls: &mut Calls, offer_id: &OfferId) {
        let _ = (calls, offer_id);
    }

    /// A task changed state (or a reconciliation answer arrived).
    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        let _ = (calls, status);
    }

    /// An agent was lost; its tasks' updates follow separately.
    fn failure(&mut self, calls: &mut Calls, agent_id: &AgentId) {
        let _ = (calls, agent_id);
    }

    /// The master reported a framework-level error. The subscription ends and
    /// the driver stops; calls made here are still sent, best effort.
    fn error(&mut self, calls: &mut Calls, message: &str) {
        let _ = (calls, message);
    }

    /// The link to the master is lost; the driver reconnects and
    /// [`subscribed`](Self::subscribed) follows once it succeeds. Offers
    /// received before are no longer valid.
    fn disconnected(&mut self) {}
}

impl<S: Scheduler + ?Sized> Scheduler for Box<S> {
    fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
        (**self).subscribed(calls, info);
    }
    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        (**self).offers(calls, offers);
    }
    fn rescinded(&mut self, calls: &mut Calls, offer_id: &OfferId) {
        (**self).rescinded(calls, offer_id);
    }
    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        (**self).status_update(calls, status);
    }
    fn failure(&mut self, calls: &mut Calls, agent_id: &AgentId) {
        (**self).failure(calls, agent_id);
    }
    fn error(&mut self, calls: &mut Calls, message: &str) {
        (**self).error(calls, message);
    }
    fn disconnected(&mut self) {
        (**self).disconnected();
    }
}
