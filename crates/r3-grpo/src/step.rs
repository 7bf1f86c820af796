//! One GRPO micro-step: one advantage pool of `G` prompts × `K` samples, from the latents to the loss
//! (docs/method.md §4 stage 2; arXiv 2505.19092 §3.3, Eq. (5)–(8)).
//!
//! LR-GRPO ([`GrpoStep::lr_grpo`]):
//! 1. pass 1 over the `G` prompts once ([`LatentModel::prefix`]); the latent `r` of each prompt;
//! 2. the `K` samples of a prompt share its prefix KV cache ([`Prefix::expand`]) and differ only in their latents
//!    `r + ε_k` ([`Prefix::with_latents`]); pass 2 scores the ground-truth target under each
//!    ([`LatentModel::target_logp`]) — the official trainer instead runs two full passes per sample;
//! 3. the rewards (default `neg_ppl`) read the detached per-token log-probs; the advantages follow
//!    [`AdvantageMode`];
//! 4. the clipped surrogate ([`surrogate`]) with `ρ = π_θ / π_old` per token, averaged over each group's target
//!    tokens and then over the groups.
//!
//! The original GRPO ([`GrpoStep::grpo`]) decodes one constrained rollout per noisy latent instead
//! ([`r3_decode::SampleConfig::sample`]), scores the rollouts against the ground truth (default `exact_match`) and
//! puts the surrogate on the rollouts' tokens.
//!
//! With `num_iterations = 1` (\[CODE\]) the first iteration's log-probs are the old ones (`ρ ≡ 1`), so the
//! gradient is `−A·∇log π`, flowing into LatentRATT through `r + ε`; later iterations ([`GrpoStep::reuse`]) reuse
//! the stored noise, targets, old log-probs and advantages.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use r3_data::SftBatch;
use r3_decode::{BeamSearchConfig, BeamSearchInput, DecodeStart, SampleConfig, Trie};
use r3_latent::{LatentModel, LatentRatt, Prefix, Targets};
use r3_rewards::{Decoded, Reward, RewardInput, Sample};

use crate::advantage::{AdvantageMode, advantages};
use crate::error::Result;

/// The settings of a micro-step (from `[grpo]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepSettings {
    /// K.
    pub group_size: usize,
    /// How rewards become advantages.
    pub advantage: AdvantageMode,
    /// ε_low of the clip.
    pub epsilon_low: f64,
    /// ε_high of the clip.
    pub epsilon_high: f64,
    /// β of the KL penalty (0: no reference forward).
    pub beta: f64,
}

impl StepSettings {
    /// The settings in effect for a `[grpo]` section.
    pub fn from_config(g: &crate::GrpoSettings) -> Self {
        StepSettings {
            group_size: g.group_size,
            advantage: g.advantage_mode(),
            epsilon_low: g.epsilon_low,
            epsilon_high: g.epsilon_high,
            beta: g.beta,
        }
    }
}

/// What a micro-step's first iteration stores for later iterations (`num_iterations > 1`).
#[derive(Clone, Debug)]
pub struct Generation {
    /// The latent noise `[G·K, N, d]`.
    pub noise: Tensor<3>,
    /// The scored tokens `[G·K, T]`: the ground-truth targets (LR-GRPO) or the rollouts (GRPO).
    pub targets: Targets,
    /// The old per-token log-probs `[G·K, T]`, detached.
    pub old_logp: Tensor<2>,
    /// The reference model's per-token log-probs `[G·K, T]` (only when β > 0), detached.
    pub ref_logp: Option<Tensor<2>>,
    /// One reward per sample.
    pub rewards: Vec<f64>,
    /// One advantage per sample.
    pub advantages: Vec<f64>,
    /// The real scored tokens of each group.
    pub group_tokens: Vec<usize>,
}

/// The outcome of one micro-step.
#[derive(Clone, Debug)]
pub struct MicroStep {
    /// The loss `[1]`, on the autodiff graph when the model is.
    pub loss: Tensor<1>,
    /// The loss value.
    pub loss_value: f64,
    /// The fraction of real tokens whose ratio was clipped.
    pub clip_ratio: f64,
    /// The mean per-token KL estimate against the reference (β > 0 only).
    pub kl: Option<f64>,
    /// The generation (reusable by [`GrpoStep::reuse`]).
    pub generation: Generation,
}

