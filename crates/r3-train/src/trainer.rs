//! The SFT trainer (docs/method.md §4 stage 1): [`crate::stage`]'s SFT stage run by the generic loop of `r3-trainer`
//! (seeded epoch shuffles, the linear warm-up/decay schedule, validation, early stopping with the best checkpoint
//! restored, atomic checkpoints and exact resume).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use r3_data::{EncodedSample, SftBatch};
use r3_trainer::{LoopSummary, Trainer};
use serde::{Deserialize, Serialize};

use crate::checkpoint::TrainerState;
use crate::config::SftConfig;
use crate::error::{Error, Result};
use crate::model::SftModel;
use crate::parallel::ParallelConfig;
use crate::progress::{SftProgress, TrainProgress};
use crate::run;
use crate::stage::SftStage;

pub use r3_trainer::epoch_order;

/// Turns samples into one left-padded batch; normally
/// `move |s| SftBatch::new(s, n_thought, thought_id, pad_id)` of `r3_data::encode`.
pub type Collate = Box<dyn Fn(&[EncodedSample]) -> SftBatch>;

/// The summary of a run, also written to `summary.json` in the run folder when the run ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The optimizer steps the schedule was laid out for.
    pub total_steps: u64,
    /// The best validation loss (`None` when no validation ran).
    pub best_val_loss: Option<f64>,
    /// The step of the best validation loss; the returned model holds its weights when the run finished.
    pub best_step: Option<u64>,
    /// The last validation loss.
    pub last_val_loss: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the run ended normally (all epochs, `max_steps` or early stopping).
    pub finished: bool,
    /// Whether the `stop_after_steps` hook interrupted the run (as a kill would: nothing after the last
    /// checkpoint was saved, and the returned model is the current one).
    pub interrupted: bool,
    /// Real target tokens trained on.
    pub tokens_seen: u64,
    /// Seconds of training over all sessions.
    pub elapsed_s: f64,
}

impl From<&LoopSummary> for SftSummary {
    fn from(s: &LoopSummary) -> Self {
        SftSummary {
            run_dir: s.run_dir.clone(),
            steps: s.steps,
            total_steps: s.total_steps,
            best_val_loss: s.best_metric,
            best_step: s.best_step,
            last_val_loss: s.last_metric,
            stopped_early: s.stopped_early,
            finished: s.finished,
            interrupted: s.interrupted,
            tokens_seen: s.seen,
            elapsed_s: s.elapsed_s,
        }
    }
}

/// The result of [`SftTrainer::run`]: the trained model (the best checkpoint's weights when the run finished)
/// and the summary.
#[derive(Debug)]
pub struct SftOutcome<M> {
    /// The model.
    pub model: M,
    /// The summary.
    pub summary: SftSummary,
}

/// The training and validation samples and how to batch them.
pub struct SftData {
    /// The training samples (already subset with `data.sample` and truncated to `data.cutoff`).
    pub train: Vec<EncodedSample>,
    /// The validation samples.
    pub valid: Vec<EncodedSample>,
    /// The batching function.
    pub collate: Collate,
}

impl std::fmt::Debug for SftData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftData").field("train", &self.train.len()).field("valid", &self.valid.len()).finish()
    }
}

/// The optimizer steps of a run: `epochs · ⌈n / batch⌉` (the last global batch of an epoch may be smaller),
/// capped by `max_steps` when it is set.
pub fn total_steps(config: &SftConfig, n_train: usize) -> u64 {
    let per_epoch = n_train.div_ceil(config.train.batch) as u64;
    let all = per_epoch * config.train.epochs as u64;
    if config.train.max_steps > 0 { all.min(config.train.max_steps) } else { all }
}

fn check_data(data: &SftData) -> Result<()> {
    if data.train.is_empty() {
        return Err(Error::Data { message: "the training set is empty: check `data.stem` and `data.sample`".into() });
    }
    if data.valid.is_empty() {
        return Err(Error::Data {
            message: "the validation set is empty: early stopping and the best checkpoint need validation samples"
                .into(),
        });
    }
    Ok(())
}

/// The SFT trainer. Build it with [`SftTrainer::new`] (a fresh run) or [`SftTrainer::resume`], then call
/// [`SftTrainer::run`].
pub struct SftTrainer<M: SftModel> {
    inner: Trainer<SftStage<M>>,
}

impl<M: SftModel> SftTrainer<M> {
    /// Prepares a fresh run: validates the config, creates the run folder (`run.output_dir`, plus a UTC
    /// timestamp when `run.timestamped`) and writes `config.resolved.toml` and `env.json` into it.
    ///
    /// `model` must live on an autodiff device (`device.clone().autodiff()`), with the parameters to train
    /// requiring gradients (apply [`crate::lora::apply_lora`] before, when wanted). `device` is recorded in
    /// `env.json`.
    ///
    /// # Errors
    /// [`Error::BadValue`] for an invalid config, [`Error::Data`] for empty splits, [`Error::Checkpoint`] when
    /// the folder already holds a run (resume it instead), [`Error::Io`] when it cannot be written.
    pub fn new(config: SftConfig, model: M, data: SftData, device: Device) -> Result<Self> {
        config.validate("<config>")?;
        check_data(&data)?;
        let base = PathBuf::from(&config.run.output_dir);
        let timestamped = config.run.timestamped;
        let inner = Trainer::new(SftStage::new(config, model, data, device), &base, timestamped, "SftTrainer")?;
        tracing::info!(run_dir = %inner.run_dir().display(), config = ?inner.stage().config, "SFT run starts");
        Ok(SftTrainer { inner })
    }

