//! End-to-end runs of the simulator on small clusters: reproducibility, the
//! SDK's batch framework unchanged, the analytic busyness of the model, the
//! trace replay and the master's invariants after every step.

use agora_proto::CommandInfo;
use agora_sdk::TaskRequest;
use agora_sdk::frameworks::{Batch, BatchConfig, TaskTemplate};
use agora_sim::framework::SdkFramework;
use agora_sim::{SimConfig, Simulation};
use std::path::Path;
use std::time::Duration;

/// Two frameworks on 40 machines, pre-filled to half, for ten minutes.
const SMALL: &str = r#"
    name = "small"
    duration = 600.0
    sample_interval = 30.0
    [cluster]
    machines = 40
    cpus = 4.0
    mem = 16384.0
    prefill = 0.5
    [network]
    delay = { kind = "uniform", min = 0.0002, max = 0.002 }
    [[framework]]
    name = "batch"
    t_job = 0.1
    t_task = 0.005
    [framework.jobs]
    inter_arrival = { kind = "exponential", mean = 10.0 }
    tasks = { kind = "exponential", mean = 10.0 }
    duration = { kind = "exponential", mean = 60.0 }
    cpus = { kind = "constant", value = 1.0 }
    mem = { kind = "lognormal", mu = 7.0, sigma = 0.5 }
    [[framework]]
    name = "service"
    t_job = 1.0
    t_task = 0.005
    [framework.jobs]
    inter_arrival = { kind = "exponential", mean = 20.0 }
    tasks = { kind = "uniform", min = 1.0, max = 5.0 }
    duration = { kind = "normal", mean = 300.0, std_dev = 50.0 }
    cpus = { kind = "constant", value = 1.0 }
    mem = { kind = "empirical", cdf = [[512.0, 0.0], [1024.0, 0.5], [4096.0, 1.0]] }
"#;

fn files_of(config: &SimConfig, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let report = agora_sim::run(config.clone()).expect("runs");
    let written = agora_sim::output::write_outputs(&report, dir).expect("writes");
    written
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(p).expect("reads back"))
        })
        .collect()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agora-sim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn same_config_and_seed_give_byte_identical_outputs() {
    let config = SimConfig::parse(SMALL, &[]).expect("valid");
    let a = files_of(&config, &temp_dir("a"));
    let b = files_of(&config, &temp_dir("b"));
    assert_eq!(a.len(), 4);
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    let other = SimConfig::parse(SMALL, &["seed=2".to_owned()]).expect("valid");
    let c = files_of(&other, &temp_dir("c"));
    assert_ne!(a[0].1, c[0].1, "another seed gives another run");
}

#[test]
fn both_policies_keep_the_master_invariants_and_never_miss_a_master_timer() {
    for policy in ["fair-share", "offer-all-to-one"] {
        let config =
            SimConfig::parse(SMALL, &[format!("master.policy={policy}"), "duration=200".to_owned()]).expect("valid");
        let report = Simulation::new(config)
            .expect("builds")
            .checked()
            .run()
            .expect("invariants hold");
        let batch = report.framework("batch").expect("batch");
        assert!(batch.jobs_submitted > 5, "{policy}: {batch:?}");
        assert!(batch.jobs_fully_scheduled > 0, "{policy}: {batch:?}");
        assert!(report.master.offers_made > 0 && report.master.tasks_finished > 0);
        assert_eq!(report.master.calls_refused, 0, "{policy}");
    }
}

#[test]
fn the_sdk_batch_framework_runs_unchanged() {
    // One idle job-queue framework (a config needs one) and the SDK's Batch.
    let config = SimConfig::parse(
        r#"
        duration = 300.0
        [cluster]
        machines = 3
        cpus = 2.0
        mem = 4096.0
        [[framework]]
        name = "idle"
        "#,
        &[],
    )
    .expect("valid");
    let mut sim = Simulation::new(config).expect("builds");
    let request = TaskRequest::new("cpus:0.5;mem:128".parse().expect("resources"));
    // 20 tasks of 5 s on 6 cpus: they cannot all run at once.
    let template = TaskTemplate::new("hello", CommandInfo::shell("sleep 5"), request);
    let batch = Batch::new(BatchConfig::new(20, template)).expect("valid batch");
    let info = agora_proto::FrameworkInfo::new("batch-example");
    let framework = SdkFramework::new(batch, info, Duration::from_millis(10), Duration::from_millis(1));
    let index = sim.add_framework("batch-example", Box::new(framework));
    sim.run_until_end().expect("runs");
    let framework = sim.framework(index).expect("exists");
    let batch = framework
        .as_any()
        .downcast_ref::<SdkFramework<Batch>>()
        .expect("the batch framework");
    assert!(batch.session().scheduler().all_finished(), "every task finished");
    assert_eq!(batch.session().scheduler().final_states().len(), 20);
    assert!(batch.session().exit_requested(), "it tore itself down when done");
}

