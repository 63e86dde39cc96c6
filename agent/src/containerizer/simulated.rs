//! A containerizer that runs nothing: each task "runs" for a time read from
//! its command, on the agent's clock. Cheap enough to emulate thousands of
//! agents in one process (two ordered maps, no allocation per poll).
//!
//! | command (shell line, or exec argv)   | behaviour                               |
//! | ------------------------------------ | --------------------------------------- |
//! | `sleep N` (`N` seconds, decimal; an optional `s`/`m`/`h`/`d` suffix as GNU sleep) | runs `N` seconds, then exits 0 |
//! | `exit N` (`N` an integer)            | exits with code `N` at once             |
//! | `false`                              | exits with code 1 at once               |
//! | anything else                        | exits 0 at once                         |
//!
//! The first word may be a path (`/bin/sleep 5`). A kill ends the task at
//! once, whatever the grace period, and reports it killed.

use super::{ContainerError, ContainerId, Containerizer, ExitStatus};
use crate::checkpoint::ContainerRecord;
use agora_proto::{CommandInfo, TaskInfo, Timestamp};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// The simulated containerizer; see the [module docs](self).
#[derive(Debug, Default)]
pub struct SimulatedContainerizer {
    /// Running containers: when each ends and with which exit code.
    running: BTreeMap<ContainerId, (Timestamp, i32)>,
    /// The same ends, ordered by time (ties by id, so deterministic).
    deadlines: BTreeSet<(Timestamp, ContainerId)>,
    /// Containers killed and not yet reported.
    killed: VecDeque<ContainerId>,
}

impl SimulatedContainerizer {
    /// An empty containerizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many containers run (killed ones not yet reported excluded).
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

/// What a simulated command does: how long it runs and its exit code.
fn behaviour(command: &CommandInfo) -> (Duration, i32) {
    let words: Vec<&str> = if command.shell {
        command.value.split_whitespace().collect()
    } else if command.arguments.is_empty() {
        vec![command.value.as_str()]
    } else {
        command.arguments.iter().map(String::as_str).collect()
    };
    let program = words.first().map_or("", |w| w.rsplit('/').next().unwrap_or(w));
    match (program, &words[words.len().min(1)..]) {
        ("sleep", [n]) => parse_sleep(n).map_or((Duration::ZERO, 0), |d| (d, 0)),
        ("exit", [n]) => (Duration::ZERO, n.parse().unwrap_or(0)),
        ("false", []) => (Duration::ZERO, 1),
        _ => (Duration::ZERO, 0),
    }
}

/// Parses the operand of `sleep`: a non-negative decimal number of seconds,
/// optionally suffixed `s`, `m`, `h` or `d`.
fn parse_sleep(text: &str) -> Option<Duration> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1.0),
        Some((i, 'm')) => (&text[..i], 60.0),
        Some((i, 'h')) => (&text[..i], 3600.0),
        Some((i, 'd')) => (&text[..i], 86400.0),
        _ => (text, 1.0),
    };
    if !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(secs * unit).ok()
}

impl Containerizer for SimulatedContainerizer {
    fn launch(&mut self, now: Timestamp, id: &ContainerId, task: &TaskInfo) -> Result<(), ContainerError> {
        if self.running.contains_key(id) || self.killed.contains(id) {
            return Err(ContainerError::AlreadyExists(id.clone()));
        }
        let (runtime, code) = behaviour(&task.command);
        let end = now + runtime;
        self.running.insert(id.clone(), (end, code));
        self.deadlines.insert((end, id.clone()));
        Ok(())
    }

    fn kill(&mut self, _now: Timestamp, id: &ContainerId, _grace: Duration) {
        if let Some((end, _)) = self.running.remove(id) {
            self.deadlines.remove(&(end, id.clone()));
            self.killed.push_back(id.clone());
        }
    }

    fn poll_exit(&mut self, now: Timestamp) -> Option<(ContainerId, ExitStatus)> {
        if let Some(id) = self.killed.pop_front() {
            return Some((id, ExitStatus::killed()));
        }
        let first = self.deadlines.first()?;
        if first.0 > now {
            return None;
        }
        let (_, id) = self.deadlines.pop_first()?;
        let (_, code) = self.running.remove(&id)?;
        Some((id, ExitStatus::exited(code)))
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        if self.killed.is_empty() {
            self.deadlines.first().map(|(at, _)| *at)
        } else {
            Some(Timestamp::ZERO)
        }
    }

