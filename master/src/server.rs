//! The master's server: the tokio driver around the pure [`Master`] core,
//! serving the scheduler, agent and operator gRPC APIs, the HTTP endpoints
//! (`/health`, `/metrics`, `/state`) and Mesos' v1 HTTP APIs (`server/mesos/`)
//! on one port.
//!
//! It owns everything the core must not touch: the listening socket, the
//! wall clock, the per-connection streams and the Prometheus recorder. One
//! task, the core loop (`server/core_loop.rs`), owns the [`Master`]; the RPC handlers
//! talk to it over a channel, so the core is never shared or locked.
//!
//! ```text
//!   gRPC + HTTP (one listener, axum) ──commands──► core loop ──handle/poll──► Master
//!        ▲                                            │
//!        └──── per-connection event/message channels ◄┘ (outputs routed by ConnectionId)
//! ```
//!
//! Shutdown is graceful: the listener stops accepting, the core loop stops
//! (which ends every framework and agent stream), and open connections get
//! [`SHUTDOWN_GRACE`] to drain before [`MasterServer::run`] returns.

#![allow(clippy::disallowed_methods)] // a driver: it reads the real clock and feeds it to the core

mod agent_link;
mod cluster_events;
mod core_loop;
#[cfg(feature = "etcd")]
pub mod election;
mod http;
mod mesos;
mod metrics;
mod operator;
pub mod registry;
mod scheduler;
#[cfg(feature = "etcd")]
mod standby;
mod status;

use crate::{Master, MasterConfig};
use agora_proto::pb;
use axum::serve::ListenerExt;
use core_loop::{CoreHandle, CoreLoop};
use std::future::{Future, IntoFuture};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinError;
use tonic::service::Routes;

/// How long open connections may take to drain after shutdown begins,
/// before [`MasterServer::run`] returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The port Mesos masters listen on, kept for familiarity.
pub const DEFAULT_PORT: u16 = 5050;

/// Settings of the master server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Where to listen for gRPC and HTTP; port 0 picks a free port (see
    /// [`MasterServer::local_addr`]).
    pub listen: SocketAddr,
    /// Settings of the master core.
    pub master: MasterConfig,
    /// Seed of the core's random choices, so a run can be replayed.
    pub seed: u64,
    /// The master's work directory, where the registry file keeps operators'
    /// role weights and quotas across restarts; `None` keeps them in memory.
    pub work_dir: Option<std::path::PathBuf>,
    /// Several masters on etcd (leader election, the registry in etcd,
    /// standby answers); `None`: this master alone, with the file registry
    /// in `work_dir` or none. Needs the `etcd` feature.
    pub etcd: Option<EtcdConfig>,
}

/// How a master among several reaches etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// etcd's client URLs (`http://host:2379`).
    pub endpoints: Vec<String>,
    /// The address (`host:port`) standbys send callers to while this master
    /// leads; default: the bound address.
    pub advertise: Option<String>,
    /// The leader lease's TTL: a leader that dies is replaced about this long
    /// after its last renewal.
    pub leader_ttl: Duration,
    /// Every key lives under this prefix (`<prefix>/leader`,
    /// `<prefix>/registry/...`), so clusters can share an etcd.
    pub prefix: String,
}

impl EtcdConfig {
    /// The default leader TTL: a few seconds, as Mesos' ZooKeeper session.
    pub const DEFAULT_LEADER_TTL: Duration = Duration::from_secs(5);
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &str = "/agora";

