//! The run folder of `latentr3 baseline train`: `config.json` ([`BaselineConfig`]), `metrics.jsonl` (one
//! [`BaselineEpoch`] per epoch), `summary.json` ([`BaselineSummary`]) and `test/` with `predictions.json`
//! ([`BaselinePrediction`] records) and `metrics.json` ([`BaselineMetrics`]).

use r3_data::{ItemId, Split};
use r3_metrics::{Metrics, Output, Report};
use serde::{Deserialize, Serialize};

use crate::eval::PopularityInfo;
use crate::io::RunFile;
use crate::provenance::Provenance;

/// The resolved experiment of the run.
pub const CONFIG_FILE: &str = "config.json";
/// The folder of the test split's evaluation.
pub const TEST_DIR: &str = "test";

/// `config.json`: the resolved experiment, the data and the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// The experiment (model hyper-parameters and training settings) in the layout of `r3_baselines`'
    /// `BaselineExperiment`, which this crate does not depend on (it depends on burn).
    pub experiment: serde_json::Value,
    /// The data folder.
    pub data: String,
    /// The dataset stem.
    pub stem: String,
    /// The catalogue's size.
    pub n_items: usize,
    /// The device, as burn prints it.
    pub device: String,
}

impl RunFile for BaselineConfig {
    const WHAT: &'static str = "the config.json of latentr3 baseline train";
}

/// One line of `metrics.jsonl`: an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEpoch {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The mean training loss of the epoch's steps.
    pub loss: f64,
    /// Validation HR@10.
    pub valid_hr10: f64,
    /// Validation NDCG@10 (the early-stopping metric).
    pub valid_ndcg10: f64,
    /// Seconds of training.
    pub train_s: f64,
    /// Seconds of validation.
    pub valid_s: f64,
    /// Whether this epoch is the best so far.
    pub best: bool,
}

impl RunFile for BaselineEpoch {
    const WHAT: &'static str = "an epoch record of latentr3 baseline train";
}

/// `summary.json`: the best epoch and the test metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSummary {
    /// The model: `sasrec`, `gru4rec`, `caser` or `alpharec`.
    pub model: String,
    /// The dataset stem.
    pub stem: String,
    /// The best epoch (its weights are the model's).
    pub best_epoch: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// The best validation NDCG@10.
    pub valid_ndcg10: f64,
    /// Mean training seconds per epoch.
    pub train_s_per_epoch: f64,
    /// Seconds of the whole command.
    pub total_s: f64,
    /// The test metrics by title.
    pub test: Metrics,
    /// The code that trained the run (absent in folders written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Provenance>,
}

impl RunFile for BaselineSummary {
    const WHAT: &'static str = "the summary.json of latentr3 baseline train";
}

/// One user's record in `<split>/predictions.json` of a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePrediction {
    /// The user's history titles, quoted and joined.
    pub input: String,
    /// The target title, `"\"Title\"\n"`.
    pub output: Output,
    /// The top-K titles, best first.
    pub predict: Vec<String>,
    /// The user's row in the split.
    pub row: usize,
    /// The user's id.
    pub user_id: String,
    /// The target item's id.
    pub item_id: ItemId,
    /// The item id of each prediction.
    pub item_ids: Vec<ItemId>,
    /// The model's score of each prediction (`null` where it is not finite).
    pub scores: Vec<Option<f64>>,
}

impl RunFile for BaselinePrediction {
    const WHAT: &'static str = "a prediction record of latentr3 baseline";
}

/// `<split>/metrics.json` of a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineMetrics {
    /// The split ranked.
    pub split: Split,
    /// The users ranked.
    pub rows: usize,
    /// Seconds of ranking.
    pub ranking_s: f64,
    /// The popularity split of the buckets.
    pub popularity: PopularityInfo,
    /// HR@K / NDCG@K by title, by item id and per popularity bucket.
    pub report: Report,
}

impl RunFile for BaselineMetrics {
    const WHAT: &'static str = "the metrics.json of latentr3 baseline";
}
