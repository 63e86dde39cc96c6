//! `agora master`: the master server in the foreground.

use crate::signal::shutdown_signal;
use agora_master::server::{self, EtcdConfig, ServerConfig};
use agora_master::{MasterConfig, Policy, RateLimit};
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct MasterArgs {
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
    /// How each allocation cycle hands out free resources: `fair-share` (today's
    /// Mesos: agents spread across frameworks in DRF order) or `offer-all-to-one`
    /// (Mesos in 2012: every agent's free resources to the one framework with the
    /// lowest dominant share).
    #[arg(long, default_value = "fair-share", value_parser = parse_policy)]
    allocator_policy: Policy,
    /// Rescind an offer outstanding longer than this (default: offers never expire).
    #[arg(long, value_parser = humantime::parse_duration)]
    offer_timeout: Option<Duration>,
    /// After this long unreachable an agent is gone: its tasks are reported
    /// TASK_GONE and, if it comes back, it is told to kill them.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    agent_unreachable_timeout: Duration,
    /// At most this many agents are marked unreachable per period, as Mesos'
    /// `--agent_removal_rate_limit` (e.g. `1/1mins`; default: no limit).
    #[arg(long)]
    agent_removal_rate_limit: Option<RateLimit>,
    /// Where the registry (`registry.json`) keeps what survives a restart: admitted agents
    /// and their dynamic reservations, frameworks and their failover timeouts, gone agents,
    /// operators' role weights and quotas. Created if missing. A master restarted with the same
    /// work dir expects those agents and frameworks back. Not used with `--etcd` (the registry
    /// is in etcd). [default: /var/lib/agora/master]
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// After a restart, offers wait until this fraction of the agents in the registry have
    /// re-registered (or `--recovery-timeout` passed), so quota and shares are not judged on a
    /// cluster that looks nearly empty.
    #[arg(long, default_value_t = 0.8, value_parser = parse_fraction)]
    recovery_agent_fraction: f64,
    /// The longest offers wait after a restart for agents to re-register.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    recovery_timeout: Duration,
    /// etcd client URLs (`http://host:2379`, comma-separated): run as one of
    /// several masters. The one elected through an etcd lease leads, with the
    /// registry in etcd (instead of `--work-dir`); the others answer every
    /// call with the leader's address. Needs a build with `--features etcd`.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    etcd: Vec<String>,
    /// The `host:port` other masters send callers to while this one leads
    /// (default: the bound address; required when listening on 0.0.0.0).
    #[arg(long, requires = "etcd")]
    advertise: Option<String>,
    /// The leader lease's TTL: a leader that dies is replaced this long after
    /// its last renewal (whole seconds).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    leader_ttl: Duration,
    /// Prefix of every etcd key this cluster of masters uses.
    #[arg(long, default_value = EtcdConfig::DEFAULT_PREFIX)]
    etcd_prefix: String,
}

/// The master's work directory when `--work-dir` is not given.
const DEFAULT_WORK_DIR: &str = "/var/lib/agora/master";

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction between 0 and 1, got {s:?}")),
    }
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

/// Microseconds since the epoch: a master id and seed that differ per start.
#[allow(clippy::disallowed_methods)] // the binary is a driver: it may read the clock
pub(crate) fn start_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The server configuration for `listen`, with ids and seed from the clock.
pub(crate) fn server_config(listen: SocketAddr, allocation_interval: Duration) -> ServerConfig {
    let started = start_micros();
    ServerConfig {
        listen,
        master: MasterConfig {
            master_id: format!("{:x}", started / 1_000_000),
            allocation_interval,
            ..MasterConfig::default()
        },
        seed: started,
        work_dir: None,
        etcd: None,
    }
}

pub(crate) async fn run(args: MasterArgs) -> anyhow::Result<ExitCode> {
    let mut config = server_config(args.listen, args.allocation_interval);
    if let Some(id) = args.master_id {
        config.master.master_id = id;
    }
    config.master.heartbeat_interval = args.heartbeat_interval;
    config.master.agent_ping_interval = args.agent_ping_interval;
    config.master.drf.policy = args.allocator_policy;
    config.master.offer_timeout = args.offer_timeout;
    config.master.agent_unreachable_timeout = args.agent_unreachable_timeout;
    config.master.agent_removal_rate_limit = args.agent_removal_rate_limit;
    config.master.recovery_agent_fraction = args.recovery_agent_fraction;
    config.master.recovery_timeout = args.recovery_timeout;
    if args.etcd.is_empty() {
        config.work_dir = Some(args.work_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_WORK_DIR)));
    } else {
        if args.advertise.is_none() && args.listen.ip().is_unspecified() {
            anyhow::bail!(
                "--advertise HOST:PORT is needed with --etcd when listening on {}: other masters send callers there",
                args.listen
            );
        }
        if args.work_dir.is_some() {
            tracing::warn!("--work-dir: the registry lives in etcd with --etcd; the file registry is not used");
        }
        config.etcd = Some(EtcdConfig {
            endpoints: args.etcd,
            advertise: args.advertise,
            leader_ttl: args.leader_ttl,
            prefix: args.etcd_prefix,
        });
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let server = server::bind(config).await.context("cannot start the master")?;
    // Scripts and tests read the bound address from this line (port 0 picks one).
    println!("agora master listening on {}", server.local_addr());
    std::io::stdout().flush().context("cannot write to stdout")?;
    server.run(shutdown_signal()).await.context("the master stopped")?;
    Ok(ExitCode::SUCCESS)
}