/// The model and the reward of a micro-step.
#[derive(Clone, Copy, Debug)]
pub struct GrpoStep<'a> {
    /// The policy: the backbone frozen, LatentRATT trainable (on an autodiff device for training).
    pub model: &'a LatentModel,
    /// The reward (a single one, or a [`r3_rewards::Combined`]).
    pub reward: &'a dyn Reward,
    /// The settings.
    pub settings: StepSettings,
    /// The frozen reference LatentRATT of the KL penalty (needed when β > 0).
    pub reference: Option<&'a LatentRatt>,
    /// Beam decoding for LR-GRPO rewards that read decoded candidates (`Reward::needs_decoding`, e.g. `rank`);
    /// `None` for the paper's `neg_ppl`, which needs none.
    pub decoding: Option<BeamDecoding<'a>>,
}

/// Constrained beam search from every noisy latent, for LR-GRPO rewards on decoded candidates.
#[derive(Clone, Copy, Debug)]
pub struct BeamDecoding<'a> {
    /// The catalogue's item trie.
    pub trie: &'a Trie,
    /// EOS, the last token of every trie path.
    pub eos_id: u32,
    /// Beams = candidates per sample.
    pub num_beams: usize,
}

/// The inputs of the original GRPO's rollouts.
#[derive(Clone, Copy, Debug)]
pub struct Rollouts<'a> {
    /// The catalogue's item trie (the constraint of the samples).
    pub trie: &'a Trie,
    /// EOS, the last token of every trie path.
    pub eos_id: u32,
    /// The sampling temperature.
    pub temperature: f64,
    /// The most tokens per rollout.
    pub max_new_tokens: usize,
    /// The seed of the micro-step's sampling streams.
    pub seed: u64,
}

