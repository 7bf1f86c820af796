//! The figures of `cargo xtask tables`, as SVG and PNG with plotters (pure Rust: the SVG and bitmap backends and
//! ab_glyph for text; no font-kit, no C libraries): popularity bars, the reasoning-length curve, GRPO vs LR-GRPO
//! (reward and validation NDCG against wall time) and inference-time bars.
//!
//! Text needs a font file: the first of [`FONT_CANDIDATES`] (or `$R3_FONT`) that exists is registered as
//! `sans-serif`. Without one the figures are skipped with a message naming the paths tried; the tables are still
//! rendered.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::manifest::{Experiment, Scale};
use crate::results::ResultFile;
use crate::tables::Results;

/// Font files tried in order (DejaVu Sans and Liberation Sans at their Debian, Fedora and Arch paths).
pub const FONT_CANDIDATES: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

/// Registers the first font found as `sans-serif` (once); `Err` lists the paths tried.
pub fn ensure_font() -> Result<PathBuf, String> {
    static FONT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var("R3_FONT").ok();
        let candidates: Vec<String> = env.into_iter().chain(FONT_CANDIDATES.iter().map(|s| s.to_string())).collect();
        for c in &candidates {
            if let Ok(bytes) = std::fs::read(c) {
                // plotters keeps registered fonts for the whole process: leak one copy.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(PathBuf::from(c));
                }
            }
        }
        Err(format!(
            "no font file found for the figures' text (tried {}; set R3_FONT to a .ttf file)",
            candidates.join(", ")
        ))
    })
    .clone()
}

/// One series of a bar chart: its name and one value (with an optional interval) per category.
pub type BarSeries = (String, Vec<Option<(f64, Option<[f64; 2]>)>>);

/// A bar chart.
pub struct Bars {
    /// The caption.
    pub title: String,
    /// The y axis' description.
    pub y_desc: String,
    /// The category names (x axis).
    pub categories: Vec<String>,
    /// The series (bars side by side within a category).
    pub series: Vec<BarSeries>,
}

/// A line chart (one or more panels side by side).
pub struct Lines {
    /// The panels, side by side.
    pub panels: Vec<Panel>,
}

/// A series of a line chart: its name and its points `(x, y, interval)`.
pub type LineSeries3 = (String, Vec<(f64, f64, Option<[f64; 2]>)>);

/// One panel of a line chart.
pub struct Panel {
    /// The caption.
    pub title: String,
    /// The x axis' description.
    pub x_desc: String,
    /// The y axis' description.
    pub y_desc: String,
    /// The series: name and points `(x, y, interval)`.
    pub series: Vec<LineSeries3>,
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    C[i % C.len()]
}

