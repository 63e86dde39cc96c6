//! SVG plots for the benchmark commands: panels side by side, each a log–log
//! chart of a few lines (e.g. median and p99 cycle time) against a swept
//! count, with a dashed horizontal target line; the panels share the y axis.

use anyhow::anyhow;
use plotters::prelude::*;
use std::path::Path;

/// One line of a panel: `(x, y)` points in x order.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) points: Vec<(f64, f64)>,
    /// A guide (e.g. "linear"): grey, dashed, no markers; otherwise a
    /// measured series in the next colour.
    pub(crate) guide: bool,
}

/// One chart.
#[derive(Debug)]
pub(crate) struct Panel {
    pub(crate) caption: String,
    pub(crate) x_desc: String,
    pub(crate) y_desc: String,
    pub(crate) lines: Vec<Line>,
    /// A horizontal dashed line: (y, label).
    pub(crate) target: Option<(f64, String)>,
}

/// Line colours, in order: blue, orange, green, purple.
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Writes `panels`, side by side under `title`, to the SVG file `path`.
pub(crate) fn write_svg(path: &Path, title: &str, panels: &[Panel]) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting {}: {e}", path.display());
    let width = 600 * u32::try_from(panels.len().max(1)).unwrap_or(1);
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| err(&e))?;
    let ys = panels.iter().flat_map(|panel| {
        let measured = panel.lines.iter().filter(|l| !l.guide);
        measured
            .flat_map(|l| l.points.iter().map(|p| positive(p.1)))
            .chain(panel.target.as_ref().map(|t| positive(t.0)))
    });
    let (y_min, y_max) = bounds(ys, 0.1, 100.0);
    // A margin on each side, so end points are not on the frame.
    let y_range = (y_min / 1.5, y_max * 1.5);
    for (panel, area) in panels.iter().zip(root.split_evenly((1, panels.len().max(1)))) {
        draw_panel(&area, panel, y_range).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type AreaError = DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>;

/// Log axes cannot show 0 or less: such values are drawn at 0.001.
fn positive(v: f64) -> f64 {
    if v > 0.0 { v } else { 1e-3 }
}

fn draw_panel(area: &Area<'_>, panel: &Panel, (y0, y1): (f64, f64)) -> Result<(), AreaError> {
    let xs = panel.lines.iter().flat_map(|l| l.points.iter().map(|p| positive(p.0)));
    let (x_min, x_max) = bounds(xs, 1.0, 10.0);
    let (x0, x1) = (x_min / 1.5, x_max * 1.5);

    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(ticks(x0, x1)),
            (y0..y1).log_scale().with_key_points(ticks(y0, y1)),
        )?;
    chart
        .configure_mesh()
        .x_desc(panel.x_desc.as_str())
        .y_desc(panel.y_desc.as_str())
        .x_label_formatter(&|x| count(*x))
        .y_label_formatter(&|y| number(*y))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    let mut colours = COLOURS.iter().cycle();
    for line in &panel.lines {
        let points = line.points.iter().map(|&(x, y)| (positive(x), positive(y)));
        if line.guide {
            let style = BLACK.mix(0.45).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(points, 3, 3, style))?
                .label(line.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            continue;
        }
        let style = colours.next().unwrap_or(&BLACK).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style).point_size(3))?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    if let Some((y, label)) = &panel.target {
        let style = RED.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new([(x0, *y), (x1, *y)], 6, 4, style))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// (min, max) of `values`, or the defaults if there are none.
fn bounds(values: impl Iterator<Item = f64>, low: f64, high: f64) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .unwrap_or((low, high))
}

/// Tick values 1, 2, 5, 10, 20, 50, … within `lo..=hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        out.extend(
            [1.0, 2.0, 5.0]
                .map(|m| m * decade)
                .into_iter()
                .filter(|t| (lo..=hi).contains(t)),
        );
        decade *= 10.0;
    }
    out
}

/// An axis count: 1, 500, 5k, 50k.
fn count(x: f64) -> String {
    if x >= 1_000.0 {
        format!("{}k", number(x / 1_000.0))
    } else {
        number(x)
    }
}

/// A tick value without trailing zeros: 0.5, 2, 10, 250.
fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(count(1.0), "1");
        assert_eq!(count(500.0), "500");
        assert_eq!(count(5_000.0), "5k");
        assert_eq!(count(50_000.0), "50k");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(10.0), "10");
        assert_eq!(ticks(0.7, 60.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
    }

    #[test]
    fn writes_an_svg() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("agora-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("t.svg");
        let panel = |caption: &str| Panel {
            caption: caption.to_owned(),
            x_desc: "agents".to_owned(),
            y_desc: "cycle time (ms)".to_owned(),
            lines: vec![Line {
                label: "median".to_owned(),
                points: vec![(1_000.0, 1.5), (10_000.0, 20.0), (50_000.0, 0.0)],
                guide: false,
            }],
            target: Some((10.0, "target 10 ms".to_owned())),
        };
        write_svg(&path, "test", &[panel("a"), panel("b")])?;
        let svg = std::fs::read_to_string(&path)?;
        std::fs::remove_dir_all(&dir)?;
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("target 10 ms"));
        Ok(())
    }
}
