//! Modelled agents: a machine with resources whose tasks run for their
//! duration and then report TASK_FINISHED. Cheaper than the real agent core
//! (no status-update retries: the modelled network loses nothing).

use agora_proto::{AgentId, FrameworkId, TaskId};

/// A task running on a modelled agent.
#[derive(Debug)]
pub(crate) struct RunningTask {
    /// Identifies the end-of-task event scheduled for it.
    pub(crate) token: u64,
    pub(crate) framework_id: FrameworkId,
    pub(crate) task_id: TaskId,
    /// Index of the owning framework in the engine, if known.
    pub(crate) framework: Option<usize>,
    pub(crate) cpus: u64,
    pub(crate) mem: u64,
}

/// One machine.
#[derive(Debug, Default)]
pub(crate) struct AgentModel {
    pub(crate) agent_id: Option<AgentId>,
    /// Few per machine, so a vector beats a map.
    pub(crate) tasks: Vec<RunningTask>,
}

impl AgentModel {
    /// Removes and returns the task with `token`.
    pub(crate) fn take_by_token(&mut self, token: u64) -> Option<RunningTask> {
        let i = self.tasks.iter().position(|t| t.token == token)?;
        Some(self.tasks.swap_remove(i))
    }

    /// Removes and returns the task `task_id` of `framework_id`.
    pub(crate) fn take_by_id(&mut self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<RunningTask> {
        let i = self
            .tasks
            .iter()
            .position(|t| &t.task_id == task_id && &t.framework_id == framework_id)?;
        Some(self.tasks.swap_remove(i))
    }
}

/// The run time a command asks of a modelled agent: `sleep N` runs N
/// seconds (as the simulated containerizer does); anything else ends at once.
pub(crate) fn command_duration(command: &str) -> f64 {
    command
        .trim()
        .strip_prefix("sleep ")
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_commands_give_durations() {
        assert_eq!(command_duration("sleep 12.5"), 12.5);
        assert_eq!(command_duration("echo hi"), 0.0);
        assert_eq!(command_duration("sleep -3"), 0.0);
    }
}
