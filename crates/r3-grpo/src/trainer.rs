//! The GRPO loop (PAPER.md §4 stage 2): seeded prompt order, optimizer steps of `train.batch` prompts split into
//! micro-steps of one advantage pool each (gradient accumulation), AdamW on LatentRATT only with warm-up and
//! cosine decay, global clipping, per-step diagnostics, periodic validation with the best checkpoint kept, atomic
//! checkpoints and exact resume.
//!
//! The run folder holds `config.resolved.toml`, `env.json`, `metrics.jsonl` (one [`GrpoMetric`] per line) and
//! `checkpoints/step-NNNNNNNN/` (`model.bpk`: LatentRATT only, `optimizer.bpk`, `state.json`) with the pointer
//! `checkpoints/latest.json`. A checkpoint folder is written under a temporary name and renamed into place.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use r3_data::SftBatch;
use r3_data::{EncodedSample, Encoder};
use r3_decode::{BeamSearchConfig, CatalogueTrie, Recommender, RecommenderInput};
use r3_latent::{LatentModel, LatentRatt};
use r3_metrics::{Cutoffs, PerSample, strip_target_text, title_rank};
use r3_rewards::{Combined, Registry, Reward};
use r3_train::checkpoint::{self, CHECKPOINTS_DIR, CheckpointState, LATEST_FILE, STATE_FILE};
use r3_train::grads::{accumulate, clip_global_norm};
use r3_train::parallel::{ParallelConfig, Peer, PeerShare, Worker, shares};
use r3_train::run::{RunEnv, now_unix, read_json, utc_timestamp, write_json};
use r3_train::{Collate, CosineSchedule, epoch_order, seeded_subset};
use serde::{Deserialize, Serialize};

use crate::advantage::{equal_reward_fraction, mean_std};
use crate::config::{Algorithm, GrpoConfig};
use crate::error::{Error, Result};
use crate::noise::{NoiseKey, NoiseShape, latent_noise};
use crate::step::{BeamDecoding, Generation, GrpoStep, MicroStep, Rollouts, StepSettings};

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

/// The loop's position, saved in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpoState {
    /// Optimizer steps taken.
    pub step: u64,
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
    /// The current epoch (0-based).
    pub epoch: usize,
    /// The next batch of the epoch.
    pub batch_in_epoch: usize,
    /// The best validation NDCG@k so far.
    pub best_metric: Option<f64>,
    /// The step of the best validation.
    pub best_step: Option<u64>,
    /// Samples (prompts × K) processed.
    pub samples_seen: u64,
    /// Training seconds over all sessions.
    pub elapsed_s: f64,
    /// Whether the run is complete.
    pub finished: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrpoMetric {
    /// An optimizer step.
    Step(GrpoStepInfo),
    /// A validation.
    Eval {
        /// The optimizer step.
        step: u64,
        /// The cut-offs.
        k: Vec<usize>,
        /// HR@k.
        hr: Vec<f64>,
        /// NDCG@k.
        ndcg: Vec<f64>,
        /// Whether this is the best validation so far.
        improved: bool,
    },
}

impl CheckpointState for GrpoState {
    fn step(&self) -> u64 {
        self.step
    }
}

impl GrpoMetric {
    fn step(&self) -> u64 {
        match self {
            GrpoMetric::Step(s) => s.step,
            GrpoMetric::Eval { step, .. } => *step,
        }
    }
}

/// The diagnostics of one optimizer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpoStepInfo {
    /// The 1-based optimizer step.
    pub step: u64,
    /// Optimizer steps of the run.
    pub total_steps: u64,
    /// The epoch.
    pub epoch: usize,
    /// The loss (mean over the micro-steps).
    pub loss: f64,
    /// Mean reward over the step's samples.
    pub reward_mean: f64,
    /// Standard deviation of the rewards.
    pub reward_std: f64,
    /// The fraction of groups whose rewards are all equal.
    pub equal_reward_groups: f64,
    /// The mean L2 norm of the advantages of one pool.
    pub advantage_norm: f64,
    /// The fraction of real tokens whose ratio was clipped.
    pub clip_ratio: f64,
    /// The mean per-token KL against the reference (β > 0 only).
    pub kl: Option<f64>,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// The learning rate of the step.
    pub lr: f64,
    /// Samples (prompts × K) per second.
    pub samples_per_s: f64,
    /// Training seconds so far.
    pub elapsed_s: f64,
}

