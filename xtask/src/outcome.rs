//! What the result files need from an evaluation folder (`latentr3 eval`'s run folder, a baseline's `test/`):
//! the target's rank per user, the target item and the latency, read through the typed run files of `r3-runs`
//! and checked against the run's own `metrics.json`; and the popular items of the dataset (`r3_data::Popularity`).

use std::path::Path;

use anyhow::{Context, bail};
use r3_data::{Dataset, ItemId, Popularity, PopularityConfig};
use r3_metrics::{Output, Report, strip_target, title_rank};
use r3_runs::baseline::{BaselineMetrics, BaselinePrediction};
use r3_runs::eval::{EvalMetrics, EvalPrediction, JSON_FILE, JSONL_FILE, METRICS_FILE};
use r3_runs::{RunFile, read_json, read_json_array, read_jsonl};
use serde::de::DeserializeOwned;

use crate::manifest::RunKind;
use crate::stats::{mean, user_values};

/// The per-user outcome of an evaluation run.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOutcome {
    /// The target's rank per user.
    pub ranks: Vec<Option<usize>>,
    /// The target item id per user.
    pub item_ids: Vec<ItemId>,
    /// The per-user latency in seconds (evaluations of `latentr3 eval`; empty for a baseline).
    pub latency_s: Vec<f64>,
    /// The popularity coverage of the run's buckets.
    pub coverage: f64,
    /// The run's report.
    pub report: Report,
}

/// The fields of a prediction record that the outcome reads.
trait Scored: RunFile + DeserializeOwned {
    fn target(&self) -> &Output;
    fn predict(&self) -> &[String];
    fn item_id(&self) -> ItemId;
    fn latency_s(&self) -> Option<f64>;
}

impl Scored for EvalPrediction {
    fn target(&self) -> &Output {
        &self.output
    }
    fn predict(&self) -> &[String] {
        &self.predict
    }
    fn item_id(&self) -> ItemId {
        self.item_id
    }
    fn latency_s(&self) -> Option<f64> {
        Some(self.latency_s)
    }
}

impl Scored for BaselinePrediction {
    fn target(&self) -> &Output {
        &self.output
    }
    fn predict(&self) -> &[String] {
        &self.predict
    }
    fn item_id(&self) -> ItemId {
        self.item_id
    }
    fn latency_s(&self) -> Option<f64> {
        None
    }
}

/// `predictions.json` of the folder, else its `predictions.jsonl`.
fn read_records<T: Scored>(dir: &Path) -> anyhow::Result<Vec<T>> {
    let json = dir.join(JSON_FILE);
    Ok(if json.is_file() { read_json_array(&json)? } else { read_jsonl(&dir.join(JSONL_FILE))? })
}

impl EvalOutcome {
    /// Reads the predictions and `metrics.json` of the evaluation folder of a `kind` run (eval or baseline), and
    /// checks that the means of the per-user values equal the run's own `report.by_title` numbers.
    pub fn read(dir: &Path, kind: RunKind) -> anyhow::Result<EvalOutcome> {
        let mpath = dir.join(METRICS_FILE);
        match kind {
            RunKind::Baseline => {
                let m: BaselineMetrics = read_json(&mpath)?;
                Self::from_records(dir, read_records::<BaselinePrediction>(dir)?, m.popularity.coverage, m.report)
            }
            RunKind::Eval => {
                let m: EvalMetrics = read_json(&mpath)?;
                Self::from_records(dir, read_records::<EvalPrediction>(dir)?, m.popularity.coverage, m.report)
            }
            RunKind::Sft | RunKind::Grpo => bail!("{}: a {} run has no evaluation", dir.display(), kind.name()),
        }
    }

    fn from_records<T: Scored>(dir: &Path, records: Vec<T>, coverage: f64, report: Report) -> anyhow::Result<Self> {
        let mut out = EvalOutcome { ranks: Vec::new(), item_ids: Vec::new(), latency_s: Vec::new(), coverage, report };
        for (i, r) in records.iter().enumerate() {
            let target = strip_target(r.target())
                .with_context(|| format!("{}: record {i} has an empty `output`", dir.display()))?;
            out.ranks.push(title_rank(r.predict(), target));
            out.item_ids.push(r.item_id());
            out.latency_s.extend(r.latency_s());
        }
        let by_title = &out.report.by_title;
        for (c, &k) in by_title.k.iter().enumerate() {
            for (ndcg, field, theirs) in [(false, "hr", by_title.hr[c]), (true, "ndcg", by_title.ndcg[c])] {
                let ours = mean(&out.values(ndcg, k)?);
                if (ours - theirs).abs() > 1e-9 {
                    bail!(
                        "{}: {field}@{k} from the predictions is {ours}, the run's metrics.json says {theirs}: the \
                         predictions and the metrics of the run disagree (rerun the evaluation)",
                        dir.display()
                    );
                }
            }
        }
        Ok(out)
    }

    /// Per-user values of `H@K` or `N@K`.
    pub fn values(&self, ndcg: bool, k: usize) -> anyhow::Result<Vec<f64>> {
        user_values(&self.ranks, ndcg, k)
    }

