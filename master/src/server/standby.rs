//! A master among several (`agora master --etcd ...`): it serves at once,
//! as a standby until elected, then as the leader.
//!
//! - **Standby answers** ([`guard`], a layer in front of the whole router):
//!   while this master is not serving as leader, every gRPC call gets
//!   `agora_proto::leader::not_leader` (UNAVAILABLE with the leader's
//!   address); `/health` says it is a standby and who leads; `/metrics` is
//!   503; every other HTTP path (Mesos' `/api/v1/...`, `/master/...`, our
//!   `/state`) gets `307 Temporary Redirect` to the same path on the leader,
//!   as a Mesos standby answers, or 503 while no leader is known.
//! - **Taking over** ([`Ha::lead`]): campaign; once elected, load the
//!   registry from etcd, restore it into the core loop, open the gate, run
//!   the core loop. The registry is read only after election: what a
//!   previous leader wrote up to the moment it was deposed is all there.
//! - **Losing** the leadership stops the core loop at once (every stream
//!   ends) and [`Ha::lead`] returns [`ServerError::Deposed`]: the server
//!   stops and the process exits nonzero (see `server/election.rs` for why).

use super::core_loop::CoreLoop;
use super::election::{Election, ElectionConfig, Fence, Keys, Leadership};
use super::registry::{EtcdRegistry, EtcdRegistryConfig, Registry, RegistryError, RegistryState};
use super::{EtcdConfig, ServerError};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use tokio::sync::{oneshot, watch};

/// What the front of the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not serving: point callers at the leader (if known).
    Standby { leader: Option<String> },
    /// The leader, serving.
    Serving,
}

/// The parts of an HA master that live until it is elected and beyond.
#[derive(Debug)]
pub(crate) struct Ha {
    election: ElectionConfig,
    registry: EtcdRegistry,
    fence: watch::Sender<Option<Fence>>,
    gate: watch::Sender<Gate>,
}

/// Sets up an HA master listening on `local_addr`: the registry the core
/// loop writes through (fenced by the leadership this master will hold),
/// and the gate the router answers through.
pub(crate) fn setup(config: &EtcdConfig, local_addr: SocketAddr) -> Result<Ha, ServerError> {
    let advertise = config.advertise.clone().unwrap_or_else(|| local_addr.to_string());
    let (fence, fence_rx) = watch::channel(None);
    let mut registry_config = EtcdRegistryConfig::new(config.endpoints.clone(), &config.prefix);
    // A write must not outlast the leadership it is fenced by by much.
    registry_config.timeout = config.leader_ttl.max(std::time::Duration::from_secs(1));
    let registry = EtcdRegistry::new(registry_config, move || fence_rx.borrow().clone())
        .map_err(|e| ServerError::Registry(e.to_string()))?;
    let gate = watch::Sender::new(Gate::Standby { leader: None });
    Ok(Ha {
        election: ElectionConfig {
            endpoints: config.endpoints.clone(),
            keys: Keys::under(&config.prefix),
            advertise,
            ttl: config.leader_ttl,
        },
        registry,
        fence,
        gate,
    })
}

impl Ha {
    /// The registry for the core loop: writes fenced by this master's
    /// leadership, refused while it does not lead.
    pub(crate) fn registry(&self) -> Box<dyn Registry> {
        Box::new(self.registry.clone())
    }

    /// What the front of the server answers, as it changes.
    pub(crate) fn gate(&self) -> watch::Receiver<Gate> {
        self.gate.subscribe()
    }

