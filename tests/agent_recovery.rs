//! Agent recovery, black box: `kill -9` of an agent with running tasks, then
//! a restart on the same work directory: the same processes keep running,
//! the agent re-registers under the same id with its tasks RUNNING, the
//! unacknowledged update is sent again, tasks that ended while the agent
//! was down are reported with the exit status their waiter recorded
//! (FINISHED for 0, FAILED naming the status or the signal), and every
//! later update arrives. Once with the `process` containerizer (no root or cgroups
//! needed), once with `cgroups` (needs root and cgroups: fails saying so
//! when they are missing), where the tasks also stay in their cgroups.
#![allow(clippy::disallowed_methods)] // a black-box test: it reads the real clock

mod common;

use agora_proto::pb;
use common::{Proc, RawFramework, agora, framework_info, processes_where, start_master, state, task, temp_dir};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(10);

/// How the agent runs tasks: `process`, or `cgroups` under a root of the test's own.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Process,
    Cgroups { root: &'a str },
}

fn start_agent(master: SocketAddr, work_dir: &Path, kind: Kind<'_>) -> Proc {
    let mut command = agora();
    command
        .args(["agent", "--master", &master.to_string()])
        .args(["--resources", "cpus:4;mem:1GiB"]);
    match kind {
        Kind::Process => command.args(["--containerizer", "process"]),
        Kind::Cgroups { root } => command.args(["--containerizer", "cgroups", "--cgroups-root", root]),
    };
    let child = command
        .arg("--work-dir")
        .arg(work_dir)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("agora agent starts");
    Proc(child)
}