/// Receives the loop's events (r3-cli draws a progress line); the library logs through `tracing` only.
pub trait GrpoProgress {
    /// Before the first step of a session.
    fn on_start(&mut self, _run_dir: &Path, _start_step: u64, _total_steps: u64) {}
    /// After every optimizer step.
    fn on_step(&mut self, _info: &GrpoStepInfo) {}
    /// After every validation.
    fn on_eval(&mut self, _step: u64, _hr: f64, _ndcg: f64, _improved: bool) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGrpoProgress;

impl GrpoProgress for NoGrpoProgress {}

/// The end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpoSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Optimizer steps of the run.
    pub total_steps: u64,
    /// The best validation NDCG@k and its step.
    pub best_metric: Option<f64>,
    /// The step of the best validation (its LatentRATT is the returned model's).
    pub best_step: Option<u64>,
    /// Whether the run is complete.
    pub finished: bool,
    /// Training seconds.
    pub elapsed_s: f64,
}

/// The trained model and the summary.
#[derive(Debug)]
pub struct GrpoOutcome {
    /// The model with the best (or, without validation, the last) LatentRATT.
    pub model: LatentModel,
    /// The summary.
    pub summary: GrpoSummary,
}

/// The GRPO trainer.
pub struct GrpoTrainer {
    config: GrpoConfig,
    model: LatentModel,
    reference: Option<LatentRatt>,
    reward: Arc<Combined>,
    optimizer: ModuleOptimizer,
    data: GrpoData,
    device: Device,
    run_dir: PathBuf,
    state: GrpoState,
    last_checkpoint: Option<PathBuf>,
    progress: Box<dyn GrpoProgress>,
    stop_after_steps: Option<u64>,
    parallel: Option<GrpoParallel>,
}

/// The data-parallel side of a trainer: its own peer (local peer 0) and a worker thread per other local device.
struct GrpoParallel {
    peer: Peer,
    workers: Vec<Worker<GrpoJob, Error>>,
}

/// One optimizer step for a worker replica: its advantage pools `(micro-step index, batch)`.
struct GrpoJob {
    pools: Vec<(usize, SftBatch)>,
    n_micro: usize,
    generation_step: u64,
    iteration: u64,
    lr: f64,
    step_no: u64,
}

/// What a peer needs to run advantage pools: the trainer's own model or a worker's replica.
struct PoolRunner<'a> {
    config: &'a GrpoConfig,
    model: &'a LatentModel,
    reward: &'a dyn Reward,
    reference: Option<&'a LatentRatt>,
    items: Option<&'a CatalogueTrie>,
    eos_id: u32,
    device: &'a Device,
    checkpoint: &'a str,
}

/// The diagnostics of one micro-step (one advantage pool).
#[derive(Clone, Debug, Default)]
struct MicroStats {
    loss: f64,
    clip: f64,
    kl: Option<f64>,
    adv_norm: f64,
    /// The equal-reward fraction times the pool's groups.
    equal: f64,
    rewards: Vec<f64>,
}

/// The scalars a peer sends to the all-reduce per micro-step.
const MICRO_SCALARS: usize = 6;

/// What [`PoolRunner::run`] returns: the summed LatentRATT gradients (none without micro-batches) and the
/// statistics of each micro-batch, by its index.
type PoolOutput = (Option<GradientsParams>, Vec<(usize, MicroStats)>);

