//! `cargo xtask tables`: renders `docs/results.md` from the manifests and `results/<experiment>/<scale>.json` (our
//! numbers beside the paper's, cells not yet run marked with the reason), appends the hand-measured section
//! `results/hand-measured.md` verbatim, and draws the figures into `docs/figures/` ([`crate::figures`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::manifest::{Experiment, ReportKind, RunKind, Scale, discover};
use crate::plan::resolve_dataset;
use crate::reproduce::default_data_dir;
use crate::results::{MetricEntry, RECOVERED_NOTE, ResultFile};

/// The hand-written section appended to `docs/results.md`.
pub const HAND_MEASURED: &str = "results/hand-measured.md";

/// The tables in page order: id, title, what it shows, the preferred row order.
const TABLES: [(&str, &str, &str, &[&str]); 7] = [
    (
        "table1",
        "Table 1: overall performance",
        "HR@K (H) and NDCG@K (N) on the test split. Traditional baselines (Caser, GRU4Rec, SASRec, AlphaRec) are \
         trained by `latentr3 baseline train` and evaluated on every test user (the LLM rows: a seeded subset at the \
         smoke and cpu scales); AlphaRec follows its official schedule (up to 500 epochs, patience 20; its item \
         representations from SmolLM2-135M) and masks each user's history items as its official evaluator does; \
         the baselines' training time per epoch is in the hand-measured sections at the end; CoT is \
         `latentr3 eval --cot-tokens 128` on the untuned backbone; the D3 rows decode with length penalty 0 guided \
         by the SASRec of the SASRec row at guidance scale 0.5 (our choice: the paper gives no scale). The paper's \
         average relative gain of LatentR³: \
         +17.0% over BIGRec, +8.4% over D3.",
        &["Caser", "GRU4Rec", "SASRec", "AlphaRec", "Base", "CoT", "BIGRec", "BIGRec+LatentR3", "D3", "D3+LatentR3"],
    ),
    (
        "ablation",
        "Ablation",
        "LatentR³ without each part, on the test split.",
        &["full", "w/o reasoning", "w/o LatentRATT", "w/o RL", "w/o batch advantage"],
    ),
    (
        "popularity",
        "Popular vs unpopular items",
        "Relative gain of BIGRec+LatentR³ over BIGRec on test users whose target is a popular item (the most \
         frequent train targets covering 80% of the train interactions) or an unpopular one; paired bootstrap \
         intervals. The paper: the gains come mostly from long-tail items.",
        &[],
    ),
    (
        "reasoning-length",
        "Reasoning length N",
        "BIGRec+LatentR³ with N latent tokens (SFT and LR-GRPO with N thoughts). The paper: more latent tokens did \
         not help; N = 1 is used.",
        &["N=1", "N=2", "N=3", "N=4"],
    ),
    (
        "grpo-vs-lrgrpo",
        "LR-GRPO vs the original GRPO",
        "Quality after the RL stage and its training cost (wall seconds of the GRPO run, same prompts and \
         schedule). The paper: LR-GRPO costs about 1/5 of the original GRPO.",
        &["LR-GRPO", "original GRPO"],
    ),
    (
        "inference-time",
        "Inference time per user",
        "Wall time of one user's recommendation (`--batch 1`: prefill, latent tokens or free-text reasoning, \
         constrained beam search). The paper: CoT is ≈25× BIGRec on Toys and ≈30× on Games; LatentR³ stays close \
         to BIGRec.",
        &["BIGRec", "BIGRec+LatentR3", "CoT 64 tokens", "CoT 128 tokens", "CoT 256 tokens"],
    ),
    (
        "backbone-scale",
        "Backbone scale",
        "BIGRec+LatentR³ with backbones of three sizes (the analogue of the paper's appendix table, which uses a \
         3B backbone).",
        &["SmolLM2-135M", "Qwen2.5-Coder-0.5B", "Qwen2.5-Coder-1.5B"],
    ),
];

/// The dataset columns in page order.
const COLUMNS: [&str; 5] = ["CDs", "Industrial", "Toys", "Games", "Instruments"];

/// The results of every experiment, by name and scale.
pub type Results = BTreeMap<(String, Scale), ResultFile>;

