//! The training loop shared by the baselines: Adam over shuffled mini-batches of training examples, seeded; after
//! every epoch the validation NDCG@10 (through [`Evaluator`], the metric path of the LLM models), early stopping
//! after `patience` epochs without improvement, and the best epoch's weights restored. Models that sample their
//! examples (AlphaRec's positives and negatives) draw a new set every epoch from the same seeded generator.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, decay::WeightDecayConfig};
use burn::tensor::Device;
use r3_data::{ItemId, SplitMix64};
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
    /// Every epoch.
    pub history: Vec<EpochReport>,
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
}

/// Trains `model` (initialised on an autodiff device) and returns the best epoch's weights.
///
/// # Errors
/// [`Error::Data`] when there is no training example; errors of the validation metrics or of `on_event`.
pub fn fit(
    input: FitInput<'_>,
    model: BaselineModel,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<FitOutput> {
    let FitInput { seqs, max_len, valid, settings } = input;
    settings.validate()?;
    let mut examples = model.examples(seqs, max_len);
    if examples.is_empty() {
        return Err(Error::Data {
            message: "no training example: every train sequence has a single item (check --data and --stem)".into(),
        });
    }
    let mut adam = AdamConfig::new();
    if settings.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(settings.weight_decay as f32)));
    }
    let mut optim = adam.init();
    let mut rng = SplitMix64::new(settings.seed);
    let mut model = model;
    let device = model.devices().into_iter().next().unwrap_or_default();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut history = Vec::new();
    let (mut best, mut best_epoch, mut best_model) = (f64::NEG_INFINITY, 0, model.valid());
    for epoch in 1..=settings.epochs {
        if let Some(fresh) = model.resample(seqs, &mut rng) {
            examples = fresh;
            order = (0..examples.len()).collect();
        }
        // Fisher–Yates with the seeded generator.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let steps = order.len().div_ceil(settings.batch_size);
        on_event(Event::EpochStart { epoch, steps })?;
        let t = Instant::now();
        let mut total = 0.0;
        for (step, idx) in order.chunks(settings.batch_size).enumerate() {
            let batch: Vec<&[ItemId]> = idx.iter().map(|&i| examples[i].as_slice()).collect();
            // A step is many small tensor operations: on flex a worker of rayon's pool runs them (`on_pool`).
            let (next, value) = r3_backbone::on_pool(&device, || {
                let loss = model.loss(&batch);
                let value: f64 = loss.clone().into_scalar::<f32>().into();
                let mut grads = loss.backward();
                let grads = GradientsParams::from_module(&mut grads, &model);
                (optim.step(settings.lr, model, grads), value)
            });
            model = next;
            total += value;
            on_event(Event::Step { step: step + 1, loss: value })?;
        }
        let train_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let current = model.valid();
        let m = r3_backbone::on_pool(&device, || valid.metrics(&current))?;
        let valid_s = t.elapsed().as_secs_f64();
        let ndcg = m.ndcg_at(10).unwrap_or(m.ndcg[m.ndcg.len() - 1]);
        let improved = ndcg > best;
        let report = EpochReport {
            epoch,
            loss: total / steps as f64,
            valid_hr10: m.hr_at(10).unwrap_or(m.hr[m.hr.len() - 1]),
            valid_ndcg10: ndcg,
            train_s,
            valid_s,
            best: improved,
        };
        tracing::debug!(epoch, loss = report.loss, ndcg10 = ndcg, "epoch");
        on_event(Event::Epoch { report: &report, model: &current })?;
        history.push(report);
        if improved {
            (best, best_epoch, best_model) = (ndcg, epoch, current);
        } else if epoch - best_epoch >= settings.patience {
            tracing::info!(epoch, best_epoch, best_ndcg10 = best, "early stop");
            break;
        }
    }
    Ok(FitOutput { model: best_model, best_epoch, best_ndcg10: best, history })
}

/// Seeds `device`'s generator (initial weights and dropout masks).
pub fn seed_device(device: &Device, seed: u64) {
    device.seed(seed);
}
