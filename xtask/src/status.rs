//! `cargo xtask reproduce <experiment> --scale S --status`: each planned run's progress read from its folder,
//! without running anything. A training run's steps come from its `metrics.jsonl` (the steps of the schedule:
//! a GRPO run records them, an SFT run's are computed from its resolved configuration and the train split); an
//! evaluation's users from `eval.json` and the records appended to `predictions.jsonl`. The rate measured so far
//! gives the ETA. Only the driver's marker makes a run done: a partial evaluation is shown as partial, never as a
//! result.

use std::fmt::Write as _;
use std::path::Path;

use r3_runs::eval::{EvalPrediction, EvalSettings, JSONL_FILE, METRICS_FILE, SETTINGS_FILE};
use r3_runs::reproduce::{MARKER_FILE, RunMarker};
use r3_runs::train::{GrpoRecord, METRICS_FILE as TRAIN_METRICS, SftRecord};
use r3_runs::{read_json, read_jsonl};
use serde_json::Value;

use crate::manifest::RunKind;
use crate::plan::PlannedRun;

/// What a run folder says about its progress.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// No folder yet.
    NotStarted,
    /// The driver's marker exists: the run is finished and recorded.
    Done {
        /// The wall seconds of the session that finished it.
        wall_s: f64,
    },
    /// Started, not finished (or finished and not yet recorded by the driver).
    Partial {
        /// Steps or users done.
        done: u64,
        /// Steps or users in all, when known.
        total: Option<u64>,
        /// `steps` or `users`.
        unit: &'static str,
        /// Seconds spent on `done` (training seconds; the evaluated users' latencies).
        elapsed_s: f64,
        /// Why the numbers are what they are (`metrics.json written: rerun reproduce to record it`, ...).
        note: String,
    },
}

impl Progress {
    /// The estimated seconds left at the rate measured so far.
    pub fn eta_s(&self) -> Option<f64> {
        match self {
            Progress::Partial { done, total: Some(total), elapsed_s, .. } if *done > 0 && elapsed_s.is_finite() => {
                Some(total.saturating_sub(*done) as f64 * elapsed_s / *done as f64)
            }
            _ => None,
        }
    }
}

/// A duration as seconds, minutes or hours.
pub fn fmt_duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::NotStarted => f.write_str("not started"),
            Progress::Done { wall_s } => write!(f, "done ({} in its last session)", fmt_duration(*wall_s)),
            Progress::Partial { done, total, unit, elapsed_s, note } => {
                let mut s = match total {
                    Some(t) if *t > 0 => {
                        format!("partial: {done}/{t} {unit} ({:.0}%)", 100.0 * *done as f64 / *t as f64)
                    }
                    _ => format!("partial: {done} {unit} of an unknown total"),
                };
                if *done > 0 {
                    let _ = write!(s, ", {} so far", fmt_duration(*elapsed_s));
                }
                if let Some(eta) = self.eta_s() {
                    let _ = write!(s, ", ETA {}", fmt_duration(eta));
                }
                if !note.is_empty() {
                    let _ = write!(s, "; {note}");
                }
                f.write_str(&s)
            }
        }
    }
}

/// The optimizer steps of an SFT run's schedule from its resolved configuration: `train.max_steps` when set,
/// else `train.epochs` × ⌈samples / `train.batch`⌉ with `data.sample` samples (all `train_rows` when 0); `None`
/// when the configuration leaves one of them to the trainer's defaults (never guessed).
pub fn sft_total_steps(resolved: &Value, train_rows: Option<u64>) -> Option<u64> {
    let c = &resolved["config"];
    if let Some(m) = c["train"]["max_steps"].as_u64().filter(|&m| m > 0) {
        return Some(m);
    }
    let (epochs, batch) = (c["train"]["epochs"].as_u64()?, c["train"]["batch"].as_u64().filter(|&b| b > 0)?);
    let samples = match c["data"]["sample"].as_u64()? {
        0 => train_rows?,
        n => train_rows.map_or(n, |t| n.min(t)),
    };
    Some(epochs * samples.div_ceil(batch))
}

