//! From the finished runs of an experiment to its result file `results/<experiment>/<scale>.json`: the metrics
//! of the report's evaluation with bootstrap intervals over users, the popularity gains, the latency, the
//! training curve of a GRPO run, and the code (commit) of each run.

use std::path::Path;

use anyhow::{Context, bail};
use r3_metrics::BootstrapConfig;
use r3_runs::Provenance;
use r3_runs::baseline::BaselineSummary;
use r3_runs::eval::EvalMetrics;
use r3_runs::reproduce::{MARKER_FILE, RunMarker};
use r3_runs::train::{ENV_FILE, GrpoRecord, GrpoResolved, METRICS_FILE, RunEnv, SUMMARY_FILE};

use crate::execute::{eval_dir, utc_now};
use crate::manifest::{Experiment, Manifest, ReportKind, RunKind, Scale, parse_metric};
use crate::outcome::{EvalOutcome, dataset_popularity};
use crate::plan::PlannedRun;
use crate::results::{Curve, CurvePoint, MetricEntry, RECOVERED_NOTE, ResultFile, RunRecord};
use crate::stats::{gain_ci, mean, mean_ci, median};

/// What a report needs besides the runs.
pub struct ReportContext<'a> {
    /// The repository root.
    pub root: &'a Path,
    /// The data folder.
    pub data: &'a Path,
    /// The dataset stem.
    pub stem: &'a str,
    /// The hardware line.
    pub hw: &'a str,
    /// The device.
    pub device: &'a str,
    /// The command that reproduces the result.
    pub command: &'a str,
}

/// A metric entry on one line: `ours [lo, hi] (paper p, Δ d)`.
pub fn fmt_entry(m: &MetricEntry) -> String {
    let mut s = m.ours.map_or("-".into(), |v| format!("{v:.4}"));
    if let Some([lo, hi]) = m.ci95 {
        s.push_str(&format!(" [{lo:.4}, {hi:.4}]"));
    }
    if let Some(p) = m.paper {
        s.push_str(&format!(" (paper {p:.4}, Δ {:+.4})", m.delta.unwrap_or(f64::NAN)));
    }
    s
}

/// The data note of a dataset: the shared CDs and Industrial train splits are recovered subsets.
pub fn data_note(stem: &str) -> &'static str {
    if stem.starts_with("CDs_and_Vinyl") || stem.starts_with("Industrial_and_Scientific") {
        RECOVERED_NOTE
    } else {
        "train split as prepared by `latentr3 data prepare`"
    }
}

/// The code that produced a finished run: what the run recorded itself (a training run's `env.json`, an
/// evaluation's `metrics.json`, a baseline's `summary.json`), else what the driver recorded in the marker when it
/// built the binary; unknown otherwise (never guessed).
pub fn run_provenance(run: &PlannedRun) -> anyhow::Result<Provenance> {
    fn read_if<T: r3_runs::RunFile + serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
        Ok(if path.is_file() { Some(r3_runs::read_json(path)?) } else { None })
    }
    let own = match run.kind {
        RunKind::Sft | RunKind::Grpo => read_if::<RunEnv>(&run.dir.join(ENV_FILE))?.map(|e| e.provenance()),
        RunKind::Eval => read_if::<EvalMetrics>(&run.dir.join(r3_runs::eval::METRICS_FILE))?.and_then(|m| m.code),
        RunKind::Baseline => read_if::<BaselineSummary>(&run.dir.join(SUMMARY_FILE))?.and_then(|s| s.code),
    };
    if let Some(p) = own.filter(Provenance::is_known) {
        return Ok(p);
    }
    let marker = run.dir.join(MARKER_FILE);
    if marker.is_file() {
        return Ok(r3_runs::read_json::<RunMarker>(&marker)?.code.unwrap_or_default());
    }
    Ok(Provenance::default())
}

