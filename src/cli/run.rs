//! `agora run -- CMD ARGS...`: runs one task and waits for it, like
//! `mesos-execute`. State changes go to stderr; the task's stdout and stderr
//! are streamed to ours while it runs (operator `ReadFile`), drained once it
//! ended; the exit code is the task's.
#![allow(clippy::disallowed_methods)] // a driver: `--timeout` reads the clock

mod one_task;

use crate::cli::MasterAddrs;
use crate::cli::master::start_micros;
use crate::client::Operator;
use crate::sandbox::{FOLLOW_INTERVAL, SandboxReader};
use agora_proto::{
    AgentId, CommandInfo, FrameworkId, FrameworkInfo, Resources, SandboxFile, Scalar, TaskId, TaskInfo, TaskReason,
    TaskState, TaskStatus, pb,
};
use agora_sdk::TaskRequest;
use agora_sdk::driver::{Driver, DriverConfig};
use anyhow::{Context, anyhow};
use one_task::{OneTask, Report};
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long to wait for the framework's teardown once the task ended.
const TEARDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long a timed-out or interrupted task may take to die.
const KILL_WAIT: Duration = Duration::from_secs(15);
/// The exit code of a task that ran out of `--timeout`, as timeout(1) has it.
const TIMED_OUT: u8 = 124;
/// The exit code after Ctrl-C: 128 + SIGINT.
const INTERRUPTED: u8 = 130;
/// The exit code of a killed task without one of its own: 128 + SIGKILL.
const KILLED: u8 = 137;

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// CPUs for the task (with the cgroups containerizer, also its cpu-time cap).
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory for the task, its limit: `64MiB`, `1GiB`, or a number of MiB.
    #[arg(long, default_value = "32MiB", value_parser = parse_mem)]
    mem: Scalar,
    /// The task's name, also the prefix of its id.
    #[arg(long, default_value = "run")]
    name: String,
    /// The role to take resources from (default `*`).
    #[arg(long)]
    role: Option<String>,
    /// Kill the task if it has not ended after this long (exit code 124).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// The command: one argument runs under `sh -c`, several are executed as they are.
    #[arg(last = true, required = true, value_name = "CMD ARGS")]
    command: Vec<String>,
}

/// `64MiB`, `1GiB`, `512` (MiB): the units of `--resources`.
fn parse_mem(text: &str) -> Result<Scalar, String> {
    let mem = format!("mem:{}", text.trim())
        .parse::<Resources>()
        .map_err(|e| e.to_string())?
        .mem();
    if mem.is_zero() {
        return Err("memory must be more than 0".to_owned());
    }
    Ok(mem)
}

/// One argument is a shell command line; several are an argv.
fn command_info(command: &[String]) -> anyhow::Result<CommandInfo> {
    match command {
        [] => Err(anyhow!("no command given (agora run -- CMD ARGS...)")),
        [line] => Ok(CommandInfo::shell(line.clone())),
        [program, args @ ..] => Ok(CommandInfo::exec(program.clone(), args.iter().cloned())),
    }
}

/// The exit code `agora run` ends with, for a task's final status.
fn exit_code(status: &TaskStatus) -> u8 {
    match (status.state, status.exit_code) {
        (TaskState::Finished, _) => 0,
        (_, Some(code)) if (1..=255).contains(&code) => u8::try_from(code).unwrap_or(1),
        (TaskState::Killed, _) => KILLED,
        _ => 1,
    }
}

