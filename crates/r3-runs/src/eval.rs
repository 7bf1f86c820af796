//! The run folder of `latentr3 eval`: `eval.json` ([`EvalSettings`]), `predictions.jsonl` and `predictions.json`
//! ([`EvalPrediction`] records) and `metrics.json` ([`EvalMetrics`]).

use r3_data::{ItemId, Split};
use r3_metrics::{Output, Report};
use serde::{Deserialize, Serialize};

use crate::io::RunFile;
use crate::provenance::Provenance;

/// The settings file of an evaluation run folder.
pub const SETTINGS_FILE: &str = "eval.json";
/// The per-user records, appended batch by batch.
pub const JSONL_FILE: &str = "predictions.jsonl";
/// The predictions in the official layout (one JSON array), written at the end.
pub const JSON_FILE: &str = "predictions.json";
/// The metrics and latencies, written at the end.
pub const METRICS_FILE: &str = "metrics.json";

/// The decoding of an evaluation (`latentr3 eval --decoding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// BIGRec: length penalty 1.
    #[default]
    Bigrec,
    /// D3: length penalty 0, optionally guided by an assistant model.
    D3,
}

impl Decoding {
    /// The CLI value.
    pub fn name(self) -> &'static str {
        match self {
            Decoding::Bigrec => "bigrec",
            Decoding::D3 => "d3",
        }
    }
}

/// `eval.json`: what a resumed evaluation must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSettings {
    /// `--checkpoint`: the model folder evaluated.
    pub checkpoint: Option<String>,
    /// `--model`: the untuned model evaluated.
    pub model: Option<String>,
    /// The data folder.
    pub data: String,
    /// The dataset stem.
    pub stem: String,
    /// The split whose users are evaluated.
    pub split: Split,
    /// `--limit`: the seeded subset size.
    pub limit: Option<usize>,
    /// The seed of the subset.
    pub seed: u64,
    /// The decoding.
    pub decoding: Decoding,
    /// The number of users evaluated.
    pub users: usize,
    /// D3's assistant model folder (absent in folders written before the guidance existed).
    #[serde(default)]
    pub assistant: Option<String>,
    /// D3's guidance scale (1 = none; absent in folders written before the guidance existed).
    #[serde(default = "unit_scale")]
    pub guidance_scale: f32,
    /// The chain-of-thought budget (0 = plain decoding; absent in folders written before it existed).
    #[serde(default)]
    pub cot_tokens: usize,
}

fn unit_scale() -> f32 {
    1.0
}

impl RunFile for EvalSettings {
    const WHAT: &'static str = "the eval.json of latentr3 eval";
}

/// One user's record in `predictions.jsonl` / `predictions.json` of `latentr3 eval`: the official keys (`input`,
/// `output`, `predict`) and ours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalPrediction {
    /// The user-input text of the prompt.
    pub input: String,
    /// The target title, `"\"Title\"\n"`.
    pub output: Output,
    /// The recommended titles, best first, each `"\"Title\"\n"`.
    pub predict: Vec<String>,
    /// The user's row in the split.
    pub row: usize,
    /// The user's id.
    pub user_id: String,
    /// The target item's id.
    pub item_id: ItemId,
    /// The beam score of each prediction (`null` where it is not finite: JSON has no infinity).
    pub scores: Vec<Option<f64>>,
    /// The catalogue ids of each prediction's title (several for a title shared by items, none outside the
    /// catalogue).
    pub item_ids: Vec<Vec<ItemId>>,
    /// The user's latency: the batch's wall time divided by its size.
    pub latency_s: f64,
    /// The wall time of the user's batch.
    pub batch_s: f64,
    /// The users of the batch.
    pub batch_size: usize,
    /// The chain-of-thought text (`--cot-tokens` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

impl RunFile for EvalPrediction {
    const WHAT: &'static str = "a prediction record of latentr3 eval";
}

/// `search` of [`EvalMetrics`]: the beam search settings (written as JSON numbers with a fraction today).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchInfo {
    /// Beams.
    pub num_beams: f64,
    /// HF's length penalty.
    pub length_penalty: f64,
    /// The most new tokens of a title.
    pub max_new_tokens: f64,
}

/// `cot` of [`EvalMetrics`]: the chain-of-thought settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CotInfo {
    /// The reasoning budget (0 = plain decoding).
    pub max_tokens: usize,
    /// The reasoning cue (with a budget only).
    pub reasoning_cue: Option<String>,
    /// The answer cue (with a budget only).
    pub answer_cue: Option<String>,
}

/// `guidance` of [`EvalMetrics`]: D3's assistant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceInfo {
    /// The assistant model folder.
    pub assistant: Option<String>,
    /// The guidance scale (1 = none).
    pub scale: f32,
}

/// `latency` of [`EvalMetrics`]: the per-user latency summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// The number of users.
    pub users: usize,
    /// The median per-user latency in seconds.
    pub median_s: f64,
    /// The 90th percentile (nearest rank).
    pub p90_s: f64,
    /// The mean.
    pub mean_s: f64,
    /// Users per second of decoding: users / Σ per-user latency.
    pub users_per_s: f64,
}

/// `popularity` of a metrics file: the popular / unpopular split of the catalogue behind the report's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityInfo {
    /// The share of train interactions the popular items cover.
    pub coverage: f64,
    /// The number of popular items.
    pub popular_items: usize,
}

/// `stream` of [`EvalMetrics`]: how the streaming evaluator used its batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamInfo {
    /// The most users decoded together.
    pub width: usize,
    /// Mean generated positions per user.
    pub steps_per_user: f64,
    /// The share of the batch's rows that were live, over steps.
    pub live_share: f64,
    /// Decoding steps run.
    pub steps: usize,
}

/// `metrics.json` of `latentr3 eval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalMetrics {
    /// The run's settings (as in `eval.json`).
    pub settings: EvalSettings,
    /// The latent tokens of the model (0 = BIGRec or Base).
    pub n_latent: usize,
    /// The beam search settings.
    pub search: SearchInfo,
    /// The chain-of-thought settings (absent in folders written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cot: Option<CotInfo>,
    /// The device, as burn prints it.
    pub device: String,
    /// D3's guidance (absent in folders written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<GuidanceInfo>,
    /// The per-user latency.
    pub latency: Latency,
    /// The streaming evaluator's use of its batch (absent for fixed batches, for a session that only resumed
    /// finished users, and in folders written before streaming existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamInfo>,
    /// The popularity split of the buckets.
    pub popularity: PopularityInfo,
    /// HR@K / NDCG@K by title, by item id and per popularity bucket.
    pub report: Report,
    /// The code that produced the evaluation (absent in folders written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Provenance>,
}

impl RunFile for EvalMetrics {
    const WHAT: &'static str = "the metrics.json of latentr3 eval";
}