/// The y range covering `values` and 0, with 10% headroom.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = 0.1 * (hi - lo);
    (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
}

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let n = b.categories.len().max(1);
    let all = b
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .flat_map(|(y, ci)| std::iter::once(*y).chain(ci.iter().flat_map(|c| c.iter().copied())));
    let (lo, hi) = y_range(all);
    let cats = b.categories.clone();
    let fmt = move |x: &f64| {
        let r = x.round();
        if (x - r).abs() < 1e-6 && r >= 0.0 { cats.get(r as usize).cloned().unwrap_or_default() } else { String::new() }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&fmt)
        .y_desc(b.y_desc.as_str())
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let k = b.series.len().max(1);
    let width = 0.8 / k as f64;
    for (s, (name, values)) in b.series.iter().enumerate() {
        let c = color(s);
        let bars: Vec<(f64, f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|(y, _)| (i as f64 - 0.4 + s as f64 * width, y, width)))
            .collect();
        chart
            .draw_series(
                bars.iter().map(|&(x0, y, w)| Rectangle::new([(x0 + 0.02 * w, 0.0), (x0 + 0.98 * w, y)], c.filled())),
            )
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        for (i, v) in values.iter().enumerate() {
            if let Some((_, Some([l, h]))) = v {
                let x = i as f64 - 0.4 + (s as f64 + 0.5) * width;
                let cap = 0.15 * width;
                let style = ShapeStyle::from(&BLACK).stroke_width(1);
                chart
                    .draw_series([
                        PathElement::new(vec![(x, *l), (x, *h)], style),
                        PathElement::new(vec![(x - cap, *l), (x + cap, *l)], style),
                        PathElement::new(vec![(x - cap, *h), (x + cap, *h)], style),
                    ])
                    .map_err(err)?;
            }
        }
    }
    if b.series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    area.present().map_err(err)?;
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &Lines) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let panels = area.split_evenly((1, l.panels.len().max(1)));
    for (p, sub) in l.panels.iter().zip(&panels) {
        let xs = p.series.iter().flat_map(|(_, pts)| pts.iter().map(|q| q.0));
        let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let (x0, x1) = if x0.is_finite() && x1 > x0 { (x0, x1) } else { (x0.min(0.0), x0.max(0.0) + 1.0) };
        let pad = 0.05 * (x1 - x0);
        let ys = p.series.iter().flat_map(|(_, pts)| {
            pts.iter().flat_map(|q| std::iter::once(q.1).chain(q.2.iter().flat_map(|c| c.iter().copied())))
        });
        let (mut lo, hi) = y_range(ys);
        // Rewards (negative perplexities) are below 0: let the range follow them.
        let min_y = p.series.iter().flat_map(|(_, pts)| pts.iter().map(|q| q.1)).fold(f64::INFINITY, f64::min);
        if min_y.is_finite() && min_y < 0.0 {
            lo = lo.min(min_y);
        }
        // Integer x values (the number of latent tokens) get integer tick labels only.
        let integer_x = p.series.iter().flat_map(|(_, pts)| pts.iter()).all(|q| q.0.fract() == 0.0) && x1 - x0 <= 20.0;
        let int_fmt = |x: &f64| if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { String::new() };
        let mut chart = ChartBuilder::on(sub)
            .caption(&p.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), lo..hi)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(p.x_desc.as_str()).y_desc(p.y_desc.as_str()).label_style(("sans-serif", 14));
        if integer_x {
            mesh.x_labels((x1 - x0) as usize + 1).x_label_formatter(&int_fmt);
        }
        mesh.draw().map_err(err)?;
        for (s, (name, pts)) in p.series.iter().enumerate() {
            let c = color(s);
            chart
                .draw_series(LineSeries::new(pts.iter().map(|q| (q.0, q.1)), c.stroke_width(2)))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
            chart.draw_series(pts.iter().map(|q| Circle::new((q.0, q.1), 3, c.filled()))).map_err(err)?;
            for q in pts {
                if let Some([a, b]) = q.2 {
                    chart.draw_series([PathElement::new(vec![(q.0, a), (q.0, b)], c.stroke_width(1))]).map_err(err)?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    area.present().map_err(err)?;
    Ok(())
}

/// What a figure draws.
pub enum Figure {
    /// A bar chart.
    Bars(Bars),
    /// A line chart.
    Lines(Lines),
}

/// Writes `dir/<name>.svg` and `dir/<name>.png`.
pub fn write_figure(dir: &Path, name: &str, size: (u32, u32), figure: &Figure) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    {
        let area = SVGBackend::new(&svg, size).into_drawing_area();
        match figure {
            Figure::Bars(b) => draw_bars(&area, b),
            Figure::Lines(l) => draw_lines(&area, l),
        }
        .with_context(|| format!("drawing {}", svg.display()))?;
    }
    {
        let area = BitMapBackend::new(&png, size).into_drawing_area();
        match figure {
            Figure::Bars(b) => draw_bars(&area, b),
            Figure::Lines(l) => draw_lines(&area, l),
        }
        .with_context(|| format!("drawing {}", png.display()))?;
    }
    Ok(())
}

/// The result of each experiment of `table` at its largest scale with a result, in experiment order.
fn largest<'a>(
    experiments: &'a [Experiment],
    results: &'a Results,
    table: &str,
) -> Vec<(&'a Experiment, &'a ResultFile)> {
    experiments
        .iter()
        .filter(|e| e.manifest.paper.table == table)
        .filter_map(|e| Scale::ALL.iter().rev().find_map(|s| results.get(&(e.name.clone(), *s))).map(|r| (e, r)))
        .collect()
}

/// The bar labels of `found`: each experiment's row, with its scale when the results mix scales (a smoke bar
/// beside cpu bars is not comparable, and must say so).
fn categories(found: &[(&Experiment, &ResultFile)]) -> Vec<String> {
    let first = found.first().map(|(_, r)| r.scale.to_string());
    let mixed = found.iter().any(|(_, r)| Some(r.scale.to_string()) != first);
    found
        .iter()
        .map(|(e, r)| {
            let row = e.manifest.paper.row.clone();
            if mixed { format!("{row} ({})", r.scale) } else { row }
        })
        .collect()
}

fn scales_of(found: &[(&Experiment, &ResultFile)]) -> String {
    let mut s: Vec<String> = found.iter().map(|(_, r)| format!("{} {}", r.column, r.scale)).collect();
    s.sort();
    s.dedup();
    s.join(", ")
}

/// A figure: its file name, size in pixels and content.
pub type Built = (String, (u32, u32), Figure);

