//! The baselines as a stage of the generic loop (`r3-trainer`): Adam over shuffled mini-batches of training
//! examples, seeded; after every epoch the validation NDCG@10 (through [`Evaluator`], the metric path of the LLM
//! models), a checkpoint, early stopping after `patience` epochs without improvement, and the best epoch's
//! weights restored. Models that sample their examples (AlphaRec's positives and negatives) draw a new set every
//! epoch from the same seeded generator. A killed run resumes from its last epoch to the same weights: the
//! generator's draws of the finished epochs are replayed (they depend only on the seed).

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, decay::WeightDecayConfig};
use burn::tensor::Device;
use r3_data::{ItemId, SplitMix64};
use r3_trainer::checkpoint::{load_model, load_optimizer, save_model, save_optimizer};
use r3_trainer::run::{read_json, write_json};
use r3_trainer::{EvalMeta, LoopSummary, MetricLine, Policy, Schedule, Stage, StepAt, StepMeta, Stepped, Trainer};
use serde::{Deserialize, Serialize};

use crate::data::Sequences;
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::model::BaselineModel;

/// The training settings of an experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    /// (int) The most epochs. RecBole 300; early stopping ends runs long before.
    pub epochs: usize,
    /// (int) Examples per optimizer step. `[PAPER]` SASRec 128.
    pub batch_size: usize,
    /// (float) Adam's learning rate. `[PAPER]` 1e-3.
    pub lr: f64,
    /// (float) L2 weight decay of Adam (0 = none). Caser's paper uses 1e-6 on its embeddings.
    pub weight_decay: f64,
    /// (int) Stop after this many epochs without a better validation NDCG@10. RecBole `stopping_step` 10.
    pub patience: usize,
    /// (int) Seed of the initial weights, the dropout masks and the batch order.
    pub seed: u64,
    /// (int) Rows scored at once in evaluation.
    pub eval_batch: usize,
    /// (int) Validate on a seeded subset of this many validation rows (0 = all).
    pub valid_limit: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 200,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 0.0,
            patience: 10,
            seed: 2018,
            eval_batch: 512,
            valid_limit: 0,
        }
    }
}

impl TrainSettings {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, value: String, hint| Err(Error::Config { key, value, hint });
        if self.epochs == 0 {
            return bad("train.epochs", "0".into(), "train for at least one epoch");
        }
        if self.batch_size == 0 || self.eval_batch == 0 {
            return bad("train.batch_size", self.batch_size.to_string(), "batch sizes must be ≥ 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("train.lr", self.lr.to_string(), "use a positive learning rate ([PAPER] 1e-3)");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("train.weight_decay", self.weight_decay.to_string(), "use a non-negative decay");
        }
        if self.patience == 0 {
            return bad("train.patience", "0".into(), "wait at least one epoch for an improvement (RecBole 10)");
        }
        Ok(())
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The mean training loss of the epoch's steps.
    pub loss: f64,
    /// Validation HR@10.
    pub valid_hr10: f64,
    /// Validation NDCG@10 (the early-stopping metric).
    pub valid_ndcg10: f64,
    /// Seconds of training (forward, backward, optimizer).
    pub train_s: f64,
    /// Seconds of validation.
    pub valid_s: f64,
    /// Whether this epoch is the best so far.
    pub best: bool,
}

/// Progress events of [`fit`].
#[derive(Debug)]
pub enum Event<'a> {
    /// An epoch starts with `steps` optimizer steps.
    EpochStart {
        /// The epoch, from 1.
        epoch: usize,
        /// Its optimizer steps.
        steps: usize,
    },
    /// An optimizer step ended.
    Step {
        /// The step within the epoch, from 1.
        step: usize,
        /// Its loss.
        loss: f64,
    },
    /// An epoch ended; `model` is the current model in validation mode (plain device).
    Epoch {
        /// The report.
        report: &'a EpochReport,
        /// The model after this epoch.
        model: &'a BaselineModel,
    },
}

/// The outcome of [`fit`].
#[derive(Debug)]
pub struct FitOutput {
    /// The best epoch's model, in validation mode on the plain device.
    pub model: BaselineModel,
    /// The best epoch (from 1).
    pub best_epoch: usize,
    /// Its validation NDCG@10.
    pub best_ndcg10: f64,
    /// Every epoch (those of an interrupted session included when the run was resumed).
    pub history: Vec<EpochReport>,
    /// Whether the run ended (all epochs or early stopping); `false` when the stop hook interrupted it.
    pub finished: bool,
}

