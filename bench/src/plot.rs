//! The PNG plot embedded by the README: six panels of grouped bars (median, p10–p90
//! whiskers). Text is drawn with plotters' ab_glyph backend from a TrueType file (DejaVu Sans
//! from Debian's fonts-dejavu-core), so no fontconfig or system font lookup is involved.

use crate::results::Results;
use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const W: u32 = 1950;
const H: u32 = 1050;

pub fn register_font(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "read font {} (apt-get install fonts-dejavu-core)",
            path.display()
        )
    })?;
    // plotters keeps fonts for the whole process: leak the bytes once.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable TrueType font", path.display()))
}

fn color(rt: &str) -> RGBColor {
    match rt {
        "mantle" => RGBColor(31, 119, 180),
        "mantle-sentry" => RGBColor(148, 103, 189),
        "runc" => RGBColor(44, 160, 44),
        "crun" => RGBColor(214, 39, 40),
        "floor" => RGBColor(255, 127, 14),
        _ => RGBColor(127, 127, 127),
    }
}

/// median, p10, p90 of a metric for a column.
fn bar(r: &Results, metric: &str, col: &str) -> Option<Bar> {
    let s = r.get(metric, col)?.summary()?;
    Some((s.median, s.p10, s.p90))
}

/// (median, p10, p90) of one bar.
type Bar = (f64, f64, f64);
/// One legend entry: its label and a bar per group (None: not measured).
type BarSeries = (String, Vec<Option<Bar>>);

struct Panel<'a> {
    title: &'a str,
    y_desc: &'a str,
    groups: Vec<String>,
    /// (legend label, per-group value)
    series: Vec<BarSeries>,
    log: bool,
}