impl PoolRunner<'_> {
    /// Runs the micro-steps `pools` (each an index among the step's `n_micro` and its batch): the generation (or
    /// reuse), the loss divided by `n_micro`, its backward pass, and the sum of the LatentRATT gradients.
    fn run(
        &self,
        pools: &[(usize, SftBatch)],
        n_micro: usize,
        generation_step: u64,
        iteration: u64,
        generations: &mut Vec<Option<Generation>>,
        step_no: u64,
    ) -> Result<PoolOutput> {
        let c = self.config;
        generations.resize(n_micro, None);
        let step = GrpoStep {
            model: self.model,
            reward: self.reward,
            settings: StepSettings::from_config(&c.grpo),
            reference: self.reference,
            decoding: self.items.map(|items| BeamDecoding {
                trie: items.trie(),
                eos_id: self.eos_id,
                num_beams: c.eval.beams,
            }),
        };
        let d = self.model.backbone.hidden_size();
        let ratt = self.model.ratt.as_ref().expect("checked in assemble");
        let mut grads: Option<GradientsParams> = None;
        let mut stats = Vec::with_capacity(pools.len());
        for (m, batch) in pools {
            let m = *m;
            let groups = batch.rows;
            let out: MicroStep = match generations[m].take() {
                Some(generation) if iteration > 0 => {
                    r3_backbone::on_pool(self.device, || step.reuse(batch, generation))
                }
                _ => {
                    let key = NoiseKey { seed: c.train.seed, step: generation_step, micro: m as u64 };
                    let shape = NoiseShape {
                        groups,
                        group_size: c.grpo.group_size,
                        n_latent: self.model.n_latent,
                        d_model: d,
                        std: c.grpo.noise_std,
                        unnoised_first: c.grpo.unnoised_first,
                    };
                    let noise = latent_noise(key, shape, self.device);
                    // Sampling, rewards and the surrogate loss block on nothing: on flex a worker of rayon's pool
                    // runs them.
                    let result = r3_backbone::on_pool(self.device, || match c.grpo.algorithm {
                        Algorithm::LrGrpo => step.lr_grpo(batch, noise),
                        Algorithm::Grpo => {
                            let items = self.items.expect("checked in assemble");
                            let rollouts = Rollouts {
                                trie: items.trie(),
                                eos_id: self.eos_id,
                                temperature: c.grpo.temperature,
                                max_new_tokens: c.grpo.max_new_tokens,
                                seed: c.train.seed ^ generation_step.wrapping_mul(0x9E37_79B9) ^ (m as u64) << 48,
                            };
                            step.grpo(batch, noise, rollouts)
                        }
                    });
                    match result {
                        Err(Error::Reward(r3_rewards::Error::NonFinite { value, .. })) => {
                            return Err(Error::NonFinite {
                                step: step_no,
                                what: "reward",
                                value,
                                checkpoint: self.checkpoint.into(),
                            });
                        }
                        other => other?,
                    }
                }
            };
            if !out.loss_value.is_finite() {
                return Err(Error::NonFinite {
                    step: step_no,
                    what: "loss",
                    value: out.loss_value,
                    checkpoint: self.checkpoint.into(),
                });
            }
            let gen_ = &out.generation;
            stats.push((
                m,
                MicroStats {
                    loss: out.loss_value,
                    clip: out.clip_ratio,
                    kl: out.kl,
                    adv_norm: gen_.advantages.iter().map(|a| a * a).sum::<f64>().sqrt(),
                    equal: equal_reward_fraction(&gen_.rewards, c.grpo.group_size) * groups as f64,
                    rewards: gen_.rewards.clone(),
                },
            ));
            let loss = out.loss;
            let gp = r3_backbone::on_pool(self.device, || {
                let mut tape = loss.div_scalar(n_micro as f64).backward();
                GradientsParams::from_module(&mut tape, ratt)
            });
            grads = Some(accumulate(ratt, grads, gp));
            generations[m] = Some(out.generation);
        }
        Ok((grads, stats))
    }
}

/// Clips the summed LatentRATT gradients by their global norm and steps; returns the norm before clipping.
fn apply_update(
    model: &mut LatentModel,
    optimizer: &mut ModuleOptimizer,
    grads: GradientsParams,
    (clip, lr, step_no): (f64, f64, u64),
    checkpoint: &str,
) -> Result<f64> {
    if grads.is_empty() {
        return Err(Error::Data {
            message: "LatentRATT got no gradient: load the model on `device.clone().autodiff()`".into(),
        });
    }
    let ratt = model.ratt.take().expect("checked in assemble");
    let (grads, grad_norm) = clip_global_norm(&ratt, grads, clip);
    if !grad_norm.is_finite() {
        model.ratt = Some(ratt);
        return Err(Error::NonFinite {
            step: step_no,
            what: "gradient norm",
            value: grad_norm,
            checkpoint: checkpoint.into(),
        });
    }
    model.ratt = Some(optimizer.step(lr, ratt, grads));
    Ok(grad_norm)
}

/// The number of rewards of each micro-step: its prompts times `K`.
fn reward_counts(idx_len: usize, pool: usize, k: usize) -> Vec<usize> {
    (0..idx_len.div_ceil(pool)).map(|m| (idx_len - m * pool).min(pool) * k).collect()
}