/// The inputs of [`fit`].
#[derive(Debug, Clone, Copy)]
pub struct FitInput<'a> {
    /// The training sequences.
    pub seqs: &'a Sequences,
    /// The longest input the model reads (examples are cut to it plus the target).
    pub max_len: usize,
    /// The validation rows and metric.
    pub valid: &'a Evaluator<'a>,
    /// The settings.
    pub settings: &'a TrainSettings,
    /// The run folder: `config.resolved.toml`, `env.json`, `metrics.jsonl`, `checkpoints/`, `summary.json`.
    pub run_dir: &'a Path,
    /// Continue the run in `run_dir` from its last checkpoint (the same data, settings and model kind).
    pub resume: bool,
    /// Stop after this many optimizer steps, as a kill would (tests of resume).
    pub stop_after_steps: Option<u64>,
}

/// One line of a baseline run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaselineRecord {
    /// An optimizer step.
    Step {
        /// The 1-based optimizer step.
        step: u64,
        /// The 0-based epoch.
        epoch: usize,
        /// The loss of the batch.
        loss: f64,
    },
    /// The end of an epoch (its validation).
    Epoch {
        /// The optimizer steps taken.
        step: u64,
        /// The report.
        #[serde(flatten)]
        report: EpochReport,
    },
}

impl MetricLine for BaselineRecord {
    fn step(&self) -> u64 {
        match self {
            BaselineRecord::Step { step, .. } | BaselineRecord::Epoch { step, .. } => *step,
        }
    }
}

/// The settings of a run, as `config.resolved.toml` holds them (and every checkpoint hashes them).
#[derive(Serialize)]
struct Resolved<'a> {
    model: crate::ModelKind,
    max_len: usize,
    train: &'a TrainSettings,
}

/// What a baseline checkpoint holds besides the weights and Adam's state: the epochs so far.
const HISTORY_FILE: &str = "history.json";

/// The baseline stage: the model, Adam, the examples and their seeded order, and the epoch being trained.
struct BaselineStage<'a> {
    input: FitInput<'a>,
    /// `None` only while an optimizer step holds it.
    model: Option<BaselineModel>,
    optimizer: ModuleOptimizer,
    device: Device,
    policy: Policy,
    examples: Vec<Vec<ItemId>>,
    /// The generator of the orders and samples, after `drawn` epochs' draws.
    rng: SplitMix64,
    order: Vec<usize>,
    drawn: usize,
    /// The loss sum, steps and training seconds of the epoch in progress.
    tally: (f64, usize, f64),
    history: Vec<EpochReport>,
    on_event: &'a mut dyn FnMut(Event<'_>) -> Result<()>,
}

impl BaselineStage<'_> {
    fn model(&self) -> &BaselineModel {
        self.model.as_ref().expect("held between steps")
    }

    /// The draws of one epoch: new examples for models that sample them, then a Fisher–Yates shuffle of the
    /// order with the seeded generator.
    fn draw_epoch(&mut self) {
        let model = self.model.as_ref().expect("held between steps");
        if let Some(fresh) = model.resample(self.input.seqs, &mut self.rng) {
            self.examples = fresh;
            self.order = (0..self.examples.len()).collect();
        }
        for i in (1..self.order.len()).rev() {
            self.order.swap(i, self.rng.below(i + 1));
        }
        self.drawn += 1;
    }
}

