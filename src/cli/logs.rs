//! `agora logs TASK`: a task's stdout (or stderr) from its sandbox, read
//! through the master; `--follow` keeps reading until the task has ended
//! and the file is drained.

use crate::cli::MasterAddrs;
use crate::client::Operator;
use crate::sandbox::{FOLLOW_INTERVAL, SandboxReader};
use agora_proto::{SandboxFile, TaskState, pb};
use anyhow::anyhow;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// The task's id.
    task: String,
    /// Print the task's stderr instead of its stdout.
    #[arg(long)]
    stderr: bool,
    /// Keep printing as the task writes, until it ends.
    #[arg(long, short)]
    follow: bool,
    /// The task's framework, when two frameworks have a task with this id.
    #[arg(long)]
    framework: Option<String>,
}

pub(crate) async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let mut operator = Operator::connect(&args.master).await?;
    let file = if args.stderr {
        SandboxFile::Stderr
    } else {
        SandboxFile::Stdout
    };
    let mut reader = SandboxReader::new(operator.clone(), &args.task, args.framework.as_deref(), file);
    let mut out = std::io::stdout();
    loop {
        // Whether it ended is asked before reading, so the last read sees
        // everything the task wrote.
        let ended = !args.follow || has_ended(&mut operator, &args.task, args.framework.as_deref()).await?;
        reader
            .drain(&mut out)
            .await
            .map_err(|why| anyhow!("cannot read the {file} of task {}: {why}", args.task))?;
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

/// Whether the task reached a terminal state (or is no longer known).
async fn has_ended(operator: &mut Operator, task: &str, framework: Option<&str>) -> anyhow::Result<bool> {
    let state = operator.state().await?;
    let matches = |r: &&pb::TaskRecord| {
        r.task
            .as_ref()
            .and_then(|t| t.task_id.as_ref())
            .is_some_and(|t| t.value == task)
            && framework.is_none_or(|f| r.framework_id.as_ref().is_some_and(|id| id.value == f))
    };
    Ok(match state.tasks.iter().find(matches) {
        Some(record) => TaskState::from_wire(record.state, "state")
            .ok()
            .flatten()
            .is_none_or(TaskState::is_terminal),
        None => true,
    })
}