/// The line printed when the task ended: its state, and for anything but
/// success why, in the agent's or master's words (which name the limit a
/// task exceeded).
fn final_line(status: &TaskStatus, mem: Scalar) -> String {
    let mut line = status.state.to_string();
    if status.state == TaskState::Finished {
        return line;
    }
    if let Some(code) = status.exit_code {
        line.push_str(&format!(" (exit code {code})"));
    }
    match (status.message.as_str(), status.reason) {
        ("", Some(TaskReason::ContainerLimitationMemory)) => {
            line.push_str(&format!(": the task exceeded its memory limit of {mem} MiB"));
        }
        ("", Some(reason)) => line.push_str(&format!(": {reason}")),
        ("", None) => {}
        (message, _) => line.push_str(&format!(": {message}")),
    }
    line
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Fails fast, and clearly, when no master answers.
    let operator = Operator::connect(&args.master).await?;
    let command = command_info(&args.command)?;
    let task_id = TaskId::new(format!("{}-{:x}", args.name, start_micros()))
        .map_err(|e| anyhow!("--name {:?} makes an invalid task id: {e}", args.name))?;
    let cpus = Scalar::from_f64(args.cpus).map_err(|e| anyhow!("--cpus {}: {e}", args.cpus))?;
    let request = TaskRequest::new(Resources::new().with_scalar(Resources::CPUS, None, cpus).with_scalar(
        Resources::MEM,
        None,
        args.mem,
    ));
    let template = TaskInfo {
        name: args.name.clone(),
        task_id: task_id.clone(),
        agent_id: AgentId::new("unassigned").context("placeholder agent id")?,
        resources: Resources::new(),
        command,
        kill_grace_period: None,
    };

    let mut framework = FrameworkInfo::new(format!("agora run {}", args.name));
    if let Some(role) = args.role {
        framework.roles = vec![role];
    }
    // Every master, the leader found first: the driver follows a new
    // leader itself.
    let mut config = DriverConfig::new(operator.masters(), framework);
    // A command a person waits on gives up rather than retry forever.
    config.max_reconnect_attempts = Some(3);
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut driver = Driver::new(config, OneTask::new(template, request.clone(), reports_tx))?;
    let handle = driver.handle();
    let mut driver_task = tokio::spawn(async move { driver.run().await });

    let mut framework_id: Option<FrameworkId> = None;
    let mut outputs: Option<Outputs> = None;
    let mut last_state: Option<TaskState> = None;
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupted = false;
    let mut kill_deadline: Option<Instant> = None;

    let last = loop {
        tokio::select! {
            report = reports.recv() => match report {
                Some(Report::Subscribed(id)) => framework_id = Some(id),
                Some(Report::NoFit(largest)) => eprintln!(
                    "waiting for an offer that holds cpus:{cpus};mem:{} (the largest so far: {largest})",
                    args.mem
                ),
                Some(Report::Status(status)) => {
                    if status.state == TaskState::Running && outputs.is_none() {
                        outputs = Some(Outputs::start(&operator, &task_id, framework_id.as_ref()));
                    }
                    if status.state.is_terminal() {
                        break Some(status);
                    }
                    if last_state != Some(status.state) {
                        // The id is what `agora logs` and `agora kill` take.
                        match &status.agent_id {
                            Some(agent) => eprintln!("{} (task {task_id} on agent {agent})", status.state),
                            None => eprintln!("{} (task {task_id})", status.state),
                        }
                        last_state = Some(status.state);
                    }
                }
                Some(Report::Error(message)) => return Err(anyhow!("the master ended the framework: {message}")),
                // The driver ended (and dropped the scheduler).
                None => break None,
            },
            () = sleep_until(deadline), if !timed_out => {
                timed_out = true;
                kill_deadline = Some(Instant::now() + KILL_WAIT);
                if last_state.is_none() {
                    eprintln!("timed out after {}: the task never started", humantime::format_duration(args.timeout.unwrap_or_default()));
                    handle.teardown();
                } else {
                    eprintln!("timed out after {}: killing task {task_id}", humantime::format_duration(args.timeout.unwrap_or_default()));
                    kill(&operator, &task_id, framework_id.as_ref()).await;
                }
            }
            _ = &mut interrupt, if !interrupted => {
                interrupted = true;
                kill_deadline = Some(Instant::now() + KILL_WAIT);
                eprintln!("interrupted: killing task {task_id}");
                // Tearing the framework down kills its task.
                handle.teardown();
            }
            () = sleep_until(kill_deadline) => {
                eprintln!("task {task_id} did not end in {}s after the kill", KILL_WAIT.as_secs());
                break None;
            }
        }
    };

    let Some(status) = last else {
        handle.shutdown();
        return match driver_task.await {
            Ok(Err(e)) => Err(anyhow!(e)).context("cannot run the task"),
            Ok(Ok(_)) if interrupted => Ok(ExitCode::from(INTERRUPTED)),
            Ok(Ok(_)) if timed_out => Ok(ExitCode::from(TIMED_OUT)),
            Ok(Ok(_)) => Err(anyhow!("the framework stopped before task {task_id} ended")),
            Err(e) => Err(anyhow!("the framework driver crashed: {e}")),
        };
    };

    // What the task wrote, then how it ended.
    let ran = matches!(
        status.state,
        TaskState::Finished | TaskState::Failed | TaskState::Killed
    );
    if ran && outputs.is_none() {
        outputs = Some(Outputs::start(&operator, &task_id, framework_id.as_ref()));
    }
    if let Some(outputs) = outputs {
        outputs.finish().await;
    }
    eprintln!("{}", final_line(&status, args.mem));

    handle.teardown();
    if tokio::time::timeout(TEARDOWN_WAIT, &mut driver_task).await.is_err() {
        driver_task.abort();
    }
    Ok(ExitCode::from(if interrupted {
        INTERRUPTED
    } else if timed_out {
        TIMED_OUT
    } else {
        exit_code(&status)
    }))
}

