//! The SFT loop (PAPER.md §4 stage 1): seeded epoch shuffles, global batches split into accumulated
//! micro-batches, AdamW with the linear warm-up/decay schedule, global grad-norm clipping, validation, early
//! stopping with the best checkpoint restored, atomic checkpoints and exact resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use r3_data::{EncodedSample, SftBatch};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, TrainerState};
use crate::config::SftConfig;
use crate::error::{Error, Result};
use crate::grads::{accumulate, clip_global_norm};
use crate::model::SftModel;
use crate::parallel::{ParallelConfig, Peer, PeerShare, Worker, shares};
use crate::progress::{EvalInfo, NoProgress, StartInfo, StepInfo, TrainProgress};
use crate::run::{self, MetricRecord, MetricsWriter, RunEnv};
use crate::schedule::LinearSchedule;

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

const MODEL_HELD: &str = "the trainer holds its model between optimizer steps";

/// The SFT trainer. Build it with [`SftTrainer::new`] (a fresh run) or [`SftTrainer::resume`], then call
/// [`SftTrainer::run`].
pub struct SftTrainer<M: SftModel> {
    config: SftConfig,
    /// `None` only while an optimizer step holds it: the optimizer gets the one reference to the parameters, so
    /// that it can update them in place (`crate::optim`).
    model: Option<M>,
    optimizer: ModuleOptimizer,
    data: SftData,
    device: Device,
    run_dir: PathBuf,
    state: TrainerState,
    last_checkpoint: Option<PathBuf>,
    last_val_loss: Option<f64>,
    progress: Box<dyn TrainProgress>,
    stop_after_steps: Option<u64>,
    parallel: Option<SftParallel<M>>,
}

/// The data-parallel side of a trainer: its own peer (local peer 0, the trainer's model) and one worker thread per
/// other local device, each with a replica and an optimizer of its own.
struct SftParallel<M: SftModel> {
    peer: Peer,
    workers: Vec<Worker<SftJob>>,
    _model: std::marker::PhantomData<M>,
}

/// A job for a worker replica.
enum SftJob {
    /// One optimizer step: the worker's micro-batches, the real target tokens of the whole global batch, the
    /// learning rate, the clipping norm and the 1-based step (for messages).
    Step { batches: Vec<SftBatch>, tokens: usize, lr: f64, clip: f64, step: u64 },
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
    job: (&[SftBatch], usize, f64, u64),
    checkpoint: &str,
) -> Result<(GradientsParams, f64, f64)> {
    let (batches, tokens, clip, step) = job;
    let (share, local_err) = match batch_grads(model, batches, tokens) {
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
    let loss = scalars[0] / tokens as f64;
    let (grads, norm) = checked_update(model, Update { loss, grads, clip, step, checkpoint })?;
    Ok((grads, loss, norm))
}

/// The optimizer steps of a run: `epochs · ⌈n / batch⌉` (the last global batch of an epoch may be smaller),
/// capped by `max_steps` when it is set.
pub fn total_steps(config: &SftConfig, n_train: usize) -> u64 {
    let per_epoch = n_train.div_ceil(config.train.batch) as u64;
    let all = per_epoch * config.train.epochs as u64;
    if config.train.max_steps > 0 { all.min(config.train.max_steps) } else { all }
}

/// The order of the training samples in `epoch`: `random.shuffle(list(range(n)))` of a CPython generator seeded
/// with the key `[seed_lo, seed_hi, epoch]`, so each epoch's order depends only on the seed and the epoch (a
/// resumed run regenerates it).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    r3_data::raw::PyRandom::from_key(&[seed as u32, (seed >> 32) as u32, epoch as u32]).shuffle(&mut order);
    order
}

fn count_real(batch: &SftBatch) -> usize {
    batch.target_real.iter().filter(|r| **r).count()
}