/// Reads every result file of the experiments.
pub fn load_results(root: &Path, experiments: &[Experiment]) -> anyhow::Result<Results> {
    let mut out = Results::new();
    for e in experiments {
        for scale in Scale::ALL {
            if let Some(r) = ResultFile::read(&ResultFile::path(root, &e.name, scale))? {
                out.insert((e.name.clone(), scale), r);
            }
        }
    }
    Ok(out)
}

/// The entries a manifest's result will hold (the table header before anything has run).
pub fn expected_names(e: &Experiment) -> Vec<String> {
    let r = &e.manifest.report;
    let metrics = r.metric_names();
    match r.kind {
        ReportKind::Metrics => metrics,
        ReportKind::PopularityGain => {
            ["popular", "unpopular"].iter().flat_map(|b| metrics.iter().map(move |m| format!("{b} {m}"))).collect()
        }
        ReportKind::Latency => {
            ["latency mean s".to_string(), "latency median s".into()].into_iter().chain(metrics).collect()
        }
        ReportKind::Training => metrics.into_iter().chain(["train s".to_string()]).collect(),
    }
}

/// Why an experiment has no result: its data is missing, else "not yet run", naming the `latentr3` commands or
/// flags its runs need (`requires`).
pub fn missing_reason(e: &Experiment, data_dir: Option<&Path>) -> String {
    if let Some(dir) = data_dir
        && dir.is_dir()
        && matches!(resolve_dataset(dir, &e.manifest.experiment.dataset), Ok(None))
    {
        return format!("no data: `{}` is not in the data folder", e.manifest.experiment.dataset);
    }
    let requires: Vec<String> =
        e.manifest.runs.iter().flat_map(|r| r.requires.iter()).map(|q| format!("`latentr3 {q}`")).collect();
    if requires.is_empty() { "not yet run".into() } else { format!("not yet run (needs {})", requires.join(", ")) }
}

