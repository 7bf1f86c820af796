//! The run folder of SFT runs: `config.resolved.toml` and `env.json` written before training, `metrics.jsonl`
//! (one [`MetricRecord`] per line) appended during it, `summary.json`, and `checkpoints/` (see
//! [`crate::checkpoint`]). The files are written by the generic loop of `r3-trainer`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

pub use r3_trainer::run::{
    BURN_VERSION, CONFIG_FILE, ENV_FILE, METRICS_FILE, RunEnv, SUMMARY_FILE, now_unix, read_json, utc_timestamp,
    write_json,
};

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricRecord {
    /// An optimizer step.
    Step {
        /// The 1-based optimizer step.
        step: u64,
        /// The 0-based epoch.
        epoch: usize,
        /// The loss of the global batch (Σ NLL / target tokens).
        loss: f64,
        /// The learning rate used.
        lr: f64,
        /// The global gradient norm before clipping.
        grad_norm: f64,
        /// The real target tokens of the batch.
        tokens: u64,
        /// Target tokens per second of this step.
        tokens_per_s: f64,
        /// Seconds of training so far (over all sessions of the run).
        elapsed_s: f64,
    },
    /// A validation.
    Eval {
        /// The optimizer steps taken.
        step: u64,
        /// The 0-based epoch.
        epoch: usize,
        /// The validation loss.
        val_loss: f64,
    },
}

impl MetricRecord {
    /// The step of the record.
    pub fn step(&self) -> u64 {
        match self {
            MetricRecord::Step { step, .. } | MetricRecord::Eval { step, .. } => *step,
        }
    }
}

impl r3_trainer::MetricLine for MetricRecord {
    fn step(&self) -> u64 {
        MetricRecord::step(self)
    }
}

/// Reads `metrics.jsonl`.
///
/// # Errors
/// [`crate::Error::Io`], or [`crate::Error::Json`] naming the file for a bad line.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<MetricRecord>> {
    Ok(r3_trainer::run::read_metrics(run_dir)?)
}
