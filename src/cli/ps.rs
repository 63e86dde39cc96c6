//! `agora ps`, `agora agents`, `agora frameworks`: the cluster's state as
//! aligned tables, or as JSON (`--json`) for scripts. The JSON shapes are
//! the `*View` structs below; fields are only ever added to them.

use crate::cli::MasterAddrs;
use crate::client::Operator;
use crate::table::{Align, Table};
use agora_proto::{Resources, TaskState, pb};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct PsArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// Include completed tasks (the master keeps the most recent ones).
    #[arg(long)]
    all: bool,
    /// Print JSON (an array of tasks) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AgentsArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// Print JSON (an array of agents) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct FrameworksArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// Print JSON (an array of frameworks) instead of a table.
    #[arg(long)]
    json: bool,
}

/// A task as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct TaskView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) framework_id: String,
    pub(crate) agent_id: String,
    pub(crate) state: String,
    pub(crate) cpus: f64,
    /// MiB.
    pub(crate) mem: f64,
    /// Seconds of cpu used, from the agent's latest usage report.
    pub(crate) cpu_seconds: Option<f64>,
    /// Bytes of memory in use, from the agent's latest usage report.
    pub(crate) mem_used_bytes: Option<u64>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) message: String,
}

/// An agent as `agents` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct AgentView {
    pub(crate) id: String,
    pub(crate) hostname: String,
    /// `active` or `inactive` (disconnected, unreachable or draining).
    pub(crate) status: String,
    pub(crate) total: String,
    pub(crate) allocated: String,
}

/// A framework as `frameworks` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct FrameworkView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) connected: bool,
    pub(crate) roles: Vec<String>,
    pub(crate) dominant_share: f64,
    /// Its tasks that have not ended.
    pub(crate) tasks: usize,
}

fn resources(wire: &[pb::Resource]) -> Resources {
    // The master only sends what it validated; a bad entry shows as nothing.
    Resources::try_from(wire).unwrap_or_default()
}

fn state_name(state: i32) -> String {
    match TaskState::from_wire(state, "state") {
        Ok(Some(state)) => state.to_string(),
        _ => format!("UNKNOWN({state})"),
    }
}

pub(crate) fn task_view(record: &pb::TaskRecord) -> TaskView {
    let task = record.task.clone().unwrap_or_default();
    let resources = resources(&task.resources);
    let status = record.last_status.clone().unwrap_or_default();
    TaskView {
        id: task.task_id.map(|t| t.value).unwrap_or_default(),
        name: task.name,
        framework_id: record.framework_id.clone().map(|f| f.value).unwrap_or_default(),
        agent_id: task.agent_id.map(|a| a.value).unwrap_or_default(),
        state: state_name(record.state),
        cpus: resources.cpus().as_f64(),
        mem: resources.mem().as_f64(),
        cpu_seconds: record.usage.as_ref().map(|u| u.cpu_seconds),
        mem_used_bytes: record.usage.as_ref().map(|u| u.mem_bytes),
        exit_code: status.exit_code,
        message: status.message,
    }
}

fn agent_view(agent: &pb::AgentState) -> AgentView {
    AgentView {
        id: agent.id.clone().map(|a| a.value).unwrap_or_default(),
        hostname: agent.info.clone().map(|i| i.hostname).unwrap_or_default(),
        status: if agent.active { "active" } else { "inactive" }.to_owned(),
        total: resources(&agent.total).to_string(),
        allocated: resources(&agent.allocated).to_string(),
    }
}

fn framework_view(framework: &pb::FrameworkState, tasks: &[pb::TaskRecord]) -> FrameworkView {
    let info = framework.info.clone().unwrap_or_default();
    let id = framework.id.clone().map(|f| f.value).unwrap_or_default();
    FrameworkView {
        tasks: tasks
            .iter()
            .filter(|t| t.framework_id.as_ref().is_some_and(|f| f.value == id))
            .count(),
        id,
        name: info.name,
        connected: framework.connected,
        roles: info.roles,
        dominant_share: framework.dominant_share,
    }
}

