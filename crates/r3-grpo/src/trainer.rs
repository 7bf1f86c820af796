//! The GRPO trainer (docs/method.md §4 stage 2): [`crate::stage`]'s GRPO stage run by the generic loop of
//! `r3-trainer` (seeded prompt order, the cosine schedule, periodic validation with the best checkpoint kept,
//! atomic checkpoints and exact resume).
//!
//! The run folder holds `config.resolved.toml`, `env.json`, `metrics.jsonl` (one [`crate::GrpoMetric`] per line) and
//! `checkpoints/step-NNNNNNNN/` (`model.bpk`: LatentRATT only, `optimizer.bpk`, `state.json`) with the pointer
//! `checkpoints/latest.json`. A checkpoint folder is written under a temporary name and renamed into place.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use r3_data::{EncodedSample, Encoder};
use r3_decode::CatalogueTrie;
use r3_latent::LatentModel;
use r3_rewards::Registry;
use r3_train::parallel::ParallelConfig;
use r3_train::{Collate, seeded_subset};
use r3_trainer::Trainer;

use crate::config::GrpoConfig;
use crate::error::Result;
use crate::metrics::{GrpoOutcome, GrpoProgress, GrpoProgressAdapter, GrpoState, GrpoSummary};
use crate::stage::GrpoStage;

/// The resolved configuration's file name in the run folder.
pub const CONFIG_FILE: &str = r3_train::run::CONFIG_FILE;
/// The metrics file.
pub const METRICS_FILE: &str = r3_train::run::METRICS_FILE;

/// Freezes the backbone (no gradients, never stepped) and keeps LatentRATT trainable: the LR-GRPO setting.
pub fn freeze_backbone(mut model: LatentModel) -> LatentModel {
    model.backbone = model.backbone.no_grad();
    model
}

/// Validation data: a fixed subset of validation users with their target titles.
#[derive(Clone, Debug)]
pub struct Validation {
    /// The prompt encoder of the model (the model folder's).
    pub encoder: Encoder,
    /// The prompts (targets are ignored).
    pub samples: Vec<EncodedSample>,
    /// The target title of each prompt.
    pub titles: Vec<String>,
}

/// What the trainer trains and validates on.
pub struct GrpoData {
    /// The train prompts with their ground-truth targets.
    pub train: Vec<EncodedSample>,
    /// Lays prompts out as a left-padded batch ([`r3_data::SftBatch::new`] with the model's thought id).
    pub collate: Collate,
    /// The catalogue trie: the rollouts of the original GRPO and validation need it.
    pub items: Option<CatalogueTrie>,
    /// EOS (the last token of every trie path).
    pub eos_id: u32,
    /// Validation users (with `eval.every > 0`).
    pub valid: Option<Validation>,
}

impl std::fmt::Debug for GrpoData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpoData")
            .field("train", &self.train.len())
            .field("valid", &self.valid.as_ref().map(|v| v.samples.len()))
            .finish()
    }
}

/// Optimizer steps of a run: whole batches per epoch (a last partial batch is dropped) × epochs × iterations,
/// capped by `train.max_steps`.
pub fn total_steps(config: &GrpoConfig, n_train: usize) -> u64 {
    let per_epoch = (n_train / config.train.batch) as u64;
    let all = per_epoch * config.train.epochs as u64 * config.grpo.num_iterations as u64;
    if config.train.max_steps > 0 { all.min(config.train.max_steps) } else { all }
}

/// The GRPO trainer.
pub struct GrpoTrainer {
    inner: Trainer<GrpoStage>,
}

impl GrpoTrainer {
    /// A new run: checks the model and the data, creates the run folder and writes the resolved config and the
    /// environment. `model` must live on an autodiff device and have LatentRATT; its backbone is frozen here.
    ///
    /// # Errors
    /// [`crate::Error::Data`] for a model without LatentRATT or latent tokens, too few train prompts, a missing
    /// trie; [`crate::Error::Train`] when the run folder already holds a run; reward and I/O errors.
    pub fn new(config: GrpoConfig, model: LatentModel, data: GrpoData, device: Device) -> Result<Self> {
        Self::new_with(config, model, data, device, &Registry::default())
    }

    /// [`GrpoTrainer::new`] with the rewards of `grpo.rewards` built from `registry`: the way to train with
    /// rewards registered by another crate (docs/extending.md), whose names [`Registry::default`] does not know.
    ///
    /// # Errors
    /// As [`GrpoTrainer::new`]; an unknown reward name or invalid params.
    pub fn new_with(
        config: GrpoConfig,
        model: LatentModel,
        data: GrpoData,
        device: Device,
        registry: &Registry,
    ) -> Result<Self> {
        config.validate("<config>")?;
        let base = PathBuf::from(&config.run.output_dir);
        let timestamped = config.run.timestamped;
        let stage = GrpoStage::assemble(config, model, (data, device), registry)?;
        let inner = Trainer::new(stage, &base, timestamped, "GrpoTrainer")?;
        tracing::info!(run_dir = %inner.run_dir().display(), config = ?inner.stage().config, "GRPO run starts");
        Ok(GrpoTrainer { inner })
    }

