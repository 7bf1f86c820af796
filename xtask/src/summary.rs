//! What `cargo xtask reproduce` ends with: the result table of each experiment it wrote, then, for two or three
//! test users of its evaluation, their history, the top 5 recommendations and where the true item ranks (from the
//! evaluation's predictions and the dataset), and a line saying what the scale was and which command runs the
//! powered one. Something a person can judge, rather than a table of zeros.

use std::fmt::Write as _;
use std::path::Path;

use r3_data::Interaction;
use r3_metrics::{strip_target, title_rank};
use r3_runs::eval::{EvalPrediction, JSON_FILE, JSONL_FILE};

use crate::manifest::{Experiment, RunKind, Scale};
use crate::plan::PlannedRun;
use crate::report::fmt_entry;
use crate::results::ResultFile;

/// How many history titles are shown per user (the most recent ones).
const HISTORY_SHOWN: usize = 5;

/// The `k` users shown: the first user whose true item was recommended (if any), then the first others in order.
fn chosen(records: &[EvalPrediction], k: usize) -> Vec<usize> {
    let hit = |r: &EvalPrediction| strip_target(&r.output).and_then(|t| title_rank(&r.predict, t)).is_some();
    let first_hit = records.iter().position(hit);
    let mut out: Vec<usize> = first_hit.into_iter().collect();
    out.extend((0..records.len()).filter(|i| Some(*i) != first_hit).take(k.saturating_sub(out.len())));
    out.sort_unstable();
    out
}

fn title(t: &str) -> String {
    format!("\"{}\"", t.trim().trim_matches('"'))
}

/// The lines of `k` example users: history (most recent last), top 5, the true item's rank. `test` is the test
/// split the records' `row`s index.
pub fn examples(records: &[EvalPrediction], test: &[Interaction], k: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in chosen(records, k) {
        let r = &records[i];
        let history = test.get(r.row).map(|row| row.history_titles.as_slice()).unwrap_or_default();
        let skip = history.len().saturating_sub(HISTORY_SHOWN);
        let shown: Vec<String> = history[skip..].iter().map(|t| title(t)).collect();
        let older = if skip > 0 { format!("… {skip} older, then ") } else { String::new() };
        out.push(format!("user {} (test row {}): history {older}{}", r.user_id, r.row, shown.join(", ")));
        let top: Vec<String> =
            r.predict.iter().take(5).enumerate().map(|(j, p)| format!("{}. {}", j + 1, title(p))).collect();
        out.push(format!("    top 5: {}", top.join("  ")));
        let target = strip_target(&r.output).unwrap_or_default();
        let rank = match title_rank(&r.predict, target) {
            Some(j) => format!("rank {} of the {} recommendations", j + 1, r.predict.len()),
            None => format!("not among the {} recommendations", r.predict.len()),
        };
        out.push(format!("    true next item: {}: {rank}", title(target)));
    }
    out
}

/// What the scale was, and the command of the powered scale (with its estimated time).
pub fn scale_line(experiment: &str, scale: Scale) -> Option<String> {
    let what = match scale {
        Scale::Smoke => {
            "This was the smoke scale: a check that every stage runs on real data and a real model (a dozen SFT \
             steps on 64 samples, 4 LR-GRPO steps, 16 test users); its numbers mean nothing."
        }
        Scale::Quick => {
            "This was the quick scale (1,024 train rows, 500 test users): its intervals are too wide to tell \
             the methods apart."
        }
        Scale::Cpu | Scale::Paper => return None,
    };
    Some(format!(
        "{what}\nThe powered scale: `cargo xtask reproduce {experiment} --scale cpu --device flex` (every train row, \
         every test user; an estimate from the step times in docs/performance.md: about 13 h on 2 idle cores for \
         this row, 22–24 h with the BIGRec and w/o RL rows it is compared with; docs/reproduce.md)."
    ))
}

/// The result table of one result file: each metric with its interval, then its paired comparisons.
pub fn result_lines(r: &ResultFile) -> Vec<String> {
    let mut out = vec![format!("{} ({} scale, {} test users, {}):", r.experiment, r.scale, r.users, r.row)];
    for m in &r.metrics {
        out.push(format!("  {:<18} {}", m.name, fmt_entry(m)));
    }
    for c in &r.comparisons {
        for p in c.entries.iter().filter(|p| !p.name.contains(' ')) {
            out.push(format!("  {:<18} {}", format!("Δ {} vs {}", p.name, c.row), crate::compare::fmt_paired(p)));
        }
    }
    out
}

/// The predictions of an evaluation folder (`predictions.json`, else the appended `predictions.jsonl`).
fn predictions(dir: &Path) -> anyhow::Result<Vec<EvalPrediction>> {
    let json = dir.join(JSON_FILE);
    Ok(if json.is_file() { r3_runs::read_json_array(&json)? } else { r3_runs::read_jsonl(&dir.join(JSONL_FILE))? })
}

/// The closing summary of one written result: its table, example users of its evaluation, the scale line.
pub fn summary(e: &Experiment, r: &ResultFile, runs: &[PlannedRun], data: &Path) -> anyhow::Result<String> {
    let mut s = String::new();
    for l in result_lines(r) {
        let _ = writeln!(s, "{l}");
    }
    let eval = runs.iter().find(|p| p.id == e.manifest.report.run && p.kind == RunKind::Eval);
    if let Some(run) = eval {
        let records = predictions(&run.dir)?;
        let ds = r3_data::Dataset::load(data, &r.dataset)?;
        let _ = writeln!(s, "\nThree test users (their history, our top 5, where the true next item ranks):");
        for l in examples(&records, &ds.test, 3) {
            let _ = writeln!(s, "  {l}");
        }
    }
    if let Some(l) = scale_line(&e.name, r.scale) {
        let _ = writeln!(s, "\n{l}");
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
