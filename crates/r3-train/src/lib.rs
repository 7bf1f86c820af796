//! LatentR³ training runs (docs/method.md §4 stage 1): the SFT trainer of BIGRec and of the LatentR³ warm-up, its
//! configs, run folders and checkpoints.
//!
//! - [`SftConfig`] is the run configuration (`[model]`, `[data]`, `[latent]`, `[train]`, `[run]`), read from
//!   TOML with `--set key=value` overrides; every default cites its source (\[CODE\] AdamW lr 3e-4, global batch
//!   128, ≤ 3 epochs, patience 1, 20 warm-up steps then linear decay, no weight decay, clip 1.0, cutoff 512).
//! - [`SftModel`] is what the trainer needs from a model: the summed NLL of a batch's target tokens
//!   ([`target_nll`] computes it from logits). The latent model of `r3-latent` implements it.
//! - [`SftTrainer`] runs the SFT stage through the generic loop of `r3-trainer`: seeded epoch shuffles, micro-batch gradient accumulation normalised by the
//!   target tokens of the whole global batch, AdamW with [`LinearSchedule`], global grad-norm clipping
//!   ([`grads::clip_global_norm`]), validation and early stopping with the best checkpoint restored. It writes
//!   the run folder ([`run`]: `config.resolved.toml`, `env.json`, `metrics.jsonl`, `summary.json`) and atomic
//!   [`checkpoint`]s, and [`SftTrainer::resume`] continues a killed run to bit-identical weights.
//! - [`TrainProgress`] receives start/step/eval/end callbacks (r3-cli draws a bar); the library logs through
//!   `tracing` only.
//! - [`build_latent`] turns a pretrained backbone and a config into the LatentR³ model (thought row, LatentRATT,
//!   prompt encoder), which implements [`SftModel`]; [`save_model_dir`] / [`load_model_dir`] write and read the
//!   self-contained model folder that evaluation and LR-GRPO start from.
//! - [`parallel`] is data parallelism over several devices and machines ([`SftTrainer::with_parallel`]): each
//!   peer takes its micro-batches of the global batch, the gradients are summed over the peers (burn's
//!   collective all-reduce on CUDA, a host all-reduce elsewhere), and every replica steps identically.
//! - [`lora::apply_lora`] switches a large backbone to LoRA adapters with burn's `Module::apply_lora`.
//!
//! ```
//! use r3_train::{LinearSchedule, SftConfig};
//! let config = SftConfig::from_toml_str("[train]\nlr = 1e-4\n", "<doc>", &["train.batch=64".into()]).unwrap();
//! assert_eq!((config.train.lr, config.train.batch, config.train.micro_batch), (1e-4, 64, 4));
//! let err = SftConfig::from_toml_str("[train]\nlrr = 1\n", "<doc>", &[]).unwrap_err();
//! assert!(err.to_string().contains("`train.lrr`"));
//! let schedule = LinearSchedule { peak_lr: config.train.lr, warmup: 20, total: 120 };
//! assert_eq!(schedule.lr(0), 0.0);
//! assert_eq!(schedule.lr(20), 1e-4);
//! assert_eq!(schedule.lr(70), 0.5e-4);
//! ```
#![deny(missing_docs)]

pub mod checkpoint;
pub mod config;
mod error;
pub mod latent;
pub mod lora;
mod model;
pub mod optim;
pub mod progress;
pub mod run;
mod stage;
mod trainer;

pub use r3_trainer::{CosineSchedule, LinearSchedule, grads, parallel};

pub use config::{
    DataConfig, Dtype, LatentConfig, LoraConfig, ModelConfig, OptimizerSettings, PaperCell, RunConfig, SftConfig,
    TrainConfig, parse_toml_with_schema, seeded_subset, to_toml_string,
};
pub use error::{Error, Result};
pub use latent::{LatentMeta, LatentSetup, build_latent, load_model_dir, save_model_dir};
pub use model::{Nll, SftModel, target_nll};
pub use progress::{EvalInfo, NoProgress, StartInfo, StepInfo, TrainProgress};
pub use trainer::{Collate, SftData, SftOutcome, SftSummary, SftTrainer, epoch_order, total_steps};

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
#[allow(dead_code)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