/// One data-parallel step of a peer: its pools, then the all-reduce of the gradients and of every micro-step's
/// diagnostics (each peer writes its own micro-steps' values at their place, zeros elsewhere, so the sum gathers
/// them), then the update every peer makes alike. Returns the diagnostics of all micro-steps in order and the
/// gradient norm.
fn peer_step(
    runner: &PoolRunner<'_>,
    optimizer: &mut ModuleOptimizer,
    peer: &Peer,
    job: &GrpoJob,
    generations: &mut Vec<Option<Generation>>,
    counts: &[usize],
) -> Result<(LatentModel, Vec<MicroStats>, f64)> {
    let n = job.n_micro;
    let ran = runner.run(&job.pools, n, job.generation_step, job.iteration, generations, job.step_no);
    let offsets: Vec<usize> = counts
        .iter()
        .scan(0, |acc, c| {
            let o = *acc;
            *acc += c;
            Some(o)
        })
        .collect();
    let mut scalars = vec![0.0; n * MICRO_SCALARS + counts.iter().sum::<usize>()];
    let (share, local_err) = match ran {
        Ok((grads, stats)) => {
            for (m, st) in &stats {
                let row = &mut scalars[m * MICRO_SCALARS..(m + 1) * MICRO_SCALARS];
                row.copy_from_slice(&[
                    st.loss,
                    st.clip,
                    st.kl.unwrap_or(0.0),
                    f64::from(u8::from(st.kl.is_some())),
                    st.adv_norm,
                    st.equal,
                ]);
                let at = n * MICRO_SCALARS + offsets[*m];
                scalars[at..at + st.rewards.len()].copy_from_slice(&st.rewards);
            }
            (PeerShare { grads, scalars, failure: None }, None)
        }
        Err(e) => (PeerShare { grads: None, scalars, failure: Some(e.to_string()) }, Some(e)),
    };
    let ratt = runner.model.ratt.as_ref().expect("checked in assemble");
    let reduced = peer.reduce_step(ratt, share);
    if let Some(e) = local_err {
        return Err(e);
    }
    let (grads, summed) = reduced?;
    let stats: Vec<MicroStats> = (0..n)
        .map(|m| {
            let r = &summed[m * MICRO_SCALARS..(m + 1) * MICRO_SCALARS];
            let at = n * MICRO_SCALARS + offsets[m];
            MicroStats {
                loss: r[0],
                clip: r[1],
                kl: (r[3] > 0.0).then_some(r[2]),
                adv_norm: r[4],
                equal: r[5],
                rewards: summed[at..at + counts[m]].to_vec(),
            }
        })
        .collect();
    let mut model = runner.model.clone();
    let norm =
        apply_update(&mut model, optimizer, grads, (runner.config.train.clip, job.lr, job.step_no), runner.checkpoint)?;
    Ok((model, stats, norm))
}

fn adamw(config: &GrpoConfig) -> ModuleOptimizer {
    config.train.optimizer().adamw()
}

/// Optimizer steps of a run: whole batches per epoch (a last partial batch is dropped) × epochs × iterations,
/// capped by `train.max_steps`.
pub fn total_steps(config: &GrpoConfig, n_train: usize) -> u64 {
    let per_epoch = (n_train / config.train.batch) as u64;
    let all = per_epoch * config.train.epochs as u64 * config.grpo.num_iterations as u64;
    if config.train.max_steps > 0 { all.min(config.train.max_steps) } else { all }
}

