//! The SFT stage (docs/method.md §4 stage 1) of the generic loop: global batches split into accumulated micro-batches,
//! the loss normalised by the target tokens of the whole global batch, global grad-norm clipping, AdamW, the
//! validation loss, and the data-parallel share of a step.

use std::path::Path;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use r3_data::SftBatch;
use r3_trainer::parallel::{ParallelConfig, Peer, PeerShare, Peers, shares};
use r3_trainer::{EvalMeta, LinearSchedule, LoopSummary, Policy, Schedule, Stage, StepAt, StepMeta, Stepped};

use crate::checkpoint;
use crate::config::SftConfig;
use crate::error::{Error, Result};
use crate::grads::{accumulate, clip_global_norm};
use crate::model::SftModel;
use crate::run::MetricRecord;
use crate::trainer::{SftData, SftSummary, total_steps};

const MODEL_HELD: &str = "the stage holds its model between optimizer steps";

/// The SFT stage: the model, its optimizer, the data, and the data-parallel peers when there are several.
pub(crate) struct SftStage<M: SftModel> {
    pub(crate) config: SftConfig,
    /// `None` only while an optimizer step holds it: the optimizer gets the one reference to the parameters, so
    /// that it can update them in place (`crate::optim`).
    model: Option<M>,
    optimizer: ModuleOptimizer,
    pub(crate) data: SftData,
    device: Device,
    policy: Policy,
    parallel: Option<Peers<SftJob, Error>>,
}

/// One optimizer step for a worker replica: its micro-batches, the real target tokens of the whole global
/// batch, the learning rate, the clipping norm and the 1-based step (for messages).
pub(crate) struct SftJob {
    batches: Vec<SftBatch>,
    tokens: usize,
    lr: f64,
    clip: f64,
    step: u64,
}

/// The diagnostics of one SFT step: the loss of the global batch, the gradient norm before clipping and the real
/// target tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SftStepOut {
    pub(crate) loss: f64,
    pub(crate) grad_norm: f64,
    pub(crate) tokens: usize,
}

fn count_real(batch: &SftBatch) -> usize {
    batch.target_real.iter().filter(|r| **r).count()
}

/// The summed gradient of `batches` for a loss `Σ NLL / tokens` (`tokens` the real target tokens of the whole
/// global batch, so that the gradients of micro-batches, and of peers, add up to the global batch's), and
/// `Σ NLL` itself.
fn batch_grads<M: SftModel>(model: &M, batches: &[SftBatch], tokens: usize) -> Result<(Option<GradientsParams>, f64)> {
    let mut grads: Option<GradientsParams> = None;
    let mut nll_sum = 0.0f64;
    // A model without parameters has no device; it fails below with "no gradients" on any device.
    let device = model.devices().into_iter().next().unwrap_or_default();
    for batch in batches {
        // The forward and backward passes block on nothing: on flex they run on a worker of rayon's pool.
        let (sum, g) = r3_backbone::on_pool(&device, || {
            let nll = model.nll(batch);
            if nll.tokens != count_real(batch) {
                return Err(Error::Data {
                    message: format!(
                        "SftModel::nll counted {} target tokens but the batch has {} real ones: sum over exactly \
                         the `target_real` positions",
                        nll.tokens,
                        count_real(batch)
                    ),
                });
            }
            let loss = nll.sum.clone().div_scalar(tokens as f64);
            Ok((nll.sum, GradientsParams::from_grads(loss.backward(), model)))
        })?;
        nll_sum += f64::from(sum.into_scalar::<f32>());
        grads = Some(accumulate(model, grads, g));
    }
    Ok((grads, nll_sum))
}

/// The inputs of [`checked_update`]: the loss of the global batch, its (summed) gradients, the clipping norm, the
/// 1-based step and the last checkpoint (both for messages).
struct Update<'a> {
    loss: f64,
    grads: GradientsParams,
    clip: f64,
    step: u64,
    checkpoint: &'a str,
}

/// The end of a step on one device or one peer, before the optimizer: checks the loss, clips the gradients by their
/// global norm and checks it. Returns the clipped gradients and the norm before clipping.
fn checked_update<M: SftModel>(model: &M, u: Update<'_>) -> Result<(GradientsParams, f64)> {
    if !u.loss.is_finite() {
        return Err(Error::NonFinite { step: u.step, what: "loss", value: u.loss, checkpoint: u.checkpoint.into() });
    }
    if u.grads.is_empty() {
        return Err(Error::Data {
            message: "the model produced no gradients: initialise it on `device.clone().autodiff()` and keep some \
                      parameters trainable"
                .into(),
        });
    }
    let (grads, norm) = clip_global_norm(model, u.grads, u.clip);
    if !norm.is_finite() {
        return Err(Error::NonFinite {
            step: u.step,
            what: "gradient norm",
            value: norm,
            checkpoint: u.checkpoint.into(),
        });
    }
    Ok((grads, norm))
}