#[test]
fn busyness_without_contention_matches_the_analytic_value() {
    // λ = 0.1 jobs/s; t_job + mean tasks × t_task = 0.1 + 20 × 0.025 = 0.6 s:
    // busyness ≈ 0.06, as the Omega paper's batch scheduler. Tasks last 1 s
    // on 400 cpus, so nothing ever waits for resources.
    let config = SimConfig::parse(
        r#"
        duration = 5000.0
        [cluster]
        machines = 100
        cpus = 4.0
        mem = 16384.0
        [[framework]]
        name = "batch"
        t_job = 0.1
        t_task = 0.025
        [framework.jobs]
        inter_arrival = { kind = "exponential", mean = 10.0 }
        tasks = { kind = "exponential", mean = 20.0 }
        duration = { kind = "constant", value = 1.0 }
        cpus = { kind = "constant", value = 1.0 }
        mem = { kind = "constant", value = 1024.0 }
        "#,
        &[],
    )
    .expect("valid");
    let mut sim = Simulation::new(config).expect("builds");
    sim.run_until_end().expect("runs");
    let report = sim.report();
    let batch = report.framework("batch").expect("batch");
    assert_eq!(batch.jobs_abandoned, 0);
    assert!(
        (batch.mean_attempts - 1.0).abs() < 1e-9,
        "one attempt per job: {}",
        batch.mean_attempts
    );
    // Exactly the decision time of the jobs that ran...
    let records = sim.framework(0).expect("batch").job_records();
    let busy: f64 = records
        .iter()
        .map(|r| f64::from(r.attempts) * 0.1 + f64::from(r.placed) * 0.025)
        .sum();
    assert!(
        (batch.busyness - busy / 5000.0).abs() < 1e-6,
        "{} vs {}",
        batch.busyness,
        busy / 5000.0
    );
    // ...and close to the analytic λ × (t_job + E[tasks] × t_task).
    let analytic = 0.1 * (0.1 + 20.5 * 0.025);
    assert!(
        (batch.busyness - analytic).abs() / analytic < 0.15,
        "busyness {} vs analytic {analytic}",
        batch.busyness
    );
    assert!(batch.wait_first_attempt.p99 < 2.5, "{:?}", batch.wait_first_attempt);
}

#[test]
fn the_trace_sample_is_replayed_to_the_right_frameworks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/trace.toml");
    let config = SimConfig::load(&path, &[]).expect("valid");
    let report = agora_sim::run(config).expect("runs");
    let batch = report.framework("batch").expect("batch");
    let service = report.framework("service").expect("service");
    assert_eq!((batch.jobs_submitted, service.jobs_submitted), (2, 1));
    assert_eq!(batch.jobs_fully_scheduled + service.jobs_fully_scheduled, 3);
    // 3 + 1 + 2 tasks.
    assert_eq!(report.master.tasks_launched, 6);
}

#[test]
fn a_saturated_framework_is_busy_all_the_time_and_no_more() {
    // Service decisions of 50 s with a job every 20 s: always deciding, and a
    // decision running past the end counts only up to the end.
    let config = SimConfig::parse(
        SMALL,
        &["framework.service.t_job=50".to_owned(), "duration=300".to_owned()],
    )
    .expect("valid");
    let report = agora_sim::run(config).expect("runs");
    let service = report.framework("service").expect("service");
    assert!(service.busyness <= 1.0 + 1e-9, "{}", service.busyness);
    assert!(service.busyness > 0.7, "{}", service.busyness);
    // Jobs that arrived while it was busy count as submitted, never attempted.
    assert!(service.jobs_never_attempted > 0, "{service:?}");
}

#[test]
fn measured_decision_time_charges_the_callbacks_cpu_time() {
    // Not reproducible by design; only its order of magnitude is checked.
    let config = SimConfig::parse(
        SMALL,
        &[
            "framework.batch.decision=measured".to_owned(),
            "framework.batch.measured_factor=1000".to_owned(),
            "duration=200".to_owned(),
        ],
    )
    .expect("valid");
    let report = agora_sim::run(config).expect("runs");
    let batch = report.framework("batch").expect("batch");
    assert!(batch.busyness > 0.0 && batch.busyness <= 1.0, "{}", batch.busyness);
}

#[test]
fn a_sweep_runs_its_points_in_parallel_and_in_order() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/trace.toml");
    let values = ["0.1".to_owned(), "10".to_owned(), "1".to_owned()];
    let done = std::sync::atomic::AtomicUsize::new(0);
    let points = agora_sim::sweep::run_sweep(&path, &[], "framework.service.t_job", &values, 2, &|_| {
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .expect("runs");
    assert_eq!(done.into_inner(), 3);
    let order: Vec<&str> = points.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(order, ["0.1", "10", "1"]);
    let busy = |i: usize| points[i].report.framework("service").expect("service").busyness;
    assert!(busy(1) > busy(2) && busy(2) > busy(0), "busyness grows with t_job");
    let table = agora_sim::sweep::sweep_table("framework.service.t_job", &points, true);
    assert_eq!(table.lines().count(), 4);
    let svg = temp_dir("sweep").with_extension("svg");
    agora_sim::sweep::plot_sweep("framework.service.t_job", &points, &svg, "sweep").expect("plots");
    assert!(std::fs::metadata(&svg).is_ok_and(|m| m.len() > 1000));
}
