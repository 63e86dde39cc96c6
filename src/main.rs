//! `agora`: one command line over the whole system. It only parses flags and
//! wires the crates together; every behaviour lives in a library crate.

use agora_agent::{AgentConfig, ContainerizerKind};
use agora_master::MasterConfig;
use agora_master::server::{self, ServerConfig};
use agora_proto::{Attributes, Resources};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// Agora: a two-level cluster manager in the lineage of Apache Mesos.
#[derive(Debug, Parser)]
#[command(name = "agora", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a master: offers agents' resources to frameworks (gRPC + HTTP on one port).
    Master(MasterArgs),
    /// Run an agent: registers its resources with a master and runs tasks.
    Agent(AgentArgs),
}

#[derive(Debug, clap::Args)]
struct MasterArgs {
    /// Address for gRPC and HTTP (`/health`, `/metrics`, `/state`); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// This master's id, the prefix of every id it makes (default: derived from the start time).
    #[arg(long)]
    master_id: Option<String>,
    /// Allocation runs at most once per interval, batching the events that trigger it.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    allocation_interval: Duration,
    /// How often frameworks get a heartbeat.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// How often agents are pinged; after 5 missed pings an agent is unreachable.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    agent_ping_interval: Duration,
    /// Seed of the allocator's random choices (default: from the start time).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct AgentArgs {
    /// Master address(es), `host:port`, comma-separated.
    #[arg(long, env = "AGORA_MASTER", default_value = "127.0.0.1:5050", value_delimiter = ',')]
    master: Vec<String>,
    /// Resources to offer, Mesos style: `cpus:4;mem:8GiB;disk:10GiB;ports:[31000-32000]`.
    #[arg(long)]
    resources: Resources,
    /// Attributes: `rack:r1;zone:a`.
    #[arg(long, default_value = "")]
    attributes: Attributes,
    /// Hostname to report (default: this machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// How tasks run. `simulated`: no process; `sleep N` lasts N seconds, anything else ends at once.
    #[arg(long, default_value = "simulated")]
    containerizer: ContainerizerKind,
    /// Seed of the agent's random choices (status update ids).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Master(args) => master(args).await,
            Command::Agent(args) => agent(args).await,
        }
    })
}

/// Microseconds since the epoch: a master id and seed that differ per start.
#[allow(clippy::disallowed_methods)] // the binary is a driver: it may read the clock
fn start_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

async fn master(args: MasterArgs) -> anyhow::Result<()> {
    let started = start_micros();
    let config = ServerConfig {
        listen: args.listen,
        master: MasterConfig {
            master_id: args.master_id.unwrap_or_else(|| format!("{:x}", started / 1_000_000)),
            allocation_interval: args.allocation_interval,
            heartbeat_interval: args.heartbeat_interval,
            agent_ping_interval: args.agent_ping_interval,
            ..MasterConfig::default()
        },
        seed: args.seed.unwrap_or(started),
    };
    let server = server::bind(config).await.context("cannot start the master")?;
    // Scripts and tests read the bound address from this line (port 0 picks one).
    println!("agora master listening on {}", server.local_addr());
    std::io::stdout().flush().context("cannot write to stdout")?;
    server.run(shutdown_signal()).await.context("the master stopped")?;
    Ok(())
}

async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let mut config = AgentConfig::new(args.master, args.resources);
    config.attributes = args.attributes;
    config.hostname = args.hostname;
    config.containerizer = args.containerizer;
    config.seed = args.seed;
    agora_agent::run(config, shutdown_signal())
        .await
        .context("the agent stopped")?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
