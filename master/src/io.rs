//! What goes into the master core and what comes out of it.

use agora_proto::{AgentMessage, Event, FrameworkCall, FrameworkInfo, MasterMessage};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A connection (a framework's event stream or an agent's stream), numbered
/// by the driver. The core addresses its outputs to connections so that a
/// stale stream never receives what is meant for its replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// An input to [`crate::Master::handle`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// A framework opened an event stream on `conn` and subscribes (or
    /// re-subscribes, when `info.id` is set).
    Subscribe {
        /// The new stream.
        conn: ConnectionId,
        /// Who subscribes.
        info: FrameworkInfo,
    },
    /// A call from a subscribed framework.
    Call(FrameworkCall),
    /// A framework's event stream closed.
    FrameworkDisconnected {
        /// The stream.
        conn: ConnectionId,
    },
    /// A message on an agent's stream; the first one must be a registration.
    Agent {
        /// The agent's stream.
        conn: ConnectionId,
        /// What it says.
        message: AgentMessage,
    },
    /// An agent's stream closed.
    AgentDisconnected {
        /// The stream.
        conn: ConnectionId,
    },
    /// Time passed: fire whatever timers are due.
    Tick,
}

/// Work the core asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Send an event on a framework's stream.
    ToFramework {
        /// The stream.
        conn: ConnectionId,
        /// The event.
        event: Event,
    },
    /// Close a framework's stream: it was replaced by a newer subscription,
    /// or the framework was torn down or removed.
    CloseFramework {
        /// The stream.
        conn: ConnectionId,
    },
    /// Send a message on an agent's stream.
    ToAgent {
        /// The stream.
        conn: ConnectionId,
        /// The message.
        message: MasterMessage,
    },
    /// Close an agent's stream: it re-registered elsewhere or was refused.
    CloseAgent {
        /// The stream.
        conn: ConnectionId,
    },
}