fn print_json(value: &impl Serialize) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// `1.5s`, `2m03s`: cpu time at a glance.
fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.2}s")
    } else {
        let whole = s as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Bytes in the largest binary unit that keeps a number ≥ 1.
fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

pub(crate) async fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let state = Operator::connect(&args.master).await?.state().await?;
    let mut records: Vec<&pb::TaskRecord> = state.tasks.iter().collect();
    if args.all {
        records.extend(&state.completed_tasks);
    }
    let views: Vec<TaskView> = records.into_iter().map(task_view).collect();
    if args.json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("FRAMEWORK", Align::Left),
        ("AGENT", Align::Left),
        ("STATE", Align::Left),
        ("CPUS", Align::Right),
        ("MEM", Align::Right),
        ("CPU TIME", Align::Right),
        ("MEM USED", Align::Right),
    ]);
    for t in &views {
        table.row(vec![
            t.id.clone(),
            t.framework_id.clone(),
            t.agent_id.clone(),
            t.state.clone(),
            t.cpus.to_string(),
            format!("{}MiB", t.mem),
            t.cpu_seconds.map(seconds).unwrap_or_default(),
            t.mem_used_bytes.map(bytes).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn agents(args: AgentsArgs) -> anyhow::Result<ExitCode> {
    let state = Operator::connect(&args.master).await?.state().await?;
    let views: Vec<AgentView> = state.agents.iter().map(agent_view).collect();
    if args.json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("HOSTNAME", Align::Left),
        ("STATUS", Align::Left),
        ("TOTAL", Align::Left),
        ("ALLOCATED", Align::Left),
    ]);
    for a in views {
        table.row(vec![a.id, a.hostname, a.status, a.total, a.allocated]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn frameworks(args: FrameworksArgs) -> anyhow::Result<ExitCode> {
    let state = Operator::connect(&args.master).await?.state().await?;
    let views: Vec<FrameworkView> = state
        .frameworks
        .iter()
        .map(|f| framework_view(f, &state.tasks))
        .collect();
    if args.json {
        return print_json(&views);
    }
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("CONNECTED", Align::Left),
        ("ROLES", Align::Left),
        ("SHARE", Align::Right),
        ("TASKS", Align::Right),
    ]);
    for f in views {
        table.row(vec![
            f.id,
            f.name,
            if f.connected { "yes" } else { "no" }.to_owned(),
            f.roles.join(","),
            format!("{:.3}", f.dominant_share),
            f.tasks.to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_at_a_glance() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5MiB");
        assert_eq!(seconds(1.234), "1.23s");
        assert_eq!(seconds(123.0), "2m03s");
    }

    #[test]
    fn a_task_record_becomes_a_view() {
        let record = pb::TaskRecord {
            framework_id: Some(pb::FrameworkId { value: "fw".into() }),
            task: Some(pb::TaskInfo {
                name: "hello".into(),
                task_id: Some(pb::TaskId { value: "t1".into() }),
                agent_id: Some(pb::AgentId { value: "a1".into() }),
                resources: (&"cpus:0.5;mem:64".parse::<Resources>().expect("resources")).into(),
                ..Default::default()
            }),
            state: TaskState::Running.into(),
            last_status: None,
            usage: Some(pb::TaskUsage {
                cpu_seconds: 1.5,
                mem_bytes: 1024,
                pids: 1,
                timestamp: 0.0,
            }),
        };
        let view = task_view(&record);
        assert_eq!(view.id, "t1");
        assert_eq!(view.state, "TASK_RUNNING");
        assert!((view.cpus - 0.5).abs() < 1e-9);
        assert!((view.mem - 64.0).abs() < 1e-9);
        assert_eq!(view.cpu_seconds, Some(1.5));
        assert_eq!(view.mem_used_bytes, Some(1024));
    }
}