/// Never completes when there is no deadline.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn kill(operator: &Operator, task_id: &TaskId, framework_id: Option<&FrameworkId>) {
    let request = pb::KillTaskRequest {
        task_id: Some(task_id.clone().into()),
        framework_id: framework_id.cloned().map(Into::into),
    };
    let killed = operator
        .clone()
        .call(|mut client| {
            let request = request.clone();
            async move { client.kill_task(request).await }
        })
        .await;
    if let Err(error) = killed {
        eprintln!("cannot kill task {task_id}: {error}");
    }
}

/// The task's stdout and stderr, copied to ours while it runs.
#[derive(Debug)]
struct Outputs {
    ended: watch::Sender<bool>,
    followers: Vec<JoinHandle<Result<(), String>>>,
}

impl Outputs {
    fn start(operator: &Operator, task_id: &TaskId, framework_id: Option<&FrameworkId>) -> Self {
        let (ended, ended_rx) = watch::channel(false);
        let framework_id = framework_id.map(FrameworkId::as_str);
        let followers = [SandboxFile::Stdout, SandboxFile::Stderr]
            .into_iter()
            .map(|file| {
                let reader = SandboxReader::new(operator.clone(), task_id.as_str(), framework_id, file);
                tokio::spawn(follow(reader, file, ended_rx.clone()))
            })
            .collect();
        Self { ended, followers }
    }

    /// Tells the followers the task ended and waits until they drained.
    async fn finish(self) {
        self.ended.send_replace(true);
        for follower in self.followers {
            match follower.await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => eprintln!("warning: {why}"),
                Err(e) => eprintln!("warning: reading the task's output failed: {e}"),
            }
        }
    }
}

/// Copies `file` to our stdout or stderr every [`FOLLOW_INTERVAL`] until
/// `ended`, then once more to the end.
async fn follow(mut reader: SandboxReader, file: SandboxFile, mut ended: watch::Receiver<bool>) -> Result<(), String> {
    loop {
        // Read the flag first: the read after it saw `true` gets everything.
        let last = *ended.borrow_and_update();
        let copied = match file {
            SandboxFile::Stdout => reader.drain(&mut std::io::stdout()).await,
            SandboxFile::Stderr => reader.drain(&mut std::io::stderr()).await,
        };
        match copied {
            Ok(_) => {}
            // The sandbox may not be readable yet; it is once the task ended.
            Err(_) if !last => {}
            Err(why) => return Err(format!("cannot read the task's {file}: {why}")),
        }
        if last {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
            _ = ended.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_takes_the_units_of_resources() {
        assert_eq!(parse_mem("64MiB"), Ok(Scalar::from_units(64)));
        assert_eq!(parse_mem("1GiB"), Ok(Scalar::from_units(1024)));
        assert_eq!(parse_mem("512"), Ok(Scalar::from_units(512)));
        assert!(parse_mem("0").is_err());
        assert!(parse_mem("lots").is_err());
    }

    #[test]
    fn one_argument_is_a_shell_line_several_an_argv() {
        let shell = command_info(&["echo hi | wc -c".to_owned()]).expect("command");
        assert!(shell.shell);
        let exec = command_info(&["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()]).expect("command");
        assert!(!exec.shell);
        assert_eq!(exec.argv(), ["sh", "-c", "exit 3"]);
        assert!(command_info(&[]).is_err());
    }

    #[test]
    fn exit_codes_follow_the_task() {
        let status = |state, code| {
            let mut s = TaskStatus::new(TaskId::new("t").expect("id"), state, agora_proto::Timestamp::ZERO);
            s.exit_code = code;
            s
        };
        assert_eq!(exit_code(&status(TaskState::Finished, Some(0))), 0);
        assert_eq!(exit_code(&status(TaskState::Failed, Some(3))), 3);
        assert_eq!(exit_code(&status(TaskState::Failed, None)), 1);
        assert_eq!(exit_code(&status(TaskState::Failed, Some(-9))), 1);
        assert_eq!(exit_code(&status(TaskState::Killed, None)), KILLED);
        assert_eq!(exit_code(&status(TaskState::Killed, Some(0))), KILLED);
        assert_eq!(exit_code(&status(TaskState::Error, None)), 1);

        let mut oom = status(TaskState::Failed, Some(137));
        oom.reason = Some(TaskReason::ContainerLimitationMemory);
        let line = final_line(&oom, Scalar::from_units(64));
        assert_eq!(
            line,
            "TASK_FAILED (exit code 137): the task exceeded its memory limit of 64 MiB"
        );
        oom.message = "memory limit of 64 MiB exceeded".to_owned();
        let line = final_line(&oom, Scalar::from_units(64));
        assert_eq!(line, "TASK_FAILED (exit code 137): memory limit of 64 MiB exceeded");
        assert_eq!(
            final_line(&status(TaskState::Finished, Some(0)), Scalar::ZERO),
            "TASK_FINISHED"
        );
    }
}
