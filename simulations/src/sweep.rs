//! Sweeps and capacity planning: the same config run at several values of
//! one key, in parallel on all cores; and a search for the smallest value
//! of a key (the cluster size, usually) that meets a target.

use crate::config::SimConfig;
use crate::error::{ConfigError, OutputError, SimError};
use crate::metrics::Report;
use crate::output::{Series, line_plot};
use plotters::style::{BLUE, CYAN, GREEN, MAGENTA, RED, RGBColor};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `PARAM=V1,V2,...` split into the key and its values.
pub fn parse_sweep(spec: &str) -> Result<(String, Vec<String>), ConfigError> {
    let bad = || ConfigError::UnknownKey {
        key: spec.to_owned(),
        reason: "expected PARAM=V1,V2,...".to_owned(),
    };
    let (key, values) = spec.split_once('=').ok_or_else(bad)?;
    let values: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if key.trim().is_empty() || values.is_empty() {
        return Err(bad());
    }
    Ok((key.trim().to_owned(), values))
}

/// One point of a sweep.
#[derive(Clone, Debug)]
pub struct Point {
    /// The value the key had.
    pub value: String,
    /// What the run measured.
    pub report: Report,
}

/// Runs `config_path` with `overrides` plus `key=value` for each value, on
/// `threads` threads; `progress` is called after each point with the number
/// done. Points come back in the order of `values`.
pub fn run_sweep(
    config_path: &Path,
    overrides: &[String],
    key: &str,
    values: &[String],
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Point>, SimError> {
    // Every point's config is checked before any runs.
    let configs = values
        .iter()
        .map(|v| {
            let mut o = overrides.to_vec();
            o.push(format!("{key}={v}"));
            SimConfig::load(config_path, &o)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Report, SimError>>>> = Mutex::new(vec![None; configs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, configs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(config) = configs.get(i) else { break };
                    let result = crate::run(config.clone());
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(result);
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    values
        .iter()
        .zip(results)
        .map(|(value, r)| {
            let report = r.unwrap_or_else(|| {
                Err(SimError::Framework {
                    name: "sweep".to_owned(),
                    reason: format!("point {value} did not run"),
                })
            })?;
            Ok(Point {
                value: value.clone(),
                report,
            })
        })
        .collect()
}

/// The sweep as a table (also valid CSV when `csv`).
pub fn sweep_table(key: &str, points: &[Point], csv: bool) -> String {
    let mut s = String::new();
    let names: Vec<&str> = points
        .first()
        .map(|p| p.report.frameworks.iter().map(|f| f.name.as_str()).collect())
        .unwrap_or_default();
    let sep = if csv { "," } else { "  " };
    let mut header = vec![key.to_owned()];
    for n in &names {
        for m in ["busyness", "abandoned", "jobs", "wait_p90", "wait_p99"] {
            header.push(format!("{n}_{m}"));
        }
    }
    header.extend(["cpu_used".to_owned(), "cpu_offered".to_owned(), "events".to_owned()]);
    let _ = writeln!(s, "{}", header.join(sep));
    for p in points {
        let mut row = vec![p.value.clone()];
        for f in &p.report.frameworks {
            row.push(format!("{:.4}", f.busyness));
            row.push(f.jobs_abandoned.to_string());
            row.push(f.jobs_submitted.to_string());
            row.push(format!("{:.3}", f.wait_first_attempt.p90));
            row.push(format!("{:.3}", f.wait_first_attempt.p99));
        }
        row.push(format!("{:.4}", p.report.mean_cpu_used));
        row.push(format!("{:.4}", p.report.mean_cpu_offered));
        row.push(p.report.events.to_string());
        let _ = writeln!(s, "{}", row.join(sep));
    }
    s
}

const COLORS: [RGBColor; 5] = [BLUE, RED, GREEN, MAGENTA, CYAN];

/// Plots each framework's busyness and fraction of jobs abandoned against
/// the swept value (log scale when the values span two decades or more).
pub fn plot_sweep(key: &str, points: &[Point], path: &Path, title: &str) -> Result<(), OutputError> {
    // Values that are not all numbers (policies, say) are plotted by position.
    let all_numeric = points.iter().all(|p| p.value.parse::<f64>().is_ok());
    let numeric: Vec<(f64, &Point)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = if all_numeric {
                p.value.parse::<f64>().unwrap_or(i as f64)
            } else {
                i as f64
            };
            (x, p)
        })
        .collect();
    let names: Vec<String> = points
        .first()
        .map(|p| p.report.frameworks.iter().map(|f| f.name.clone()).collect())
        .unwrap_or_default();
    let mut lines = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let busy = numeric
            .iter()
            .filter_map(|(x, p)| p.report.framework(name).map(|f| (*x, f.busyness)))
            .collect();
        let abandoned = numeric
            .iter()
            .filter_map(|(x, p)| {
                p.report
                    .framework(name)
                    .map(|f| (*x, f.jobs_abandoned as f64 / (f.jobs_submitted.max(1)) as f64))
            })
            .collect();
        lines.push(Series {
            name: format!("{name} busyness"),
            points: busy,
            color,
        });
        lines.push(Series {
            name: format!("{name} jobs abandoned (fraction)"),
            points: abandoned,
            color: color.mix_rgb(0.5),
        });
    }
    let positive = numeric.iter().all(|(x, _)| *x > 0.0);
    let (lo, hi) = numeric
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), (x, _)| (a.min(*x), b.max(*x)));
    let x_label = if all_numeric {
        key.to_owned()
    } else {
        let names: Vec<&str> = points.iter().map(|p| p.value.as_str()).collect();
        format!("{key}: {}", names.join(", "))
    };
    line_plot(
        path,
        title,
        &x_label,
        "fraction",
        &lines,
        all_numeric && positive && hi / lo >= 100.0,
    )
}

