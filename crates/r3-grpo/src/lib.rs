//! LatentR³'s second training stage (docs/method.md §4 stage 2; arXiv 2505.19092 §3.3): LR-GRPO and the original GRPO.
//!
//! - [`GrpoConfig`] is the run configuration (`[model]`, `[data]`, `[grpo]`, `[train]`, `[eval]`, `[run]`),
//!   read from TOML with `--set` overrides; defaults are the official code's (\[CODE\] σ = 1.5, K = 8, an
//!   advantage pool of 2 groups, ε 0.2 / 0.28, β = 0, one iteration, AdamW with 200 warm-up steps and cosine
//!   decay, 32 prompts per step).
//! - [`latent_noise`] draws the seeded noise `ε` (sample 1 of each group un-noised); [`advantages`] turns rewards
//!   into advantages ([`AdvantageMode::Batch`]: LR-GRPO's `(s − s̄)/‖s − s̄‖₂`; `Group`: the original GRPO's).
//! - [`GrpoStep`] runs one micro-step (one advantage pool): LR-GRPO ([`GrpoStep::lr_grpo`]: the `K` samples of a
//!   prompt share its prefix KV cache, the reward reads the target's log-probs, no decoding) or the original GRPO
//!   ([`GrpoStep::grpo`]: constrained rollouts from the noisy latents); [`surrogate`] is the clipped loss.
//!   [`naive_noisy_logp`] is the official per-sample two-pass computation, the reference of the tests.
//! - [`GrpoTrainer`] runs the GRPO stage through the generic loop of `r3-trainer`: only LatentRATT is trained (the backbone is frozen and stays bit-identical),
//!   gradient accumulation over the micro-steps of an optimizer step, global clipping, diagnostics per step
//!   (JSONL and [`GrpoProgress`]), validation HR/NDCG by beam search with the best checkpoint kept, a stop with
//!   the last good checkpoint on a NaN/inf loss or reward, and exact resume.
//!   [`GrpoTrainer::with_parallel`] trains data-parallel over several devices and machines
//!   ([`r3_trainer::parallel`]): each peer takes whole advantage pools, so `grpo.advantage_groups` does not change
//!   with the number of devices, and the summed LatentRATT gradients equal the one-device ones.
//!
//! ```
//! use r3_grpo::{AdvantageMode, advantages};
//! // Two groups of K = 2: the un-noised rewards −1 and −3 give the baseline −2.
//! let a = advantages(&[-1.0, -2.0, -3.0, -2.0], 2, AdvantageMode::Batch);
//! assert!((a[0] + a[2]).abs() < 1e-12);
//! assert!((a.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-5); // ‖A‖₂ = ‖s − s̄‖₂ / (‖s − s̄‖₂ + 1e-6)
//! ```
#![deny(missing_docs)]

mod advantage;
mod config;
mod error;
mod metrics;
mod naive;
mod noise;
mod pools;
mod stage;
mod step;
mod trainer;

pub use advantage::{AdvantageMode, advantages, equal_reward_fraction, mean_std};
pub use config::{
    Algorithm, GrpoConfig, GrpoDataConfig, GrpoEvalConfig, GrpoModelConfig, GrpoRunConfig, GrpoSettings,
    GrpoTrainConfig,
};
pub use error::{Error, Result};
pub use metrics::{GrpoMetric, GrpoOutcome, GrpoProgress, GrpoState, GrpoStepInfo, GrpoSummary, NoGrpoProgress};
pub use naive::naive_noisy_logp;
pub use noise::{NoiseKey, NoiseShape, latent_noise};
pub use step::{
    BeamDecoding, Generation, GrpoStep, MicroStep, Rollouts, StepSettings, SurrogateInput, SurrogateOutput, noisy_logp,
    surrogate,
};
pub use trainer::{
    CONFIG_FILE, GrpoData, GrpoTrainer, METRICS_FILE, Validation, freeze_backbone, total_steps, validation_subset,
};

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
#[allow(dead_code)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