/// The progress of one planned run; `train_rows` is the size of the dataset's train split when known.
pub fn progress(run: &PlannedRun, train_rows: Option<u64>) -> anyhow::Result<Progress> {
    let dir = &run.dir;
    if dir.join(MARKER_FILE).is_file() {
        return Ok(Progress::Done { wall_s: read_json::<RunMarker>(&dir.join(MARKER_FILE))?.wall_s });
    }
    if !dir.is_dir() {
        return Ok(Progress::NotStarted);
    }
    let partial = |done, total, unit, elapsed_s, note: &str| Progress::Partial {
        done,
        total,
        unit,
        elapsed_s,
        note: note.to_string(),
    };
    let metrics = dir.join(TRAIN_METRICS);
    Ok(match run.kind {
        RunKind::Sft | RunKind::Grpo if !metrics.is_file() => partial(0, None, "steps", 0.0, "no step recorded yet"),
        RunKind::Sft => {
            let last = read_jsonl::<SftRecord>(&metrics)?.into_iter().rev().find_map(|r| match r {
                SftRecord::Step { step, elapsed_s, .. } => Some((step, elapsed_s)),
                SftRecord::Eval { .. } => None,
            });
            let (step, elapsed) = last.unwrap_or((0, 0.0));
            let total = sft_total_steps(&run.resolved, train_rows);
            partial(step, total, "steps", elapsed, "early stopping may end it sooner")
        }
        RunKind::Grpo => {
            let last = read_jsonl::<GrpoRecord>(&metrics)?.into_iter().rev().find_map(|r| match r {
                GrpoRecord::Step(s) => Some((s.step, Some(s.total_steps), s.elapsed_s)),
                GrpoRecord::Eval(_) => None,
            });
            let (step, total, elapsed) = last.unwrap_or((0, None, 0.0));
            partial(step, total, "steps", elapsed, "")
        }
        RunKind::Eval => eval_progress(dir)?,
        RunKind::Baseline => partial(0, None, "epochs", f64::NAN, "running or killed (a baseline records no progress)"),
    })
}

/// An evaluation folder without the driver's marker: the users appended so far against those of `eval.json`.
fn eval_progress(dir: &Path) -> anyhow::Result<Progress> {
    let settings = dir.join(SETTINGS_FILE);
    if !settings.is_file() {
        return Ok(Progress::Partial {
            done: 0,
            total: None,
            unit: "users",
            elapsed_s: 0.0,
            note: "no eval.json yet".into(),
        });
    }
    let total = read_json::<EvalSettings>(&settings)?.users as u64;
    let jsonl = dir.join(JSONL_FILE);
    let records: Vec<EvalPrediction> = if jsonl.is_file() { read_jsonl(&jsonl)? } else { Vec::new() };
    let note = if dir.join(METRICS_FILE).is_file() {
        "metrics.json written: rerun `cargo xtask reproduce` to record the run"
    } else {
        "not final: the metrics are written when every user is done"
    };
    Ok(Progress::Partial {
        done: records.len() as u64,
        total: Some(total),
        unit: "users",
        elapsed_s: records.iter().map(|r| r.latency_s).sum(),
        note: note.into(),
    })
}

/// The status lines of one experiment's planned runs.
pub fn status_lines(runs: &[PlannedRun], train_rows: Option<u64>) -> Vec<String> {
    runs.iter()
        .map(|r| {
            let p = progress(r, train_rows).map_or_else(|e| format!("unreadable: {e:#}"), |p| p.to_string());
            format!("  {:<20} {:<8} {p}  {}", r.id, r.kind.name(), r.dir.display())
        })
        .collect()
}

#[cfg(test)]
mod tests;