impl GrpoStep<'_> {
    /// One LR-GRPO micro-step over `batch` (G prompts with their targets) with `noise` `[G·K, N, d]`.
    ///
    /// # Errors
    /// A reward error (a non-finite reward names the sample).
    ///
    /// # Panics
    /// When the noise is not `[G·K, N, d]`.
    pub fn lr_grpo(&self, batch: &SftBatch, noise: Tensor<3>) -> Result<MicroStep> {
        let k = self.settings.group_size;
        let prefix = self.model.prefix(batch);
        let targets = self.model.targets(batch).expand(k);
        let logp = noisy_logp(self.model, &prefix, &targets, noise.clone()); // [G·K, T]
        let rows = host_rows(&logp, &targets.real);
        let mut samples: Vec<Sample<'_>> = rows.iter().map(|r| Sample::new(r)).collect();
        let (candidates, truth) = match (self.reward.needs_decoding(), self.decoding) {
            (false, _) => (Vec::new(), Vec::new()),
            (true, Some(decoding)) => (self.beams(&prefix, noise.clone(), decoding)?, truth_ids(batch)),
            (true, None) => {
                return Err(crate::Error::Data {
                    message: format!(
                        "the reward `{}` reads decoded candidates: give the step a `BeamDecoding` (the trainer \
                         does when it has the item trie)",
                        self.reward.name()
                    ),
                });
            }
        };
        for (i, sample) in samples.iter_mut().enumerate().take(candidates.len()) {
            *sample = sample.with_decoded(Decoded::from_ids(&candidates[i], &truth[i / k]));
        }
        let rewards = self.reward.evaluate(&RewardInput::new(&samples))?;
        self.finish(batch, noise, targets, logp, rewards)
    }

    /// The beams of every noisy latent (no gradient): `G·K` lists of candidate token sequences.
    fn beams(&self, prefix: &Prefix, noise: Tensor<3>, decoding: BeamDecoding<'_>) -> Result<Vec<Vec<Vec<u32>>>> {
        let k = self.settings.group_size;
        let expanded = prefix.expand(k);
        let latents = expanded.latents.clone().expect("LR-GRPO needs latent tokens") + noise; // [G·K, N, d]
        let start = self.model.decode_start(&expanded.with_latents(latents.detach()));
        let logits = self.model.backbone.logits(start.last_hidden); // [G·K, V]
        let search = BeamSearchConfig::new(decoding.eos_id)
            .with_num_beams(decoding.num_beams)
            .with_num_return_sequences(decoding.num_beams)
            .init()?;
        let out = search.search(
            &self.model.backbone,
            BeamSearchInput { start: DecodeStart { cache: start.cache, logits }, trie: decoding.trie, guidance: None },
        );
        Ok(out.hypotheses.into_iter().map(|h| h.into_iter().map(|x| x.tokens).collect()).collect())
    }

    /// One original-GRPO micro-step: one constrained rollout per noisy latent (`K` per prompt), rewards on the
    /// rollouts against `batch`'s targets (ids, e.g. `exact_match`), the surrogate on the rollouts' tokens.
    ///
    /// # Errors
    /// A decoding or reward error.
    pub fn grpo(&self, batch: &SftBatch, noise: Tensor<3>, rollouts: Rollouts<'_>) -> Result<MicroStep> {
        let k = self.settings.group_size;
        let prefix = self.model.prefix(batch);
        let expanded = prefix.expand(k);
        let latents = expanded.latents.clone().expect("LR-GRPO needs latent tokens") + noise.clone(); // [G·K, N, d]
        // Decoding needs no gradient: the detached latents keep the autodiff graph out of it.
        let start = self.model.decode_start(&expanded.clone().with_latents(latents.clone().detach()));
        let logits = self.model.backbone.logits(start.last_hidden); // [G·K, V]
        let sampled = SampleConfig::new(rollouts.eos_id)
            .with_num_samples(1)
            .with_temperature(rollouts.temperature)
            .with_max_new_tokens(rollouts.max_new_tokens)
            .with_seed(rollouts.seed)
            .sample(&self.model.backbone, DecodeStart { cache: start.cache, logits }, rollouts.trie)?;
        let completions: Vec<Vec<u32>> = sampled.into_iter().map(|mut s| s.remove(0).tokens).collect();
        let targets = rollout_targets(&completions, batch.pad_id, &self.model.device());
        let logp = self.model.target_logp(&expanded.with_latents(latents), &targets); // [G·K, T']
        let rows = host_rows(&logp, &targets.real);
        let truth = truth_ids(batch);
        let samples: Vec<Sample<'_>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Sample::new(r).with_decoded(Decoded::from_ids(std::slice::from_ref(&completions[i]), &truth[i / k]))
            })
            .collect();
        let rewards = self.reward.evaluate(&RewardInput::new(&samples))?;
        self.finish(batch, noise, targets, logp, rewards)
    }

    /// A later iteration (`num_iterations > 1`): the stored noise, scored tokens, old log-probs and advantages,
    /// with the current LatentRATT.
    pub fn reuse(&self, batch: &SftBatch, generation: Generation) -> MicroStep {
        let prefix = self.model.prefix(batch);
        let logp = noisy_logp(self.model, &prefix, &generation.targets, generation.noise.clone());
        self.surrogate_step(logp, generation)
    }

    fn finish(
        &self,
        batch: &SftBatch,
        noise: Tensor<3>,
        targets: Targets,
        logp: Tensor<2>,
        rewards: Vec<f64>,
    ) -> Result<MicroStep> {
        let k = self.settings.group_size;
        let advantages = advantages(&rewards, k, self.settings.advantage);
        let ref_logp = match (self.settings.beta > 0.0, self.reference) {
            (true, Some(reference)) => {
                let m = LatentModel::new(
                    self.model.backbone.clone(),
                    Some(reference.clone()),
                    self.model.thought_id,
                    self.model.n_latent,
                );
                Some(noisy_logp(&m, &m.prefix(batch), &targets, noise.clone()).detach())
            }
            (true, None) => panic!("β > 0 needs the reference LatentRATT"),
            _ => None,
        };
        let real = host_mask(&targets.real);
        let t = targets.ids.dims()[1];
        let group_tokens = real.chunks(k * t).map(|g| g.iter().filter(|&&x| x).count()).collect();
        let generation =
            Generation { noise, targets, old_logp: logp.clone().detach(), ref_logp, rewards, advantages, group_tokens };
        Ok(self.surrogate_step(logp, generation))
    }

    fn surrogate_step(&self, logp: Tensor<2>, generation: Generation) -> MicroStep {
        let s = self.settings;
        let out = surrogate(SurrogateInput {
            logp,
            old_logp: generation.old_logp.clone(),
            ref_logp: generation.ref_logp.clone(),
            real: generation.targets.real.clone(),
            advantages: &generation.advantages,
            group_tokens: &generation.group_tokens,
            epsilon_low: s.epsilon_low,
            epsilon_high: s.epsilon_high,
            beta: s.beta,
        });
        let loss_value = f64::from(out.loss.clone().into_scalar::<f32>());
        MicroStep { loss: out.loss, loss_value, clip_ratio: out.clip_ratio, kl: out.kl, generation }
    }
}