/// The value and interval of metric `n` of a result.
fn value(r: &ResultFile, n: &str) -> Option<(f64, Option<[f64; 2]>)> {
    r.metric(n).and_then(|m| m.ours.map(|v| (v, m.ci95)))
}

/// The popularity figure: the relative gains on popular and unpopular targets.
fn popularity_figure(experiments: &[Experiment], results: &Results) -> Option<Built> {
    let pop = largest(experiments, results, "popularity");
    if pop.is_empty() {
        return None;
    }
    let metrics = ["H@10", "N@10"];
    let mut series = Vec::new();
    for (_, r) in &pop {
        for bucket in ["popular", "unpopular"] {
            let vals = metrics
                .iter()
                .map(|m| {
                    value(r, &format!("{bucket} {m}"))
                        .map(|(v, ci)| (100.0 * v, ci.map(|[a, b]| [100.0 * a, 100.0 * b])))
                })
                .collect();
            series.push((format!("{} {bucket}", r.column), vals));
        }
    }
    Some((
        "popularity".to_string(),
        (800, 500),
        Figure::Bars(Bars {
            title: format!("LatentR³ over BIGRec by target popularity ({})", scales_of(&pop)),
            y_desc: "relative gain (%)".into(),
            categories: metrics.iter().map(|s| s.to_string()).collect(),
            series,
        }),
    ))
}

