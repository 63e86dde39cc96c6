//! The real containerizers against the real kernel: the process
//! containerizer anywhere, the cgroups one on cgroup v1 as root.
//!
//! The cgroup tests need root and a writable v1 memory hierarchy. Without
//! them they fail when `CI` is set (CI must run them) and are skipped with a
//! note otherwise. They share the machine's cgroups, so they run one at a
//! time (a lock), each under its own root cgroup name.
#![allow(clippy::disallowed_methods)] // measures wall time against a real kernel
#![cfg(feature = "link")]

use agora_agent::containerizer::cgroups::{Cgroup, CgroupManager, Hierarchy};
use agora_agent::{
    CgroupsConfig, CgroupsContainerizer, ContainerId, Containerizer, ExitReceiver, ExitStatus, ProcessContainerizer,
};
use agora_proto::{AgentId, CommandInfo, FrameworkId, TaskId, TaskInfo, TaskReason, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::{Instant, timeout};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A work directory removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("agora-containers-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("work dir");
        Self(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn id(task: &str) -> ContainerId {
    ContainerId::new(
        FrameworkId::new("f1").expect("valid"),
        TaskId::new(task).expect("valid"),
    )
}

fn task(name: &str, resources: &str, command: &str) -> TaskInfo {
    TaskInfo {
        name: name.to_owned(),
        task_id: TaskId::new(name).expect("valid"),
        agent_id: AgentId::new("a1").expect("valid"),
        resources: resources.parse().expect("valid resources"),
        command: CommandInfo::shell(command),
        kill_grace_period: None,
    }
}

async fn next_exit(exits: &mut ExitReceiver, within: Duration) -> (ContainerId, ExitStatus) {
    timeout(within, exits.recv())
        .await
        .expect("the container ends in time")
        .expect("the containerizer is alive")
}

fn stdout(work: &WorkDir, task: &str) -> String {
    std::fs::read_to_string(agora_agent::sandbox_dir(&work.0, &id(task)).join("stdout")).expect("stdout")
}

/// Whether a process with this id exists.
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` is gone (or a zombie, dead but not yet reaped
/// by its new parent) within a second.
async fn gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"));
        if !alive(pid) || zombie {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- process containerizer ----

#[tokio::test]
async fn process_echo_exit_code_and_kill() {
    let work = WorkDir::new("process");
    let (mut c, mut exits) = ProcessContainerizer::new(&work.0);
    let now = Timestamp::ZERO;
    c.launch(now, &id("echo"), &task("echo", "cpus:0.1", "echo hello $AGORA_SANDBOX"))
        .expect("launch");
    let (who, exit) = next_exit(&mut exits, Duration::from_secs(5)).await;
    assert_eq!((who, exit), (id("echo"), ExitStatus::exited(0)));
    let sandbox = agora_agent::sandbox_dir(&work.0, &id("echo"));
    assert_eq!(stdout(&work, "echo"), format!("hello {}\n", sandbox.display()));

    c.launch(now, &id("three"), &task("three", "cpus:0.1", "echo oops >&2; exit 3"))
        .expect("launch");
    let (_, exit) = next_exit(&mut exits, Duration::from_secs(5)).await;
    assert_eq!(exit.code, Some(3));
    let stderr = std::fs::read_to_string(agora_agent::sandbox_dir(&work.0, &id("three")).join("stderr"));
    assert_eq!(stderr.expect("stderr"), "oops\n");

    // A child that ignores SIGTERM, in the background: the group is killed.
    c.launch(
        now,
        &id("sleep"),
        &task("sleep", "cpus:0.1", "trap '' TERM; sleep 100 & echo $!; wait"),
    )
    .expect("launch");
    let deadline = Instant::now() + Duration::from_secs(5);
    let child: i32 = loop {
        if let Ok(pid) = stdout(&work, "sleep").trim().parse() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the task starts");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(alive(child));
    c.kill(now, &id("sleep"), Duration::from_millis(200));
    let (_, exit) = next_exit(&mut exits, Duration::from_secs(5)).await;
    assert!(exit.killed, "{exit:?}");
    assert!(gone(child).await, "the task's child {child} survived the kill");
    assert_eq!(c.live(), []);

    let missing = TaskInfo {
        command: CommandInfo::exec("/nonexistent/program", Vec::<String>::new()),
        ..task("missing", "cpus:0.1", "")
    };
    let error = c.launch(now, &id("missing"), &missing).expect_err("no such program");
    assert!(error.to_string().contains("/nonexistent/program"), "{error}");
}

/// The waiter records the task's end in its exit status file, which the
/// containerizer reports; a second agent that reattaches to a waiter it did
/// not start reads the status from it when the task ends.
#[test]
fn process_waiter_records_the_exit_status_for_a_reattached_task() {
    use agora_agent::exit_file::{self, TaskExit};
    let work = WorkDir::new("waiter");
    let within = Duration::from_secs(5);
    // The second task waits on a fifo in its sandbox until the test opens it.
    let sandbox = agora_agent::sandbox_dir(&work.0, &id("later"));
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    let fifo = sandbox.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success(),
        "mkfifo"
    );
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let (record, waiter) = first.block_on(async {
        let (mut c, mut exits) = ProcessContainerizer::new(&work.0);
        c.launch(Timestamp::ZERO, &id("three"), &task("three", "cpus:0.1", "exit 3"))
            .expect("launch");
        assert_eq!(next_exit(&mut exits, within).await.1, ExitStatus::exited(3));
        let recorded = exit_file::read(&exit_file::path(&work.0, &id("three"))).expect("readable");
        assert_eq!(recorded, Some(TaskExit::Exited(3)));

        c.launch(
            Timestamp::ZERO,
            &id("later"),
            &task("later", "cpus:0.1", "read line < fifo; kill -TERM $$"),
        )
        .expect("launch");
        let records = c.containers();
        let (_, record) = records.iter().find(|(who, _)| *who == id("later")).expect("recorded");
        // The main process is the waiter: the session leader, parent of the task.
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", record.pid)).expect("children");
        assert_eq!(
            children.split_whitespace().count(),
            1,
            "one child, the task: {children:?}"
        );
        (record.clone(), c)
    });
    // The agent goes away (its runtime with it); the waiter and task stay.
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    second.block_on(async {
        let (mut c, mut exits) = ProcessContainerizer::new(&work.0);
        let info = task("later", "cpus:0.1", "");
        c.reattach(Timestamp::ZERO, &id("later"), &info, &record)
            .expect("reattach");
        std::fs::write(&fifo, "go\n").expect("the task reads its fifo");
        let (who, exit) = next_exit(&mut exits, within).await;
        assert_eq!(who, id("later"));
        assert_eq!(exit, ExitStatus::signaled(15), "the status the waiter recorded");
    });
    drop(waiter);
}

// ---- cgroups containerizer (v1, real kernel) ----

/// Whether the real v1 tests can run; `None` skips (outside CI).
fn v1_available() -> Option<Hierarchy> {
    let why = if !nix_is_root() {
        Some("not root".to_owned())
    } else {
        match Hierarchy::detect() {
            Ok(h @ Hierarchy::V1(_)) => match h.probe_writable(&format!("agora-probe-{}", std::process::id())) {
                Ok(()) => return Some(h),
                Err(e) => Some(format!("the v1 hierarchies are not writable: {e}")),
            },
            Ok(Hierarchy::V2(_)) => Some("this machine has cgroup v2, not v1".to_owned()),
            Err(e) => Some(e.to_string()),
        }
    };
    let why = why.unwrap_or_default();
    assert!(
        std::env::var_os("CI").is_none(),
        "the cgroup v1 tests must run in CI, but cannot: {why} (they need root and a writable /sys/fs/cgroup/memory)"
    );
    eprintln!("skipping the cgroup v1 tests: {why}");
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    })
}

struct Cg {
    _lock: std::sync::MutexGuard<'static, ()>,
    work: WorkDir,
    root: String,
    c: CgroupsContainerizer,
    exits: ExitReceiver,
}

impl Cg {
    fn start(name: &str, config: CgroupsConfig) -> Option<Self> {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let hierarchy = v1_available()?;
        let work = WorkDir::new(name);
        let root = config.root.clone();
        let (c, exits) = CgroupsContainerizer::with_hierarchy(&work.0, config, hierarchy);
        Some(Self {
            _lock: lock,
            work,
            root,
            c,
            exits,
        })
    }

    fn config(name: &str) -> CgroupsConfig {
        let mut config = CgroupsConfig::default();
        config.root = format!("agora-test-{}-{name}", std::process::id());
        config
    }

    fn launch(&mut self, name: &str, resources: &str, command: &str) -> Cgroup {
        self.c
            .launch(Timestamp::ZERO, &id(name), &task(name, resources, command))
            .expect("launch");
        self.c.cgroup(&id(name))
    }

    /// Every hierarchy's root cgroup of this test, after cleanup, is gone.
    fn finish(&mut self) {
        self.c.cleanup();
        for mount in self.c.hierarchy().mounts() {
            let root = mount.join(&self.root);
            assert!(!root.exists(), "{} is left behind", root.display());
        }
    }
}

/// A test that failed before killing its tasks must not leave them running:
/// a leaked busy loop slows every later test on the machine, and makes the
/// cpu-quota tests fail in turn.
impl Drop for Cg {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for mount in self.c.hierarchy().mounts() {
            kill_every_process_under(&mount.join(&self.root));
        }
    }
}

fn kill_every_process_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            kill_every_process_under(&path);
        } else if path.file_name().is_some_and(|n| n == "cgroup.procs") {
            for pid in std::fs::read_to_string(&path).unwrap_or_default().split_whitespace() {
                let _ = std::process::Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

#[tokio::test]
async fn cgroups_echo_exit_code_and_joined_before_exec() {
    let Some(mut cg) = Cg::start("basics", Cg::config("basics")) else {
        return;
    };
    let echo = cg.launch("echo", "cpus:0.5;mem:64", "echo hello");
    let (who, exit) = next_exit(&mut cg.exits, Duration::from_secs(5)).await;
    assert_eq!((who, exit), (id("echo"), ExitStatus::exited(0)));
    assert_eq!(stdout(&cg.work, "echo"), "hello\n");
    assert!(
        echo.dirs().iter().all(|d| !d.exists()),
        "the cgroup is removed once the task ended"
    );

    cg.launch("three", "cpus:0.5;mem:64", "exit 3");
    let (_, exit) = next_exit(&mut cg.exits, Duration::from_secs(5)).await;
    assert_eq!(exit.code, Some(3));

    // The first thing the task runs already sees its cgroups.
    cg.launch("where", "cpus:0.5;mem:64", "cat /proc/self/cgroup");
    let (_, exit) = next_exit(&mut cg.exits, Duration::from_secs(5)).await;
    assert!(exit.success(), "{exit:?}");
    let ours = format!("/{}/f1/where", cg.root);
    let text = stdout(&cg.work, "where");
    for controller in ["memory", "pids", "freezer", "cpu", "cpuacct"] {
        assert!(
            text.lines().any(|l| l.ends_with(&ours)
                && l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == controller))),
            "the task is in its {controller} cgroup {ours}:\n{text}"
        );
    }
    cg.finish();
}

#[tokio::test]
async fn cgroups_memory_limit_is_reported_as_oom() {
    let Some(mut cg) = Cg::start("oom", Cg::config("oom")) else {
        return;
    };
    cg.launch(
        "hog",
        "cpus:1;mem:64",
        "/usr/bin/python3 -c 'b = bytearray(512*1024*1024)'",
    );
    let (_, exit) = next_exit(&mut cg.exits, Duration::from_secs(10)).await;
    assert_eq!(exit.limitation, Some(TaskReason::ContainerLimitationMemory), "{exit:?}");
    assert_eq!(exit.message, "memory limit of 64 MiB exceeded");
    assert!(exit.signal == Some(9) || exit.code == Some(137), "{exit:?}");
    cg.finish();
}

#[tokio::test]
async fn cgroups_kill_leaves_nothing_behind() {
    let Some(mut cg) = Cg::start("kill", Cg::config("kill")) else {
        return;
    };
    // The shell ignores SIGTERM; its children are in the cgroup too.
    let cgroup = cg.launch("sleep", "cpus:0.5;mem:64", "trap '' TERM; sleep 100 & sleep 100 & wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cgroup.pids().expect("pids").len() < 3 {
        assert!(Instant::now() < deadline, "the task starts its children");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pids = cgroup.pids().expect("pids");
    cg.c.kill(Timestamp::ZERO, &id("sleep"), Duration::from_millis(300));
    let (_, exit) = next_exit(&mut cg.exits, Duration::from_secs(5)).await;
    assert!(exit.killed, "{exit:?}");
    assert!(cgroup.dirs().iter().all(|d| !d.exists()), "the cgroup is removed");
    for pid in pids {
        assert!(gone(pid).await, "process {pid} survived the kill");
    }
    cg.finish();
}

#[tokio::test]
async fn cgroups_pids_limit_holds_a_fork_loop() {
    let mut config = Cg::config("pids");
    config.pids_limit = 50;
    let Some(mut cg) = Cg::start("pids", config) else {
        return;
    };
    let cgroup = cg.launch(
        "forks",
        "cpus:1;mem:128",
        "for i in $(seq 1 200); do sleep 5 & done 2>/dev/null; wait",
    );
    let Cgroup::V1(v1) = &cgroup else {
        panic!("v1 expected");
    };
    let current = v1
        .dir(agora_agent::containerizer::cgroups::v1::Controller::Pids)
        .join("pids.current");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut peak = 0;
    loop {
        let now: u64 = std::fs::read_to_string(&current)
            .expect("pids.current")
            .trim()
            .parse()
            .expect("a number");
        peak = peak.max(now);
        assert!(now <= 50, "pids.current {now} exceeds the limit");
        if now >= 45 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(peak >= 45, "the loop reaches the limit: peak {peak}");
    assert!(
        std::process::Command::new("true").status().is_ok_and(|s| s.success()),
        "the agent can still fork"
    );
    cg.c.kill(Timestamp::ZERO, &id("forks"), Duration::from_millis(100));
    let (_, exit) = next_exit(&mut cg.exits, Duration::from_secs(5)).await;
    assert!(exit.killed);
    assert!(cgroup.dirs().iter().all(|d| !d.exists()), "the cgroup is removed");
    cg.finish();
}

#[tokio::test]
async fn cgroups_cpu_quota_caps_a_busy_loop_and_usage_is_read() {
    let Some(mut cg) = Cg::start("cpu", Cg::config("cpu")) else {
        return;
    };
    let cgroup = cg.launch("busy", "cpus:0.5;mem:64", "while :; do :; done");
    let started = Instant::now();
    let first = cgroup.usage().expect("usage");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let usage = cgroup.usage().expect("usage");
    let wall = started.elapsed().as_secs_f64();
    let cpu = (usage.cpu_time - first.cpu_time).as_secs_f64();
    assert!(
        (cpu - wall / 2.0).abs() <= 0.2 * wall / 2.0,
        "{cpu:.3} s of cpu in {wall:.3} s of wall time at 0.5 cpus"
    );
    assert!(usage.memory_bytes > 0 && usage.pids >= 1, "{usage:?}");
    let probes = cg.c.usage_probes();
    assert_eq!(probes.len(), 1);
    let measured = probes[0].1.read(Timestamp::from_secs(7)).expect("usage");
    assert!(measured.cpu_seconds >= cpu && measured.timestamp == Timestamp::from_secs(7));
    cg.c.kill(Timestamp::ZERO, &id("busy"), Duration::from_millis(100));
    let (_, exit) = next_exit(&mut cg.exits, Duration::from_secs(5)).await;
    assert!(exit.killed);
    cg.finish();
}