impl GrpoTrainer {
    /// A new run: checks the model and the data, creates the run folder and writes the resolved config and the
    /// environment. `model` must live on an autodiff device and have LatentRATT; its backbone is frozen here.
    ///
    /// # Errors
    /// [`Error::Data`] for a model without LatentRATT or latent tokens, too few train prompts, a missing trie;
    /// [`Error::Checkpoint`] when the run folder already holds a run; reward and I/O errors.
    pub fn new(config: GrpoConfig, model: LatentModel, data: GrpoData, device: Device) -> Result<Self> {
        config.validate("<config>")?;
        let base = PathBuf::from(&config.run.output_dir);
        let run_dir = if config.run.timestamped { base.join(utc_timestamp(now_unix() as i64, false)) } else { base };
        if run_dir.join(CHECKPOINTS_DIR).join(LATEST_FILE).exists() || run_dir.join(METRICS_FILE).exists() {
            return Err(Error::Checkpoint {
                path: run_dir,
                message: "already holds a run: resume it (`GrpoTrainer::resume`) or choose another `run.output_dir`"
                    .into(),
            });
        }
        let mut trainer = Self::assemble(config, model, data, device, run_dir.clone())?;
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, "create run folder", e))?;
        let toml = trainer.config.to_toml()?;
        r3_data::write_atomic(&run_dir.join(CONFIG_FILE), |w| w.write_all(toml.as_bytes()))
            .map_err(r3_train::Error::from)?;
        let env = env(&trainer.device);
        write_json(&run_dir.join(r3_train::run::ENV_FILE), &env)?;
        tracing::info!(run_dir = %run_dir.display(), config = ?trainer.config, env = ?env, "GRPO run starts");
        trainer.state.step = 0;
        Ok(trainer)
    }

    /// Continues the run in `run_dir` from its latest checkpoint (its `config.resolved.toml` is used); `model` is
    /// the same starting model as the interrupted run's.
    ///
    /// # Errors
    /// As [`GrpoTrainer::new`], plus unreadable or mismatched checkpoints.
    pub fn resume(run_dir: &Path, model: LatentModel, data: GrpoData, device: Device) -> Result<Self> {
        let config = GrpoConfig::from_file(&run_dir.join(CONFIG_FILE), &[])?;
        let mut trainer = Self::assemble(config, model, data, device, run_dir.to_path_buf())?;
        if let Some(dir) = checkpoint::latest(run_dir)? {
            let state: GrpoState = read_json(&dir.join(STATE_FILE))?;
            if state.total_steps != trainer.state.total_steps {
                return Err(Error::Checkpoint {
                    path: dir,
                    message: format!(
                        "laid out for {} steps, but this data gives {}: resume with the same `data.sample`",
                        state.total_steps, trainer.state.total_steps
                    ),
                });
            }
            trainer.load_checkpoint(&dir)?;
            trainer.state = state;
            tracing::info!(checkpoint = %dir.display(), step = trainer.state.step, "resuming GRPO run");
            trainer.last_checkpoint = Some(dir);
        } else {
            tracing::info!(run_dir = %run_dir.display(), "no checkpoint yet: the run restarts from step 0");
        }
        Ok(trainer)
    }

    fn assemble(
        config: GrpoConfig,
        model: LatentModel,
        data: GrpoData,
        device: Device,
        run_dir: PathBuf,
    ) -> Result<Self> {
        let Some(ratt) = model.ratt.clone() else {
            return Err(Error::Data {
                message: "the model has no LatentRATT: GRPO trains LatentRATT only (load an SFT model folder with \
                          `latent.ratt = true`)"
                    .into(),
            });
        };
        if model.n_latent == 0 {
            return Err(Error::Data { message: "the model has no latent token (BIGRec): nothing to perturb".into() });
        }
        let total = total_steps(&config, data.train.len());
        if total == 0 {
            return Err(Error::Data {
                message: format!(
                    "{} train prompts make no whole batch of `train.batch` = {}: lower the batch or raise `data.sample`",
                    data.train.len(),
                    config.train.batch
                ),
            });
        }
        if config.grpo.algorithm == Algorithm::Grpo && data.items.is_none() {
            return Err(Error::Data { message: "the original GRPO samples over the item trie: pass `items`".into() });
        }
        if config.eval.every > 0 && (data.valid.is_none() || data.items.is_none()) {
            return Err(Error::Data {
                message: "`eval.every` > 0 needs validation users and the item trie; set `eval.every = 0` to skip"
                    .into(),
            });
        }
        let reward = Arc::new(Registry::default().build(&config.grpo.reward_specs())?);
        let reference = (config.grpo.beta > 0.0).then(|| ratt.valid());
        let state = GrpoState {
            step: 0,
            total_steps: total,
            epoch: 0,
            batch_in_epoch: 0,
            best_metric: None,
            best_step: None,
            samples_seen: 0,
            elapsed_s: 0.0,
            finished: false,
        };
        let trainer = GrpoTrainer {
            optimizer: adamw(&config),
            config,
            model: freeze_backbone(model),
            reference,
            reward,
            data,
            device,
            run_dir,
            state,
            last_checkpoint: None,
            progress: Box::new(NoGrpoProgress),
            stop_after_steps: None,
            parallel: None,
        };
        trainer.check_decoding()?;
        Ok(trainer)
    }

    /// Builds the rewards of `grpo.rewards` from `registry` instead of [`Registry::default`] (to train with
    /// rewards registered by another crate, see docs/extending.md).
    ///
    /// # Errors
    /// An unknown reward name or invalid params.
    pub fn with_registry(mut self, registry: &Registry) -> Result<Self> {
        if self.parallel.is_some() {
            return Err(Error::Data {
                message: "set the reward registry before `with_parallel`: the replicas share the trainer's reward"
                    .into(),
            });
        }
        self.reward = Arc::new(registry.build(&self.config.grpo.reward_specs())?);
        self.check_decoding()?;
        Ok(self)
    }

    fn check_decoding(&self) -> Result<()> {
        if self.reward.needs_decoding() && self.data.items.is_none() {
            return Err(Error::Data {
                message: format!(
                    "the reward `{}` reads decoded candidates: the trainer needs the item trie (`GrpoData::items`)",
                    self.reward.name()
                ),
            });
        }
        Ok(())
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
    /// [`Error::Train`] with [`r3_train::Error::Parallel`] when the collective cannot start.
    pub fn with_parallel(mut self, parallel: &ParallelConfig) -> Result<Self> {
        let mut peers = parallel.connect()?.into_iter();
        let peer = peers.next().ok_or_else(|| Error::Data { message: "no local peer".into() })?;
        self.model = peer.sync_from_rank0(self.model)?;
        let mut workers = Vec::new();
        for p in peers {
            let device = p.device().clone().autodiff();
            let mut model = self.model.clone().fork(&device);
            let mut optimizer = self.optimizer.clone();
            let reference = self.reference.clone().map(|r| r.fork(&p.device().clone()));
            let reward = self.reward.clone();
            let items = self.data.items.clone();
            let (eos_id, config) = (self.data.eos_id, self.config.clone());
            let counts_k = (config.train.batch, config.grpo.advantage_groups, config.grpo.group_size);
            let mut generations: Vec<Option<Generation>> = Vec::new();
            let rank = p.rank();
            let work = move |job: GrpoJob| -> Result<()> {
                let runner = PoolRunner {
                    config: &config,
                    model: &model,
                    reward: reward.as_ref(),
                    reference: reference.as_ref(),
                    items: items.as_ref(),
                    eos_id,
                    device: &device,
                    checkpoint: "(rank 0's)",
                };
                let counts = reward_counts(counts_k.0, counts_k.1, counts_k.2);
                let (next, _, _) = peer_step(&runner, &mut optimizer, &p, &job, &mut generations, &counts)?;
                model = next;
                Ok(())
            };
            workers.push(Worker::spawn(format!("r3-grpo-peer-{rank}"), work)?);
        }
        tracing::info!(
            world_size = peer.world_size(),
            rank = peer.rank(),
            local_peers = parallel.devices.len(),
            reduction = ?parallel.reduction,
            advantage_groups = self.config.grpo.advantage_groups,
            "GRPO data parallelism"
        );
        self.parallel = Some(GrpoParallel { peer, workers });
        Ok(self)
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Box<dyn GrpoProgress>) -> Self {
        self.progress = progress;
        self
    }

    /// Stops (as if killed) after optimizer step `step`, having written its checkpoint (tests of resuming).
    pub fn stop_after_steps(mut self, step: u64) -> Self {
        self.stop_after_steps = Some(step);
        self
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The position of the loop.
    pub fn state(&self) -> &GrpoState {
        &self.state
    }

    /// The model being trained.
    pub fn model(&self) -> &LatentModel {
        &self.model
    }

    fn ratt(&self) -> &LatentRatt {
        self.model.ratt.as_ref().expect("checked in assemble")
    }

    fn checkpoint_text(&self) -> String {
        self.last_checkpoint.as_ref().map_or_else(|| "none (no checkpoint yet)".into(), |p| p.display().to_string())
    }

    /// Validation NDCG@k and HR@k (k = `eval.k`) on the fixed validation subset, by constrained beam search.
    ///
    /// # Errors
    /// Decoding or metric errors.
    pub fn validate(&self) -> Result<(Vec<usize>, Vec<f64>, Vec<f64>)> {
        let (Some(valid), Some(items)) = (&self.data.valid, &self.data.items) else {
            return Err(Error::Data { message: "no validation data".into() });
        };
        let e = &self.config.eval;
        let model = self.model.valid();
        let search = BeamSearchConfig::new(self.data.eos_id).with_num_beams(e.beams).with_num_return_sequences(e.beams);
        let rec =
            Recommender::new(RecommenderInput { model: &model, encoder: &valid.encoder, items, search: &search })?;
        let mut ranks = Vec::with_capacity(valid.samples.len());
        for (chunk, titles) in valid.samples.chunks(e.batch).zip(valid.titles.chunks(e.batch)) {
            let prompts: Vec<EncodedSample> =
                chunk.iter().map(|s| EncodedSample { target_ids: Vec::new(), ..s.clone() }).collect();
            let out = rec.recommend_encoded(&prompts);
            for (user, title) in out.users.iter().zip(titles) {
                let preds: Vec<String> = user.iter().map(|r| r.predict_text()).collect();
                ranks.push(title_rank(&preds, strip_target_text(title)));
            }
        }
        let mut ks: Vec<usize> = [1, 5, 10].into_iter().filter(|&k| k <= e.beams).collect();
        if !ks.contains(&e.k) {
            ks.push(e.k);
            ks.sort_unstable();
        }
        let cutoffs = Cutoffs::new(ks.clone())?;
        let m = PerSample::from_ranks(&ranks, &cutoffs).mean();
        Ok((ks, m.hr, m.ndcg))
    }

    /// Runs the remaining optimizer steps.
    ///
    /// # Errors
    /// [`Error::NonFinite`] on a NaN/inf loss, reward or gradient norm (the last good checkpoint stays); I/O,
    /// decoding and reward errors.
    pub fn run(mut self) -> Result<GrpoOutcome> {
        let c = self.config.clone();
        let schedule = CosineSchedule { peak_lr: c.train.lr, warmup: c.train.warmup, total: self.state.total_steps };
        self.progress.on_start(&self.run_dir, self.state.step, self.state.total_steps);
        let mut metrics = MetricsFile::open(&self.run_dir, self.state.step)?;
        let session = Instant::now();
        let elapsed_before = self.state.elapsed_s;
        let n_train = self.data.train.len();
        let per_epoch = n_train / c.train.batch;
        let iterations = c.grpo.num_iterations as u64;

        while !self.state.finished {
            let order = epoch_order(n_train, c.train.seed, self.state.epoch);
            let idx: Vec<usize> = order
                [self.state.batch_in_epoch * c.train.batch..(self.state.batch_in_epoch + 1) * c.train.batch]
                .to_vec();
            let generation_step = self.state.step;
            let mut generations: Vec<Option<Generation>> = Vec::new();
            for iteration in 0..iterations {
                let t0 = Instant::now();
                let lr = schedule.lr(self.state.step);
                let info = self.optimizer_step(&idx, lr, generation_step, iteration, &mut generations)?;
                let s = &mut self.state;
                s.step += 1;
                s.samples_seen += (c.train.batch * c.grpo.group_size) as u64;
                s.elapsed_s = elapsed_before + session.elapsed().as_secs_f64();
                let info = GrpoStepInfo {
                    step: s.step,
                    total_steps: s.total_steps,
                    epoch: s.epoch,
                    samples_per_s: (c.train.batch * c.grpo.group_size) as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                    elapsed_s: s.elapsed_s,
                    lr,
                    ..info
                };
                metrics.write(&GrpoMetric::Step(info.clone()))?;
                tracing::info!(
                    step = info.step,
                    loss = info.loss,
                    reward_mean = info.reward_mean,
                    reward_std = info.reward_std,
                    equal_groups = info.equal_reward_groups,
                    adv_norm = info.advantage_norm,
                    clip_ratio = info.clip_ratio,
                    kl = info.kl,
                    grad_norm = info.grad_norm,
                    lr,
                    samples_per_s = info.samples_per_s,
                    "step"
                );
                self.progress.on_step(&info);
                if s.step >= s.total_steps {
                    break;
                }
            }
            let s = &mut self.state;
            s.batch_in_epoch += 1;
            if s.batch_in_epoch == per_epoch {
                s.batch_in_epoch = 0;
                s.epoch += 1;
            }
            if s.step >= s.total_steps {
                s.finished = true;
            }
            let step = s.step;
            let finished = s.finished;
            let e = c.eval.every;
            if e > 0 && (finished || step.is_multiple_of(e)) {
                let (ks, hr, ndcg) = self.validate()?;
                let at = ks.iter().position(|&k| k == c.eval.k).unwrap_or(0);
                let improved = self.state.best_metric.is_none_or(|b| ndcg[at] > b);
                if improved {
                    self.state.best_metric = Some(ndcg[at]);
                    self.state.best_step = Some(step);
                }
                metrics.write(&GrpoMetric::Eval { step, k: ks, hr: hr.clone(), ndcg: ndcg.clone(), improved })?;
                tracing::info!(step, hr = hr[at], ndcg = ndcg[at], improved, "validation");
                self.progress.on_eval(step, hr[at], ndcg[at], improved);
                if improved {
                    self.save_checkpoint()?;
                }
            }
            let stop_now = self.stop_after_steps.is_some_and(|s| step >= s);
            if finished || step.is_multiple_of(c.train.checkpoint_every) || stop_now {
                self.save_checkpoint()?;
            }
            if stop_now && !finished {
                break;
            }
        }
        if self.state.finished
            && let Some(best) = self.state.best_step
        {
            let dir = checkpoint::step_dir(&self.run_dir, best);
            self.load_checkpoint(&dir)?;
            tracing::info!(step = best, "restored the best validation checkpoint");
        }
        let summary = GrpoSummary {
            run_dir: self.run_dir.clone(),
            steps: self.state.step,
            total_steps: self.state.total_steps,
            best_metric: self.state.best_metric,
            best_step: self.state.best_step,
            finished: self.state.finished,
            elapsed_s: self.state.elapsed_s,
        };
        write_json(&self.run_dir.join("summary.json"), &summary)?;
        Ok(GrpoOutcome { model: self.model.valid(), summary })
    }

    /// One optimizer step over the prompts `idx`: `batch / G` micro-steps, accumulated, clipped, AdamW on
    /// LatentRATT. On the first iteration of a generation the micro-steps generate (noise, rewards, advantages);
    /// later iterations reuse `generations`.
    fn optimizer_step(
        &mut self,
        idx: &[usize],
        lr: f64,
        generation_step: u64,
        iteration: u64,
        generations: &mut Vec<Option<Generation>>,
    ) -> Result<GrpoStepInfo> {
        let c = &self.config;
        let step_no = self.state.step + 1;
        let g = c.grpo.advantage_groups;
        let micro: Vec<&[usize]> = idx.chunks(g).collect();
        let n_micro = micro.len();
        let batch_of = |chunk: &[usize]| {
            (self.data.collate)(&chunk.iter().map(|&i| self.data.train[i].clone()).collect::<Vec<EncodedSample>>())
        };
        let checkpoint = self.checkpoint_text();
        let runner = PoolRunner {
            config: c,
            model: &self.model,
            reward: self.reward.as_ref(),
            reference: self.reference.as_ref(),
            items: self.data.items.as_ref(),
            eos_id: self.data.eos_id,
            device: &self.device,
            checkpoint: &checkpoint,
        };
        let (stats, grad_norm) = if let Some(par) = &self.parallel {
            let world = par.peer.world_size();
            let pools = |rank: usize| -> Vec<(usize, SftBatch)> {
                shares(n_micro, rank, world).into_iter().map(|m| (m, batch_of(micro[m]))).collect()
            };
            let job = |rank: usize| GrpoJob { pools: pools(rank), n_micro, generation_step, iteration, lr, step_no };
            for (j, w) in par.workers.iter().enumerate() {
                w.send(job(par.peer.rank() + j + 1))?;
            }
            let counts = reward_counts(idx.len(), g, c.grpo.group_size);
            let mine = job(par.peer.rank());
            let result = peer_step(&runner, &mut self.optimizer, &par.peer, &mine, generations, &counts);
            // Every worker answers (they all passed the same all-reduce); the trainer's own error comes first.
            let answers: Vec<Result<()>> = par.workers.iter().map(Worker::wait).collect();
            let (model, stats, norm) = result?;
            answers.into_iter().collect::<Result<Vec<()>>>()?;
            self.model = model;
            (stats, norm)
        } else {
            let pools: Vec<(usize, SftBatch)> = micro.iter().enumerate().map(|(m, ch)| (m, batch_of(ch))).collect();
            let (grads, stats) = runner.run(&pools, n_micro, generation_step, iteration, generations, step_no)?;
            let norm = apply_update(
                &mut self.model,
                &mut self.optimizer,
                grads.unwrap_or_default(),
                (c.train.clip, lr, step_no),
                &checkpoint,
            )?;
            (stats.into_iter().map(|(_, s)| s).collect(), norm)
        };
        let rewards: Vec<f64> = stats.iter().flat_map(|s| s.rewards.iter().copied()).collect();
        let (reward_mean, reward_std) = mean_std(&rewards);
        let kls: Vec<f64> = stats.iter().filter_map(|s| s.kl).collect();
        Ok(GrpoStepInfo {
            step: step_no,
            total_steps: self.state.total_steps,
            epoch: self.state.epoch,
            loss: stats.iter().map(|s| s.loss).sum::<f64>() / n_micro as f64,
            reward_mean,
            reward_std,
            equal_reward_groups: stats.iter().map(|s| s.equal).sum::<f64>() / idx.len() as f64,
            advantage_norm: stats.iter().map(|s| s.adv_norm).sum::<f64>() / stats.len().max(1) as f64,
            clip_ratio: stats.iter().map(|s| s.clip).sum::<f64>() / n_micro as f64,
            kl: (!kls.is_empty()).then(|| kls.iter().sum::<f64>() / n_micro as f64),
            grad_norm,
            lr,
            samples_per_s: 0.0,
            elapsed_s: 0.0,
        })
    }

    fn save_checkpoint(&mut self) -> Result<()> {
        let keep = self.config.run.keep_checkpoints;
        let dir =
            checkpoint::save(&self.run_dir, self.ratt(), &self.optimizer, &self.state, keep, self.state.best_step)?;
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        let ratt = self.model.ratt.take().expect("checked in assemble");
        self.model.ratt = Some(checkpoint::load_model(dir, ratt)?);
        let optimizer = std::mem::replace(&mut self.optimizer, adamw(&self.config));
        self.optimizer = checkpoint::load_optimizer(dir, optimizer)?;
        Ok(())
    }
}

/// The run environment (`env.json`).
fn env(device: &Device) -> RunEnv {
    let mut sft = r3_train::SftConfig::default();
    sft.model.dtype = r3_train::Dtype::F32;
    RunEnv::collect(device, &sft)
}

/// `metrics.jsonl`, truncated to the resumed step.
struct MetricsFile {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsFile {
    fn open(run_dir: &Path, keep_until: u64) -> Result<Self> {
        let path = run_dir.join(METRICS_FILE);
        if path.exists() {
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
            let mut kept = Vec::new();
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| Error::io(&path, "read", e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: GrpoMetric = serde_json::from_str(&line).map_err(|e| Error::Checkpoint {
                    path: path.clone(),
                    message: format!("a line is not a GRPO metric record: {e}"),
                })?;
                if record.step() <= keep_until {
                    kept.push(line);
                }
            }
            r3_data::write_atomic(&path, |w| {
                for l in &kept {
                    w.write_all(l.as_bytes())?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })
            .map_err(r3_train::Error::from)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        Ok(MetricsFile { path, file })
    }

    fn write(&mut self, record: &GrpoMetric) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| Error::Checkpoint {
            path: self.path.clone(),
            message: format!("cannot write a metric record: {e}"),
        })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::io(&self.path, "append", e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, "flush", e))
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