/// One data-parallel step of one peer up to the optimizer: the gradients of its micro-batches, the all-reduce, then
/// the same checks and clipping as every other peer. Returns the clipped gradients, the loss of the global batch
/// and the gradient norm.
fn peer_step<M: SftModel>(
    model: &M,
    peer: &Peer,
    job: &SftJob,
    checkpoint: &str,
) -> Result<(GradientsParams, f64, f64)> {
    let (share, local_err) = match batch_grads(model, &job.batches, job.tokens) {
        Ok((grads, nll)) => (PeerShare { grads, scalars: vec![nll], failure: None }, None),
        Err(e) => (PeerShare { grads: None, scalars: vec![0.0], failure: Some(e.to_string()) }, Some(e)),
    };
    // A peer whose share failed still takes part in the all-reduce, so that the others learn of it and stop
    // instead of waiting; it then reports its own error.
    let reduced = peer.reduce_step(model, share);
    if let Some(e) = local_err {
        return Err(e);
    }
    let (grads, scalars) = reduced?;
    let loss = scalars[0] / job.tokens as f64;
    let update = Update { loss, grads, clip: job.clip, step: job.step, checkpoint };
    let (grads, norm) = checked_update(model, update)?;
    Ok((grads, loss, norm))
}

/// The loop's layout of an SFT run over `n_train` samples.
fn policy(config: &SftConfig, n_train: usize) -> Policy {
    let t = &config.train;
    Policy {
        batch: t.batch,
        drop_last: false,
        epochs: t.epochs,
        max_steps: t.max_steps,
        iterations: 1,
        seed: t.seed,
        schedule: Schedule::Linear(LinearSchedule {
            peak_lr: t.lr,
            warmup: t.warmup,
            total: total_steps(config, n_train),
        }),
        validate: true,
        eval_every: t.eval_every,
        eval_at_epoch_end: true,
        checkpoint_every: t.checkpoint_every,
        checkpoint_every_eval: true,
        // The stop hook acts as a kill: nothing beyond the regular checkpoints is saved.
        checkpoint_on_stop: false,
        keep_checkpoints: config.run.keep_checkpoints,
        patience: t.patience,
        higher_is_better: false,
    }
}

impl<M: SftModel> SftStage<M> {
    pub(crate) fn new(config: SftConfig, model: M, data: SftData, device: Device) -> Self {
        SftStage {
            optimizer: config.train.optimizer().adamw(),
            policy: policy(&config, data.train.len()),
            config,
            model: Some(model),
            data,
            device,
            parallel: None,
        }
    }

    pub(crate) fn model(&self) -> &M {
        self.model.as_ref().expect(MODEL_HELD)
    }

    fn take_model(&mut self) -> M {
        self.model.take().expect(MODEL_HELD)
    }

    pub(crate) fn into_model(mut self) -> M {
        self.take_model()
    }

    /// Starts the data-parallel peers (see `SftTrainer::with_parallel`).
    pub(crate) fn start_parallel(&mut self, parallel: &ParallelConfig) -> Result<()> {
        let mut peers = parallel.connect()?.into_iter();
        let peer = peers.next().ok_or_else(|| Error::Parallel { message: "no local peer".into() })?;
        let synced = peer.sync_from_rank0(self.take_model())?;
        self.model = Some(synced);
        let (model, optimizer) = (self.model().clone(), self.optimizer.clone());
        let started = Peers::start(peer, peers.collect(), "r3-sft-peer", |p| {
            let device = p.device().clone().autodiff();
            let mut replica = Some(model.clone().fork(&device));
            let mut optimizer = optimizer.clone();
            Ok(move |job: SftJob| -> Result<()> {
                let current = replica.take().expect("the worker's replica");
                let (grads, _, _) = peer_step(&current, &p, &job, "(rank 0's)")?;
                replica = Some(optimizer.step(job.lr, current, grads));
                Ok(())
            })
        })?;
        tracing::info!(local_peers = parallel.devices.len(), reduction = ?parallel.reduction, "SFT data parallelism");
        self.parallel = Some(started);
        Ok(())
    }

    /// The validation loss of the current model: Σ NLL / Σ target tokens over the validation set, in
    /// micro-batches, on an inference copy of the model (no autodiff tape).
    pub(crate) fn validation_loss(&self) -> f64 {
        let model = self.model().valid();
        let (mut sum, mut tokens) = (0.0f64, 0usize);
        for chunk in self.data.valid.chunks(self.config.train.micro_batch) {
            let batch = (self.data.collate)(chunk);
            let nll = model.nll(&batch);
            sum += f64::from(nll.sum.into_scalar::<f32>());
            tokens += nll.tokens;
        }
        sum / tokens.max(1) as f64
    }