    /// Campaigns, and once elected restores the registry and runs the core
    /// loop. Returns `Ok` when `stop` fires or the core loop is shut down,
    /// [`ServerError::Deposed`] when the leadership is lost.
    pub(crate) async fn lead(
        self,
        mut core_loop: CoreLoop,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), ServerError> {
        let election = Election::start(self.election.clone());
        let mut leadership = election.subscribe();
        let fence = loop {
            let current = leadership.borrow_and_update().clone();
            match current {
                Leadership::Follower { leader } => {
                    self.gate.send_replace(Gate::Standby { leader });
                }
                Leadership::Leader(fence) => break fence,
                Leadership::Lost(reason) => return Err(ServerError::Deposed(reason)),
            }
            tokio::select! {
                changed = leadership.changed() => if changed.is_err() {
                    return Err(ServerError::Deposed("the election stopped".to_owned()));
                },
                _ = &mut stop => {
                    election.resign().await;
                    return Ok(());
                }
            }
        };
        // Callers that arrive while the registry loads retry here.
        self.gate.send_replace(Gate::Standby {
            leader: Some(self.election.advertise.clone()),
        });
        self.fence.send_replace(Some(fence));
        let restored = tokio::select! {
            restored = self.restore(&mut core_loop) => restored,
            reason = lost(&mut leadership) => Err(ServerError::Deposed(reason)),
        };
        let result = match restored {
            Ok(()) => {
                self.gate.send_replace(Gate::Serving);
                tracing::info!(advertise = %self.election.advertise, "leading: the registry is restored, serving");
                tokio::select! {
                    result = core_loop.run() => result.map_err(super::deposed),
                    reason = lost(&mut leadership) => Err(ServerError::Deposed(reason)),
                }
            }
            Err(error) => Err(error),
        };
        // Writes stop here even before etcd would refuse them.
        self.fence.send_replace(None);
        self.gate.send_replace(Gate::Standby { leader: None });
        if result.is_ok() {
            election.resign().await;
        }
        result
    }
}

impl Ha {
    /// Loads the registry from etcd (on a blocking thread: the backend
    /// blocks) and restores it into the core loop.
    async fn restore(&self, core_loop: &mut CoreLoop) -> Result<(), ServerError> {
        let mut registry = self.registry.clone();
        let entries = tokio::task::spawn_blocking(move || registry.load())
            .await
            .map_err(|e| ServerError::Registry(format!("the registry load stopped: {e}")))?
            .map_err(|e| match e {
                RegistryError::Deposed => ServerError::Deposed(e.to_string()),
                other => ServerError::Registry(other.to_string()),
            })?;
        let where_ = format!("etcd {}", self.election.keys.registry);
        let state = RegistryState::from_entries(entries, &where_).map_err(|e| ServerError::Registry(e.to_string()))?;
        core_loop
            .restore(state)
            .map_err(|e| ServerError::Registry(format!("the master refused what it holds: {e}")))?;
        // What recovery changed (frameworks now disconnected since this
        // failover) is written at once, fenced like any write.
        core_loop.write_restored().map_err(|e| match e {
            RegistryError::Deposed => super::deposed(e),
            other => ServerError::Registry(other.to_string()),
        })
    }
}

/// Resolves when this master's leadership is lost (or the election ended).
async fn lost(leadership: &mut watch::Receiver<Leadership>) -> String {
    loop {
        if let Leadership::Lost(reason) = &*leadership.borrow_and_update() {
            return reason.clone();
        }
        if leadership.changed().await.is_err() {
            return "the election stopped".to_owned();
        }
    }
}

/// Puts the gate in front of `router`.
pub(crate) fn guarded(router: axum::Router, gate: watch::Receiver<Gate>) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(gate, guard))
}

/// Passes requests through while serving; answers them as a standby
/// otherwise (module docs).
async fn guard(State(gate): State<watch::Receiver<Gate>>, request: Request, next: Next) -> Response {
    let leader = match &*gate.borrow() {
        Gate::Serving => None,
        Gate::Standby { leader } => Some(leader.clone()),
    };
    let Some(leader) = leader else {
        return next.run(request).await;
    };
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return agora_proto::leader::not_leader(leader.as_deref()).into_http();
    }
    match (request.uri().path(), leader) {
        ("/health", leader) => {
            let leader = leader.as_deref().unwrap_or("not elected yet");
            (StatusCode::OK, format!("standby; leader: {leader}\n")).into_response()
        }
        ("/metrics", _) => (StatusCode::SERVICE_UNAVAILABLE, "standby: the leader has the metrics\n").into_response(),
        (_, Some(leader)) => {
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let location = format!("http://{leader}{path}");
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response()
        }
        (_, None) => (StatusCode::SERVICE_UNAVAILABLE, "standby: no leader is elected yet\n").into_response(),
    }
}