impl Stage for BaselineStage<'_> {
    type Error = Error;
    type Record = BaselineRecord;
    type Output = f64;
    type Eval = EpochReport;
    type Summary = LoopSummary;

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn train_len(&self) -> usize {
        self.examples.len()
    }

    fn valid_len(&self) -> usize {
        self.input.valid.rows().len()
    }

    fn epoch_order(&mut self, epoch: usize) -> Vec<usize> {
        // A resumed run replays the draws of the epochs before: they depend only on the seed.
        while self.drawn <= epoch {
            self.draw_epoch();
        }
        let steps = self.order.len().div_ceil(self.input.settings.batch_size);
        // Events cannot fail here; a failing callback fails at the next step.
        if let Err(e) = (self.on_event)(Event::EpochStart { epoch: epoch + 1, steps }) {
            tracing::warn!(error = %e, "epoch start event");
        }
        self.tally = (0.0, 0, 0.0);
        self.order.clone()
    }

    fn config_toml(&self) -> Result<String> {
        let resolved = Resolved { model: self.model().kind(), max_len: self.input.max_len, train: self.input.settings };
        toml::to_string(&resolved)
            .map_err(|e| Error::Data { message: format!("cannot write the resolved settings: {e}") })
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn step(&mut self, at: &StepAt<'_>) -> Result<Stepped<f64>> {
        let t = Instant::now();
        let batch: Vec<&[ItemId]> = at.idx.iter().map(|&i| self.examples[i].as_slice()).collect();
        let model = self.model.take().expect("held between steps");
        let optimizer = &mut self.optimizer;
        // A step is many small tensor operations: on flex a worker of rayon's pool runs them (`on_pool`).
        let (next, value) = r3_backbone::on_pool(&self.device, || {
            let loss = model.loss(&batch);
            let value: f64 = loss.clone().into_scalar::<f32>().into();
            let mut grads = loss.backward();
            let grads = GradientsParams::from_module(&mut grads, &model);
            (optimizer.step(at.lr, model, grads), value)
        });
        self.model = Some(next);
        self.tally = (self.tally.0 + value, self.tally.1 + 1, self.tally.2 + t.elapsed().as_secs_f64());
        (self.on_event)(Event::Step { step: self.tally.1, loss: value })?;
        Ok(Stepped { output: value, seen: at.idx.len() as u64 })
    }

    fn step_record(&self, loss: f64, meta: &StepMeta) -> BaselineRecord {
        BaselineRecord::Step { step: meta.step, epoch: meta.epoch, loss }
    }

    fn validate(&mut self, _step: u64, _checkpoint: &str) -> Result<(f64, EpochReport)> {
        let t = Instant::now();
        let current = self.model().valid();
        let valid = self.input.valid;
        let m = r3_backbone::on_pool(&self.device, || valid.metrics(&current))?;
        let ndcg = m.ndcg_at(10).unwrap_or(m.ndcg[m.ndcg.len() - 1]);
        let best = self.history.iter().filter(|r| r.best).map(|r| r.valid_ndcg10).fold(f64::NEG_INFINITY, f64::max);
        let report = EpochReport {
            epoch: self.history.len() + 1,
            loss: self.tally.0 / self.tally.1.max(1) as f64,
            valid_hr10: m.hr_at(10).unwrap_or(m.hr[m.hr.len() - 1]),
            valid_ndcg10: ndcg,
            train_s: self.tally.2,
            valid_s: t.elapsed().as_secs_f64(),
            best: ndcg > best,
        };
        tracing::debug!(epoch = report.epoch, loss = report.loss, ndcg10 = ndcg, "epoch");
        (self.on_event)(Event::Epoch { report: &report, model: &current })?;
        self.history.push(report.clone());
        Ok((ndcg, report))
    }

    fn eval_record(&self, report: EpochReport, meta: &EvalMeta) -> BaselineRecord {
        BaselineRecord::Epoch { step: meta.step, report }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_model(dir, self.model())?;
        save_optimizer(dir, &self.optimizer)?;
        Ok(write_json(&dir.join(HISTORY_FILE), &self.history)?)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        let model = self.model.take().expect("held between steps");
        self.model = Some(load_model(dir, model)?);
        let optimizer = std::mem::replace(&mut self.optimizer, adam(self.input.settings));
        self.optimizer = load_optimizer(dir, optimizer)?;
        self.history = read_json(&dir.join(HISTORY_FILE))?;
        Ok(())
    }

    fn load_best(&mut self, dir: &Path) -> Result<()> {
        let model = self.model.take().expect("held between steps");
        self.model = Some(load_model(dir, model)?);
        Ok(())
    }

    fn summary(&self, summary: &LoopSummary) -> LoopSummary {
        summary.clone()
    }
}

fn adam(settings: &TrainSettings) -> ModuleOptimizer {
    let mut adam = AdamConfig::new();
    if settings.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(settings.weight_decay as f32)));
    }
    adam.init()
}