/// The record of a finished run in a result file; its folder relative to the repository `root`, else as
/// `$LATENTR3_RUNS/...` relative to the run store `runs` (no machine's home folder in a result file).
pub fn run_record(root: &Path, runs: &Path, run: &PlannedRun, wall_s: f64) -> anyhow::Result<RunRecord> {
    let dir = match (run.dir.strip_prefix(root), run.dir.strip_prefix(runs)) {
        (Ok(rel), _) => rel.display().to_string(),
        (_, Ok(rel)) => format!("$LATENTR3_RUNS/{}", rel.display()),
        _ => run.dir.display().to_string(),
    };
    Ok(RunRecord {
        id: run.id.clone(),
        kind: run.kind.name().into(),
        key: run.key.clone(),
        dir,
        wall_s,
        commit: Some(run_provenance(run)?.label()),
    })
}

/// One GRPO run's training curve and wall time, from its `metrics.jsonl`; `label` is its algorithm.
pub fn training_curve(dir: &Path, id: &str, label: &str) -> anyhow::Result<Curve> {
    let mut points: Vec<CurvePoint> = Vec::new();
    for record in r3_runs::read_jsonl::<GrpoRecord>(&dir.join(METRICS_FILE))? {
        match record {
            GrpoRecord::Step(s) => {
                points.push(CurvePoint { step: s.step, elapsed_s: s.elapsed_s, reward: s.reward_mean, val_ndcg: None })
            }
            GrpoRecord::Eval(e) => {
                // NDCG at the largest cut-off validated (the trainer's `eval.k`, 10 by default).
                if let Some(p) = points.iter_mut().rev().find(|p| p.step == e.step) {
                    p.val_ndcg = e.ndcg.last().copied();
                }
            }
        }
    }
    Ok(Curve { run: id.into(), label: label.into(), points })
}

/// The evaluation folders and the run kinds of an experiment's planned runs.
struct Runs<'a>(&'a [PlannedRun]);

impl Runs<'_> {
    fn get(&self, id: &str) -> anyhow::Result<&PlannedRun> {
        self.0.iter().find(|r| r.id == id).with_context(|| format!("the report's run `{id}` was not planned"))
    }

    fn outcome(&self, id: &str) -> anyhow::Result<EvalOutcome> {
        let r = self.get(id)?;
        EvalOutcome::read(&eval_dir(r), r.kind)
    }
}

/// The metrics of the report's evaluation, with bootstrap intervals over users.
fn metric_entries(m: &Manifest, main: &EvalOutcome, out: &mut Vec<MetricEntry>) -> anyhow::Result<()> {
    let boot = BootstrapConfig::default();
    for name in m.report.metric_names() {
        let (ndcg, k) = parse_metric(&name)?;
        let v = main.values(ndcg, k)?;
        let paper = m.paper.values.get(&name).copied();
        out.push(MetricEntry::new(&name, Some(mean(&v)), mean_ci(&boot, &v), paper, main.ranks.len()));
    }
    Ok(())
}

/// The relative gains of the report's run over its baseline on popular and unpopular target items.
fn popularity_gains(
    m: &Manifest,
    runs: &Runs<'_>,
    main: &EvalOutcome,
    ctx: &ReportContext<'_>,
) -> anyhow::Result<Vec<MetricEntry>> {
    let base_id = m.report.baseline.as_deref().context("popularity_gain has a baseline")?;
    let base = runs.outcome(base_id)?;
    if base.item_ids != main.item_ids {
        bail!("the evaluations `{}` and `{base_id}` are not of the same users in the same order", m.report.run);
    }
    let popularity = dataset_popularity(ctx.data, ctx.stem, main.coverage)?;
    let boot = BootstrapConfig::default();
    let mut out = Vec::new();
    let n_items = popularity.counts().len();
    if let Some(id) = main.item_ids.iter().find(|&&id| id as usize >= n_items) {
        bail!("the evaluation `{}` has a target item id {id} outside the catalogue of {n_items} items", m.report.run);
    }
    for (bucket, want) in [("popular", true), ("unpopular", false)] {
        let idx: Vec<usize> =
            (0..main.ranks.len()).filter(|&i| popularity.is_popular(main.item_ids[i]) == want).collect();
        let (a, b): (Vec<Option<usize>>, Vec<Option<usize>>) =
            idx.iter().map(|&i| (main.ranks[i], base.ranks[i])).unzip();
        for name in m.report.metric_names() {
            let (ndcg, k) = parse_metric(&name)?;
            let all = main.values(ndcg, k)?;
            let values: Vec<f64> = idx.iter().map(|&i| all[i]).collect();
            main.check_bucket(bucket, ndcg, k, &values)?;
            let full = format!("{bucket} {name}");
            let (gain, ci) = gain_ci(&boot, &a, &b, ndcg, k)?;
            out.push(MetricEntry::new(&full, gain, ci, m.paper.values.get(&full).copied(), idx.len()));
        }
    }
    Ok(out)
}