    /// One optimizer step over the training samples `idx` at learning rate `lr` (`step` is its 1-based number and
    /// `checkpoint` the last checkpoint, for messages).
    pub(crate) fn train_step(&mut self, idx: &[usize], lr: f64, step: u64, checkpoint: &str) -> Result<SftStepOut> {
        let micro: Vec<SftBatch> = idx
            .chunks(self.config.train.micro_batch)
            .map(|c| (self.data.collate)(&c.iter().map(|&i| self.data.train[i].clone()).collect::<Vec<_>>()))
            .collect();
        // The loss of the global batch is Σ NLL / (real target tokens of the whole global batch), so every
        // micro-batch's NLL is divided by the global count before its backward pass ([CODE] HF
        // `num_items_in_batch` with `loss_type = "ce"`): the accumulated gradient equals the big batch's. With
        // data parallelism the same holds for the sum of the peers' gradients.
        let tokens: usize = micro.iter().map(count_real).sum();
        if tokens == 0 {
            return Err(Error::Data { message: format!("optimizer step {step}: the batch has no real target tokens") });
        }
        let clip = self.config.train.clip;
        if let Some(par) = &self.parallel {
            let world = par.peer().world_size();
            let share = |rank: usize| shares(micro.len(), rank, world).into_iter().map(|m| micro[m].clone()).collect();
            let job = |rank: usize| SftJob { batches: share(rank), tokens, lr, clip, step };
            let model = self.model.as_ref().expect(MODEL_HELD);
            let (grads, loss, norm) = par.step(job, |peer| peer_step(model, peer, &job(peer.rank()), checkpoint))?;
            let model = self.take_model();
            self.model = Some(self.optimizer.step(lr, model, grads));
            return Ok(SftStepOut { loss, grad_norm: norm, tokens });
        }
        let (grads, nll_sum) = batch_grads(self.model(), &micro, tokens)?;
        let loss = nll_sum / tokens as f64;
        let update = Update { loss, grads: grads.unwrap_or_default(), clip, step, checkpoint };
        // The stage lets go of the parameters for the step, so that the optimizer holds their only reference.
        // Clipping and the optimizer step block on nothing either: on flex they run on a worker of rayon's pool.
        let model = self.take_model();
        let optimizer = &mut self.optimizer;
        let (model, norm) = r3_backbone::on_pool(&self.device, move || match checked_update(&model, update) {
            Ok((grads, norm)) => (optimizer.step(lr, model, grads), Ok(norm)),
            Err(e) => (model, Err(e)),
        });
        self.model = Some(model);
        Ok(SftStepOut { loss, grad_norm: norm?, tokens })
    }
}

impl<M: SftModel> Stage for SftStage<M> {
    type Error = Error;
    type Record = MetricRecord;
    type Output = SftStepOut;
    type Eval = ();
    type Summary = SftSummary;

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn train_len(&self) -> usize {
        self.data.train.len()
    }

    fn valid_len(&self) -> usize {
        self.data.valid.len()
    }

    fn config_toml(&self) -> Result<String> {
        self.config.to_toml()
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> String {
        format!("{:?}", self.config.model.dtype).to_lowercase()
    }

    fn step(&mut self, at: &StepAt<'_>) -> Result<Stepped<SftStepOut>> {
        let out = self.train_step(at.idx, at.lr, at.step, at.checkpoint)?;
        Ok(Stepped { output: out, seen: out.tokens as u64 })
    }

    fn step_record(&self, out: SftStepOut, meta: &StepMeta) -> MetricRecord {
        let tokens_per_s = out.tokens as f64 / meta.step_s;
        let (step, epoch, loss, lr, grad_norm) = (meta.step, meta.epoch, out.loss, meta.lr, out.grad_norm);
        tracing::info!(step, epoch, loss, lr, grad_norm, tokens_per_s, "step");
        let tokens = out.tokens as u64;
        MetricRecord::Step { step, epoch, loss, lr, grad_norm, tokens, tokens_per_s, elapsed_s: meta.elapsed_s }
    }

    fn validate(&mut self, step: u64, checkpoint: &str) -> Result<(f64, ())> {
        let val_loss = self.validation_loss();
        if !val_loss.is_finite() {
            let checkpoint = checkpoint.into();
            return Err(Error::NonFinite { step, what: "validation loss", value: val_loss, checkpoint });
        }
        Ok((val_loss, ()))
    }

    fn eval_record(&self, _eval: (), meta: &EvalMeta) -> MetricRecord {
        MetricRecord::Eval { step: meta.step, epoch: meta.epoch, val_loss: meta.metric }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        checkpoint::save_model(dir, self.model())?;
        Ok(checkpoint::save_optimizer(dir, &self.optimizer)?)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        self.load_best(dir)?;
        let optimizer = std::mem::replace(&mut self.optimizer, self.config.train.optimizer().adamw());
        self.optimizer = checkpoint::load_optimizer(dir, optimizer)?;
        Ok(())
    }

    fn load_best(&mut self, dir: &Path) -> Result<()> {
        let model = self.take_model();
        self.model = Some(checkpoint::load_model(dir, model)?);
        Ok(())
    }

    fn summary(&self, summary: &LoopSummary) -> SftSummary {
        SftSummary::from(summary)
    }
}
