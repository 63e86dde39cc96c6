//! `agora`: one command line over the whole system. It parses flags and
//! wires the crates together; every behaviour of the cluster lives in a
//! library crate. Servers (`master`, `agent`, `local`), operator commands
//! (`ps`, `agents`, `frameworks`, `logs`, `kill`, `reserve`, `unreserve`), a
//! one-task framework (`run`), benchmarks (`bench`) and the simulator
//! (`sim`) each have a module under `cli/`.

mod cli;
mod client;
mod cluster;
mod sandbox;
mod signal;
mod table;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    Master(cli::master::MasterArgs),
    /// Run an agent: registers its resources with a master and runs tasks.
    Agent(cli::agent::AgentArgs),
    /// Run a one-machine cluster (a master and one agent) in this process.
    Local(cli::local::LocalArgs),
    /// Run one task and wait for it, like `mesos-execute`; exits with its exit code.
    Run(cli::run::RunArgs),
    /// List tasks.
    Ps(cli::ps::PsArgs),
    /// List agents.
    Agents(cli::ps::AgentsArgs),
    /// List frameworks.
    Frameworks(cli::ps::FrameworksArgs),
    /// Print a task's stdout (or stderr).
    Logs(cli::logs::LogsArgs),
    /// Kill a task.
    Kill(cli::kill::KillArgs),
    /// Reserve resources on an agent for a role, e.g. `--agent ID "cpus(ads):2;mem(ads):512"`.
    Reserve(cli::reserve::ReservationArgs),
    /// Give an agent's dynamic reservations back.
    Unreserve(cli::reserve::ReservationArgs),
    /// Benchmarks that start their own cluster.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// Simulate a cluster on virtual time: the real master and schedulers, modelled machines.
    Sim(cli::sim::SimArgs),
}

impl Command {
    /// Servers log at `info`; commands a person runs and reads only warn.
    const fn default_log_level(&self) -> &'static str {
        match self {
            Self::Master(_) | Self::Agent(_) => "info",
            _ => "warn",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.command.default_log_level())),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Master(args) => cli::master::run(args).await,
            Command::Agent(args) => cli::agent::run(args).await,
            Command::Local(args) => cli::local::run(args).await,
            Command::Run(args) => cli::run::run(args).await,
            Command::Ps(args) => cli::ps::ps(args).await,
            Command::Agents(args) => cli::ps::agents(args).await,
            Command::Frameworks(args) => cli::ps::frameworks(args).await,
            Command::Logs(args) => cli::logs::run(args).await,
            Command::Kill(args) => cli::kill::run(args).await,
            Command::Reserve(args) => cli::reserve::reserve(args).await,
            Command::Unreserve(args) => cli::reserve::unreserve(args).await,
            Command::Bench(command) => cli::bench::run(command).await,
            Command::Sim(args) => cli::sim::run(args).await,
        }
    });
    // Tasks still blocked on stdin or a socket must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line a person can act on: the context chain, outermost first.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