fn policy(settings: &TrainSettings) -> Policy {
    Policy {
        batch: settings.batch_size,
        drop_last: false,
        epochs: settings.epochs,
        max_steps: 0,
        iterations: 1,
        seed: settings.seed,
        schedule: Schedule::Constant(settings.lr),
        validate: true,
        eval_every: 0,
        eval_at_epoch_end: true,
        // Only at the ends of epochs: the stage's order generator is replayed by whole epochs.
        checkpoint_every: 0,
        checkpoint_every_eval: true,
        checkpoint_on_stop: false,
        keep_checkpoints: 1,
        // RecBole's `stopping_step`: epochs without a better validation NDCG@10.
        patience: settings.patience,
        higher_is_better: true,
    }
}

/// Trains `model` (initialised on an autodiff device) in the run folder `input.run_dir` (or resumes it) and
/// returns the best epoch's weights.
///
/// # Errors
/// [`Error::Data`] when there is no training example; errors of the validation metrics, of `on_event` and of the
/// run folder (a checkpoint that does not fit the run).
pub fn fit(
    input: FitInput<'_>,
    model: BaselineModel,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<FitOutput> {
    input.settings.validate()?;
    let examples = model.examples(input.seqs, input.max_len);
    if examples.is_empty() {
        return Err(Error::Data {
            message: "no training example: every train sequence has a single item (check --data and --stem)".into(),
        });
    }
    let device = model.devices().into_iter().next().unwrap_or_default();
    let stage = BaselineStage {
        order: (0..examples.len()).collect(),
        examples,
        rng: SplitMix64::new(input.settings.seed),
        drawn: 0,
        optimizer: adam(input.settings),
        policy: policy(input.settings),
        model: Some(model),
        device,
        tally: (0.0, 0, 0.0),
        history: Vec::new(),
        input,
        on_event,
    };
    let trainer = if input.resume {
        Trainer::resume(stage, input.run_dir)?
    } else {
        Trainer::new(stage, input.run_dir, false, "fit with `resume: true`")?
    };
    let trainer = match input.stop_after_steps {
        Some(k) => trainer.stop_after_steps(k),
        None => trainer,
    };
    let (stage, summary) = trainer.run()?;
    let best = stage.history.iter().rfind(|r| r.best);
    let (best_epoch, best_ndcg10) = best.map_or((0, f64::NEG_INFINITY), |r| (r.epoch, r.valid_ndcg10));
    if best_epoch > 0 {
        tracing::info!(epochs = stage.history.len(), best_epoch, best_ndcg10, "baseline run ended");
    }
    Ok(FitOutput {
        model: stage.model().valid(),
        best_epoch,
        best_ndcg10,
        history: stage.history,
        finished: summary.finished,
    })
}

/// `config.json` of a baseline run folder: the experiment and the data it trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The resolved experiment (model settings and training settings).
    pub experiment: crate::BaselineExperiment,
    /// The data folder.
    pub data: String,
    /// The dataset stem.
    pub stem: String,
    /// The catalogue size.
    pub n_items: usize,
    /// The device, as burn prints it.
    pub device: String,
}

/// `summary.json` of a finished baseline run folder: the best epoch and the test metrics of its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The model kind.
    pub model: crate::ModelKind,
    /// The dataset stem.
    pub stem: String,
    /// The best epoch (from 1).
    pub best_epoch: usize,
    /// The epochs trained (over all sessions).
    pub epochs: usize,
    /// The best epoch's validation NDCG@10.
    pub valid_ndcg10: f64,
    /// Mean seconds of training per epoch.
    pub train_s_per_epoch: f64,
    /// Seconds of this session in all (training, validation, test).
    pub total_s: f64,
    /// The test metrics of the best epoch's model, by title.
    pub test: r3_metrics::Metrics,
}

impl RunConfig {
    /// Writes `config.json` into `run_dir` (atomically).
    ///
    /// # Errors
    /// [`Error::Trainer`] naming the file.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        Ok(write_json(&run_dir.join("config.json"), self)?)
    }
}

impl RunSummary {
    /// Writes `summary.json` into `run_dir` (atomically), replacing the loop's summary of the run.
    ///
    /// # Errors
    /// [`Error::Trainer`] naming the file.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        Ok(write_json(&run_dir.join(r3_trainer::run::SUMMARY_FILE), self)?)
    }
}

/// Seeds `device`'s generator (initial weights and dropout masks).
pub fn seed_device(device: &Device, seed: u64) {
    device.seed(seed);
}
