//! The records of a GRPO run: one [`GrpoMetric`] per line of `metrics.jsonl`, the [`GrpoProgress`] callbacks and
//! the [`GrpoSummary`] of `summary.json`.

use std::path::{Path, PathBuf};

use r3_latent::LatentModel;
use r3_trainer::{EvalMeta, LoopSummary, MetricLine, StartInfo, StepMeta};
use serde::{Deserialize, Serialize};

/// The loop's position, saved in every checkpoint (the generic loop state of `r3-trainer`).
pub type GrpoState = r3_trainer::LoopState;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrpoMetric {
    /// An optimizer step.
    Step(GrpoStepInfo),
    /// A validation.
    Eval {
        /// The optimizer step.
        step: u64,
        /// The cut-offs.
        k: Vec<usize>,
        /// HR@k.
        hr: Vec<f64>,
        /// NDCG@k.
        ndcg: Vec<f64>,
        /// Whether this is the best validation so far.
        improved: bool,
    },
}

impl MetricLine for GrpoMetric {
    fn step(&self) -> u64 {
        match self {
            GrpoMetric::Step(s) => s.step,
            GrpoMetric::Eval { step, .. } => *step,
        }
    }
}

/// The diagnostics of one optimizer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpoStepInfo {
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

/// Receives the loop's events (r3-cli draws a progress line); the library logs through `tracing` only.
pub trait GrpoProgress {
    /// Before the first step of a session.
    fn on_start(&mut self, _run_dir: &Path, _start_step: u64, _total_steps: u64) {}
    /// After every optimizer step.
    fn on_step(&mut self, _info: &GrpoStepInfo) {}
    /// After every validation.
    fn on_eval(&mut self, _step: u64, _hr: f64, _ndcg: f64, _improved: bool) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGrpoProgress;

impl GrpoProgress for NoGrpoProgress {}

/// The end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpoSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Optimizer steps of the run.
    pub total_steps: u64,
    /// The best validation NDCG@k and its step.
    pub best_metric: Option<f64>,
    /// The step of the best validation (its LatentRATT is the returned model's).
    pub best_step: Option<u64>,
    /// Whether the run is complete.
    pub finished: bool,
    /// Training seconds.
    pub elapsed_s: f64,
}

/// The trained model and the summary.
#[derive(Debug)]
pub struct GrpoOutcome {
    /// The model with the best (or, without validation, the last) LatentRATT.
    pub model: LatentModel,
    /// The summary.
    pub summary: GrpoSummary,
}

impl From<&LoopSummary> for GrpoSummary {
    fn from(s: &LoopSummary) -> Self {
        GrpoSummary {
            run_dir: s.run_dir.clone(),
            steps: s.steps,
            total_steps: s.total_steps,
            best_metric: s.best_metric,
            best_step: s.best_step,
            finished: s.finished,
            elapsed_s: s.elapsed_s,
        }
    }
}

/// Turns the generic loop's callbacks into a [`GrpoProgress`]'s: `at` is the index of `eval.k` among the
/// validation cut-offs.
pub(crate) struct GrpoProgressAdapter {
    pub(crate) inner: Box<dyn GrpoProgress>,
    pub(crate) k: usize,
}

impl r3_trainer::Progress<GrpoMetric> for GrpoProgressAdapter {
    fn on_start(&mut self, info: &StartInfo<'_>) {
        self.inner.on_start(info.run_dir, info.start_step, info.total_steps);
    }

    fn on_step(&mut self, record: &GrpoMetric, _meta: &StepMeta) {
        if let GrpoMetric::Step(info) = record {
            self.inner.on_step(info);
        }
    }

    fn on_eval(&mut self, record: &GrpoMetric, meta: &EvalMeta) {
        if let GrpoMetric::Eval { k, hr, .. } = record {
            let at = k.iter().position(|&x| x == self.k).unwrap_or(0);
            self.inner.on_eval(meta.step, hr[at], meta.metric, meta.improved);
        }
    }
}
