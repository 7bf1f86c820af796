//! The settings and the metrics file of an evaluation run ([`crate::EvalRun`]): `eval.json` ([`EvalSettings`])
//! and `metrics.json` ([`EvalMetrics`]), typed serde structs with the field names the result tables read.

use std::path::Path;
use std::str::FromStr;

use r3_data::Split;
use r3_metrics::Report;
use serde::{Deserialize, Serialize};

use crate::beam::BeamSearchConfig;
use crate::error::{Error, Result};
use crate::stream::StreamStats;

/// The decoding of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// BIGRec: 10 beams, 10 returned, length penalty 1.0, at most 128 new tokens `[CODE]`.
    Bigrec,
    /// D3: the same search with length penalty 0 (plain sums of log-probs), optionally guided by an assistant.
    D3,
}

impl Decoding {
    /// The names, as written in `eval.json` and accepted by [`Decoding::from_str`].
    pub const NAMES: [&'static str; 2] = ["bigrec", "d3"];

    /// The beam search settings for an encoder's EOS.
    pub fn search(self, eos_id: u32) -> BeamSearchConfig {
        match self {
            Decoding::Bigrec => BeamSearchConfig::new(eos_id),
            Decoding::D3 => BeamSearchConfig::d3(eos_id),
        }
    }
}

impl FromStr for Decoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bigrec" => Ok(Decoding::Bigrec),
            "d3" => Ok(Decoding::D3),
            _ => Err(Error::Setting {
                key: "decoding",
                value: s.to_string(),
                hint: "use `bigrec` (length penalty 1) or `d3` (length penalty 0)",
            }),
        }
    }
}

impl std::fmt::Display for Decoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Decoding::NAMES[*self as usize])
    }
}

/// The contents of `eval.json`: what a resumed run must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// The model folder (`--checkpoint`), if any.
    pub checkpoint: Option<String>,
    /// The pretrained model (`--model`), if any.
    pub model: Option<String>,
    /// The data folder.
    pub data: String,
    /// The dataset stem.
    pub stem: String,
    /// The evaluated split.
    pub split: Split,
    /// The size of the seeded subset of users (`None`: every user).
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
    /// D3's guidance scale (1 = none).
    #[serde(default = "unit_scale")]
    pub guidance_scale: f32,
    /// The chain-of-thought budget (0 = plain decoding; absent in folders written before it existed).
    #[serde(default)]
    pub cot_tokens: usize,
}

/// The guidance scale of a run without guidance.
fn unit_scale() -> f32 {
    1.0
}

impl EvalSettings {
    /// Checks the settings on their own.
    ///
    /// # Errors
    /// [`Error::Setting`] for a limit of 0 users, a non-finite guidance scale, an assistant without D3 decoding
    /// or combined with chain-of-thought decoding.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, value: String, hint| Err(Error::Setting { key, value, hint });
        if self.limit == Some(0) {
            return bad("limit", "0".into(), "evaluate at least one user (leave the limit out to evaluate every user)");
        }
        if !self.guidance_scale.is_finite() {
            return bad(
                "guidance_scale",
                self.guidance_scale.to_string(),
                "use a finite scale (1 = no guidance, 0 = the assistant alone)",
            );
        }
        if let Some(a) = &self.assistant {
            if self.decoding != Decoding::D3 {
                return bad("assistant", a.clone(), "the assistant guides D3's decoding: use the decoding `d3`");
            }
            if self.cot_tokens > 0 {
                return bad("assistant", a.clone(), "chain-of-thought decoding is unguided: drop the assistant");
            }
        }
        Ok(())
    }

    /// Writes the settings to `path`, or, when it exists, checks that they are the same as its.
    ///
    /// # Errors
    /// [`Error::SettingsFile`] for a file that is not such settings, [`Error::SettingsMismatch`] naming the
    /// first setting that differs with both values, and I/O errors.
    pub fn check_or_write(&self, path: &Path) -> Result<()> {
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
            let old: EvalSettings = serde_json::from_str(&text)
                .map_err(|source| Error::SettingsFile { path: path.to_path_buf(), source })?;
            let (a, b) = (to_map(&old), to_map(self));
            for (key, value) in &a {
                let new = b.get(key).unwrap_or(&serde_json::Value::Null);
                if new != value {
                    return Err(Error::SettingsMismatch {
                        path: path.to_path_buf(),
                        key: key.clone(),
                        old: shown(value),
                        new: shown(new),
                    });
                }
            }
            return Ok(());
        }
        let text = serde_json::to_string_pretty(self).expect("the settings serialise") + "\n";
        Ok(r3_data::write_atomic(path, |w| w.write_all(text.as_bytes()))?)
    }
}

/// The settings as a JSON object.
fn to_map(s: &EvalSettings) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(s).expect("the settings serialise") {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a struct serialises to an object"),
    }
}

/// A setting's value for an error message (`null` reads "unset").
fn shown(v: &serde_json::Value) -> String {
    if v.is_null() { "unset".into() } else { v.to_string() }
}

/// The per-user latency summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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

