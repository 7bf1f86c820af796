//! The generic training loop of LatentR³ (in the spirit of burn-train's `Learner` and HF's `Trainer`): a training
//! stage says how to take one optimizer step on a batch of sample indices at a learning rate, how to validate, and
//! what it checkpoints; one [`Trainer`] runs every stage the same way.
//!
//! - [`Stage`] is what a stage implements (SFT in `r3-train`, LR-GRPO/GRPO in `r3-grpo`, the sequential
//!   baselines in `r3-baselines`; `examples/linear_stage.rs` is a small complete one). [`Policy`] lays out its
//!   loop: batch size, epochs, iterations per batch, validation, checkpoints, early stopping, the schedule.
//! - [`Trainer`] owns the loop: the seeded epoch order ([`epoch_order`]), the learning-rate schedule
//!   ([`LinearSchedule`], [`CosineSchedule`]), the run folder ([`run`]: `config.resolved.toml`, `env.json`,
//!   `metrics.jsonl` typed by the stage's record, `summary.json`), atomic [`checkpoint`]s and exact resume
//!   (validated against the run), progress callbacks ([`Progress`]) and the stop hook that tests use to simulate a
//!   kill.
//! - [`parallel`] is data parallelism: peers on several devices and processes, the all-reduce of gradients
//!   ([`parallel::Peer::reduce_step`]), the worker threads of the local peers ([`parallel::Peers`]), and the
//!   transport between processes behind [`parallel::Transport`].
//! - [`grads`] accumulates gradients over micro-batches and clips them by their global norm.
//!
//! ```
//! use r3_trainer::{LinearSchedule, epoch_order};
//! let schedule = LinearSchedule { peak_lr: 1e-4, warmup: 20, total: 120 };
//! assert_eq!((schedule.lr(0), schedule.lr(20), schedule.lr(70)), (0.0, 1e-4, 0.5e-4));
//! let order = epoch_order(5, 42, 0);
//! assert_eq!(order.len(), 5);
//! assert_eq!(order, epoch_order(5, 42, 0), "an epoch's order depends only on the seed and the epoch");
//! ```
#![deny(missing_docs)]

pub mod checkpoint;
mod error;
pub mod grads;
pub mod parallel;
mod progress;
pub mod run;
mod schedule;
mod stage;
mod trainer;

pub use checkpoint::{LoopState, RunKey};
pub use error::{Error, Result};
pub use progress::{EvalMeta, NoProgress, Progress, StartInfo, StepMeta};
pub use run::{MetricLine, MetricsFile, RunEnv};
pub use schedule::{CosineSchedule, LinearSchedule, Schedule};
pub use stage::{Policy, Stage, StepAt, Stepped};
pub use trainer::{LoopSummary, Trainer, epoch_order};
