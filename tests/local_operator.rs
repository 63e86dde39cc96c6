//! The operator commands against `agora local`: listings as JSON and
//! tables, logs of a finished task, and errors a person can act on.
#![allow(clippy::disallowed_methods)] // black-box tests wait on real time

mod common;

use common::*;

#[test]
fn ps_agents_and_frameworks_list_the_cluster() {
    let local = start_local("ps", &[]);
    let output = local.agora(&["run", "--name", "listed", "--", "echo hi"]);
    assert!(output.status.success(), "{}", describe(&output));

    let task = tasks(&local)
        .into_iter()
        .find(|t| t["name"] == "listed")
        .expect("the finished task is listed with --all");
    assert_eq!(task["state"], "TASK_FINISHED", "{task}");
    assert_eq!(task["mem"], 32.0, "{task}");
    assert!(
        task["id"].as_str().is_some_and(|id| id.starts_with("listed-")),
        "{task}"
    );

    let output = local.agora(&["agents", "--json"]);
    assert!(output.status.success(), "{}", describe(&output));
    let agents: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["status"], "active");
    assert!(
        agents[0]["total"].as_str().is_some_and(|t| t.contains("cpus:")),
        "{agents:?}"
    );

    let output = local.agora(&["frameworks", "--json"]);
    assert!(output.status.success(), "{}", describe(&output));
    let _: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");

    for (command, header) in [("ps", "ID"), ("agents", "HOSTNAME"), ("frameworks", "NAME")] {
        let output = local.agora(&[command]);
        assert!(output.status.success(), "{}", describe(&output));
        let table = text(&output.stdout);
        assert!(table.lines().next().is_some_and(|l| l.contains(header)), "{table}");
    }
}

#[test]
fn logs_print_a_finished_tasks_stdout_and_stderr() {
    let local = start_local("logs", &[]);
    let output = local.agora(&["run", "--name", "talker", "--", "echo out; echo err >&2"]);
    assert!(output.status.success(), "{}", describe(&output));
    let task = tasks(&local)
        .into_iter()
        .find(|t| t["name"] == "talker")
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .expect("the task is listed");

    let stdout = local.agora(&["logs", &task]);
    assert!(stdout.status.success(), "{}", describe(&stdout));
    assert_eq!(text(&stdout.stdout), "out\n");
    let stderr = local.agora(&["logs", "--stderr", &task]);
    assert_eq!(text(&stderr.stdout), "err\n", "{}", describe(&stderr));
    // Following a finished task prints it all and ends.
    let followed = local.agora(&["logs", "--follow", &task]);
    assert!(followed.status.success(), "{}", describe(&followed));
    assert_eq!(text(&followed.stdout), "out\n");
}

#[test]
fn reserve_and_unreserve_change_an_agents_resources() {
    let local = start_local("reserve", &[]);
    let agent = |local: &Local| -> serde_json::Value {
        let output = local.agora(&["agents", "--json"]);
        assert!(output.status.success(), "{}", describe(&output));
        let agents: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");
        agents[0].clone()
    };
    let id = agent(&local)["id"].as_str().expect("an agent id").to_owned();

    let output = local.agora(&["reserve", "--agent", &id, "cpus(ads):0.5;mem(ads):32"]);
    assert!(output.status.success(), "{}", describe(&output));
    let total = agent(&local)["total"].as_str().expect("a total").to_owned();
    assert!(
        total.contains("cpus(ads):0.5") && total.contains("mem(ads):32"),
        "{total}"
    );

    // Errors name what was wrong, and change nothing.
    let output = local.agora(&["unreserve", "--agent", &id, "cpus(ads):1"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains(&format!(
            "cannot unreserve cpus(ads):1 on agent {id}: cpus(ads):1 is not dynamically reserved on the agent"
        )),
        "{}",
        describe(&output)
    );
    let output = local.agora(&["reserve", "--agent", "nope", "cpus(ads):1"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("agent nope is not known to this master"),
        "{}",
        describe(&output)
    );
    let output = local.agora(&["reserve", "--agent", &id, "cpus(ads):"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("invalid resources \"cpus(ads):\""),
        "{}",
        describe(&output)
    );

    let output = local.agora(&["unreserve", "--agent", &id, "cpus(ads):0.5;mem(ads):32"]);
    assert!(output.status.success(), "{}", describe(&output));
    let total = agent(&local)["total"].as_str().expect("a total").to_owned();
    assert!(!total.contains("(ads)"), "{total}");
}

#[test]
fn commands_say_when_no_master_answers() {
    for args in [
        &["ps"][..],
        &["run", "--", "true"],
        &["logs", "t"],
        &["kill", "t"],
        &["reserve", "--agent", "a", "cpus(ads):1"],
    ] {
        let output = agora()
            .arg(args[0])
            .args(["--master", "127.0.0.1:1"])
            .args(&args[1..])
            .env("RUST_LOG", "warn")
            .output()
            .expect("agora runs");
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("cannot reach the master at 127.0.0.1:1: connection refused")
                && stderr.contains("agora local"),
            "{args:?}: {stderr}"
        );
    }
}
