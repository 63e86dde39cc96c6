//! Runs N copies of a command on an Agora cluster and waits for all of them.
//!
//! ```text
//! cargo run -p agora-sdk --example batch -- --master 127.0.0.1:5050 --tasks 3 -- echo hello
//! ```
//!
//! Prints each task state change on one line and a summary at the end; exits
//! with status 0 only if every task finished (TASK_FINISHED). Ctrl-C tears
//! the framework down, killing what still runs.

mod common;

use agora_proto::TaskState;
use agora_sdk::TaskRequest;
use agora_sdk::driver::{Driver, DriverConfig, ExitReason};
use agora_sdk::frameworks::{Batch, BatchConfig, TaskTemplate};
use clap::Parser;
use common::Reporting;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Run N copies of a command on an Agora cluster.
#[derive(Debug, Parser)]
#[command(name = "batch")]
struct Args {
    /// Master address(es), `host:port` or `http://host:port`, comma-separated.
    #[arg(long, env = "AGORA_MASTER", default_value = "127.0.0.1:5050", value_delimiter = ',')]
    master: Vec<String>,
    /// How many tasks to run.
    #[arg(long, default_value_t = 1)]
    tasks: usize,
    /// CPUs per task.
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory per task, in MiB.
    #[arg(long, default_value_t = 32.0)]
    mem: f64,
    /// Ports per task (allocated from the offers' port ranges).
    #[arg(long, default_value_t = 0)]
    ports: u64,
    /// Framework name, also the prefix of the task ids.
    #[arg(long, default_value = "batch")]
    name: String,
    /// Role to receive offers for (default `*`).
    #[arg(long)]
    role: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD ARGS")]
    command: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether every task finished.
async fn run(args: Args) -> anyhow::Result<bool> {
    let request = TaskRequest::new(common::resources(args.cpus, args.mem)?).with_ports(args.ports);
    let template = TaskTemplate::new(args.name.clone(), common::command(&args.command)?, request);
    let batch = Batch::new(BatchConfig::new(args.tasks, template))?;

    let framework = common::framework_info(args.name, args.role);
    let mut driver = Driver::new(DriverConfig::new(args.master, framework), Reporting::new(batch))?;
    common::teardown_on_ctrl_c(driver.handle());

    let outcome = driver.run().await;
    let batch = driver.into_scheduler().inner;
    summarize(&batch);
    match outcome? {
        ExitReason::Exited => Ok(batch.all_finished()),
        ExitReason::Shutdown | ExitReason::TornDown => Ok(false),
    }
}

fn summarize(batch: &Batch) {
    let total = batch.config().tasks;
    let mut by_state: BTreeMap<TaskState, usize> = BTreeMap::new();
    for state in batch.final_states().into_values() {
        *by_state.entry(state).or_default() += 1;
    }
    let ended: usize = by_state.values().sum();
    let mut parts: Vec<String> = by_state.iter().map(|(state, n)| format!("{n} {state}")).collect();
    if ended < total {
        parts.push(format!("{} not ended", total - ended));
    }
    let finished = by_state.get(&TaskState::Finished).copied().unwrap_or(0);
    println!("summary: {finished}/{total} tasks finished ({})", parts.join(", "));
}
