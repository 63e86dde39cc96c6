//! Killing tasks, and stopping `agora local`, leave no process and no cgroup.
#![allow(clippy::disallowed_methods)] // black-box tests wait on real time

mod common;

use common::*;
use std::time::Duration;

/// A `sleep` whose command line is unique to this test run.
fn marker(test: &str) -> String {
    let unique = u64::from(std::process::id()) * 10 + test.len() as u64 % 10;
    format!("sleep 100.{unique}")
}

#[test]
fn kill_leaves_no_process_and_no_cgroup() {
    if !cgroups_available("kill_leaves_no_process_and_no_cgroup") {
        return;
    }
    let local = start_local("kill", &[]);
    let marker = marker("kill");
    let args: Vec<&str> = marker.split(' ').collect();
    let mut run = local
        .command(&["run", "--name", "victim", "--", args[0], args[1]])
        .spawn()
        .expect("agora run starts");
    let task = wait_for_task(&local, "victim", "TASK_RUNNING");
    assert!(!processes_like(&marker).is_empty(), "the task's process runs");
    let cgroups = cgroup_dirs(&local.cgroups_root);
    assert!(
        cgroups.iter().any(|d| d.to_string_lossy().contains(&task)),
        "the task has a cgroup under {}: {cgroups:?}",
        local.cgroups_root
    );

    let output = local.agora(&["kill", &task]);
    assert!(output.status.success(), "{}", describe(&output));
    let status = wait_timeout(&mut run, Duration::from_secs(15)).expect("agora run ends after the kill");
    assert!(!status.success(), "a killed task exits non-zero: {status}");
    assert!(
        eventually(Duration::from_secs(5), || processes_like(&marker)
            .is_empty()
            .then_some(()))
        .is_some(),
        "left behind: {:?}",
        processes_like(&marker)
    );
    let left: Vec<_> = cgroup_dirs(&local.cgroups_root)
        .into_iter()
        .filter(|d| d.to_string_lossy().contains(&task))
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

#[test]
fn killing_an_unknown_task_says_so_in_one_line() {
    let local = start_local("kill-unknown", &[]);
    let output = local.agora(&["kill", "no-such-task"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no-such-task"), "{stderr}");
}

#[test]
fn ctrl_c_of_local_kills_its_tasks_and_removes_their_cgroups() {
    if !cgroups_available("ctrl_c_of_local_kills_its_tasks_and_removes_their_cgroups") {
        return;
    }
    let mut local = start_local("sigint", &[]);
    let marker = marker("sigint");
    let args: Vec<&str> = marker.split(' ').collect();
    let mut run = local
        .command(&["run", "--name", "sleeper", "--", args[0], args[1]])
        .spawn()
        .expect("agora run starts");
    wait_for_task(&local, "sleeper", "TASK_RUNNING");
    assert!(!cgroup_dirs(&local.cgroups_root).is_empty(), "the task has a cgroup");

    let status = local.stop("INT").expect("agora local stops on SIGINT");
    assert!(status.success(), "agora local exits 0: {status}");
    assert!(
        processes_like(&marker).is_empty(),
        "left behind: {:?}",
        processes_like(&marker)
    );
    assert_eq!(cgroup_dirs(&local.cgroups_root), Vec::<std::path::PathBuf>::new());
    // `agora run` loses its master and gives up.
    if wait_timeout(&mut run, Duration::from_secs(15)).is_none() {
        let _ = run.kill();
        panic!("agora run did not end once the cluster stopped");
    }
}
