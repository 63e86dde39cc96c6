//! `agora local`: a master and one agent in this process, the agent with
//! the best containerizer the machine allows and its detected resources.
//! Ctrl-C or SIGTERM stops the agent first (killing its tasks and removing
//! their cgroups), then the master.

use crate::cli::agent::ContainerArgs;
use crate::cli::master::start_micros;
use crate::cluster::{ClusterOptions, LocalCluster};
use crate::signal::shutdown_signal;
use anyhow::Context;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct LocalArgs {
    /// The master's port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = agora_master::server::DEFAULT_PORT)]
    port: u16,
    /// The agent's work directory (sandboxes); default: a new directory under the system's temp dir.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The master's allocation interval: short, since a cycle over one agent is cheap
    /// and a person waiting on `agora run` should not wait for it.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    allocation_interval: Duration,
    #[command(flatten)]
    containers: ContainerArgs,
}

/// A new directory `agora-local-<time>` under the system's temp dir.
pub(crate) fn temp_work_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{prefix}-{:x}-{}", start_micros(), std::process::id()))
}

pub(crate) async fn run(args: LocalArgs) -> anyhow::Result<ExitCode> {
    let work_dir = args.work_dir.unwrap_or_else(|| temp_work_dir("agora-local"));
    let mut cluster = LocalCluster::start(ClusterOptions {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        allocation_interval: args.allocation_interval,
        work_dir: work_dir.clone(),
        containers: args.containers,
    })
    .await?;
    let addr = cluster.addr();
    // Scripts and tests read the address from this first line.
    println!("agora local listening on {addr}");
    std::io::stdout().flush().context("cannot write to stdout")?;
    let master_flag = if addr.port() == agora_master::server::DEFAULT_PORT {
        String::new()
    } else {
        format!(" --master {addr}")
    };
    // The rest is for people; a closed stdout must not stop the cluster.
    let _ = writeln!(
        std::io::stdout(),
        "agent: {} containerizer, offering {}\n\
         sandboxes: {}\n\
         try:\n  \
           agora run{master_flag} -- echo hello\n  \
           agora run{master_flag} --name sleeper -- sleep 60 &\n  \
           agora ps{master_flag}\n  \
           agora logs{master_flag} TASK_ID\n  \
           agora kill{master_flag} TASK_ID\n\
         state: http://{addr}/state, metrics: http://{addr}/metrics; Ctrl-C stops the cluster",
        cluster.containerizer(),
        cluster.resources(),
        work_dir.display(),
    );
    let _ = std::io::stdout().flush();

    let failure = tokio::select! {
        () = shutdown_signal() => None,
        error = cluster.failure() => Some(error),
    };
    eprintln!("agora local: stopping the agent (killing its tasks), then the master");
    let stopped = cluster.stop().await;
    if let Some(error) = failure {
        return Err(error);
    }
    stopped?;
    Ok(ExitCode::SUCCESS)
}
