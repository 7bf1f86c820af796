//! The micro-steps of a GRPO optimizer step (one advantage pool each): generation or reuse, the surrogate loss
//! and its LatentRATT gradients, the data-parallel share of a step and the update every peer makes alike.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use r3_data::SftBatch;
use r3_decode::CatalogueTrie;
use r3_latent::{LatentModel, LatentRatt};
use r3_rewards::Reward;
use r3_trainer::grads::{accumulate, clip_global_norm};
use r3_trainer::parallel::{Peer, PeerShare};

use crate::advantage::equal_reward_fraction;
use crate::config::{Algorithm, GrpoConfig};
use crate::error::{Error, Result};
use crate::noise::{NoiseKey, NoiseShape, latent_noise};
use crate::step::{BeamDecoding, Generation, GrpoStep, MicroStep, Rollouts, StepSettings};

/// One optimizer step for a worker replica: its advantage pools `(micro-step index, batch)`.
pub(crate) struct GrpoJob {
    pub(crate) pools: Vec<(usize, SftBatch)>,
    pub(crate) n_micro: usize,
    pub(crate) generation_step: u64,
    pub(crate) iteration: u64,
    pub(crate) lr: f64,
    pub(crate) step_no: u64,
}

/// What a peer needs to run advantage pools: the trainer's own model or a worker's replica.
pub(crate) struct PoolRunner<'a> {
    pub(crate) config: &'a GrpoConfig,
    pub(crate) model: &'a LatentModel,
    pub(crate) reward: &'a dyn Reward,
    pub(crate) reference: Option<&'a LatentRatt>,
    pub(crate) items: Option<&'a CatalogueTrie>,
    pub(crate) eos_id: u32,
    pub(crate) device: &'a Device,
    pub(crate) checkpoint: &'a str,
}

/// The diagnostics of one micro-step (one advantage pool).
#[derive(Clone, Debug, Default)]
pub(crate) struct MicroStats {
    pub(crate) loss: f64,
    pub(crate) clip: f64,
    pub(crate) kl: Option<f64>,
    pub(crate) adv_norm: f64,
    /// The equal-reward fraction times the pool's groups.
    pub(crate) equal: f64,
    pub(crate) rewards: Vec<f64>,
}

/// The scalars a peer sends to the all-reduce per micro-step.
const MICRO_SCALARS: usize = 6;

/// What [`PoolRunner::run`] returns: the summed LatentRATT gradients (none without micro-batches) and the
/// statistics of each micro-batch, by its index.
pub(crate) type PoolOutput = (Option<GradientsParams>, Vec<(usize, MicroStats)>);

impl PoolRunner<'_> {
    /// The step of one micro-batch (the model, the reward, the settings and the decoding).
    fn grpo_step(&self) -> GrpoStep<'_> {
        let c = self.config;
        GrpoStep {
            model: self.model,
            reward: self.reward,
            settings: StepSettings::from_config(&c.grpo),
            reference: self.reference,
            decoding: self.items.map(|items| BeamDecoding {
                trie: items.trie(),
                eos_id: self.eos_id,
                num_beams: c.eval.beams,
            }),
        }
    }

    /// A fresh generation for micro-step `m`: its seeded noise, then LR-GRPO's or the original GRPO's samples,
    /// rewards and surrogate loss. A non-finite reward is reported as such, naming the step.
    fn generate(&self, step: &GrpoStep<'_>, m: usize, batch: &SftBatch, at: (u64, u64)) -> Result<MicroStep> {
        let (generation_step, step_no) = at;
        let c = self.config;
        let key = NoiseKey { seed: c.train.seed, step: generation_step, micro: m as u64 };
        let shape = NoiseShape {
            groups: batch.rows,
            group_size: c.grpo.group_size,
            n_latent: self.model.n_latent,
            d_model: self.model.backbone.hidden_size(),
            std: c.grpo.noise_std,
            unnoised_first: c.grpo.unnoised_first,
        };
        let noise = latent_noise(key, shape, self.device);
        // Sampling, rewards and the surrogate loss block on nothing: on flex a worker of rayon's pool runs them.
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
                Err(Error::NonFinite { step: step_no, what: "reward", value, checkpoint: self.checkpoint.into() })
            }
            other => other,
        }
    }

    /// Runs the micro-steps of `job` (each an index among the step's `n_micro` and its batch): the generation (or
    /// reuse), the loss divided by `n_micro`, its backward pass, and the sum of the LatentRATT gradients.
    pub(crate) fn run(&self, job: &GrpoJob, generations: &mut Vec<Option<Generation>>) -> Result<PoolOutput> {
        let c = self.config;
        let n_micro = job.n_micro;
        generations.resize(n_micro, None);
        let step = self.grpo_step();
        let ratt = self.model.ratt.as_ref().expect("checked in assemble");
        let mut grads: Option<GradientsParams> = None;
        let mut stats = Vec::with_capacity(job.pools.len());
        for (m, batch) in &job.pools {
            let m = *m;
            let out: MicroStep = match generations[m].take() {
                Some(generation) if job.iteration > 0 => {
                    r3_backbone::on_pool(self.device, || step.reuse(batch, generation))
                }
                _ => self.generate(&step, m, batch, (job.generation_step, job.step_no))?,
            };
            if !out.loss_value.is_finite() {
                let checkpoint = self.checkpoint.into();
                return Err(Error::NonFinite { step: job.step_no, what: "loss", value: out.loss_value, checkpoint });
            }
            let gen_ = &out.generation;
            stats.push((
                m,
                MicroStats {
                    loss: out.loss_value,
                    clip: out.clip_ratio,
                    kl: out.kl,
                    adv_norm: gen_.advantages.iter().map(|a| a * a).sum::<f64>().sqrt(),
                    equal: equal_reward_fraction(&gen_.rewards, c.grpo.group_size) * batch.rows as f64,
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
pub(crate) fn apply_update(
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
pub(crate) fn reward_counts(idx_len: usize, pool: usize, k: usize) -> Vec<usize> {
    (0..idx_len.div_ceil(pool)).map(|m| (idx_len - m * pool).min(pool) * k).collect()
}

/// One data-parallel step of a peer: its pools, then the all-reduce of the gradients and of every micro-step's
/// diagnostics (each peer writes its own micro-steps' values at their place, zeros elsewhere, so the sum gathers
/// them), then the update every peer makes alike. Returns the diagnostics of all micro-steps in order and the
/// gradient norm.
pub(crate) fn peer_step(
    runner: &PoolRunner<'_>,
    optimizer: &mut ModuleOptimizer,
    peer: &Peer,
    job: &GrpoJob,
    generations: &mut Vec<Option<Generation>>,
    counts: &[usize],
) -> Result<(LatentModel, Vec<MicroStats>, f64)> {
    let n = job.n_micro;
    let ran = runner.run(job, generations);
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