    /// `endpoints` with the default TTL and prefix.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            advertise: None,
            leader_ttl: Self::DEFAULT_LEADER_TTL,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            master: MasterConfig::default(),
            seed: 0,
            work_dir: None,
            etcd: None,
        }
    }
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The registry could not be opened or read, or the core refused what
    /// it holds.
    #[error("cannot restore the registry: {0}")]
    Registry(String),
    /// The Prometheus recorder could not be built.
    #[error("cannot set up metrics: {0}")]
    Metrics(#[source] metrics_exporter_prometheus::BuildError),
    /// Serving connections failed.
    #[error("serving connections failed: {0}")]
    Serve(#[source] std::io::Error),
    /// This master led and lost the leadership (its lease expired, its key
    /// was deleted): it stopped serving at once. Restart it as a standby.
    #[error("this master lost the leadership: {0}")]
    Deposed(String),
    /// `etcd` is set but this build has no etcd support.
    #[error("this build has no etcd support; rebuild with `--features etcd` (needs protoc)")]
    EtcdNotBuilt,
    /// The core loop ended before shutdown was asked for (a bug in the core:
    /// it panicked). The server shut down.
    #[error("the master core loop stopped unexpectedly: {0}")]
    CoreStopped(String),
}

/// A bound, not yet running, master server.
#[derive(Debug)]
pub struct MasterServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    core: CoreHandle,
    core_loop: CoreLoop,
    router: axum::Router,
    /// With `--etcd`: the election and standby state; the core loop runs
    /// only once elected.
    ha: Option<Ha>,
}

#[cfg(feature = "etcd")]
use standby::Ha;
/// Without the `etcd` feature there is never an HA part.
#[cfg(not(feature = "etcd"))]
type Ha = std::convert::Infallible;

/// Binds the listening socket and builds the master core; nothing is served
/// until [`MasterServer::run`].
pub async fn bind(config: ServerConfig) -> Result<MasterServer, ServerError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let metrics = metrics::Metrics::new().map_err(ServerError::Metrics)?;
    let prometheus = metrics.handle();
    let mesos_master = mesos::MasterInfo {
        id: config.master.master_id.clone(),
        addr: local_addr,
    };
    let (registry, stored, ha) = open_registry(&config, local_addr)?;
    let (core, mut core_loop) = core_loop::new(Master::new(config.master, config.seed), metrics, registry);
    core_loop
        .restore(stored)
        .map_err(|e| ServerError::Registry(format!("the master refused what it holds: {e}")))?;
    core_loop
        .write_restored()
        .map_err(|e| ServerError::Registry(e.to_string()))?;
    let router = router(&core, prometheus, mesos_master);
    #[cfg(feature = "etcd")]
    let router = match &ha {
        Some(ha) => standby::guarded(router, ha.gate()),
        None => router,
    };
    tracing::info!(%local_addr, "master listening");
    Ok(MasterServer {
        listener,
        local_addr,
        core,
        core_loop,
        router,
        ha,
    })
}

/// The registry the core loop writes through, what it holds now, and with
/// etcd the HA part.
type Opened = (Option<Box<dyn registry::Registry>>, registry::RegistryState, Option<Ha>);

/// Opens the registry. With etcd it is read only once elected
/// (`standby.rs`), so nothing is restored here.
fn open_registry(config: &ServerConfig, local_addr: SocketAddr) -> Result<Opened, ServerError> {
    use registry::Registry as _;
    if let Some(etcd) = &config.etcd {
        #[cfg(feature = "etcd")]
        {
            let ha = standby::setup(etcd, local_addr)?;
            return Ok((Some(ha.registry()), registry::RegistryState::default(), Some(ha)));
        }
        #[cfg(not(feature = "etcd"))]
        {
            let _ = (etcd, local_addr);
            return Err(ServerError::EtcdNotBuilt);
        }
    }
    let Some(dir) = &config.work_dir else {
        return Ok((None, registry::RegistryState::default(), None));
    };
    let mut file = registry::FileRegistry::open(dir).map_err(|e| ServerError::Registry(e.to_string()))?;
    let entries = file.load().map_err(|e| ServerError::Registry(e.to_string()))?;
    let where_ = file.path().display().to_string();
    let stored =
        registry::RegistryState::from_entries(entries, &where_).map_err(|e| ServerError::Registry(e.to_string()))?;
    Ok((Some(Box::new(file)), stored, None))
}

/// Binds and runs until `shutdown` completes: the one call the `agora`
/// binary needs.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    bind(config).await?.run(shutdown).await
}