    /// Checks a bucket's per-user values against the `report.buckets` of the run's `metrics.json`, when the run
    /// reported that bucket at cut-off `k`.
    pub fn check_bucket(&self, bucket: &str, ndcg: bool, k: usize, values: &[f64]) -> anyhow::Result<()> {
        let Some(b) = self.report.buckets.iter().find(|b| b.bucket == bucket) else { return Ok(()) };
        let Some(c) = b.metrics.k.iter().position(|&x| x == k) else { return Ok(()) };
        let theirs = if ndcg { b.metrics.ndcg[c] } else { b.metrics.hr[c] };
        let ours = if values.is_empty() { 0.0 } else { mean(values) };
        if b.metrics.n != values.len() || (ours - theirs).abs() > 1e-9 {
            bail!(
                "the {bucket} bucket: xtask finds {} users and {ours}, latentr3 eval {} and {theirs}: the popularity \
                 split of xtask and of the run disagree",
                values.len(),
                b.metrics.n
            );
        }
        Ok(())
    }
}

/// Whether each item of dataset `stem` in `data` is popular (`r3_data::Popularity` of its train split at
/// `coverage`).
pub fn dataset_popularity(data: &Path, stem: &str, coverage: f64) -> anyhow::Result<Popularity> {
    if !(coverage > 0.0 && coverage <= 1.0) {
        bail!("popularity coverage {coverage}: the run's metrics.json must hold a share in (0, 1]");
    }
    let ds = Dataset::load(data, stem).with_context(|| format!("loading `{stem}` from {}", data.display()))?;
    Ok(Popularity::from_train(&ds.train, ds.catalogue.len(), PopularityConfig { coverage }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Writes an evaluation folder in the layout of `latentr3 eval`: 4 users, targets at ranks 0, 2, none, 7.
    pub(crate) fn eval_fixture(dir: &Path, hr5: f64) {
        let p = |t: &str| format!("\"{t}\"\n");
        let many = |hit: usize, t: &str| -> Vec<String> {
            (0..10).map(|i| if i == hit { p(t) } else { p(&format!("other {i}")) }).collect()
        };
        let rec = |target: &str, hit: usize, item: u32, lat: f64| {
            json!({"input": "x", "output": p(target), "predict": many(hit, target), "row": item, "user_id": "u",
                "item_id": item, "scores": vec![0.0; 10], "item_ids": vec![Vec::<u32>::new(); 10], "latency_s": lat,
                "batch_s": lat, "batch_size": 1})
        };
        let records = json!([rec("A", 0, 0, 1.0), rec("B", 2, 1, 2.0), rec("C", 99, 2, 3.0), rec("D", 7, 0, 4.0)]);
        std::fs::write(dir.join("predictions.json"), records.to_string()).unwrap();
        let n5 = (1.0 + 1.0 / 4f64.log2()) / 4.0;
        let n10 = (1.0 + 0.5 + 1.0 / 9f64.log2()) / 4.0;
        let m = json!({"n": 4, "k": [5, 10], "hr": [hr5, 0.75], "ndcg": [n5, n10]});
        let metrics = json!({
            "settings": {"checkpoint": null, "model": "m", "data": "d", "stem": "s", "split": "test", "limit": 4,
                "seed": 0, "decoding": "bigrec", "users": 4},
            "n_latent": 0,
            "search": {"num_beams": 10.0, "length_penalty": 1.0, "max_new_tokens": 128.0},
            "device": "Flex",
            "latency": {"users": 4, "median_s": 2.5, "p90_s": 4.0, "mean_s": 2.5, "users_per_s": 0.4},
            "popularity": {"coverage": 0.8, "popular_items": 1},
            "report": {"predictions": "p", "samples": 4, "by_title": m, "by_item_id": null,
                "outside_catalogue": {"count": 0, "predictions": 40}, "buckets": [], "baseline": null},
        });
        std::fs::write(dir.join("metrics.json"), metrics.to_string()).unwrap();
    }

    #[test]
    fn evaluation_outcomes_are_read_and_checked_against_the_run() {
        let dir = tempfile::tempdir().unwrap();
        eval_fixture(dir.path(), 0.5);
        let e = EvalOutcome::read(dir.path(), RunKind::Eval).unwrap();
        assert_eq!(e.ranks, vec![Some(0), Some(2), None, Some(7)]);
        assert_eq!(e.values(false, 5).unwrap(), vec![1.0, 1.0, 0.0, 0.0]);
        assert_eq!(e.latency_s, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!((e.item_ids, e.coverage), (vec![0, 1, 2, 0], 0.8));
        // A metrics.json that disagrees with the predictions is an error naming both numbers.
        eval_fixture(dir.path(), 0.25);
        let err = format!("{:#}", EvalOutcome::read(dir.path(), RunKind::Eval).unwrap_err());
        assert!(err.contains("hr@5") && err.contains("0.5") && err.contains("0.25"), "{err}");
        // A baseline folder is read with the baseline's schema: an eval folder is not one.
        eval_fixture(dir.path(), 0.5);
        let err = format!("{:#}", EvalOutcome::read(dir.path(), RunKind::Baseline).unwrap_err());
        assert!(err.contains("metrics.json") && err.contains("latentr3 baseline"), "{err}");
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().unwrap();
        eval_fixture(dir.path(), 0.5);
        let path = dir.path().join("metrics.json");
        let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        m["popularity"].as_object_mut().unwrap().remove("coverage");
        std::fs::write(&path, m.to_string()).unwrap();
        let err = format!("{:#}", EvalOutcome::read(dir.path(), RunKind::Eval).unwrap_err());
        assert!(err.contains("metrics.json") && err.contains("coverage"), "{err}");
    }
}