fn draw(area: &DrawingArea<BitMapBackend, Shift>, p: &Panel) -> Result<()> {
    let tf = |v: f64| if p.log { v.max(1e-9).log10() } else { v };
    let vals: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().flat_map(|&(m, _, hi)| [m, hi]))
        .collect();
    let max = vals.iter().cloned().fold(f64::MIN, f64::max);
    let min = vals.iter().cloned().fold(f64::MAX, f64::min);
    let (y0, y1) = if vals.is_empty() {
        (0.0, 1.0)
    } else if p.log {
        // Headroom above the tallest bar for the value labels and the legend.
        (tf(min).floor(), tf(max).ceil() + 1.0)
    } else {
        (0.0, max * 1.55)
    };
    let n = p.groups.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..y1)
        .map_err(|e| anyhow!("plot: {e}"))?;
    let groups = p.groups.clone();
    let log = p.log;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < groups.len() {
                groups[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc(p.y_desc)
        .y_label_formatter(&move |y| {
            if log {
                // Label whole decades only.
                if (y - y.round()).abs() > 0.01 {
                    return String::new();
                }
                crate::report::num(10f64.powf(y.round()))
            } else {
                crate::report::num(*y)
            }
        })
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    let k = p.series.len().max(1) as f64;
    let w = 0.8 / k;
    for (j, (label, values)) in p.series.iter().enumerate() {
        let c = color(label);
        let bars = values.iter().enumerate().filter_map(|(i, v)| {
            let (m, _, _) = (*v)?;
            let x0 = i as f64 - 0.4 + j as f64 * w;
            Some(Rectangle::new(
                [(x0, y0), (x0 + w * 0.9, tf(m))],
                c.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(|e| anyhow!("plot: {e}"))?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
        let whiskers = values.iter().enumerate().filter_map(|(i, v)| {
            let (_, lo, hi) = (*v)?;
            let xc = i as f64 - 0.4 + j as f64 * w + w * 0.45;
            Some(PathElement::new(
                vec![(xc, tf(lo)), (xc, tf(hi))],
                BLACK.stroke_width(2),
            ))
        });
        chart
            .draw_series(whiskers)
            .map_err(|e| anyhow!("plot: {e}"))?;
        let labels = values.iter().enumerate().filter_map(|(i, v)| {
            let (m, _, hi) = (*v)?;
            let xc = i as f64 - 0.4 + j as f64 * w;
            let y = tf(hi.max(m)) + (y1 - y0) * 0.03;
            Some(Text::new(
                crate::report::num(m),
                (xc, y),
                ("sans-serif", 12),
            ))
        });
        chart
            .draw_series(labels)
            .map_err(|e| anyhow!("plot: {e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    Ok(())
}

fn per_runtime(r: &Results, metrics: &[&str], cols: &[&str]) -> Vec<BarSeries> {
    cols.iter()
        .map(|c| {
            (
                c.to_string(),
                metrics.iter().map(|m| bar(r, m, c)).collect(),
            )
        })
        .collect()
}

pub fn render(path: &Path, r: &Results, title: &str) -> Result<()> {
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let root = root
        .titled(title, ("sans-serif", 26))
        .map_err(|e| anyhow!("plot: {e}"))?;
    let areas = root.split_evenly((2, 3));
    let rts = ["mantle", "mantle-sentry", "runc", "crun"];
    let present: Vec<&str> = rts
        .iter()
        .copied()
        .filter(|c| r.median("run", c).is_some())
        .collect();
    draw(
        &areas[0],
        &Panel {
            title: "Lifecycle of /bin/true (ms, lower is better)",
            y_desc: "ms",
            groups: vec!["create+start+wait+delete".into(), "run".into()],
            series: per_runtime(r, &["lifecycle.total", "run"], &present),
            log: false,
        },
    )?;
    draw(
        &areas[1],
        &Panel {
            title: "Lifecycle steps (ms)",
            y_desc: "ms",
            groups: vec![
                "create".into(),
                "start".into(),
                "wait".into(),
                "delete".into(),
            ],
            series: per_runtime(
                r,
                &[
                    "lifecycle.create",
                    "lifecycle.start",
                    "lifecycle.wait",
                    "lifecycle.delete",
                ],
                &present,
            ),
            log: false,
        },
    )?;
    let with = |m: &str| -> Vec<&str> {
        rts.iter()
            .copied()
            .filter(|c| r.median(m, c).is_some())
            .collect()
    };
    draw(
        &areas[2],
        &Panel {
            title: "Concurrent runs of /bin/true: batch wall time (ms)",
            y_desc: "ms",
            groups: vec!["wall time of the batch".into()],
            series: per_runtime(r, &["concurrent.wall"], &with("concurrent.wall")),
            log: false,
        },
    )?;
    draw(
        &areas[3],
        &Panel {
            title: "Runtime memory during a container's life (MiB)",
            y_desc: "MiB",
            groups: vec!["peak RSS (sum)".into(), "sum of VmHWM".into()],
            series: per_runtime(r, &["mem.peak_rss", "mem.hwm_sum"], &with("mem.peak_rss")),
            log: false,
        },
    )?;
    let sys_cols = ["host", "mantle", "mantle-sentry"];
    let probes = crate::syscalls::PROBES;
    let metrics: Vec<String> = probes.iter().map(|p| format!("sys.{p}")).collect();
    let metrics_ref: Vec<&str> = metrics.iter().map(String::as_str).collect();
    let mut series = per_runtime(r, &metrics_ref, &sys_cols);
    series.retain(|(_, v)| v.iter().any(Option::is_some));
    let mut groups: Vec<String> = probes
        .iter()
        .map(|p| match *p {
            "open_read_close" => "open/read/close".to_string(),
            "pipe_write_read" => "pipe w+r".to_string(),
            p => p.to_string(),
        })
        .collect();
    groups.push("notify floor".into());
    for (label, v) in &mut series {
        v.push(if label == "host" {
            bar(r, "unotify.sync_wakeup", "host")
        } else {
            None
        });
    }
    draw(
        &areas[4],
        &Panel {
            title: "Syscall cost (ns per call, log scale)",
            y_desc: "ns",
            groups,
            series,
            log: true,
        },
    )?;
    let files = with("files.untar");
    draw(
        &areas[5],
        &Panel {
            title: "File-heavy workload (ms)",
            y_desc: "ms",
            groups: vec!["untar".into(), "find -exec stat".into()],
            series: per_runtime(r, &["files.untar", "files.find_stat"], &files),
            log: false,
        },
    )?;
    root.present()
        .map_err(|e| anyhow!("plot: write {}: {e}", path.display()))?;
    Ok(())
}