/// The per-user latency (mean with an interval, median), then the metrics.
fn latency_entries(m: &Manifest, main: &EvalOutcome, dir: &Path) -> anyhow::Result<Vec<MetricEntry>> {
    let n = main.ranks.len();
    if main.latency_s.len() != n {
        bail!("{}: not every prediction record has `latency_s`", dir.display());
    }
    let l = &main.latency_s;
    let paper = |name: &str| m.paper.values.get(name).copied();
    let boot = BootstrapConfig::default();
    let mut out = vec![
        MetricEntry::new("latency mean s", Some(mean(l)), mean_ci(&boot, l), paper("latency mean s"), n),
        MetricEntry::new("latency median s", Some(median(l)), None, paper("latency median s"), n),
    ];
    metric_entries(m, main, &mut out)?;
    Ok(out)
}

/// The training cost and curve of the report's GRPO run.
fn training_entry(m: &Manifest, runs: &Runs<'_>) -> anyhow::Result<(MetricEntry, Curve)> {
    let train_id = m.report.train.as_deref().context("training has a train run")?;
    let tdir = &runs.get(train_id)?.dir;
    let algorithm = GrpoResolved::read(tdir)?.grpo.algorithm;
    let curve = training_curve(tdir, train_id, algorithm.name())?;
    let last = curve.points.last().map(|p| p.elapsed_s);
    let entry = MetricEntry::new("train s", last, None, m.paper.values.get("train s").copied(), curve.points.len());
    Ok((entry, curve))
}