    /// Continues the run in `run_dir` from its latest checkpoint (its `config.resolved.toml` is used); `model` is
    /// the same starting model as the interrupted run's.
    ///
    /// # Errors
    /// As [`GrpoTrainer::new`], plus unreadable or mismatched checkpoints.
    pub fn resume(run_dir: &Path, model: LatentModel, data: GrpoData, device: Device) -> Result<Self> {
        Self::resume_with(run_dir, model, data, device, &Registry::default())
    }

    /// [`GrpoTrainer::resume`] with the rewards built from `registry` (see [`GrpoTrainer::new_with`]).
    ///
    /// # Errors
    /// As [`GrpoTrainer::resume`].
    pub fn resume_with(
        run_dir: &Path,
        model: LatentModel,
        data: GrpoData,
        device: Device,
        registry: &Registry,
    ) -> Result<Self> {
        let path = run_dir.join(CONFIG_FILE);
        let config = GrpoConfig::from_file(&path, &[]).map_err(|e| {
            // An SFT run's config fails on its first SFT-only key; say what the folder is instead.
            if r3_train::SftConfig::from_file(&path, &[]).is_ok() {
                return crate::Error::Checkpoint {
                    path: run_dir.to_path_buf(),
                    message: "is an SFT run, not a GRPO one: resume it with `latentr3 train sft --resume`, or start \
                              LR-GRPO from its model folder (`model.checkpoint = \"RUN/model\"`)"
                        .into(),
                };
            }
            e
        })?;
        let stage = GrpoStage::assemble(config, model, (data, device), registry)?;
        Ok(GrpoTrainer { inner: Trainer::resume(stage, run_dir)? })
    }

    /// Rebuilds the rewards of `grpo.rewards` from `registry` (a registry whose rewards replace built-in ones of
    /// the same config names; for names [`Registry::default`] does not know, build with
    /// [`GrpoTrainer::new_with`]).
    ///
    /// # Errors
    /// An unknown reward name or invalid params.
    pub fn with_registry(mut self, registry: &Registry) -> Result<Self> {
        self.inner.stage_mut().set_registry(registry)?;
        Ok(self)
    }

    /// Trains data-parallel over `parallel`'s peers ([`r3_train::parallel`]): the trainer's model is local peer 0
    /// (it must live on `parallel.devices[0]` with autodiff); every other local device gets a replica of the
    /// current model (frozen backbone and LatentRATT) and optimizer state (so call this after
    /// [`GrpoTrainer::resume`]) in a thread of its own.
    ///
    /// Each optimizer step hands whole advantage pools to the peers: micro-step `m` (its `grpo.advantage_groups`
    /// prompts × `K` samples, its noise keyed by `m`) goes to the peer of global rank `m mod world_size`. The
    /// advantages of a pool are computed over exactly the pool one device would use, so `grpo.advantage_groups`
    /// does not change with the number of devices, and the summed gradients of `loss_m / n_micro` equal the
    /// one-device gradient. The rewards and per-pool diagnostics are gathered over the peers for the metrics.
    /// With more peers than pools per step, the extra peers idle.
    ///
    /// # Errors
    /// [`crate::Error::Train`] with [`r3_train::Error::Parallel`] when the collective cannot start.
    pub fn with_parallel(mut self, parallel: &ParallelConfig) -> Result<Self> {
        self.inner.stage_mut().start_parallel(parallel)?;
        Ok(self)
    }

    /// Reports progress to `progress`.
    pub fn with_progress(self, progress: Box<dyn GrpoProgress>) -> Self {
        let k = self.inner.stage().config.eval.k;
        GrpoTrainer { inner: self.inner.with_progress(Box::new(GrpoProgressAdapter { inner: progress, k })) }
    }

    /// Stops (as if killed) after optimizer step `step`, having written its checkpoint (tests of resuming).
    pub fn stop_after_steps(self, step: u64) -> Self {
        GrpoTrainer { inner: self.inner.stop_after_steps(step) }
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        self.inner.run_dir()
    }

    /// The position of the loop.
    pub fn state(&self) -> &GrpoState {
        self.inner.state()
    }

    /// The model being trained.
    pub fn model(&self) -> &LatentModel {
        &self.inner.stage().model
    }

    /// Validation NDCG@k and HR@k (k = `eval.k`) on the fixed validation subset, by constrained beam search.
    ///
    /// # Errors
    /// Decoding or metric errors.
    pub fn validate(&self) -> Result<(Vec<usize>, Vec<f64>, Vec<f64>)> {
        self.inner.stage().ranking()
    }

    /// Runs the remaining optimizer steps.
    ///
    /// # Errors
    /// [`crate::Error::NonFinite`] on a NaN/inf loss, reward or gradient norm (the last good checkpoint stays);
    /// I/O, decoding and reward errors.
    pub fn run(self) -> Result<GrpoOutcome> {
        let (stage, summary) = self.inner.run()?;
        Ok(GrpoOutcome { model: stage.into_model(), summary: GrpoSummary::from(&summary) })
    }
}

/// The validation users: a seeded subset of `n` rows (0 = all) with their target titles.
pub fn validation_subset(encoder: &Encoder, rows: &[r3_data::Interaction], n: usize, seed: u64) -> Result<Validation> {
    let mut samples = Vec::new();
    let mut titles = Vec::new();
    for i in seeded_subset(rows.len(), n, seed) {
        samples.push(encoder.encode_sample(&rows[i], false).map_err(r3_train::Error::from)?);
        titles.push(rows[i].item_title.clone());
    }
    Ok(Validation { encoder: encoder.clone(), samples, titles })
}