/// The per-token log-probs of `targets` (already `[G·K, T]`) under the latents `r + ε` of the `K`-fold expanded
/// `prefix`.
///
/// # Shapes
/// - prefix: `G` rows; targets: `[G·K, T]`; noise: `[G·K, N, d]`
/// - output: `[G·K, T]`
pub fn noisy_logp(model: &LatentModel, prefix: &Prefix, targets: &Targets, noise: Tensor<3>) -> Tensor<2> {
    let rows = noise.dims()[0];
    let g = prefix.rows();
    assert!(rows.is_multiple_of(g), "noise rows {rows} are not a multiple of the {g} prompts");
    let expanded = prefix.expand(rows / g);
    let latents = expanded.latents.clone().expect("LR-GRPO needs latent tokens (n_latent ≥ 1)");
    assert_eq!(latents.dims(), noise.dims(), "noise shape vs the expanded latents");
    model.target_logp(&expanded.with_latents(latents + noise), targets)
}

/// The real target ids of every prompt of the batch.
fn truth_ids(batch: &SftBatch) -> Vec<Vec<u32>> {
    let t = batch.target_len;
    (0..batch.rows)
        .map(|g| (0..t).filter(|&j| batch.target_real[g * t + j]).map(|j| batch.target_ids[g * t + j]).collect())
        .collect()
}

/// The real log-probs of every row, on the host.
fn host_rows(logp: &Tensor<2>, real: &Tensor<2, Bool>) -> Vec<Vec<f32>> {
    let [r, t] = logp.dims();
    let values: Vec<f32> = logp.clone().into_data().convert::<f32>().try_to_vec().expect("f32 log-probs");
    let mask = host_mask(real);
    (0..r).map(|i| (0..t).filter(|&j| mask[i * t + j]).map(|j| values[i * t + j]).collect()).collect()
}

/// A bool mask on the host (read through an int tensor: a selected bool tensor may be stored as `U8` on flex).
fn host_mask(mask: &Tensor<2, Bool>) -> Vec<bool> {
    let v: Vec<i64> = mask.clone().int().into_data().convert::<i64>().try_to_vec().expect("int mask");
    v.into_iter().map(|x| x != 0).collect()
}

/// Right-padded rollout targets on `device`.
fn rollout_targets(completions: &[Vec<u32>], pad_id: u32, device: &burn::tensor::Device) -> Targets {
    let r = completions.len();
    let t = completions.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut ids = Vec::with_capacity(r * t);
    let mut real = Vec::with_capacity(r * t);
    for c in completions {
        ids.extend(c.iter().map(|&x| i64::from(x)).chain(std::iter::repeat_n(i64::from(pad_id), t - c.len())));
        real.extend((0..t).map(|j| j < c.len()));
    }
    let n_tokens = real.iter().filter(|&&x| x).count();
    Targets {
        ids: Tensor::<2, Int>::from_data(TensorData::new(ids, [r, t]), device),
        real: Tensor::<2, Bool>::from_data(TensorData::new(real, [r, t]), device),
        n_tokens,
    }
}

/// The inputs of [`surrogate`].
#[derive(Clone, Debug)]
pub struct SurrogateInput<'a> {
    /// The current per-token log-probs `[R, T]` (with gradient).
    pub logp: Tensor<2>,
    /// The old per-token log-probs `[R, T]` (detached).
    pub old_logp: Tensor<2>,
    /// The reference per-token log-probs `[R, T]` (detached; with β > 0).
    pub ref_logp: Option<Tensor<2>>,
    /// `[R, T]`, `true` for real tokens.
    pub real: Tensor<2, Bool>,
    /// One advantage per row.
    pub advantages: &'a [f64],
    /// The real tokens of each group (`R / groups` rows each).
    pub group_tokens: &'a [usize],
    /// ε_low.
    pub epsilon_low: f64,
    /// ε_high.
    pub epsilon_high: f64,
    /// β.
    pub beta: f64,
}