impl Latency {
    /// Summarises per-user latencies (seconds); `None` when empty.
    pub fn of(latencies: &[f64]) -> Option<Latency> {
        if latencies.is_empty() {
            return None;
        }
        let mut v = latencies.to_vec();
        v.sort_by(f64::total_cmp);
        let total: f64 = v.iter().sum();
        Some(Latency {
            users: v.len(),
            median_s: percentile(&v, 0.5),
            p90_s: percentile(&v, 0.9),
            mean_s: total / v.len() as f64,
            users_per_s: v.len() as f64 / total,
        })
    }
}

/// The `q` quantile of sorted values: the median averages the two middle values; others take the nearest rank
/// `ceil(q·n)`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if q == 0.5 {
        return if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// The search settings in `metrics.json`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SearchSummary {
    /// The number of beams.
    pub num_beams: usize,
    /// The length penalty.
    pub length_penalty: f64,
    /// The most generated tokens.
    pub max_new_tokens: usize,
}

impl From<&BeamSearchConfig> for SearchSummary {
    fn from(c: &BeamSearchConfig) -> Self {
        SearchSummary { num_beams: c.num_beams, length_penalty: c.length_penalty, max_new_tokens: c.max_new_tokens }
    }
}

/// The chain-of-thought settings in `metrics.json` (the cues only when it reasons).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CotSummary {
    /// The reasoning budget (0 = plain decoding).
    pub max_tokens: usize,
    /// The reasoning cue.
    pub reasoning_cue: Option<&'static str>,
    /// The answer cue.
    pub answer_cue: Option<&'static str>,
}

impl CotSummary {
    /// The summary of a budget of `max_tokens`.
    pub fn new(max_tokens: usize) -> Self {
        let on = max_tokens > 0;
        CotSummary {
            max_tokens,
            reasoning_cue: on.then_some(crate::cot::REASONING_CUE),
            answer_cue: on.then_some(crate::cot::ANSWER_CUE),
        }
    }
}

/// D3's guidance in `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct GuidanceSummary {
    /// The assistant model folder.
    pub assistant: Option<String>,
    /// The guidance scale.
    pub scale: f32,
}

/// The popularity split of the report's buckets.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PopularitySummary {
    /// The share of train interactions covered by the popular items.
    pub coverage: f64,
    /// The number of popular items.
    pub popular_items: usize,
}

/// How the streaming evaluator used its batch (absent for fixed batches).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamSummary {
    /// The most users decoded together.
    pub width: usize,
    /// Mean generated positions per user.
    pub steps_per_user: f64,
    /// The share of the batch's rows that were live, over steps.
    pub live_share: f64,
    /// Decoding steps run.
    pub steps: usize,
}

impl StreamSummary {
    /// The summary of a streaming search of `width` users.
    pub fn new(width: usize, stats: &StreamStats) -> Self {
        StreamSummary {
            width,
            steps_per_user: stats.steps_per_user(),
            live_share: stats.live_share(),
            steps: stats.steps,
        }
    }
}

/// The contents of `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics<'a> {
    /// The run's settings.
    pub settings: &'a EvalSettings,
    /// The model's latent tokens (0 for BIGRec and Base models).
    pub n_latent: usize,
    /// The search settings.
    pub search: SearchSummary,
    /// The chain-of-thought settings.
    pub cot: CotSummary,
    /// The compute device.
    pub device: String,
    /// D3's guidance.
    pub guidance: GuidanceSummary,
    /// The per-user latency.
    pub latency: Latency,
    /// The streaming evaluator's use of its batch in this session (absent for fixed batches or a run that
    /// only resumed finished users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSummary>,
    /// The popularity buckets.
    pub popularity: PopularitySummary,
    /// HR@K and NDCG@K.
    pub report: &'a Report,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EvalSettings {
        EvalSettings {
            checkpoint: None,
            model: Some("smollm2-135m".into()),
            data: "data".into(),
            stem: "Stem".into(),
            split: Split::Test,
            limit: Some(3),
            seed: 5,
            decoding: Decoding::Bigrec,
            users: 3,
            assistant: None,
            guidance_scale: 1.0,
            cot_tokens: 0,
        }
    }

    /// The settings are written once; the same ones pass, another value is refused naming the key and both
    /// values; a limit of 0 is refused.
    #[test]
    fn settings_check_names_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eval.json");
        settings().check_or_write(&path).unwrap();
        settings().check_or_write(&path).unwrap();
        let other = EvalSettings { limit: None, ..settings() };
        let msg = other.check_or_write(&path).unwrap_err().to_string();
        assert!(msg.contains("`limit`") && msg.contains("3") && msg.contains("unset"), "{msg}");
        assert!(msg.contains("eval.json"), "{msg}");
        let msg = EvalSettings { limit: Some(0), ..settings() }.validate().unwrap_err().to_string();
        assert!(msg.contains("limit") && msg.contains("at least one user"), "{msg}");
        let msg = EvalSettings { assistant: Some("a".into()), ..settings() }.validate().unwrap_err().to_string();
        assert!(msg.contains("d3"), "{msg}");
        assert_eq!("d3".parse::<Decoding>().unwrap(), Decoding::D3);
        assert_eq!(Decoding::Bigrec.to_string(), "bigrec");
        assert!("beam".parse::<Decoding>().is_err());
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.9), 4.0);
        let l = Latency::of(&[1.0, 3.0]).unwrap();
        assert_eq!((l.users, l.median_s, l.users_per_s), (2, 2.0, 0.5));
        assert!(Latency::of(&[]).is_none());
    }
}
