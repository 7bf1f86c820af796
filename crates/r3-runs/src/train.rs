//! The run folders of `latentr3 train sft` and `latentr3 train grpo`: `env.json` ([`RunEnv`]), `metrics.jsonl`
//! ([`SftRecord`] or [`GrpoRecord`] lines), `summary.json` ([`SftSummary`] or [`GrpoSummary`]) and
//! `config.resolved.toml` (of which [`GrpoResolved`] reads the algorithm).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::RunFile;
use crate::provenance::Provenance;

/// The resolved configuration of a training run.
pub const CONFIG_FILE: &str = "config.resolved.toml";
/// The environment of a run.
pub const ENV_FILE: &str = "env.json";
/// One JSON object per optimizer step, validation or epoch.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The end of a run.
pub const SUMMARY_FILE: &str = "summary.json";
/// The model folder a finished training run leaves.
pub const MODEL_DIR: &str = "model";

/// `env.json`: the environment of a training run, written before training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunEnv {
    /// `git rev-parse HEAD` of the working directory, when git and a repository are available.
    pub git_commit: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The burn version.
    pub burn_version: String,
    /// The device, as burn prints it.
    pub device: String,
    /// The configured dtype.
    pub dtype: String,
    /// The host name.
    pub hostname: Option<String>,
    /// Seconds since the Unix epoch when the run (or the resumed session) started.
    pub unix_time: u64,
    /// The same time as `YYYY-MM-DDTHH:MM:SSZ`.
    pub time_utc: String,
    /// The version of r3-train.
    pub r3_train_version: String,
}

impl RunFile for RunEnv {
    const WHAT: &'static str = "the env.json of a training run";
}

impl RunEnv {
    /// The code that produced the run.
    pub fn provenance(&self) -> Provenance {
        Provenance { commit: self.git_commit.clone(), dirty: self.git_dirty }
    }
}

/// One line of an SFT run's `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SftRecord {
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

impl RunFile for SftRecord {
    const WHAT: &'static str = "a metrics record of latentr3 train sft";
}

/// `summary.json` of an SFT run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The optimizer steps the schedule was laid out for.
    pub total_steps: u64,
    /// The best validation loss.
    pub best_val_loss: Option<f64>,
    /// The step of the best validation loss.
    pub best_step: Option<u64>,
    /// The last validation loss.
    pub last_val_loss: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the run ended normally.
    pub finished: bool,
    /// Whether a stop hook interrupted the run.
    pub interrupted: bool,
    /// Real target tokens trained on.
    pub tokens_seen: u64,
    /// Seconds of training over all sessions.
    pub elapsed_s: f64,
}

impl RunFile for SftSummary {
    const WHAT: &'static str = "the summary.json of latentr3 train sft";
}

/// The diagnostics of one GRPO optimizer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoStep {
    /// The 1-based optimizer step.
    pub step: u64,
    /// Optimizer steps of the run.
    pub total_steps: u64,
    /// The epoch.
    pub epoch: usize,
    /// The loss (mean over the micro-steps).
    pub loss: f64,
    /// Mean reward over the step's samples.
    pub reward_mean: f64,
    /// Standard deviation of the rewards.
    pub reward_std: f64,
    /// The fraction of groups whose rewards are all equal.
    pub equal_reward_groups: f64,
    /// The mean L2 norm of the advantages of one pool.
    pub advantage_norm: f64,
    /// The fraction of real tokens whose ratio was clipped.
    pub clip_ratio: f64,
    /// The mean per-token KL against the reference (β > 0 only).
    pub kl: Option<f64>,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// The learning rate of the step.
    pub lr: f64,
    /// Samples (prompts × K) per second.
    pub samples_per_s: f64,
    /// Training seconds so far.
    pub elapsed_s: f64,
}

/// A GRPO validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoEval {
    /// The optimizer step.
    pub step: u64,
    /// The cut-offs.
    pub k: Vec<usize>,
    /// HR@k.
    pub hr: Vec<f64>,
    /// NDCG@k.
    pub ndcg: Vec<f64>,
    /// Whether this is the best validation so far.
    pub improved: bool,
}

/// One line of a GRPO run's `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrpoRecord {
    /// An optimizer step.
    Step(GrpoStep),
    /// A validation.
    Eval(GrpoEval),
}

impl RunFile for GrpoRecord {
    const WHAT: &'static str = "a metrics record of latentr3 train grpo";
}

impl GrpoRecord {
    /// The optimizer step of the record.
    pub fn step(&self) -> u64 {
        match self {
            GrpoRecord::Step(s) => s.step,
            GrpoRecord::Eval(e) => e.step,
        }
    }
}

/// `summary.json` of a GRPO run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Optimizer steps of the run.
    pub total_steps: u64,
    /// The best validation NDCG@k.
    pub best_metric: Option<f64>,
    /// The step of the best validation.
    pub best_step: Option<u64>,
    /// Whether the run is complete.
    pub finished: bool,
    /// Training seconds.
    pub elapsed_s: f64,
}

impl RunFile for GrpoSummary {
    const WHAT: &'static str = "the summary.json of latentr3 train grpo";
}

/// Which algorithm trained LatentRATT in a GRPO run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// LR-GRPO.
    LrGrpo,
    /// The original GRPO.
    Grpo,
}

impl Algorithm {
    /// The name in configuration files (`lr_grpo`, `grpo`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::LrGrpo => "lr_grpo",
            Algorithm::Grpo => "grpo",
        }
    }
}

/// The part of a GRPO run's `config.resolved.toml` that xtask reads: the algorithm. The file holds every key
/// with its resolved value, so a missing `grpo.algorithm` is an error, not a default. (The whole schema is
/// `r3_grpo::GrpoConfig`, behind burn; other keys are not checked here.)
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GrpoResolved {
    /// `[grpo]`.
    pub grpo: GrpoResolvedSettings,
}

/// `[grpo]` of [`GrpoResolved`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GrpoResolvedSettings {
    /// `grpo.algorithm`.
    pub algorithm: Algorithm,
}

impl GrpoResolved {
    /// Reads `config.resolved.toml` of the run folder `run_dir`.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Toml`] naming the file and the key.
    pub fn read(run_dir: &Path) -> Result<GrpoResolved> {
        let path = run_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            action: "read",
            source,
        })?;
        toml::from_str(&text).map_err(|e| Error::Toml {
            path,
            what: "the config.resolved.toml of latentr3 train grpo",
            message: e.to_string(),
        })
    }
}