/// Lightens a color towards white.
trait Mix {
    fn mix_rgb(self, amount: f64) -> Self;
}

impl Mix for RGBColor {
    fn mix_rgb(self, amount: f64) -> Self {
        let m = |c: u8| (f64::from(c) + (255.0 - f64::from(c)) * amount) as u8;
        Self(m(self.0), m(self.1), m(self.2))
    }
}

/// The answer of a capacity search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The smallest value that met the target, if any in the range did.
    pub answer: Option<u64>,
    /// Every value tried with its metric, sorted by value.
    pub curve: Vec<(u64, f64, bool)>,
}

/// A target such as `p99_wait<30`: a metric of one framework and a bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `wait_mean`, `wait_p50`, `wait_p90`, `wait_p99` (to the first
    /// attempt), `full_p99` (to fully scheduled, jobs never scheduled
    /// counting as infinite), `busyness` or `abandoned`.
    pub metric: String,
    /// The metric must be below this.
    pub below: f64,
    /// Whose metric (every framework's worst when `None`).
    pub framework: Option<String>,
}

impl Target {
    /// Parses `METRIC<VALUE`.
    pub fn parse(spec: &str, framework: Option<String>) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::Invalid {
            key: "--target".to_owned(),
            reason: reason.to_owned(),
        };
        let (metric, value) = spec.split_once('<').ok_or_else(|| bad("expected METRIC<VALUE"))?;
        let below = value
            .trim()
            .parse::<f64>()
            .map_err(|_| bad("the bound is not a number"))?;
        let target = Self {
            metric: metric.trim().to_owned(),
            below,
            framework,
        };
        let probe = crate::metrics::FrameworkReport::from_records("probe", &[], &[], 1.0);
        target.metric_of(&probe).ok_or_else(|| {
            bad("metric must be one of wait_mean, wait_p50, wait_p90, wait_p99, full_p99, busyness, abandoned")
        })?;
        Ok(target)
    }

    fn metric_of(&self, f: &crate::metrics::FrameworkReport) -> Option<f64> {
        Some(match self.metric.as_str() {
            "wait_mean" => f.wait_first_attempt.mean,
            "wait_p50" => f.wait_first_attempt.p50,
            "wait_p90" => f.wait_first_attempt.p90,
            "wait_p99" => f.wait_first_attempt.p99,
            "full_p99" => f.full_p99_all_jobs,
            "busyness" => f.busyness,
            "abandoned" => f.jobs_abandoned as f64,
            _ => return None,
        })
    }

    /// The metric in `report` (the worst framework's when none is named).
    pub fn value(&self, report: &Report) -> f64 {
        report
            .frameworks
            .iter()
            .filter(|f| self.framework.as_ref().is_none_or(|n| *n == f.name))
            .filter_map(|f| self.metric_of(f))
            .fold(0.0, f64::max)
    }
}

/// Finds the smallest value in `lo..=hi` for which `evaluate` meets the
/// target, by bisection (the metric is assumed to fall as the value grows,
/// as waits do with cluster size). `evaluate` returns the metric.
pub fn search_smallest(
    lo: u64,
    hi: u64,
    below: f64,
    mut evaluate: impl FnMut(u64) -> Result<f64, SimError>,
) -> Result<SearchResult, SimError> {
    let mut curve = Vec::new();
    let mut probe = |v: u64, curve: &mut Vec<(u64, f64, bool)>| -> Result<bool, SimError> {
        let m = evaluate(v)?;
        let ok = m < below;
        curve.push((v, m, ok));
        Ok(ok)
    };
    if !probe(hi, &mut curve)? {
        curve.sort_by_key(|c| c.0);
        return Ok(SearchResult { answer: None, curve });
    }
    if lo < hi && probe(lo, &mut curve)? {
        curve.sort_by_key(|c| c.0);
        return Ok(SearchResult {
            answer: Some(lo),
            curve,
        });
    }
    // Invariant: lo fails, hi meets the target.
    let (mut bad, mut good) = (lo, hi);
    while good - bad > 1 && good - bad > good / 100 {
        let mid = bad + (good - bad) / 2;
        if probe(mid, &mut curve)? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    curve.sort_by_key(|c| c.0);
    Ok(SearchResult {
        answer: Some(good),
        curve,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_specs_parse() {
        let (k, v) = parse_sweep("framework.service.t_job=0.01,0.1, 1").expect("valid");
        assert_eq!(k, "framework.service.t_job");
        assert_eq!(v, ["0.01", "0.1", "1"]);
        assert!(parse_sweep("nothing").is_err());
    }

    #[test]
    fn search_finds_the_threshold_within_one_percent() {
        // Metric 1000/x: below 30 from x = 34 on.
        let r = search_smallest(1, 1000, 30.0, |x| Ok(1000.0 / x as f64)).expect("runs");
        let answer = r.answer.expect("found");
        assert!((34..=44).contains(&answer), "{answer}");
        assert!(r.curve.windows(2).all(|w| w[0].0 < w[1].0));
        let none = search_smallest(1, 10, 30.0, |x| Ok(1000.0 / x as f64)).expect("runs");
        assert_eq!(none.answer, None);
    }

    #[test]
    fn targets_parse_and_reject_unknown_metrics() {
        assert_eq!(Target::parse("wait_p99<30", None).expect("valid").below, 30.0);
        assert!(Target::parse("latency<3", None).is_err());
    }
}