    /// Continues the run in `run_dir` from its latest checkpoint (or from the start when it has none): the
    /// config comes from its `config.resolved.toml`; `model` is a model of the same structure (its weights are
    /// replaced), on an autodiff device; `data` must be the same samples as the interrupted session's. The
    /// continued run ends with the same weights as an uninterrupted one (bit-identical on the same device).
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Json`]/[`Error::Record`] naming a missing or corrupt run file,
    /// [`Error::Checkpoint`] when the data or the checkpoint's state do not fit the run.
    pub fn resume(run_dir: &Path, model: M, data: SftData, device: Device) -> Result<Self> {
        let config = SftConfig::from_file(&run_dir.join(run::CONFIG_FILE), &[])?;
        check_data(&data)?;
        let inner = Trainer::resume(SftStage::new(config, model, data, device), run_dir)?;
        Ok(SftTrainer { inner })
    }

    /// Reports progress to `progress` (an indicatif bar in r3-cli).
    pub fn with_progress(self, progress: Box<dyn TrainProgress>) -> Self {
        SftTrainer { inner: self.inner.with_progress(Box::new(SftProgress(progress))) }
    }

    /// Returns from [`SftTrainer::run`] right after optimizer step `step`, without saving anything beyond the
    /// regular checkpoints: what a kill at that moment leaves behind (tests of resume).
    pub fn stop_after_steps(self, step: u64) -> Self {
        SftTrainer { inner: self.inner.stop_after_steps(step) }
    }

    /// Trains data-parallel over `parallel`'s peers (module [`crate::parallel`]): the trainer's model is local
    /// peer 0 (it must live on `parallel.devices[0]` with autodiff); every other local device gets a replica of
    /// the current model and optimizer state (so call this after [`SftTrainer::resume`]) in a thread of its own.
    /// Each optimizer step hands micro-batch `m` of the global batch to the peer of global rank
    /// `m mod world_size`; the peers' gradients of `Σ NLL / (target tokens of the whole global batch)` are summed,
    /// so the update equals the one-device update of the whole batch (up to float rounding).
    ///
    /// With several processes (`parallel.launch`), every process runs the same trainer on the same data and
    /// config and writes its own run folder; they stay identical.
    ///
    /// # Errors
    /// [`Error::Parallel`] when the collective cannot start (see [`ParallelConfig::connect`]) or a thread cannot
    /// be spawned.
    pub fn with_parallel(mut self, parallel: &ParallelConfig) -> Result<Self> {
        self.inner.stage_mut().start_parallel(parallel)?;
        Ok(self)
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        self.inner.run_dir()
    }

    /// The resolved config.
    pub fn config(&self) -> &SftConfig {
        &self.inner.stage().config
    }

    /// The trainer state (where a resumed trainer continues).
    pub fn state(&self) -> &TrainerState {
        self.inner.state()
    }

    /// The validation loss of the current model: Σ NLL / Σ target tokens over the validation set, in
    /// micro-batches, on an inference copy of the model (no autodiff tape).
    pub fn validation_loss(&self) -> f64 {
        self.inner.stage().validation_loss()
    }

    /// One optimizer step over the training samples `idx` (indices into [`SftData::train`]) at learning rate
    /// `lr`, exactly as [`SftTrainer::run`] takes it (micro-batches, accumulation, clipping, AdamW), without
    /// touching the run's state, metrics or checkpoints: returns (loss, grad norm before clipping, real target
    /// tokens). `latentr3 bench sft` times it.
    ///
    /// # Errors
    /// As [`SftTrainer::run`]'s steps: a non-finite loss or gradient norm, a batch without targets.
    pub fn train_step(&mut self, idx: &[usize], lr: f64) -> Result<(f64, f64, usize)> {
        let step = self.inner.state().step + 1;
        let checkpoint = self.inner.checkpoint_text();
        let out = self.inner.stage_mut().train_step(idx, lr, step, &checkpoint)?;
        Ok((out.loss, out.grad_norm, out.tokens))
    }

    /// Trains until the last epoch, `max_steps`, early stopping or the stop hook. When the run finishes, the
    /// best checkpoint's weights are restored into the returned model and `summary.json` is written.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the step of a NaN/inf loss or gradient norm (the last good checkpoint is
    /// kept), [`Error::Data`] for batches without targets or a model without gradients, and the I/O and record
    /// errors of checkpointing.
    pub fn run(self) -> Result<SftOutcome<M>> {
        let (stage, summary) = self.inner.run()?;
        Ok(SftOutcome { model: stage.into_model(), summary: SftSummary::from(&summary) })
    }
}