fn fmt_value(name: &str, v: f64) -> String {
    if name.starts_with("popular") || name.starts_with("unpopular") {
        format!("{:+.1}%", 100.0 * v)
    } else if name.ends_with(" s") {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// One cell: `ours [lo, hi]` and the paper's value with the delta.
pub fn cell(m: Option<&MetricEntry>, paper: Option<f64>) -> String {
    let mut s = match m {
        Some(m) => match m.ours {
            Some(v) => {
                let mut s = fmt_value(&m.name, v);
                if let Some([lo, hi]) = m.ci95 {
                    let _ = write!(s, " [{}, {}]", fmt_value(&m.name, lo), fmt_value(&m.name, hi));
                }
                s
            }
            None => "n/a".into(),
        },
        None => "–".into(),
    };
    if let Some(p) = paper.or_else(|| m.and_then(|m| m.paper)) {
        let delta = m.and_then(|m| m.ours).map(|o| format!(", Δ {:+.4}", o - p)).unwrap_or_default();
        let _ = write!(s, "<br>paper {p:.4}{delta}");
    }
    s
}

fn row_rank(order: &[&str], row: &str) -> usize {
    order.iter().position(|r| *r == row).unwrap_or(order.len())
}

/// A table of [`TABLES`]: id, title, what it shows, the preferred row order.
type TableSpec = (&'static str, &'static str, &'static str, &'static [&'static str]);

/// What every part of a table reads.
#[derive(Clone, Copy)]
struct Table<'a> {
    id: &'a str,
    results: &'a Results,
    data_dir: Option<&'a Path>,
    /// Every experiment (the reference rows of the "Δ vs" column).
    all: &'a [Experiment],
}

/// One column (dataset) of a table: its rows at every scale with results.
fn render_column(md: &mut String, t: &Table<'_>, group: &[&Experiment], column: &str) {
    let Table { id, results, data_dir, all } = *t;
    let rows: Vec<&&Experiment> = group.iter().filter(|e| e.manifest.paper.column == column).collect();
    let mut names: Vec<String> = Vec::new();
    for e in &rows {
        for n in expected_names(e) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let _ = writeln!(md, "### {column}\n");
    // Cost tables get a ratio column against their reference row at the same scale.
    let ratio = match id {
        "inference-time" => Some(("BIGRec", "latency mean s")),
        "grpo-vs-lrgrpo" => Some(("LR-GRPO", "train s")),
        _ => None,
    };
    let reference = |scale: Scale| {
        let (row, metric) = ratio?;
        let e = group.iter().find(|e| e.manifest.paper.column == column && e.manifest.paper.row == row)?;
        results.get(&(e.name.clone(), scale))?.metric(metric)?.ours
    };
    let mut header = names.clone();
    if let Some((row, metric)) = ratio {
        header.push(format!("{metric} / {row}"));
    }
    // Rows with reference rows get their paired differences.
    let paired = rows.iter().any(|e| !e.manifest.report.compare.is_empty());
    if paired {
        header.push("Δ vs … [95% CI]".into());
    }
    let _ = writeln!(md, "| row | scale | users | {} | result |", header.join(" | "));
    let _ = writeln!(md, "|---|---|---:|{}---|", "---|".repeat(header.len()));
    for e in rows {
        let found: Vec<(&Scale, &ResultFile)> =
            Scale::ALL.iter().filter_map(|s| results.get(&(e.name.clone(), *s)).map(|r| (s, r))).collect();
        let row = &e.manifest.paper.row;
        if found.is_empty() {
            let mut cells: Vec<String> =
                names.iter().map(|n| cell(None, e.manifest.paper.values.get(n).copied())).collect();
            if ratio.is_some() {
                cells.push("–".into());
            }
            if paired {
                cells.push(crate::compare::delta_cell(e, None, all));
            }
            let _ = writeln!(md, "| {row} | – | – | {} | {} |", cells.join(" | "), missing_reason(e, data_dir));
            continue;
        }
        for (scale, r) in found {
            let mut cells: Vec<String> =
                names.iter().map(|n| cell(r.metric(n), e.manifest.paper.values.get(n).copied())).collect();
            if let Some((_, metric)) = ratio {
                let ours = r.metric(metric).and_then(|m| m.ours);
                cells.push(match (ours, reference(*scale)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                    _ => "–".into(),
                });
            }
            if paired {
                cells.push(crate::compare::delta_cell(e, Some(r), all));
            }
            let _ = writeln!(
                md,
                "| {row} | {scale} | {} | {} | [{}](../results/{}/{scale}.json) ({}, {}) |",
                r.users,
                cells.join(" | "),
                r.device,
                e.name,
                r.commit,
                r.written.get(..10).unwrap_or(&r.written)
            );
        }
    }
    md.push('\n');
}

/// The figure line of a table that has one.
fn render_figure(md: &mut String, id: &str, title: &str, drawn: &[String]) {
    if matches!(id, "popularity" | "reasoning-length" | "grpo-vs-lrgrpo" | "inference-time") {
        if drawn.iter().any(|d| d == id) {
            let _ = writeln!(
                md,
                "Figure (from the largest scale with results): [`figures/{id}.svg`](figures/{id}.svg) \
                 ([PNG](figures/{id}.png))\n\n![{title}](figures/{id}.svg)\n"
            );
        } else {
            let _ = writeln!(md, "Figure `figures/{id}.svg`: not drawn yet (no results).\n");
        }
    }
    if id == "table1" && drawn.iter().any(|d| d == "paired-differences") {
        let _ = writeln!(
            md,
            "Figure (paired differences of every row with its reference rows, from the largest scale with results): \
             [`figures/paired-differences.svg`](figures/paired-differences.svg)\n\n\
             ![paired differences](figures/paired-differences.svg)\n"
        );
    }
}

/// One table: its title, what it shows, the command, and a section per column.
fn render_table(md: &mut String, t: &Table<'_>, experiments: &[Experiment], spec: TableSpec) {
    let (id, title, about, order) = spec;
    let mut group: Vec<&Experiment> = experiments.iter().filter(|e| e.manifest.paper.table == id).collect();
    if group.is_empty() {
        return;
    }
    group.sort_by_key(|e| (row_rank(order, &e.manifest.paper.row), e.manifest.paper.row.clone(), e.name.clone()));
    let _ = writeln!(md, "## {title}\n\n{about}\n");
    let _ = writeln!(md, "`cargo xtask reproduce {id} --scale cpu --device flex`\n");
    let mut columns: Vec<&str> =
        COLUMNS.iter().copied().filter(|c| group.iter().any(|e| e.manifest.paper.column == *c)).collect();
    for e in &group {
        if !columns.contains(&e.manifest.paper.column.as_str()) {
            columns.push(&e.manifest.paper.column);
        }
    }
    for column in columns {
        render_column(md, t, &group, column);
    }
}

/// The counts and the table of result files with the commands that wrote them.
fn render_footer(md: &mut String, experiments: &[Experiment], results: &Results) {
    let baselines =
        experiments.iter().filter(|e| e.manifest.runs.iter().any(|r| r.kind() == RunKind::Baseline)).count();
    let _ = writeln!(
        md,
        "{} experiment files in `experiments/`, {} of them traditional baselines; {} result files in `results/`.\n",
        experiments.len(),
        baselines,
        results.len()
    );
    if !results.is_empty() {
        let _ = writeln!(md, "## Result files and the commands that wrote them\n");
        let _ = writeln!(
            md,
            "`commit` is the tree that wrote the result file; `runs' code` the commits of the code that produced its \
             runs (`unknown` where a run recorded none, `mixed` where runs of different code are combined).\n"
        );
        let _ = writeln!(md, "| result | command | hardware | data | commit | runs' code | written | run wall time |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---:|");
        for ((name, scale), r) in results {
            let wall: f64 = r.runs.iter().map(|x| x.wall_s).sum();
            let mut code = r.run_commits().join(", ");
            if r.mixes_code() {
                code.push_str(" (mixed)");
            }
            let _ = writeln!(
                md,
                "| [`{name}/{scale}.json`](../results/{name}/{scale}.json) | `{}` | {} | {} | {} | {code} | {} | \
                 {wall:.0} s |",
                r.command, r.hardware, r.data_note, r.commit, r.written
            );
        }
        md.push('\n');
    }
}

/// Renders the page.
pub fn render(experiments: &[Experiment], results: &Results, data_dir: Option<&Path>, extra: &str) -> String {
    let drawn: Vec<String> = crate::figures::build(experiments, results).into_iter().map(|f| f.0).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Reproduction results\n\n<!-- Generated by `cargo xtask tables` from experiments/ and results/; do not edit by hand \
         (the hand-measured section at the end comes from {HAND_MEASURED}). -->\n"
    );
    let _ = writeln!(
        md,
        "Our numbers beside the paper's (docs/method.md §6). Each cell is `ours [95% bootstrap interval over test users]`, \
         then the paper's value and the difference when the paper gives one. **Data: {RECOVERED_NOTE}** for CDs and \
         Industrial (`docs/data.md`): the original train splits (about 49k and 36k rows) \
         are not available, so no number here is directly comparable to the paper's. Scales: `smoke` (a pipeline \
         check, minutes on a CPU: its numbers mean nothing), `quick` (SmolLM2-135M, 1,024 train rows, 500 test \
         users, hours on 2 cores; called `cpu` until the powered scale existed), `cpu` (every train row, every test \
         user, about a day on 2 cores), `paper` (the paper's hyper-parameters on a GPU). See `docs/reproduce.md` for the commands and \
         the settings of each scale.\n"
    );
    let _ = writeln!(
        md,
        "Reproduce a table with `cargo xtask reproduce <table> --scale <scale> --device <device>` then `cargo xtask tables`.\n"
    );
    let t = Table { id: "", results, data_dir, all: experiments };
    for spec in TABLES {
        let (id, title, ..) = spec;
        if !experiments.iter().any(|e| e.manifest.paper.table == id) {
            continue;
        }
        render_table(&mut md, &Table { id, ..t }, experiments, spec);
        render_figure(&mut md, id, title, &drawn);
    }
    render_footer(&mut md, experiments, results);
    if !extra.trim().is_empty() {
        md.push_str(extra.trim_end());
        md.push('\n');
    }
    md
}

/// Runs `cargo xtask tables`.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let experiments = discover(root)?;
    let results = load_results(root, &experiments)?;
    let extra_path = root.join(HAND_MEASURED);
    let extra = if extra_path.is_file() {
        std::fs::read_to_string(&extra_path).with_context(|| format!("reading {}", extra_path.display()))?
    } else {
        String::new()
    };
    let data_dir = default_data_dir(root);
    let md = render(&experiments, &results, Some(&data_dir), &extra);
    let out = root.join("docs").join("results.md");
    std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("tables: {} ({} experiments, {} result files)", out.display(), experiments.len(), results.len());
    let figures = crate::figures::render_all(&root.join("docs").join("figures"), &experiments, &results)?;
    for f in figures {
        eprintln!("tables: {f}");
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::results::{Curve, CurvePoint, RunRecord};

    fn experiment(name: &str, text: &str) -> Experiment {
        Experiment {
            name: name.into(),
            path: format!("experiments/{name}.toml").into(),
            manifest: Manifest::parse(text, name).unwrap(),
        }
    }

    const LATENT: &str = r#"
[paper]
table = "table1"
row = "BIGRec+LatentR3"
column = "CDs"
source = "docs/method.md §6"
values = { "H@5" = 0.0934 }
[experiment]
dataset = "CDs_and_Vinyl_5_2015-10-2018-11"
[[run]]
id = "sft"
kind = "sft"
config = "experiments/sft/cds-latentr3-{scale}.toml"
[[run]]
id = "test"
kind = "eval"
from = "sft"
[report]
run = "test"
"#;

    const SASREC: &str = r#"
[paper]
table = "table1"
row = "SASRec"
column = "CDs"
source = "docs/method.md §6"
[experiment]
dataset = "CDs_and_Vinyl_5_2015-10-2018-11"
[[run]]
id = "test"
kind = "baseline"
model = "sasrec"
requires = ["baseline train"]
[report]
run = "test"
"#;

    pub(crate) fn result(experiment: &str, scale: Scale, h5: f64) -> ResultFile {
        ResultFile {
            experiment: experiment.into(),
            table: "table1".into(),
            row: "BIGRec+LatentR3".into(),
            column: "CDs".into(),
            scale,
            device: "flex".into(),
            hardware: "test cpu, 2 logical cores".into(),
            data_note: RECOVERED_NOTE.into(),
            dataset: "CDs_and_Vinyl_5_2015-10-2018-11".into(),
            users: 16,
            commit: "abc1234".into(),
            command: format!("cargo xtask reproduce {experiment} --scale {scale} --device flex"),
            written: "2026-11-26T03:00:00Z".into(),
            runs: vec![RunRecord {
                id: "test".into(),
                kind: "eval".into(),
                key: "0123456789abcdef".into(),
                dir: "runs/x".into(),
                wall_s: 1.0,
                commit: None,
            }],
            metrics: vec![
                MetricEntry::new("H@5", Some(h5), Some([0.0, 0.1875]), Some(0.0934), 16),
                MetricEntry::new("N@10", Some(0.04), Some([0.01, 0.09]), None, 16),
            ],
            curves: vec![Curve {
                run: "grpo".into(),
                label: "lr_grpo".into(),
                points: vec![CurvePoint { step: 1, elapsed_s: 5.0, reward: -2.0, val_ndcg: Some(0.03) }],
            }],
            comparisons: vec![],
            note: String::new(),
        }
    }

    #[test]
    fn the_page_puts_ours_beside_the_paper_and_marks_missing_cells() {
        let exps = vec![experiment("table1/cds-bigrec-latentr3", LATENT), experiment("table1/cds-sasrec", SASREC)];
        let mut results = Results::new();
        results.insert(
            ("table1/cds-bigrec-latentr3".into(), Scale::Smoke),
            result("table1/cds-bigrec-latentr3", Scale::Smoke, 0.0625),
        );
        let md = render(&exps, &results, None, "## Hand-measured\n\nfixed text\n");
        assert!(md.contains("## Table 1: overall performance"), "{md}");
        assert!(md.contains("### CDs"), "{md}");
        assert!(md.contains("| row | scale | users | H@5 | N@5 | H@10 | N@10 | result |"), "{md}");
        // Ours with the interval, the paper's value and the delta; a metric the result lacks is a dash.
        assert!(
            md.contains("| BIGRec+LatentR3 | smoke | 16 | 0.0625 [0.0000, 0.1875]<br>paper 0.0934, Δ -0.0309 | – | – | 0.0400 [0.0100, 0.0900] |"),
            "{md}"
        );
        assert!(md.contains("[flex](../results/table1/cds-bigrec-latentr3/smoke.json) (abc1234, 2026-11-26)"), "{md}");
        // The baseline before `latentr3 baseline` exists; SASRec sorts before BIGRec+LatentR3 (the paper's order).
        assert!(
            md.contains("| SASRec | – | – | – | – | – | – | not yet run (needs `latentr3 baseline train`) |"),
            "{md}"
        );
        assert!(md.find("| SASRec").unwrap() < md.find("| BIGRec+LatentR3").unwrap());
        assert!(md.contains(RECOVERED_NOTE));
        assert!(md.trim_end().ends_with("fixed text"), "{md}");
        assert!(
            md.contains(
                "| `cargo xtask reproduce table1/cds-bigrec-latentr3 --scale smoke --device flex` | test cpu, 2 logical \
                 cores | recovered train subset | abc1234 | unknown | 2026-11-26T03:00:00Z | 1 s |"
            ),
            "{md}"
        );
        // Runs that recorded their code list it; runs of different code are marked.
        let r = results.get_mut(&("table1/cds-bigrec-latentr3".into(), Scale::Smoke)).unwrap();
        let mut second = r.runs[0].clone();
        r.runs[0].commit = Some("0123456789ab".into());
        second.commit = Some("unknown".into());
        r.runs.push(second.clone());
        let md = render(&exps, &results, None, "");
        assert!(md.contains("| abc1234 | 0123456789ab, unknown | 2026-11-26"), "{md}");
        let r = results.get_mut(&("table1/cds-bigrec-latentr3".into(), Scale::Smoke)).unwrap();
        second.commit = Some("ba9876543210-dirty".into());
        r.runs.push(second);
        let md = render(&exps, &results, None, "");
        assert!(md.contains("| abc1234 | 0123456789ab, unknown, ba9876543210-dirty (mixed) | 2026-11-26"), "{md}");
        // Without a result the paper's value is still shown.
        let md = render(&exps, &Results::new(), None, "");
        assert!(md.contains("| BIGRec+LatentR3 | – | – | –<br>paper 0.0934 | – | – | – | not yet run |"), "{md}");
    }

    #[test]
    fn every_scale_with_a_result_gets_a_row() {
        let exps = vec![experiment("table1/cds-bigrec-latentr3", LATENT)];
        let mut results = Results::new();
        for (s, v) in [(Scale::Smoke, 0.0625), (Scale::Cpu, 0.05)] {
            results.insert(("table1/cds-bigrec-latentr3".into(), s), result("table1/cds-bigrec-latentr3", s, v));
        }
        let md = render(&exps, &results, None, "");
        assert!(md.contains("| BIGRec+LatentR3 | smoke | 16 | 0.0625"), "{md}");
        assert!(md.contains("| BIGRec+LatentR3 | cpu | 16 | 0.0500"), "{md}");
    }

    #[test]
    fn the_repository_page_renders_every_manifest() {
        let root = crate::project_root();
        let exps = discover(&root).unwrap();
        let md = render(&exps, &Results::new(), None, "");
        for title in [
            "Table 1",
            "Ablation",
            "Popular vs unpopular",
            "Reasoning length",
            "LR-GRPO vs",
            "Inference time",
            "Backbone scale",
        ] {
            assert!(md.contains(&format!("## {title}")), "{title}");
        }
        let rows = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| row")).count();
        assert_eq!(rows, exps.len(), "one row per experiment without results");
    }

    #[test]
    fn cost_tables_get_a_ratio_to_their_reference_row() {
        let lat = |row: &str| {
            LATENT
                .replace("table = \"table1\"", "table = \"inference-time\"")
                .replace("row = \"BIGRec+LatentR3\"", &format!("row = \"{row}\""))
                .replace("values = { \"H@5\" = 0.0934 }", "")
                .replace("run = \"test\"\n", "run = \"test\"\nkind = \"latency\"\n")
        };
        let exps = vec![
            experiment("inference-time/cds-bigrec", &lat("BIGRec")),
            experiment("inference-time/cds-cot64", &lat("CoT 64 tokens")),
        ];
        let mut results = Results::new();
        for (name, secs) in [("inference-time/cds-bigrec", 2.0), ("inference-time/cds-cot64", 50.0)] {
            let mut r = result(name, Scale::Cpu, 0.1);
            r.metrics = vec![MetricEntry::new("latency mean s", Some(secs), Some([secs - 1.0, secs + 1.0]), None, 50)];
            results.insert((name.into(), Scale::Cpu), r);
        }
        let md = render(&exps, &results, None, "");
        assert!(md.contains("| latency mean s / BIGRec | result |"), "{md}");
        assert!(md.contains("| BIGRec | cpu | 16 | 2.000 [1.000, 3.000] |"), "{md}");
        assert!(md.contains("| 1.00× |") && md.contains("| 25.00× |"), "{md}");
    }
}
