//! What a training stage implements ([`Stage`]) and how its loop is laid out ([`Policy`]).

use std::path::Path;

use burn::tensor::Device;
use serde::Serialize;

use crate::error::Error;
use crate::progress::{EvalMeta, StepMeta};
use crate::run::MetricLine;
use crate::schedule::Schedule;
use crate::trainer::LoopSummary;

/// The layout of a stage's loop: how the training items are batched, how long the run is, when it validates and
/// checkpoints, and when it stops early.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Training items (indices into the stage's training set) per batch.
    pub batch: usize,
    /// Whether an epoch drops its last, smaller batch (GRPO) or trains on it (SFT).
    pub drop_last: bool,
    /// Epochs.
    pub epochs: usize,
    /// The most optimizer steps (0 = no cap).
    pub max_steps: u64,
    /// Optimizer steps per batch (GRPO's `num_iterations`; 1 elsewhere).
    pub iterations: u64,
    /// The seed of the epochs' sample order ([`crate::epoch_order`]).
    pub seed: u64,
    /// The learning rate of every optimizer step.
    pub schedule: Schedule,
    /// Whether the stage validates at all.
    pub validate: bool,
    /// Validate every this many optimizer steps (0 = never by count); also when the run finishes.
    pub eval_every: u64,
    /// Validate at the end of every epoch as well.
    pub eval_at_epoch_end: bool,
    /// Checkpoint every this many optimizer steps (0 = never by count); also when the run finishes.
    pub checkpoint_every: u64,
    /// Checkpoint after every validation (`false`: only after one that improved on the best).
    pub checkpoint_every_eval: bool,
    /// Checkpoint when the stop hook stops the run (`false`: the hook acts as a kill).
    pub checkpoint_on_stop: bool,
    /// The newest step folders to keep (the best one is kept as well).
    pub keep_checkpoints: usize,
    /// Stop after this many validations without improvement (0 = never).
    pub patience: usize,
    /// Whether a higher validation metric is better (NDCG) or a lower one (a loss).
    pub higher_is_better: bool,
}

impl Policy {
    /// The batches of an epoch of `n` training items.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        if self.drop_last { n / self.batch.max(1) } else { n.div_ceil(self.batch.max(1)) }
    }

    /// The optimizer steps of a run over `n` training items: batches per epoch × epochs × iterations, capped by
    /// `max_steps` when it is set.
    pub fn total_steps(&self, n: usize) -> u64 {
        let all = self.batches_per_epoch(n) as u64 * self.epochs as u64 * self.iterations.max(1);
        if self.max_steps > 0 { all.min(self.max_steps) } else { all }
    }
}

/// What the loop hands to [`Stage::step`].
#[derive(Clone, Copy, Debug)]
pub struct StepAt<'a> {
    /// The training items of the batch (indices into the stage's training set), in the epoch's seeded order.
    pub idx: &'a [usize],
    /// The learning rate of this step.
    pub lr: f64,
    /// The 1-based optimizer step being taken.
    pub step: u64,
    /// The 0-based epoch.
    pub epoch: usize,
    /// The iteration on this batch (0-based, below [`Policy::iterations`]).
    pub iteration: u64,
    /// The optimizer steps taken when the batch's first iteration began (GRPO keys its noise by it).
    pub batch_step: u64,
    /// The last checkpoint written, for error messages (or a note that there is none yet).
    pub checkpoint: &'a str,
}

/// What [`Stage::step`] returns: the stage's diagnostics of the step, and how many units (tokens, samples,
/// examples) it trained on.
#[derive(Clone, Debug)]
pub struct Stepped<O> {
    /// The stage's diagnostics of the step (turned into a record by [`Stage::step_record`]).
    pub output: O,
    /// Units trained on, summed into [`crate::LoopState::seen`].
    pub seen: u64,
}

/// A training stage: what one optimizer step on a batch of items does, how the stage validates, what it writes to
/// and reads from a checkpoint. The [`crate::Trainer`] owns everything else.
pub trait Stage {
    /// The stage's error; the loop's own errors convert into it.
    type Error: From<Error> + std::fmt::Display;
    /// One line of `metrics.jsonl` (steps and validations).
    type Record: MetricLine;
    /// The diagnostics of one step.
    type Output;
    /// The details of one validation.
    type Eval;
    /// What `summary.json` holds.
    type Summary: Serialize;

    /// The layout of the loop.
    fn policy(&self) -> &Policy;
    /// The number of training items (the loop shuffles `0..train_len()`).
    fn train_len(&self) -> usize;
    /// The number of validation items (for the progress display).
    fn valid_len(&self) -> usize {
        0
    }
    /// The order of the training items in `epoch`: a permutation of `0..train_len()`, by default the seeded
    /// [`crate::epoch_order`]. The loop asks once per epoch, in order; a stage that draws its own order from a
    /// generator (and resamples its items) saves the generator in its checkpoints (the loop checkpoints only at
    /// the ends of epochs then: `checkpoint_every = 0`, validation at every epoch end).
    fn epoch_order(&mut self, epoch: usize) -> Vec<usize> {
        crate::epoch_order(self.train_len(), self.policy().seed, epoch)
    }
    /// The resolved config, written to `config.resolved.toml` and hashed into every checkpoint.
    ///
    /// # Errors
    /// When the config cannot be serialised.
    fn config_toml(&self) -> Result<String, Self::Error>;
    /// The device (for `env.json`).
    fn device(&self) -> &Device;
    /// The dtype (for `env.json`): `"f32"`, `"bf16"`.
    fn dtype(&self) -> String {
        "f32".into()
    }
    /// One optimizer step over the training items `at.idx` at learning rate `at.lr`.
    ///
    /// # Errors
    /// The stage's errors: a non-finite loss or gradient norm (naming `at.step` and `at.checkpoint`), bad data.
    fn step(&mut self, at: &StepAt<'_>) -> Result<Stepped<Self::Output>, Self::Error>;
    /// The record of a step (written to `metrics.jsonl` and shown by the progress display).
    fn step_record(&self, output: Self::Output, meta: &StepMeta) -> Self::Record;
    /// Validates the current model: returns the metric the loop compares ([`Policy::higher_is_better`]) and the
    /// details for [`Stage::eval_record`]. `checkpoint` is the last checkpoint written, for error messages.
    ///
    /// # Errors
    /// The stage's errors (a non-finite metric, decoding errors).
    fn validate(&mut self, step: u64, checkpoint: &str) -> Result<(f64, Self::Eval), Self::Error>;
    /// The record of a validation.
    fn eval_record(&self, eval: Self::Eval, meta: &EvalMeta) -> Self::Record;
    /// Writes what the stage checkpoints (weights, optimizer state, ...) into the folder `dir`.
    ///
    /// # Errors
    /// Naming the file that failed.
    fn save(&self, dir: &Path) -> Result<(), Self::Error>;
    /// Restores what [`Stage::save`] wrote (a resumed run continues from it).
    ///
    /// # Errors
    /// Naming a missing or unfitting file.
    fn load(&mut self, dir: &Path) -> Result<(), Self::Error>;
    /// Restores the weights of the best checkpoint when the run finishes (the optimizer state is not needed).
    ///
    /// # Errors
    /// Naming a missing or unfitting file.
    fn load_best(&mut self, dir: &Path) -> Result<(), Self::Error> {
        self.load(dir)
    }
    /// The stage's `summary.json`.
    fn summary(&self, summary: &LoopSummary) -> Self::Summary;
}