fn adamw(config: &SftConfig) -> ModuleOptimizer {
    config.train.optimizer().adamw()
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
        let run_dir =
            if config.run.timestamped { base.join(run::utc_timestamp(run::now_unix() as i64, false)) } else { base };
        if checkpoint::latest(&run_dir)?.is_some() || run_dir.join(run::METRICS_FILE).exists() {
            return Err(Error::Checkpoint {
                path: run_dir,
                message: "already holds a run: resume it (`SftTrainer::resume`) or choose another `run.output_dir`"
                    .into(),
            });
        }
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, "create run folder", e))?;
        let env = RunEnv::collect(&device, &config);
        run::write_run_files(&run_dir, &config, &env)?;
        tracing::info!(run_dir = %run_dir.display(), config = ?config, env = ?env, "SFT run starts");
        let state = TrainerState::fresh(total_steps(&config, data.train.len()));
        Ok(SftTrainer {
            optimizer: adamw(&config),
            config,
            model: Some(model),
            data,
            device,
            run_dir,
            state,
            last_checkpoint: None,
            last_val_loss: None,
            progress: Box::new(NoProgress),
            stop_after_steps: None,
            parallel: None,
        })
    }

    /// Continues the run in `run_dir` from its latest checkpoint (or from the start when it has none): the
    /// config comes from its `config.resolved.toml`; `model` is a model of the same structure (its weights are
    /// replaced), on an autodiff device; `data` must be the same samples as the interrupted session's. The
    /// continued run ends with the same weights as an uninterrupted one (bit-identical on the same device).
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Json`]/[`Error::Record`] naming a missing or corrupt run file,
    /// [`Error::Checkpoint`] when the data do not match the checkpoint.
    pub fn resume(run_dir: &Path, model: M, data: SftData, device: Device) -> Result<Self> {
        let config = SftConfig::from_file(&run_dir.join(run::CONFIG_FILE), &[])?;
        check_data(&data)?;
        let mut trainer = SftTrainer {
            optimizer: adamw(&config),
            state: TrainerState::fresh(total_steps(&config, data.train.len())),
            config,
            model: Some(model),
            data,
            device,
            run_dir: run_dir.to_path_buf(),
            last_checkpoint: None,
            last_val_loss: None,
            progress: Box::new(NoProgress),
            stop_after_steps: None,
            parallel: None,
        };
        if let Some(dir) = checkpoint::latest(run_dir)? {
            let state = checkpoint::load_state(&dir)?;
            if state.total_steps != trainer.state.total_steps {
                return Err(Error::Checkpoint {
                    path: dir,
                    message: format!(
                        "the checkpoint was laid out for {} steps but these {} training samples give {}: resume with \
                         the same data (`data.sample`, `data.stem`) as the interrupted run",
                        state.total_steps,
                        trainer.data.train.len(),
                        trainer.state.total_steps
                    ),
                });
            }
            trainer.model = checkpoint::load_model(&dir, trainer.model)?;
            trainer.optimizer = checkpoint::load_optimizer(&dir, trainer.optimizer)?;
            trainer.state = state;
            tracing::info!(checkpoint = %dir.display(), step = trainer.state.step, "resuming SFT run");
            trainer.last_checkpoint = Some(dir);
        } else {
            tracing::info!(run_dir = %run_dir.display(), "no checkpoint yet: the run restarts from step 0");
        }
        if !run_dir.join(run::ENV_FILE).exists() {
            run::write_json(&run_dir.join(run::ENV_FILE), &RunEnv::collect(&trainer.device, &trainer.config))?;
        }
        Ok(trainer)
    }

    /// Reports progress to `progress` (an indicatif bar in r3-cli).
    pub fn with_progress(mut self, progress: Box<dyn TrainProgress>) -> Self {
        self.progress = progress;
        self
    }

    /// Returns from [`SftTrainer::run`] right after optimizer step `step`, without saving anything beyond the
    /// regular checkpoints: what a kill at that moment leaves behind (tests of resume).
    pub fn stop_after_steps(mut self, step: u64) -> Self {
        self.stop_after_steps = Some(step);
        self
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
        let mut peers = parallel.connect()?.into_iter();
        let peer = peers.next().ok_or_else(|| Error::Parallel { message: "no local peer".into() })?;
        self.model = Some(peer.sync_from_rank0(self.take_model())?);
        let mut workers = Vec::new();
        for p in peers {
            let device = p.device().clone().autodiff();
            let mut model = Some(self.model().clone().fork(&device));
            let mut optimizer = self.optimizer.clone();
            let rank = p.rank();
            let work = move |job: SftJob| -> Result<()> {
                let SftJob::Step { batches, tokens, lr, clip, step } = job;
                let current = model.take().expect("the worker's replica");
                let (grads, _, _) = peer_step(&current, &p, (&batches, tokens, clip, step), "(rank 0's)")?;
                model = Some(optimizer.step(lr, current, grads));
                Ok(())
            };
            workers.push(Worker::spawn(format!("r3-sft-peer-{rank}"), work)?);
        }
        tracing::info!(
            world_size = peer.world_size(),
            rank = peer.rank(),
            local_peers = parallel.devices.len(),
            reduction = ?parallel.reduction,
            "SFT data parallelism"
        );
        self.parallel = Some(SftParallel { peer, workers, _model: std::marker::PhantomData });
        Ok(self)
    }

    /// The model (the trainer holds it between steps).
    fn model(&self) -> &M {
        self.model.as_ref().expect(MODEL_HELD)
    }

    /// Takes the model out for an optimizer step or the end of the run.
    fn take_model(&mut self) -> M {
        self.model.take().expect(MODEL_HELD)
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The resolved config.
    pub fn config(&self) -> &SftConfig {
        &self.config
    }

    /// The trainer state (where a resumed trainer continues).
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// The validation loss of the current model: Σ NLL / Σ target tokens over the validation set, in
    /// micro-batches, on an inference copy of the model (no autodiff tape).
    pub fn validation_loss(&self) -> f64 {
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

    fn summary(&self, interrupted: bool) -> SftSummary {
        SftSummary {
            run_dir: self.run_dir.clone(),
            steps: self.state.step,
            total_steps: self.state.total_steps,
            best_val_loss: self.state.best_val_loss,
            best_step: self.state.best_step,
            last_val_loss: self.last_val_loss,
            stopped_early: self.state.stopped_early,
            finished: self.state.finished,
            interrupted,
            tokens_seen: self.state.tokens_seen,
            elapsed_s: self.state.elapsed_s,
        }
    }

    fn last_checkpoint_text(&self) -> String {
        self.last_checkpoint
            .as_ref()
            .map_or_else(|| "none (no checkpoint was written yet)".into(), |p| p.display().to_string())
    }

    fn save_checkpoint(&mut self) -> Result<()> {
        let dir = checkpoint::save(
            &self.run_dir,
            self.model(),
            &self.optimizer,
            &self.state,
            self.config.run.keep_checkpoints,
            self.state.best_step,
        )?;
        tracing::debug!(checkpoint = %dir.display(), "checkpoint written");
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    /// One optimizer step over the training samples `idx` (indices into [`SftData::train`]) at learning rate
    /// `lr`, exactly as [`SftTrainer::run`] takes it (micro-batches, accumulation, clipping, AdamW), without
    /// touching the run's state, metrics or checkpoints: returns (loss, grad norm before clipping, real target
    /// tokens). `latentr3 bench sft` times it.
    ///
    /// # Errors
    /// As [`SftTrainer::run`]'s steps: a non-finite loss or gradient norm, a batch without targets.
    pub fn train_step(&mut self, idx: &[usize], lr: f64) -> Result<(f64, f64, usize)> {
        let step = self.state.step + 1;
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
        let checkpoint = self.last_checkpoint_text();
        if let Some(par) = &self.parallel {
            let world = par.peer.world_size();
            let share = |rank: usize| shares(micro.len(), rank, world).into_iter().map(|m| micro[m].clone());
            for (j, w) in par.workers.iter().enumerate() {
                let batches: Vec<SftBatch> = share(par.peer.rank() + j + 1).collect();
                w.send(SftJob::Step { batches, tokens, lr, clip, step })?;
            }
            let mine: Vec<SftBatch> = share(par.peer.rank()).collect();
            let result = peer_step(self.model(), &par.peer, (&mine, tokens, clip, step), &checkpoint);
            // Every worker answers (they all passed the same all-reduce); the trainer's own error comes first.
            let answers: Vec<Result<()>> = par.workers.iter().map(Worker::wait).collect();
            let (grads, loss, norm) = result?;
            answers.into_iter().collect::<Result<Vec<()>>>()?;
            let model = self.take_model();
            self.model = Some(self.optimizer.step(lr, model, grads));
            return Ok((loss, norm, tokens));
        }
        let (grads, nll_sum) = batch_grads(self.model(), &micro, tokens)?;
        let loss = nll_sum / tokens as f64;
        let update = Update { loss, grads: grads.unwrap_or_default(), clip, step, checkpoint: &checkpoint };
        // The trainer lets go of the parameters for the step, so that the optimizer holds their only reference.
        // Clipping and the optimizer step block on nothing either: on flex they run on a worker of rayon's pool.
        let model = self.take_model();
        let optimizer = &mut self.optimizer;
        let (model, norm) = r3_backbone::on_pool(&self.device, move || match checked_update(&model, update) {
            Ok((grads, norm)) => (optimizer.step(lr, model, grads), Ok(norm)),
            Err(e) => (model, Err(e)),
        });
        self.model = Some(model);
        Ok((loss, norm?, tokens))
    }

    /// Trains until the last epoch, `max_steps`, early stopping or the stop hook. When the run finishes, the
    /// best checkpoint's weights are restored into the returned model and `summary.json` is written.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the step of a NaN/inf loss or gradient norm (the last good checkpoint is
    /// kept), [`Error::Data`] for batches without targets or a model without gradients, and the I/O and record
    /// errors of checkpointing.
    pub fn run(mut self) -> Result<SftOutcome<M>> {
        let t = self.config.train.clone();
        let schedule = LinearSchedule { peak_lr: t.lr, warmup: t.warmup, total: self.state.total_steps };
        let n_train = self.data.train.len();
        self.progress.on_start(&StartInfo {
            run_dir: &self.run_dir,
            start_step: self.state.step,
            total_steps: self.state.total_steps,
            train_samples: n_train,
            valid_samples: self.data.valid.len(),
        });
        let mut metrics = MetricsWriter::open(&self.run_dir, Some(self.state.step))?;
        let session_start = Instant::now();
        let session_first_step = self.state.step;
        let elapsed_before = self.state.elapsed_s;

        'epochs: while !self.state.finished {
            let order = epoch_order(n_train, t.seed, self.state.epoch);
            let batches: Vec<&[usize]> = order.chunks(t.batch).collect();
            loop {
                let step_start = Instant::now();
                let lr = schedule.lr(self.state.step);
                let idx = batches[self.state.batch_in_epoch];
                let (loss, grad_norm, tokens) = self.train_step(idx, lr)?;
                let s = &mut self.state;
                s.step += 1;
                s.batch_in_epoch += 1;
                s.tokens_seen += tokens as u64;
                s.elapsed_s = elapsed_before + session_start.elapsed().as_secs_f64();
                let epoch = s.epoch;
                let step_s = step_start.elapsed().as_secs_f64().max(1e-9);
                metrics.write(&MetricRecord::Step {
                    step: s.step,
                    epoch,
                    loss,
                    lr,
                    grad_norm,
                    tokens: tokens as u64,
                    tokens_per_s: tokens as f64 / step_s,
                    elapsed_s: s.elapsed_s,
                })?;
                let mean_step_s = session_start.elapsed().as_secs_f64() / (s.step - session_first_step).max(1) as f64;
                let info = StepInfo {
                    step: s.step,
                    total_steps: s.total_steps,
                    epoch,
                    loss,
                    lr,
                    grad_norm,
                    tokens_per_s: tokens as f64 / step_s,
                    eta_s: mean_step_s * s.total_steps.saturating_sub(s.step) as f64,
                };
                tracing::info!(step = s.step, epoch, loss, lr, grad_norm, tokens_per_s = info.tokens_per_s, "step");
                self.progress.on_step(&info);

                let epoch_end = s.batch_in_epoch == batches.len();
                if epoch_end {
                    s.epoch += 1;
                    s.batch_in_epoch = 0;
                }
                let max_reached = t.max_steps > 0 && s.step >= t.max_steps;
                let step = s.step;
                if max_reached || (epoch_end && s.epoch >= t.epochs) {
                    s.finished = true;
                }
                let eval_now = epoch_end || max_reached || (t.eval_every > 0 && step.is_multiple_of(t.eval_every));
                if eval_now {
                    self.evaluate(&mut metrics, epoch)?;
                }
                let save_now = eval_now
                    || self.state.finished
                    || (t.checkpoint_every > 0 && self.state.step.is_multiple_of(t.checkpoint_every));
                if save_now {
                    self.save_checkpoint()?;
                }
                if self.state.finished {
                    break 'epochs;
                }
                if self.stop_after_steps == Some(self.state.step) {
                    tracing::warn!(step = self.state.step, "stopped by the stop_after_steps hook");
                    let summary = self.summary(true);
                    self.progress.on_end(&summary);
                    return Ok(SftOutcome { model: self.take_model(), summary });
                }
                if epoch_end {
                    continue 'epochs;
                }
            }
        }

        // [CODE] `load_best_model_at_end = True`: the returned weights are the best validation checkpoint's.
        if let Some(best) = self.state.best_step
            && best != self.state.step
        {
            let dir = checkpoint::step_dir(&self.run_dir, best);
            tracing::info!(checkpoint = %dir.display(), best_step = best, "restoring the best checkpoint");
            self.model = Some(checkpoint::load_model(&dir, self.take_model())?);
        }
        let summary = self.summary(false);
        run::write_json(&self.run_dir.join("summary.json"), &summary)?;
        tracing::info!(summary = ?summary, "SFT run finished");
        self.progress.on_end(&summary);
        Ok(SftOutcome { model: self.take_model(), summary })
    }

    fn evaluate(&mut self, metrics: &mut MetricsWriter, epoch: usize) -> Result<()> {
        let val_loss = self.validation_loss();
        let step = self.state.step;
        if !val_loss.is_finite() {
            return Err(Error::NonFinite {
                step,
                what: "validation loss",
                value: val_loss,
                checkpoint: self.last_checkpoint_text(),
            });
        }
        metrics.write(&MetricRecord::Eval { step, epoch, val_loss })?;
        self.last_val_loss = Some(val_loss);
        let s = &mut self.state;
        // HF EarlyStoppingCallback with threshold 0: an evaluation improves when it is strictly lower.
        let improved = s.best_val_loss.is_none_or(|b| val_loss < b);
        if improved {
            s.best_val_loss = Some(val_loss);
            s.best_step = Some(step);
            s.patience_counter = 0;
        } else {
            s.patience_counter += 1;
        }
        let best = s.best_val_loss.unwrap_or(val_loss);
        tracing::info!(step, epoch, val_loss, best, improved, "validation");
        if self.config.train.patience > 0 && s.patience_counter >= self.config.train.patience && !s.finished {
            tracing::info!(step, patience = self.config.train.patience, "early stopping");
            s.finished = true;
            s.stopped_early = true;
        }
        self.progress.on_eval(&EvalInfo { step, epoch, val_loss, best_val_loss: best, improved });
        Ok(())
    }
}
