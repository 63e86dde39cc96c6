//! The Omega paper's two-level result, reproduced: the reference config with
//! the 2012 "offer everything to one framework" policy and with Agora's
//! default fair-share policy, the service framework's t_job swept over
//! {0.01, 0.1, 1, 10, 100} s; batch busyness and abandoned jobs of both in
//! one table and one plot.
//!
//! ```text
//! cargo run --release -p agora-sim --example reproduction -- [DURATION_SECS] [OUT_DIR]
//! ```
#![allow(clippy::disallowed_methods)] // a driver: it reports wall time

use agora_sim::output::{Series, line_plot};
use agora_sim::sweep::{Point, run_sweep};
use plotters::style::{BLUE, RED, RGBColor};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let duration: f64 = args.next().map_or(Ok(3600.0), |d| d.parse())?;
    let out = PathBuf::from(args.next().unwrap_or_else(|| "simulations/results".to_owned()));
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/omega-reference.toml");
    let values: Vec<String> = ["0.01", "0.1", "1", "10", "100"].map(str::to_owned).to_vec();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let started = std::time::Instant::now();
    let mut table = String::from(
        "| policy | service t_job (s) | batch busyness | batch jobs abandoned | batch jobs | batch wait p90 (s) | service busyness | cpu held in offers |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut lines = Vec::new();
    for (policy, color) in [("offer-all-to-one", RED), ("fair-share", BLUE)] {
        let overrides = vec![format!("duration={duration}"), format!("master.policy={policy}")];
        let points = run_sweep(
            &config,
            &overrides,
            "framework.service.t_job",
            &values,
            threads,
            &|done| {
                eprintln!("{policy}: {done}/5 points, {:.0} s", started.elapsed().as_secs_f64());
            },
        )?;
        for p in &points {
            row(&mut table, policy, p);
        }
        lines.extend(series(policy, &points, color));
    }
    // Busyness without contention: λ × (t_job + E[tasks] × t_task), E[tasks]
    // of a ceiled exponential of mean 100 being about 100.5.
    let analytic = 0.1 * (0.1 + 100.5 * 0.005);
    lines.push(Series {
        name: format!("no-contention batch busyness ({analytic:.3})"),
        points: vec![(0.01, analytic), (100.0, analytic)],
        color: RGBColor(128, 128, 128),
    });
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("reproduction.md"), &table)?;
    let title = format!(
        "Two-level starvation: batch vs service t_job ({:.0} s simulated)",
        duration
    );
    line_plot(
        &out.join("reproduction.svg"),
        &title,
        "service t_job (s)",
        "batch busyness / fraction of batch jobs abandoned",
        &lines,
        true,
    )?;
    print!("{table}");
    eprintln!("done in {:.0} s wall", started.elapsed().as_secs_f64());
    Ok(())
}

fn row(table: &mut String, policy: &str, p: &Point) {
    let r = &p.report;
    let (Some(b), Some(s)) = (r.framework("batch"), r.framework("service")) else {
        return;
    };
    let _ = writeln!(
        table,
        "| {policy} | {} | {:.4} | {} | {} | {:.2} | {:.4} | {:.3} |",
        p.value,
        b.busyness,
        b.jobs_abandoned,
        b.jobs_submitted,
        b.wait_first_attempt.p90,
        s.busyness,
        r.mean_cpu_offered
    );
}

fn series(policy: &str, points: &[Point], color: RGBColor) -> Vec<Series> {
    let pick = |f: &dyn Fn(&agora_sim::metrics::FrameworkReport) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| Some((p.value.parse::<f64>().ok()?, f(p.report.framework("batch")?))))
            .collect()
    };
    vec![
        Series {
            name: format!("{policy}: batch busyness"),
            points: pick(&|b| b.busyness),
            color,
        },
        Series {
            name: format!("{policy}: batch jobs abandoned (fraction)"),
            points: pick(&|b| b.jobs_abandoned as f64 / b.jobs_submitted.max(1) as f64),
            color: RGBColor(color.0 / 2 + 100, color.1 / 2 + 100, color.2 / 2 + 100),
        },
    ]
}