    /// Made-up records, so that simulations can exercise agent recovery: a
    /// pid above any real one (`u32::MAX` down, unique within one call) and
    /// the container's end, in microseconds, as its start time. No real
    /// process matches them, so a real agent restarted with this
    /// containerizer reports its tasks as ended, as it must: nothing ran.
    fn containers(&self) -> Vec<(ContainerId, ContainerRecord)> {
        self.running
            .iter()
            .zip(0u32..)
            .map(|((id, (end, _)), i)| {
                let record = ContainerRecord {
                    pid: u32::MAX - i,
                    start_time: end.as_micros(),
                    cgroups: Vec::new(),
                };
                (id.clone(), record)
            })
            .collect()
    }

    /// Takes a simulated container back: it ends when it would have (the
    /// record's start time is its end), with its command's exit code.
    fn reattach(
        &mut self,
        _now: Timestamp,
        id: &ContainerId,
        task: &TaskInfo,
        record: &ContainerRecord,
    ) -> Result<(), ContainerError> {
        if self.running.contains_key(id) || self.killed.contains(id) {
            return Err(ContainerError::AlreadyExists(id.clone()));
        }
        let (_, code) = behaviour(&task.command);
        let end = Timestamp::from_micros(record.start_time);
        self.running.insert(id.clone(), (end, code));
        self.deadlines.insert((end, id.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, FrameworkId, Resources, TaskId};

    fn task(id: &str, command: CommandInfo) -> (ContainerId, TaskInfo) {
        let task_id = TaskId::new(id).expect("valid id");
        let info = TaskInfo {
            name: id.to_owned(),
            task_id: task_id.clone(),
            agent_id: AgentId::new("a1").expect("valid id"),
            resources: Resources::default(),
            command,
            kill_grace_period: None,
        };
        (
            ContainerId::new(FrameworkId::new("f1").expect("valid id"), task_id),
            info,
        )
    }

    #[test]
    fn commands_map_to_behaviours() {
        let sh = |s: &str| behaviour(&CommandInfo::shell(s));
        assert_eq!(sh("sleep 2"), (Duration::from_secs(2), 0));
        assert_eq!(sh("  /bin/sleep   0.25 "), (Duration::from_millis(250), 0));
        assert_eq!(sh("sleep 2m"), (Duration::from_secs(120), 0));
        assert_eq!(sh("sleep -1"), (Duration::ZERO, 0));
        assert_eq!(sh("sleep inf"), (Duration::ZERO, 0));
        assert_eq!(sh("sleep 1 2"), (Duration::ZERO, 0));
        assert_eq!(sh("exit 3"), (Duration::ZERO, 3));
        assert_eq!(sh("false"), (Duration::ZERO, 1));
        assert_eq!(sh("echo hello"), (Duration::ZERO, 0));
        assert_eq!(sh(""), (Duration::ZERO, 0));
        assert_eq!(
            behaviour(&CommandInfo::exec("sleep", ["1.5"])),
            (Duration::from_millis(1500), 0)
        );
        assert_eq!(behaviour(&CommandInfo::exec("sleep", ["1", "2"])), (Duration::ZERO, 0));
    }

    #[test]
    fn sleeps_end_in_deadline_order() {
        let mut c = SimulatedContainerizer::new();
        let t0 = Timestamp::from_secs(100);
        let (a, ta) = task("a", CommandInfo::shell("sleep 2"));
        let (b, tb) = task("b", CommandInfo::shell("sleep 1"));
        c.launch(t0, &a, &ta).expect("launch a");
        c.launch(t0, &b, &tb).expect("launch b");
        assert_eq!(
            c.launch(t0, &a, &ta),
            Err(ContainerError::AlreadyExists(a.clone())),
            "a container id runs once"
        );
        assert_eq!(c.poll_timeout(), Some(Timestamp::from_secs(101)));
        assert_eq!(c.poll_exit(Timestamp::from_micros(100_999_999)), None);
        assert_eq!(c.poll_exit(Timestamp::from_secs(102)), Some((b, ExitStatus::exited(0))));
        assert_eq!(c.poll_exit(Timestamp::from_secs(102)), Some((a, ExitStatus::exited(0))));
        assert_eq!(c.poll_exit(Timestamp::from_secs(102)), None);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn kill_ends_at_once() {
        let mut c = SimulatedContainerizer::new();
        let (a, ta) = task("a", CommandInfo::shell("sleep 60"));
        c.launch(Timestamp::ZERO, &a, &ta).expect("launch");
        c.kill(Timestamp::from_secs(1), &a, Duration::from_secs(3));
        c.kill(Timestamp::from_secs(1), &a, Duration::from_secs(3));
        assert_eq!(c.running(), 0);
        assert_eq!(c.poll_timeout(), Some(Timestamp::ZERO));
        assert_eq!(c.poll_exit(Timestamp::from_secs(1)), Some((a, ExitStatus::killed())));
        assert_eq!(
            c.poll_exit(Timestamp::from_secs(100)),
            None,
            "killed once, reported once"
        );
    }
}