/// The reasoning-length figure: H@10 and N@10 against the number of latent tokens.
fn length_figure(experiments: &[Experiment], results: &Results) -> Option<Built> {
    let len = largest(experiments, results, "reasoning-length");
    if len.is_empty() {
        return None;
    }
    let mut panels = Vec::new();
    for m in ["H@10", "N@10"] {
        let mut by_column: Vec<LineSeries3> = Vec::new();
        for (e, r) in &len {
            let (Some(x), Some((v, ci))) = (e.manifest.experiment.x, value(r, m)) else { continue };
            match by_column.iter_mut().find(|(c, _)| *c == r.column) {
                Some((_, pts)) => pts.push((x, v, ci)),
                None => by_column.push((r.column.clone(), vec![(x, v, ci)])),
            }
        }
        for (_, pts) in &mut by_column {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        panels.push(Panel { title: m.into(), x_desc: "latent tokens N".into(), y_desc: m.into(), series: by_column });
    }
    Some(("reasoning-length".to_string(), (1000, 450), Figure::Lines(Lines { panels })))
}

/// The GRPO vs LR-GRPO figure: rewards and validation NDCG@10 against training wall time.
fn rl_figure(experiments: &[Experiment], results: &Results) -> Option<Built> {
    let rl = largest(experiments, results, "grpo-vs-lrgrpo");
    let curves: Vec<_> = rl.iter().flat_map(|(_, r)| r.curves.iter().map(move |c| (r, c))).collect();
    if curves.is_empty() {
        return None;
    }
    let name = |r: &ResultFile, label: &str| {
        format!("{} ({} {})", if label == "grpo" { "GRPO" } else { "LR-GRPO" }, r.column, r.scale)
    };
    // The two algorithms' rewards are on different scales (LR-GRPO: negative perplexity of the target;
    // GRPO: exact match of a rollout), so each gets its own panel; validation NDCG@10 is shared.
    let mut panels = Vec::new();
    for (algo, reward_name) in [("lr_grpo", "LR-GRPO reward (−perplexity)"), ("grpo", "GRPO reward (exact match)")] {
        let series: Vec<LineSeries3> = curves
            .iter()
            .filter(|(_, c)| c.label == algo)
            .map(|(r, c)| (name(r, &c.label), c.points.iter().map(|p| (p.elapsed_s, p.reward, None)).collect()))
            .collect();
        if !series.is_empty() {
            panels.push(Panel {
                title: reward_name.into(),
                x_desc: "training wall time (s)".into(),
                y_desc: "mean reward".into(),
                series,
            });
        }
    }
    let ndcg = curves
        .iter()
        .map(|(r, c)| {
            (name(r, &c.label), c.points.iter().filter_map(|p| p.val_ndcg.map(|v| (p.elapsed_s, v, None))).collect())
        })
        .collect();
    panels.push(Panel {
        title: "validation NDCG@10".into(),
        x_desc: "training wall time (s)".into(),
        y_desc: "NDCG@10".into(),
        series: ndcg,
    });
    let width = 420 * panels.len() as u32;
    Some(("grpo-vs-lrgrpo".to_string(), (width, 450), Figure::Lines(Lines { panels })))
}

/// The inference-time figure: the mean latency per user of each row.
fn inference_figure(experiments: &[Experiment], results: &Results) -> Option<Built> {
    let mut inf = largest(experiments, results, "inference-time");
    // The rows without reasoning text first, then CoT by its token budget ("CoT 64 tokens" before "CoT 128 tokens").
    inf.sort_by_key(|(e, r)| {
        let row = &e.manifest.paper.row;
        let budget: Option<usize> = row.strip_prefix("CoT ").and_then(|t| t.split(' ').next()?.parse().ok());
        (r.column.clone(), budget, row.clone())
    });
    if inf.is_empty() {
        return None;
    }
    let mut columns: Vec<String> = inf.iter().map(|(_, r)| r.column.clone()).collect();
    columns.dedup();
    let series = columns
        .iter()
        .map(|c| {
            let vals =
                inf.iter().map(|(_, r)| if &r.column == c { value(r, "latency mean s") } else { None }).collect();
            (c.clone(), vals)
        })
        .collect();
    Some((
        "inference-time".to_string(),
        (900, 500),
        Figure::Bars(Bars {
            title: format!("inference time per user ({})", scales_of(&inf)),
            y_desc: "seconds per user (mean)".into(),
            categories: categories(&inf),
            series,
        }),
    ))
}

/// The figures that have results, built from them.
pub fn build(experiments: &[Experiment], results: &Results) -> Vec<Built> {
    [popularity_figure, length_figure, rl_figure, inference_figure, crate::compare::paired_figure]
        .iter()
        .filter_map(|f| f(experiments, results))
        .collect()
}

/// Draws every figure that has results into `dir`; returns one line per figure (written, or why not).
pub fn render_all(dir: &Path, experiments: &[Experiment], results: &Results) -> anyhow::Result<Vec<String>> {
    let figures = build(experiments, results);
    if figures.is_empty() {
        return Ok(vec!["no figure has results yet".into()]);
    }
    if let Err(why) = ensure_font() {
        return Ok(vec![format!("figures skipped: {why}")]);
    }
    let mut lines = Vec::new();
    for (name, size, f) in &figures {
        write_figure(dir, name, *size, f)?;
        lines.push(format!("{}/{name}.svg and .png", dir.display()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_as_svg_and_png() {
        let bars = Figure::Bars(Bars {
            title: "gain".into(),
            y_desc: "%".into(),
            categories: vec!["H@10".into(), "N@10".into()],
            series: vec![
                ("popular".into(), vec![Some((5.0, Some([-2.0, 12.0]))), Some((4.0, None))]),
                ("unpopular".into(), vec![Some((20.0, Some([8.0, 31.0]))), None]),
            ],
        });
        let lines = Figure::Lines(Lines {
            panels: vec![Panel {
                title: "reward".into(),
                x_desc: "s".into(),
                y_desc: "reward".into(),
                series: vec![("LR-GRPO".into(), vec![(1.0, -3.0, None), (2.0, -2.0, Some([-2.5, -1.5]))])],
            }],
        });
        let dir = tempfile::tempdir().unwrap();
        match ensure_font() {
            Ok(font) => {
                eprintln!("font: {}", font.display());
                write_figure(dir.path(), "bars", (400, 300), &bars).unwrap();
                write_figure(dir.path(), "lines", (400, 300), &lines).unwrap();
                for f in ["bars.svg", "bars.png", "lines.svg", "lines.png"] {
                    let bytes = std::fs::read(dir.path().join(f)).unwrap();
                    assert!(bytes.len() > 500, "{f}: {} bytes", bytes.len());
                }
                let svg = std::fs::read_to_string(dir.path().join("bars.svg")).unwrap();
                assert!(svg.starts_with("<svg") && svg.contains("H@10") && svg.contains("unpopular"), "{svg}");
                assert_eq!(&std::fs::read(dir.path().join("bars.png")).unwrap()[1..4], b"PNG");
            }
            // A machine without any of the fonts: the figures are skipped with the paths tried.
            Err(why) => assert!(why.contains("DejaVuSans.ttf"), "{why}"),
        }
    }

    #[test]
    fn figures_are_built_from_results_only() {
        assert!(build(&[], &Results::new()).is_empty());
        let exps = crate::manifest::discover(&crate::project_root()).unwrap();
        assert!(build(&exps, &Results::new()).is_empty(), "no results, no figure");
        let name = "grpo-vs-lrgrpo/cds-lrgrpo";
        let mut results = Results::new();
        let mut r = crate::tables::tests::result(name, Scale::Smoke, 0.1);
        r.table = "grpo-vs-lrgrpo".into();
        results.insert((name.into(), Scale::Smoke), r);
        let figs = build(&exps, &results);
        assert_eq!(figs.len(), 1);
        assert_eq!(figs[0].0, "grpo-vs-lrgrpo");
    }
}