/// The outputs of [`surrogate`].
#[derive(Clone, Debug)]
pub struct SurrogateOutput {
    /// The loss `[1]`.
    pub loss: Tensor<1>,
    /// The fraction of real tokens whose ratio was clipped (`ρ < 1 − ε_low` with `A < 0`, or `ρ > 1 + ε_high`
    /// with `A > 0`).
    pub clip_ratio: f64,
    /// The mean k3 KL estimate `exp(ref − logp) − (ref − logp) − 1` over the real tokens (with a reference).
    pub kl: Option<f64>,
}

/// The clipped surrogate of LR-GRPO (Eq. (8); TRL's GRPO loss with `ε_low`/`ε_high`): per token
/// `−min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A) + β·KL` with `ρ = exp(logp − old_logp)`; summed over each group's
/// real tokens, divided by their number, then averaged over the groups.
///
/// NOTE: \[CODE\] the official trainer's per-device micro-batch is one group, its token mean runs over that group,
/// and data parallelism averages the devices: hence the mean over groups.
///
/// # Shapes
/// - logp, old_logp, ref_logp, real: `[R, T]`; advantages: `R`; group_tokens: `G` with `R = G·K`
/// - output: loss `[1]`
pub fn surrogate(input: SurrogateInput<'_>) -> SurrogateOutput {
    let [r, t] = input.logp.dims();
    let g = input.group_tokens.len();
    assert!(g > 0 && r.is_multiple_of(g), "{r} rows are not {g} whole groups");
    assert_eq!(input.advantages.len(), r, "one advantage per row");
    let device = input.logp.device();
    let adv: Vec<f32> = input.advantages.iter().map(|&a| a as f32).collect();
    let adv = Tensor::<2>::from_data(TensorData::new(adv, [r, 1]), &device); // [R, 1]
    let ratio = (input.logp.clone() - input.old_logp).exp(); // [R, T]
    let clipped = ratio.clone().clamp(1.0 - input.epsilon_low, 1.0 + input.epsilon_high);
    let mut per_token = (ratio.clone() * adv.clone()).min_pair(clipped * adv).neg(); // [R, T]
    let mut kl = None;
    if let Some(reference) = input.ref_logp {
        let delta = reference - input.logp; // [R, T]
        let k3 = delta.clone().exp() - delta - 1.0;
        let masked = k3.clone().mask_fill(input.real.clone().bool_not(), 0.0);
        let tokens: usize = input.group_tokens.iter().sum();
        kl = Some(f64::from(masked.sum().into_scalar::<f32>()) / tokens.max(1) as f64);
        if input.beta > 0.0 {
            per_token = per_token + k3.mul_scalar(input.beta);
        }
    }
    let per_token = per_token.mask_fill(input.real.clone().bool_not(), 0.0);
    let counts: Vec<f32> = input.group_tokens.iter().map(|&n| n.max(1) as f32).collect();
    let counts = Tensor::<1>::from_data(TensorData::new(counts, [g]), &device);
    let per_group = per_token.reshape([g, (r / g) * t]).sum_dim(1).reshape([g]) / counts; // [G]
    let loss = per_group.mean(); // [1]

    let ratios: Vec<f32> = ratio.into_data().convert::<f32>().try_to_vec().expect("f32 ratios");
    let mask = host_mask(&input.real);
    let (mut clipped_n, mut real_n) = (0usize, 0usize);
    for (i, (&rho, &m)) in ratios.iter().zip(&mask).enumerate() {
        if !m {
            continue;
        }
        real_n += 1;
        let a = input.advantages[i / t];
        let low = f64::from(rho) < 1.0 - input.epsilon_low && a < 0.0;
        let high = f64::from(rho) > 1.0 + input.epsilon_high && a > 0.0;
        clipped_n += usize::from(low || high);
    }
    SurrogateOutput { loss, clip_ratio: clipped_n as f64 / real_n.max(1) as f64, kl }
}

#[cfg(test)]
mod tests;
