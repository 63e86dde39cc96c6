//! Keeps N instances of a command running on an Agora cluster, relaunching
//! any that end, until interrupted.
//!
//! ```text
//! cargo run -p agora-sdk --example service -- --master 127.0.0.1:5050 --instances 2 -- sleep 60
//! ```
//!
//! Ctrl-C tears the framework down (killing the instances) and prints a summary.

mod common;

use agora_sdk::TaskRequest;
use agora_sdk::driver::{Driver, DriverConfig};
use agora_sdk::frameworks::{Service, ServiceConfig, TaskTemplate};
use clap::Parser;
use common::Reporting;
use std::process::ExitCode;

/// Keep N instances of a command running on an Agora cluster.
#[derive(Debug, Parser)]
#[command(name = "service")]
struct Args {
    /// Master address(es), `host:port` or `http://host:port`, comma-separated.
    #[arg(long, env = "AGORA_MASTER", default_value = "127.0.0.1:5050", value_delimiter = ',')]
    master: Vec<String>,
    /// How many instances to keep running.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// CPUs per instance.
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory per instance, in MiB.
    #[arg(long, default_value_t = 32.0)]
    mem: f64,
    /// Ports per instance (allocated from the offers' port ranges).
    #[arg(long, default_value_t = 0)]
    ports: u64,
    /// Framework name, also the prefix of the task ids.
    #[arg(long, default_value = "service")]
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let request = TaskRequest::new(common::resources(args.cpus, args.mem)?).with_ports(args.ports);
    let template = TaskTemplate::new(args.name.clone(), common::command(&args.command)?, request);
    let service = Service::new(ServiceConfig::new(args.instances, template))?;

    let framework = common::framework_info(args.name, args.role);
    let mut driver = Driver::new(DriverConfig::new(args.master, framework), Reporting::new(service))?;
    common::teardown_on_ctrl_c(driver.handle());

    let outcome = driver.run().await;
    let service = driver.into_scheduler().inner;
    println!(
        "summary: {}/{} instances running, {} relaunches",
        service.running(),
        service.config().instances,
        service.relaunches()
    );
    outcome?;
    Ok(())
}
