//! What the example frameworks share: command-line pieces, logging, and a
//! wrapper that prints every task state change.

use agora_proto::{AgentId, CommandInfo, Offer, OfferId, Resources, Scalar, TaskId, TaskState, TaskStatus};
use agora_sdk::{Calls, Scheduler, Subscribed};
use anyhow::{Context, bail};
use std::collections::BTreeMap;

/// How long the master keeps the framework's tasks if the example loses its
/// connection: long enough to ride out a master restart.
pub(crate) const FAILOVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// `CMD ARGS...` run without a shell; a single argument with spaces runs
/// under `/bin/sh -c`, so `-- 'echo hi && sleep 1'` works too.
pub(crate) fn command(argv: &[String]) -> anyhow::Result<CommandInfo> {
    match argv {
        [] => bail!("no command given: put it after `--`"),
        [line] if line.contains(char::is_whitespace) => Ok(CommandInfo::shell(line.clone())),
        [program, args @ ..] => Ok(CommandInfo::exec(program.clone(), args.iter().cloned())),
    }
}

/// `cpus:CPUS;mem:MEM`.
pub(crate) fn resources(cpus: f64, mem: f64) -> anyhow::Result<Resources> {
    Ok(Resources::new()
        .with_scalar(Resources::CPUS, None, Scalar::from_f64(cpus).context("--cpus")?)
        .with_scalar(Resources::MEM, None, Scalar::from_f64(mem).context("--mem")?))
}

/// Logs to stderr; `RUST_LOG` overrides the default level.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,agora_sdk=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Prints one line per task state change, then lets `inner` handle the event.
#[derive(Debug)]
pub(crate) struct Reporting<S> {
    pub(crate) inner: S,
    last: BTreeMap<TaskId, TaskState>,
}

impl<S> Reporting<S> {
    pub(crate) const fn new(inner: S) -> Self {
        Self {
            inner,
            last: BTreeMap::new(),
        }
    }
}

impl<S: Scheduler> Scheduler for Reporting<S> {
    fn subscribed(&mut self, calls: &mut Calls, info: &Subscribed) {
        eprintln!(
            "subscribed as framework {} (master {})",
            info.framework_id, info.master_id
        );
        self.inner.subscribed(calls, info);
    }
    fn offers(&mut self, calls: &mut Calls, offers: Vec<Offer>) {
        self.inner.offers(calls, offers);
    }
    fn rescinded(&mut self, calls: &mut Calls, offer_id: &OfferId) {
        self.inner.rescinded(calls, offer_id);
    }
    fn status_update(&mut self, calls: &mut Calls, status: &TaskStatus) {
        // Reconciliation repeats known states; print changes only.
        if self.last.insert(status.task_id.clone(), status.state) != Some(status.state) {
            let mut line = format!("{} {}", status.task_id, status.state);
            if let Some(agent) = &status.agent_id {
                line.push_str(&format!(" on {agent}"));
            }
            if let Some(code) = status.exit_code {
                line.push_str(&format!(" exit={code}"));
            }
            if let Some(reason) = status.reason {
                line.push_str(&format!(" ({reason})"));
            }
            if !status.message.is_empty() {
                line.push_str(&format!(": {}", status.message));
            }
            println!("{line}");
        }
        self.inner.status_update(calls, status);
    }
    fn failure(&mut self, calls: &mut Calls, agent_id: &AgentId) {
        eprintln!("agent {agent_id} lost");
        self.inner.failure(calls, agent_id);
    }
    fn error(&mut self, calls: &mut Calls, message: &str) {
        self.inner.error(calls, message);
    }
    fn disconnected(&mut self) {
        eprintln!("disconnected from the master; reconnecting");
        self.inner.disconnected();
    }
}

/// A framework description for the examples: a failover timeout long enough
/// to survive a master restart, and the role asked for (`*` by default).
pub(crate) fn framework_info(name: String, role: Option<String>) -> agora_proto::FrameworkInfo {
    let mut framework = agora_proto::FrameworkInfo::new(name);
    framework.failover_timeout = FAILOVER_TIMEOUT;
    if let Some(role) = role {
        framework.roles = vec![role];
    }
    framework
}

/// Ctrl-C tears the framework down (its tasks are killed) instead of leaving
/// them to the failover timeout.
pub(crate) fn teardown_on_ctrl_c(handle: agora_sdk::driver::DriverHandle) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: tearing the framework down");
            handle.teardown();
        }
    });
}