/// gRPC services and HTTP endpoints on one router. gRPC requests are routed
/// by their `/agora.v1.<Service>/` path prefix, everything else by the HTTP
/// routes (ours, then Mesos' v1 HTTP APIs); unknown paths get gRPC
/// UNIMPLEMENTED or HTTP 404 depending on the request's content type.
fn router(
    core: &CoreHandle,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    mesos_master: mesos::MasterInfo,
) -> axum::Router {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(agora_proto::Timestamp::ZERO, |d| {
            agora_proto::Timestamp::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        });
    let grpc = Routes::new(pb::scheduler_server::SchedulerServer::new(
        scheduler::SchedulerService::new(core.clone()),
    ))
    .add_service(pb::agent_link_server::AgentLinkServer::new(
        agent_link::AgentLinkService::new(core.clone()),
    ))
    .add_service(pb::operator_server::OperatorServer::new(
        operator::OperatorService::new(core.clone()),
    ))
    .into_axum_router();
    grpc.merge(http::router(core.clone(), prometheus))
        .merge(mesos::router(core.clone(), mesos_master, started))
        .fallback(http::fallback)
}

impl MasterServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, ends every
    /// framework and agent stream, lets connections drain for at most
    /// [`SHUTDOWN_GRACE`], and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        let Self {
            listener,
            local_addr,
            core,
            core_loop,
            router,
            ha,
        } = self;
        // Stops an HA master that is still campaigning (its core loop is
        // not running to receive the shutdown command).
        let (stop_ha, ha_stopped) = oneshot::channel::<()>();
        let mut core_task = match ha {
            None => {
                drop(ha_stopped);
                tokio::spawn(async move { core_loop.run().await.map_err(deposed) })
            }
            #[cfg(feature = "etcd")]
            Some(ha) => tokio::spawn(ha.lead(core_loop, ha_stopped)),
            #[cfg(not(feature = "etcd"))]
            Some(never) => match never {},
        };

        let listener = listener.tap_io(|tcp| {
            // gRPC streams carry small messages that must not wait for Nagle.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let serving = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // Dropped sender or sent: either way, stop.
                let _ = stop_rx.await;
            })
            .into_future();
        let mut serving = pin!(serving);
        let mut shutdown = pin!(shutdown);

        let mut core_ended: Option<Result<Result<(), ServerError>, JoinError>> = None;
        let mut serve_result: Option<std::io::Result<()>> = None;
        tokio::select! {
            () = &mut shutdown => tracing::info!(%local_addr, "shutting down"),
            joined = &mut core_task => core_ended = Some(joined),
            result = &mut serving => serve_result = Some(result),
        }

        // Ending the core loop ends every stream, which lets the connections
        // that carry them finish; only then can the graceful shutdown complete.
        core.shutdown().await;
        let _ = stop_ha.send(());
        let _ = stop_tx.send(());
        if serve_result.is_none() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await {
                Ok(result) => serve_result = Some(result),
                Err(_) => tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period"),
            }
        }
        let core_was_running = core_ended.is_none();
        let core_result = match core_ended {
            Some(result) => result,
            None => core_task.await,
        };
        match (core_result, core_was_running) {
            (Err(error), _) => Err(ServerError::CoreStopped(describe_join_error(error))),
            // Deposed (or the registry could not be restored once elected).
            (Ok(Err(error)), _) => Err(error),
            (Ok(Ok(())), false) => Err(ServerError::CoreStopped(
                "it returned without being asked to".to_owned(),
            )),
            (Ok(Ok(())), true) => serve_result.unwrap_or(Ok(())).map_err(ServerError::Serve),
        }
    }
}

/// A registry write refused because this master no longer leads.
pub(crate) fn deposed(error: registry::RegistryError) -> ServerError {
    ServerError::Deposed(error.to_string())
}

fn describe_join_error(error: JoinError) -> String {
    if !error.is_panic() {
        return error.to_string();
    }
    let panic = error.into_panic();
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => format!("panicked: {message}"),
        (_, Some(message)) => format!("panicked: {message}"),
        _ => "panicked".to_owned(),
    }
}
