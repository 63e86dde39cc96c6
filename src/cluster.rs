//! A one-machine cluster in this process: a master and one agent as tokio
//! tasks, the agent pointed at the master over loopback. `agora local` and
//! `agora bench` use it.
//!
//! Shutdown order matters: the agent stops first (it kills its tasks and
//! removes their cgroups while it can still report), then the master.

use crate::cli::agent::{ContainerArgs, create_work_dir};
use crate::cli::master::server_config;
use agora_agent::{AgentConfig, ContainerizerKind};
use agora_master::server;
use agora_proto::Resources;
use anyhow::{Context, anyhow};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long the agent may take to kill its tasks when stopping.
const AGENT_STOP_GRACE: Duration = Duration::from_secs(20);
/// How long the master may take to stop (its own drain grace is 5 s).
const MASTER_STOP_GRACE: Duration = Duration::from_secs(10);

/// What to start.
#[derive(Clone, Debug)]
pub(crate) struct ClusterOptions {
    /// The master's address (port 0 picks one).
    pub(crate) listen: SocketAddr,
    /// The master's allocation interval: short on one machine, where a cycle is cheap.
    pub(crate) allocation_interval: Duration,
    /// The agent's work directory (created if missing).
    pub(crate) work_dir: PathBuf,
    /// The agent's resources and containerizer.
    pub(crate) containers: ContainerArgs,
}

/// A running master and agent.
#[derive(Debug)]
pub(crate) struct LocalCluster {
    addr: SocketAddr,
    containerizer: ContainerizerKind,
    resources: Resources,
    master: Option<JoinHandle<anyhow::Result<()>>>,
    agent: Option<JoinHandle<anyhow::Result<()>>>,
    stop_master: Option<oneshot::Sender<()>>,
    stop_agent: Option<oneshot::Sender<()>>,
}

impl LocalCluster {
    /// Binds the master, then starts it and an agent registering with it.
    pub(crate) async fn start(options: ClusterOptions) -> anyhow::Result<Self> {
        create_work_dir(&options.work_dir)?;
        let mut agent_config = AgentConfig::new(Vec::<String>::new(), Resources::new());
        agent_config.work_dir = options.work_dir.clone();
        // `agora ps` on one machine should show fresh usage.
        agent_config.usage_interval = Duration::from_secs(1);
        options.containers.apply(&mut agent_config, &options.work_dir)?;

        let mut master_config = server_config(options.listen, options.allocation_interval);
        // The registry (weights, quotas, frameworks) survives a restart with the same work dir.
        master_config.work_dir = Some(options.work_dir.join("master"));
        // The embedded agent keeps no checkpoint, so it registers as a new agent after a
        // restart: waiting for the old one to come back would only delay offers.
        master_config.master.recovery_agent_fraction = 0.0;
        let server = server::bind(master_config).await.context("cannot start the master")?;
        let addr = server.local_addr();
        agent_config.masters = vec![addr.to_string()];
        let containerizer = agent_config.containerizer;
        let resources = agent_config.resources.clone();

        let (stop_master, master_stopped) = oneshot::channel::<()>();
        let master = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = master_stopped.await;
                })
                .await
                .context("the master stopped")
        });
        let (stop_agent, agent_stopped) = oneshot::channel::<()>();
        let agent = spawn_agent(agent_config, async move {
            let _ = agent_stopped.await;
        })?;
        Ok(Self {
            addr,
            containerizer,
            resources,
            master: Some(master),
            agent: Some(agent),
            stop_master: Some(stop_master),
            stop_agent: Some(stop_agent),
        })
    }

    /// The master's address.
    pub(crate) const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How the agent runs tasks.
    pub(crate) const fn containerizer(&self) -> ContainerizerKind {
        self.containerizer
    }

    /// What the agent offers.
    pub(crate) const fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Completes when the master or the agent ends on its own (which is
    /// always a failure), with why.
    pub(crate) async fn failure(&mut self) -> anyhow::Error {
        let (Some(master), Some(agent)) = (self.master.as_mut(), self.agent.as_mut()) else {
            return anyhow!("the cluster is already stopping");
        };
        let (which, joined) = tokio::select! {
            joined = master => ("master", joined),
            joined = agent => ("agent", joined),
        };
        if which == "master" {
            self.master = None;
        } else {
            self.agent = None;
        }
        match joined {
            Ok(Ok(())) => anyhow!("the {which} stopped unexpectedly"),
            Ok(Err(e)) => e,
            Err(e) => anyhow!("the {which} crashed: {e}"),
        }
    }

    /// Stops the agent (killing its tasks), then the master.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop_agent.take() {
            let _ = stop.send(());
        }
        let agent = join(self.agent.take(), AGENT_STOP_GRACE, "agent").await;
        if let Some(stop) = self.stop_master.take() {
            let _ = stop.send(());
        }
        let master = join(self.master.take(), MASTER_STOP_GRACE, "master").await;
        agent.and(master)
    }
}

/// Runs the agent on a thread of its own with a single-threaded runtime:
/// its future is not `Send`, so it cannot be a task of the shared runtime.
/// The returned task completes with the agent.
fn spawn_agent(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let (done_tx, done) = oneshot::channel::<anyhow::Result<()>>();
    std::thread::Builder::new()
        .name("agora-agent".to_owned())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime
                    .block_on(agora_agent::run(config, shutdown))
                    .context("the agent stopped"),
                Err(e) => Err(anyhow!("cannot start the agent's runtime: {e}")),
            };
            let _ = done_tx.send(result);
        })
        .context("cannot start the agent's thread")?;
    Ok(tokio::spawn(async move {
        done.await
            .unwrap_or_else(|_| Err(anyhow!("the agent's thread panicked")))
    }))
}

async fn join(task: Option<JoinHandle<anyhow::Result<()>>>, grace: Duration, which: &str) -> anyhow::Result<()> {
    let Some(task) = task else {
        return Ok(());
    };
    match tokio::time::timeout(grace, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(anyhow!("the {which} crashed: {e}")),
        Err(_) => Err(anyhow!("the {which} did not stop within {}s", grace.as_secs())),
    }
}
