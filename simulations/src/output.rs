//! Reports as people and tools read them: a terminal table, JSON, CSV, and
//! SVG plots (utilization over time; a sweep's metrics against its
//! parameter). Every file here depends only on the report, so the same
//! config and seed give byte-identical files.

use crate::error::OutputError;
use crate::metrics::Report;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The summary table printed after a run.
pub fn summary_table(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} machines, {:.0} s simulated, policy {}, seed {}, {} events",
        report.name, report.machines, report.duration, report.policy, report.seed, report.events
    );
    let _ = writeln!(
        s,
        "{:<10} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "framework",
        "jobs",
        "aband.",
        "busyness",
        "wait mean",
        "wait p50",
        "wait p90",
        "wait p99",
        "full p90",
        "attempts"
    );
    for f in &report.frameworks {
        let w = &f.wait_first_attempt;
        let _ = writeln!(
            s,
            "{:<10} {:>7} {:>7} {:>9.4} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.2}",
            f.name,
            f.jobs_submitted,
            f.jobs_abandoned,
            f.busyness,
            w.mean,
            w.p50,
            w.p90,
            w.p99,
            f.wait_fully_scheduled.p90,
            f.mean_attempts
        );
    }
    let m = &report.master;
    let _ = writeln!(
        s,
        "utilization: cpu {:.3} mem {:.3}; held in offers: cpu {:.3} mem {:.3}",
        report.mean_cpu_used, report.mean_mem_used, report.mean_cpu_offered, report.mean_mem_offered
    );
    let _ = writeln!(
        s,
        "master: {} allocation cycles, {} offers made, {} accepted, {} declined, {} rescinded, {} tasks launched",
        m.allocation_cycles, m.offers_made, m.offers_accepted, m.offers_declined, m.offers_rescinded, m.tasks_launched
    );
    s
}

fn write(path: &Path, contents: &str) -> Result<(), OutputError> {
    std::fs::write(path, contents).map_err(|source| OutputError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The report as pretty JSON (without the samples, which go to CSV).
pub fn report_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Samples as CSV: time, utilization, offers held, then per framework its
/// dominant share and cpus held in offers.
pub fn samples_csv(report: &Report) -> String {
    let mut s = String::from("t,cpu_used,mem_used,cpu_offered,mem_offered");
    for name in &report.sample_frameworks {
        let _ = write!(s, ",share_{name},cpu_offered_{name}");
    }
    s.push('\n');
    for x in &report.samples {
        let _ = write!(
            s,
            "{},{:.6},{:.6},{:.6},{:.6}",
            x.t, x.cpu_used, x.mem_used, x.cpu_offered, x.mem_offered
        );
        for (share, held) in x.shares.iter().zip(&x.cpu_offered_by) {
            let _ = write!(s, ",{share:.6},{held:.6}");
        }
        s.push('\n');
    }
    s
}

/// Per-framework results as CSV.
pub fn frameworks_csv(report: &Report) -> String {
    let mut s = String::from(
        "framework,jobs,fully_scheduled,abandoned,never_attempted,busyness,wait_mean,wait_p50,wait_p90,wait_p99,full_mean,full_p50,full_p90,full_p99,mean_attempts,callbacks,offers_received\n",
    );
    for f in &report.frameworks {
        let (w, g) = (&f.wait_first_attempt, &f.wait_fully_scheduled);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.4},{},{}",
            f.name,
            f.jobs_submitted,
            f.jobs_fully_scheduled,
            f.jobs_abandoned,
            f.jobs_never_attempted,
            f.busyness,
            w.mean,
            w.p50,
            w.p90,
            w.p99,
            g.mean,
            g.p50,
            g.p90,
            g.p99,
            f.mean_attempts,
            f.callbacks,
            f.offers_received
        );
    }
    s
}

/// Writes `summary.json`, `samples.csv`, `frameworks.csv` and
/// `utilization.svg` into `dir` (created if needed).
pub fn write_outputs(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let files = [
        ("summary.json", report_json(report)),
        ("samples.csv", samples_csv(report)),
        ("frameworks.csv", frameworks_csv(report)),
    ];
    let mut written = Vec::new();
    for (name, contents) in files {
        let path = dir.join(name);
        write(&path, &contents)?;
        written.push(path);
    }
    let svg = dir.join("utilization.svg");
    plot_utilization(report, &svg)?;
    written.push(svg);
    Ok(written)
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> OutputError {
    OutputError::Plot {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// One line of a plot.
#[derive(Clone, Debug)]
pub struct Series {
    /// Its legend.
    pub name: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
    /// Its color.
    pub color: RGBColor,
}

type Metric = fn(&crate::metrics::Sample) -> f64;

/// Cpu and memory used, and held in offers, over time.
pub fn plot_utilization(report: &Report, path: &Path) -> Result<(), OutputError> {
    let series: [(&str, Metric, RGBColor); 4] = [
        ("cpu used", |s| s.cpu_used, BLUE),
        ("mem used", |s| s.mem_used, GREEN),
        ("cpu in offers", |s| s.cpu_offered, RED),
        ("mem in offers", |s| s.mem_offered, MAGENTA),
    ];
    let lines: Vec<Series> = series
        .iter()
        .map(|(name, f, color)| Series {
            name: (*name).to_owned(),
            points: report.samples.iter().map(|s| (s.t / 3600.0, f(s))).collect(),
            color: *color,
        })
        .collect();
    let title = format!("{}: utilization ({})", report.name, report.policy);
    line_plot(
        path,
        &title,
        "simulated hours",
        "fraction of the cluster",
        &lines,
        false,
    )
}

/// The mesh, the series and the legend of [`line_plot`], for either x axis.
fn draw_lines<'a, X>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    path: &Path,
    x_label: &str,
    y_label: &str,
    lines: &[Series],
) -> Result<(), OutputError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    for line in lines {
        let c = line.color;
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), c.stroke_width(2)))
            .map_err(|e| plot_error(path, e))?
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    Ok(())
}

/// A line plot of several named series; `log_x` for sweeps over decades.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Series],
    log_x: bool,
) -> Result<(), OutputError> {
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.05;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60);
    if log_x {
        let chart = builder
            .build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), 0.0..y1)
            .map_err(|e| plot_error(path, e))?;
        draw_lines(chart, path, x_label, y_label, lines)?;
    } else {
        let chart = builder
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(|e| plot_error(path, e))?;
        draw_lines(chart, path, x_label, y_label, lines)?;
    }
    root.present().map_err(|e| plot_error(path, e))?;
    Ok(())
}