/// Builds the result file of an experiment whose runs are done.
pub fn report(
    e: &Experiment,
    scale: Scale,
    runs: &[PlannedRun],
    records: Vec<RunRecord>,
    ctx: &ReportContext<'_>,
) -> anyhow::Result<ResultFile> {
    let m = &e.manifest;
    let runs = Runs(runs);
    let main = runs.outcome(&m.report.run)?;
    let mut metrics = Vec::new();
    let mut curves = Vec::new();
    match m.report.kind {
        ReportKind::Metrics => metric_entries(m, &main, &mut metrics)?,
        ReportKind::PopularityGain => metrics = popularity_gains(m, &runs, &main, ctx)?,
        ReportKind::Latency => metrics = latency_entries(m, &main, &eval_dir(runs.get(&m.report.run)?))?,
        ReportKind::Training => {
            metric_entries(m, &main, &mut metrics)?;
            let (entry, curve) = training_entry(m, &runs)?;
            metrics.push(entry);
            curves.push(curve);
        }
    }
    Ok(ResultFile {
        experiment: e.name.clone(),
        table: m.paper.table.clone(),
        row: m.paper.row.clone(),
        column: m.paper.column.clone(),
        scale,
        device: ctx.device.into(),
        hardware: ctx.hw.into(),
        data_note: data_note(ctx.stem).into(),
        dataset: ctx.stem.into(),
        users: main.ranks.len(),
        commit: Provenance::of_working_tree(ctx.root).label(),
        command: ctx.command.into(),
        written: utc_now(),
        runs: records,
        metrics,
        curves,
        comparisons: Vec::new(),
        note: m.paper.note.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn training_curves_join_validations_to_their_steps() {
        let dir = tempfile::tempdir().unwrap();
        let step = |s: u64, t: f64, r: f64| {
            json!({"kind": "step", "step": s, "total_steps": 2, "epoch": 0, "loss": 0.1, "reward_mean": r,
                "reward_std": 0.3, "equal_reward_groups": 0.0, "advantage_norm": 1.0, "clip_ratio": 0.0, "kl": null,
                "grad_norm": 0.2, "lr": 1e-5, "samples_per_s": 3.0, "elapsed_s": t})
        };
        let lines = [
            step(1, 10.0, -3.0),
            step(2, 20.0, -2.5),
            json!({"kind": "eval", "step": 2, "k": [5, 10], "hr": [0.1, 0.2], "ndcg": [0.05, 0.07], "improved": true}),
        ];
        let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
        std::fs::write(dir.path().join("metrics.jsonl"), &text).unwrap();
        let c = training_curve(dir.path(), "grpo", "lr_grpo").unwrap();
        assert_eq!(c.points.len(), 2);
        assert_eq!((c.points[0].val_ndcg, c.points[1].val_ndcg), (None, Some(0.07)));
        assert_eq!((c.points[1].elapsed_s, c.points[1].reward), (20.0, -2.5));
        // A step without its reward is an error naming the file and line, not a curve of zeros.
        std::fs::write(dir.path().join("metrics.jsonl"), text.replace("\"reward_mean\":-2.5,", "")).unwrap();
        let err = format!("{:#}", training_curve(dir.path(), "grpo", "lr_grpo").unwrap_err());
        assert!(err.contains("metrics.jsonl:2") && err.contains("reward_mean"), "{err}");
    }

    fn planned(dir: &Path, kind: RunKind) -> PlannedRun {
        PlannedRun {
            id: "r".into(),
            kind,
            key: "0123456789abcdef".into(),
            dir: dir.to_path_buf(),
            resolved: json!({}),
            commands: vec![],
            resume: None,
            requires: vec![],
            users: 0,
            pick: None,
        }
    }

    #[test]
    fn a_run_records_its_code_or_says_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let run = planned(dir.path(), RunKind::Sft);
        // Nothing recorded: unknown, never a guess.
        assert_eq!(run_provenance(&run).unwrap().label(), "unknown");
        // The driver's marker records the code of the binary it built.
        let marker = json!({"experiment": "e", "id": "r", "kind": "sft", "key": "k", "resolved": {}, "commands": [],
            "wall_s": 1.0, "finished": "2026-11-26T02:15:00Z", "hardware": "h",
            "code": {"commit": "1111111111111111111111111111111111111111", "dirty": false}});
        std::fs::write(dir.path().join(MARKER_FILE), marker.to_string()).unwrap();
        assert_eq!(run_provenance(&run).unwrap().label(), "111111111111");
        // The run's own record wins: a training run's env.json.
        let env = json!({"git_commit": "2222222222222222222222222222222222222222", "git_dirty": true,
            "burn_version": "0.22.1", "device": "Flex", "dtype": "f32", "hostname": null, "unix_time": 0,
            "time_utc": "1970-01-01T00:00:00Z", "r3_train_version": "0.0.0"});
        std::fs::write(dir.path().join(ENV_FILE), env.to_string()).unwrap();
        assert_eq!(run_provenance(&run).unwrap().label(), "222222222222-dirty");
        let record = run_record(dir.path().parent().unwrap(), Path::new("/runs"), &run, 3.0).unwrap();
        assert_eq!((record.commit.as_deref(), record.wall_s), (Some("222222222222-dirty"), 3.0));
        // An evaluation without `code` in its metrics.json falls back to the marker.
        crate::outcome::tests::eval_fixture(dir.path(), 0.5);
        assert_eq!(run_provenance(&planned(dir.path(), RunKind::Eval)).unwrap().label(), "111111111111");
    }

    #[test]
    fn data_notes_name_the_recovered_subsets() {
        assert_eq!(data_note("CDs_and_Vinyl_5_2015-10-2018-11"), RECOVERED_NOTE);
        assert_ne!(data_note("Toys_and_Games_5_2016-10-2018-11"), RECOVERED_NOTE);
    }
}
