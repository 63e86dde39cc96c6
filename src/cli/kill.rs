//! `agora kill TASK`: asks the master to kill a task (operator `KillTask`).

use crate::cli::MasterAddrs;
use crate::client::Operator;
use agora_proto::pb;
use anyhow::anyhow;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct KillArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// The task's id.
    task: String,
    /// The task's framework, when two frameworks have a task with this id.
    #[arg(long)]
    framework: Option<String>,
}

pub(crate) async fn run(args: KillArgs) -> anyhow::Result<ExitCode> {
    let mut operator = Operator::connect(&args.master).await?;
    let request = pb::KillTaskRequest {
        task_id: Some(pb::TaskId {
            value: args.task.clone(),
        }),
        framework_id: args.framework.map(|value| pb::FrameworkId { value }),
    };
    operator
        .call(|mut client| {
            let request = request.clone();
            async move { client.kill_task(request).await }
        })
        .await
        .map_err(|error| anyhow!("cannot kill task {}: {error}", args.task))?;
    eprintln!("killing task {}", args.task);
    Ok(ExitCode::SUCCESS)
}