/// The processes whose working directory is `dir` (a task's sandbox).
fn processes_in(dir: &Path) -> BTreeSet<u32> {
    let Ok(canonical) = dir.canonicalize() else {
        return BTreeSet::new();
    };
    processes_where(|cwd, _| cwd == canonical)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

fn sandbox(work_dir: &Path, framework: &pb::FrameworkId, task: &str) -> PathBuf {
    work_dir.join("sandboxes").join(&framework.value).join(task)
}

fn state_name(status: &pb::TaskStatus) -> String {
    pb::TaskState::try_from(status.state).map_or_else(|_| format!("{}", status.state), |s| s.as_str_name().to_owned())
}

/// Updates until `done` says enough, acknowledging those with a uuid unless
/// `hold` names their task (left unacknowledged on purpose).
async fn collect(
    framework: &mut RawFramework,
    hold: &[&str],
    mut done: impl FnMut(&[pb::TaskStatus]) -> bool,
) -> Vec<pb::TaskStatus> {
    let mut seen = Vec::new();
    while !done(&seen) {
        let status = framework
            .update(WITHIN)
            .await
            .unwrap_or_else(|| panic!("no update in {WITHIN:?}; so far: {:?}", summary(&seen)));
        let task_id = status.task_id.clone().map(|t| t.value).unwrap_or_default();
        if !status.uuid.is_empty() && !hold.contains(&task_id.as_str()) {
            framework
                .client
                .acknowledge(pb::AcknowledgeRequest {
                    framework_id: Some(framework.id.clone()),
                    agent_id: status.agent_id.clone(),
                    task_id: status.task_id.clone(),
                    uuid: status.uuid.clone(),
                })
                .await
                .expect("acknowledge");
        }
        seen.push(status);
    }
    seen
}

fn summary(updates: &[pb::TaskStatus]) -> Vec<(String, String)> {
    updates
        .iter()
        .map(|s| (s.task_id.clone().map(|t| t.value).unwrap_or_default(), state_name(s)))
        .collect()
}

fn count(updates: &[pb::TaskStatus], task: &str, state: &str) -> usize {
    summary(updates).iter().filter(|(t, s)| t == task && s == state).count()
}

/// The pids in the memory cgroup (v1) of a task.
fn cgroup_pids(root: &str, framework: &pb::FrameworkId, task: &str) -> Option<BTreeSet<u32>> {
    let procs = Path::new("/sys/fs/cgroup/memory")
        .join(root)
        .join(&framework.value)
        .join(task)
        .join("cgroup.procs");
    let text = std::fs::read_to_string(procs).ok()?;
    Some(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[tokio::test]
async fn kill_9_of_an_agent_keeps_its_tasks_running_and_loses_no_update() {
    recover(Kind::Process).await;
}

#[tokio::test]
async fn kill_9_of_a_cgroups_agent_keeps_its_tasks_in_their_cgroups() {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false);
    assert!(
        root && Path::new("/sys/fs/cgroup/memory").is_dir(),
        "this test needs root and cgroup v1 (a memory hierarchy at /sys/fs/cgroup/memory): it checks that \
         reattached tasks keep their cgroups"
    );
    let cgroups_root = format!("agora-test-recovery-{}", std::process::id());
    let _cleanup = RemoveCgroups(cgroups_root.clone());
    recover(Kind::Cgroups { root: &cgroups_root }).await;
    // Every task's cgroup is removed: the killed ones', the reattached one's
    // that ended, and the one whose task ended while the agent was down.
    let tasks_cgroups = || {
        common::cgroup_dirs(&cgroups_root)
            .into_iter()
            .filter(|d| TASKS.iter().any(|t| d.ends_with(t)))
            .collect::<Vec<_>>()
    };
    common::eventually(Duration::from_secs(5), || tasks_cgroups().is_empty().then_some(()))
        .unwrap_or_else(|| panic!("task cgroups left behind: {:?}", tasks_cgroups()));
}

/// Removes the test's cgroups, killing what they hold, even when it fails.
struct RemoveCgroups(String);

impl Drop for RemoveCgroups {
    fn drop(&mut self) {
        let dirs = common::cgroup_dirs(&self.0);
        for dir in &dirs {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines() {
                let _ = std::process::Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.0));
        }
    }
}

/// The tasks of [`recover`].
const TASKS: [&str; 6] = ["keep", "held", "short", "zero", "signal", "mid"];

async fn recover(kind: Kind<'_>) {
    let started = std::time::Instant::now();
    let (_master, addr) = start_master(&[]);
    let work_dir = temp_dir("agent-recovery");
    let mut agent = start_agent(addr, &work_dir, kind);
    let mut framework = RawFramework::subscribe(addr, framework_info("recovery")).await;

    let offers = framework.offers(WITHIN).await.expect("an offer");
    let offer = &offers[0];
    let agent_id = offer.agent_id.clone().expect("offers name their agent");
    let tasks = vec![
        task("keep", offer, "cpus:0.1;mem:32MiB", "sleep 30"),
        task("held", offer, "cpus:0.1;mem:32MiB", "sleep 30"),
        // These three end while the agent is down.
        task("short", offer, "cpus:0.1;mem:32MiB", "sleep 2; exit 3"),
        task("zero", offer, "cpus:0.1;mem:32MiB", "sleep 2"),
        task("signal", offer, "cpus:0.1;mem:32MiB", "sleep 2; kill -9 $$"),
        // Most likely outlives the restart, then ends under the new agent.
        task("mid", offer, "cpus:0.1;mem:32MiB", "sleep 4"),
    ];
    framework.launch(&[offer], tasks, 60.0).await;
    // "held"'s RUNNING stays unacknowledged: the restarted agent must send it again.
    let first = collect(&mut framework, &["held"], |seen| {
        TASKS.iter().all(|t| count(seen, t, "TASK_RUNNING") == 1)
    })
    .await;
    let held_running = first
        .iter()
        .find(|s| s.task_id.as_ref().is_some_and(|t| t.value == "held"))
        .cloned()
        .expect("held RUNNING");

    let pids = |task: &str| processes_in(&sandbox(&work_dir, &framework.id, task));
    let (keep, held) = (pids("keep"), pids("held"));
    assert!(!keep.is_empty() && !held.is_empty(), "the tasks' processes run");
    let in_cgroups = |framework: &RawFramework| {
        let Kind::Cgroups { root } = kind else { return None };
        Some((
            cgroup_pids(root, &framework.id, "keep"),
            cgroup_pids(root, &framework.id, "held"),
        ))
    };
    let cgroups_before = in_cgroups(&framework);
    if let Some((keep_cg, held_cg)) = &cgroups_before {
        assert_eq!(keep_cg.as_ref(), Some(&keep), "keep runs in its cgroup");
        assert_eq!(held_cg.as_ref(), Some(&held), "held runs in its cgroup");
    }

    // kill -9: the agent gets no chance to clean up.
    agent.0.kill().expect("SIGKILL the agent");
    agent.0.wait().expect("reap the agent");
    assert!(
        keep.iter().chain(&held).all(|&pid| alive(pid)),
        "the tasks outlive their agent"
    );
    // "short", "zero" and "signal" end while the agent is down: their
    // processes (the task's and its waiter's, both in the sandbox) are gone.
    let ending: Vec<u32> = ["short", "zero", "signal"].into_iter().flat_map(pids).collect();
    assert!(ending.len() >= 3, "the ending tasks run: {ending:?}");
    common::eventually(Duration::from_secs(5), || {
        ending.iter().all(|&p| !alive(p)).then_some(())
    })
    .expect("short, zero and signal end while the agent is down");

    let _agent = start_agent(addr, &work_dir, kind);
    // Re-registered as the same agent, with the same processes RUNNING.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let cluster = state(addr).await;
        let same_agent_active = cluster
            .agents
            .iter()
            .any(|a| a.id.as_ref() == Some(&agent_id) && a.active);
        let running: BTreeSet<String> = cluster
            .tasks
            .iter()
            .filter(|t| t.state == pb::TaskState::TaskRunning as i32)
            .filter_map(|t| t.task.as_ref()?.task_id.as_ref().map(|i| i.value.clone()))
            .collect();
        if same_agent_active && running.contains("keep") && running.contains("held") {
            assert_eq!(cluster.agents.len(), 1, "no second agent: {:?}", cluster.agents);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent did not re-register as {agent_id:?} with its tasks: {cluster:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pids("keep"), keep, "the same processes run");
    assert_eq!(pids("held"), held, "the same processes run");
    assert_eq!(in_cgroups(&framework), cgroups_before, "in the same cgroups");

    // The held RUNNING comes again (same uuid), and the ends, with the
    // statuses the waiters recorded.
    let after = collect(&mut framework, &[], |seen| {
        count(seen, "held", "TASK_RUNNING") >= 1
            && count(seen, "short", "TASK_FAILED") == 1
            && count(seen, "zero", "TASK_FINISHED") == 1
            && count(seen, "signal", "TASK_FAILED") == 1
            && count(seen, "mid", "TASK_FINISHED") == 1
    })
    .await;
    let resent = after
        .iter()
        .find(|s| s.task_id.as_ref().is_some_and(|t| t.value == "held"))
        .expect("held resent");
    assert_eq!(resent.uuid, held_running.uuid, "the very update, sent again");
    let final_of = |task: &str| {
        after
            .iter()
            .find(|s| s.task_id.as_ref().is_some_and(|t| t.value == task) && state_name(s) != "TASK_RUNNING")
            .cloned()
            .unwrap_or_else(|| panic!("{task} reported: {:?}", summary(&after)))
    };
    let short = final_of("short");
    assert_eq!(state_name(&short), "TASK_FAILED", "{short:?}");
    assert_eq!(
        short.reason,
        pb::TaskReason::ReasonCommandExecutorFailed as i32,
        "{short:?}"
    );
    assert!(
        short.message.contains("exited with status 3") && short.message.contains("while the agent was down"),
        "{}",
        short.message
    );
    assert_eq!(short.exit_code, Some(3), "{short:?}");
    let zero = final_of("zero");
    assert_eq!(state_name(&zero), "TASK_FINISHED", "{zero:?}");
    assert_eq!(zero.exit_code, Some(0), "{zero:?}");
    let signal = final_of("signal");
    assert_eq!(state_name(&signal), "TASK_FAILED", "{signal:?}");
    assert!(signal.message.contains("killed by signal 9"), "{}", signal.message);
    // A task that ends after it was reattached (or, on a slow machine, while
    // the agent was down): its waiter recorded its status all the same.
    let mid = final_of("mid");
    assert_eq!(state_name(&mid), "TASK_FINISHED", "{mid:?}");
    assert_eq!(mid.exit_code, Some(0), "{mid:?}");

    // The reattached tasks are still ours to kill.
    for task_id in ["keep", "held"] {
        framework
            .client
            .kill(pb::KillRequest {
                framework_id: Some(framework.id.clone()),
                task_id: Some(pb::TaskId {
                    value: task_id.to_owned(),
                }),
                agent_id: Some(agent_id.clone()),
            })
            .await
            .expect("kill");
    }
    let end = collect(&mut framework, &[], |seen| {
        count(seen, "keep", "TASK_KILLED") == 1 && count(seen, "held", "TASK_KILLED") == 1
    })
    .await;
    let everything: Vec<_> = first.iter().chain(&after).chain(&end).cloned().collect();
    for lost in ["TASK_LOST", "TASK_GONE", "TASK_UNREACHABLE"] {
        assert_eq!(
            summary(&everything).iter().filter(|(_, s)| s == lost).count(),
            0,
            "no {lost}: {:?}",
            summary(&everything)
        );
    }
    common::eventually(Duration::from_secs(5), || {
        keep.iter().chain(&held).all(|&p| !alive(p)).then_some(())
    })
    .expect("the killed tasks' processes are gone");
    // Nothing more: no update twice after it was acknowledged.
    assert!(framework.update(Duration::from_millis(300)).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&work_dir);
}

/// The ids of the active agents.
async fn active_agents(addr: SocketAddr) -> Vec<pb::AgentId> {
    state(addr)
        .await
        .agents
        .into_iter()
        .filter(|a| a.active)
        .filter_map(|a| a.id)
        .collect()
}

async fn wait_for_active_agent(addr: SocketAddr, not: Option<&pb::AgentId>) -> pb::AgentId {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        if let Some(id) = active_agents(addr).await.into_iter().find(|id| Some(id) != not) {
            return id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no agent registered in {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_corrupt_checkpoint_stops_the_agent_unless_told_to_start_afresh() {
    let (_master, addr) = start_master(&[]);
    let work_dir = temp_dir("agent-corrupt-checkpoint");
    let file = agora_agent::checkpoint::path(&work_dir);
    std::fs::create_dir_all(file.parent().expect("meta dir")).expect("create meta");
    std::fs::write(&file, b"agora-agent-checkpoint v1 5 0000000000000000\n{\"bo").expect("write garbage");

    let output = agora()
        .args(["agent", "--master", &addr.to_string()])
        .args(["--resources", "cpus:1;mem:256MiB", "--containerizer", "process"])
        .arg("--work-dir")
        .arg(&work_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("agora agent runs");
    let stderr = common::text(&output.stderr);
    assert!(!output.status.success(), "the agent must refuse to start: {stderr}");
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("corrupt"),
        "the error names the file: {stderr}"
    );
    assert!(active_agents(addr).await.is_empty());

    let mut agent = agora();
    agent
        .args(["agent", "--master", &addr.to_string()])
        .args(["--resources", "cpus:1;mem:256MiB", "--containerizer", "process"])
        .arg("--discard-corrupt-checkpoint")
        .arg("--work-dir")
        .arg(&work_dir)
        .env("RUST_LOG", "error");
    let _agent = Proc(agent.spawn().expect("agora agent starts"));
    wait_for_active_agent(addr, None).await;
    assert!(
        file.with_file_name("agent-checkpoint.corrupt").exists(),
        "set aside, not deleted"
    );
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[tokio::test]
async fn after_a_reboot_the_agent_registers_as_a_new_agent() {
    let (_master, addr) = start_master(&[]);
    let work_dir = temp_dir("agent-reboot");
    let mut agent = start_agent(addr, &work_dir, Kind::Process);
    let first = wait_for_active_agent(addr, None).await;
    // The master lists the agent before the agent has heard back (and
    // checkpointed its id): wait for the checkpoint to have it.
    let file = agora_agent::checkpoint::path(&work_dir);
    let checkpointed = || {
        agora_agent::checkpoint::read(&file)
            .expect("a valid checkpoint")
            .filter(|c| c.agent_id.is_some())
    };
    common::eventually(WITHIN, checkpointed).expect("the agent checkpoints its id");
    agent.0.kill().expect("SIGKILL the agent");
    agent.0.wait().expect("reap the agent");

    // The same machine after a reboot: another boot id in the checkpoint's stead.
    let mut checkpoint = checkpointed().expect("the checkpoint survives the kill");
    assert_eq!(
        checkpoint.agent_id.as_ref().map(|id| id.as_str()),
        Some(first.value.as_str())
    );
    checkpoint.boot_id = "an-earlier-boot".to_owned();
    agora_agent::checkpoint::write(&file, &checkpoint).expect("rewrite");

    let _agent = start_agent(addr, &work_dir, Kind::Process);
    let second = wait_for_active_agent(addr, Some(&first)).await;
    assert_ne!(second, first, "a rebooted machine is a new agent");
    let _ = std::fs::remove_dir_all(&work_dir);
}
