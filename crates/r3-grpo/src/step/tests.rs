//! Unit tests of `step.rs`.

use super::*;
use crate::naive::naive_noisy_logp;
use crate::noise::{NoiseKey, NoiseShape, latent_noise};
use crate::test_device;
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution};
use r3_backbone::{Arch, BackboneConfig};
use r3_data::EncodedSample;
use r3_latent::{LatentModelConfig, LatentRattConfig};
use r3_rewards::Registry;

const VOCAB: usize = 61;
const D: usize = 32;

/// A tiny seeded Qwen2-style model with a LatentRATT large enough for the latent to matter.
fn model(device: &Device) -> LatentModel {
    device.seed(23);
    let backbone =
        BackboneConfig::new(Arch::Qwen2, VOCAB, D, 2, 4, 2, 8, 40, 10_000.0, 1e-6, true, true, 128).init(device);
    let ratt = LatentRattConfig::new(D).with_init_std(0.3);
    let mut m = LatentModelConfig::new().with_ratt(Some(ratt)).init(backbone, device);
    if let Some(r) = m.ratt.as_mut() {
        r.k.bias = Some(Param::from_tensor(Tensor::random([D], Distribution::Normal(0.0, 0.5), device)));
    }
    crate::freeze_backbone(m)
}

/// Two prompts of different lengths and targets of different lengths (padding on both sides).
fn batch() -> SftBatch {
    let s = |p: &[u32], t: &[u32]| EncodedSample { prompt_ids: p.to_vec(), n_thought: 1, target_ids: t.to_vec() };
    SftBatch::new(&[s(&[3, 14, 15, 9, 26, 5], &[10, 20, 30, 7]), s(&[5, 35, 8], &[40, 41, 7])], 1, VOCAB as u32, 0)
}

fn settings(k: usize) -> StepSettings {
    StepSettings { group_size: k, advantage: AdvantageMode::Batch, epsilon_low: 0.2, epsilon_high: 0.28, beta: 0.0 }
}

fn noise(k: usize, device: &Device) -> Tensor<3> {
    let shape = NoiseShape { groups: 2, group_size: k, n_latent: 1, d_model: D, std: 1.5, unnoised_first: true };
    latent_noise(NoiseKey { seed: 1, step: 0, micro: 0 }, shape, device)
}

fn host<const N: usize>(t: Tensor<N>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().expect("f32")
}

fn ratt_grads(m: &LatentModel, loss: Tensor<1>) -> Vec<Vec<f32>> {
    let mut grads = loss.backward();
    let params = GradientsParams::from_module(&mut grads, m.ratt.as_ref().expect("ratt"));
    let r = m.ratt.as_ref().expect("ratt");
    let mut out = Vec::new();
    for w in [&r.q.weight, &r.k.weight, &r.v.weight] {
        out.push(host(params.get::<2>(w.id).expect("weight gradient")));
    }
    out
}

use burn::optim::GradientsParams;

/// The shared-prefix micro-step gives the loss and LatentRATT gradients of the official per-sample two full
/// passes; without noise the naive reference is `LatentModel::naive_forward`.
#[test]
fn shared_prefix_equals_naive_per_sample_passes() {
    let device = test_device().autodiff();
    let m = model(&device);
    let b = batch();
    let k = 4;
    let registry = Registry::default();
    let reward = registry.build(&r3_rewards::lr_grpo_rewards()).expect("neg_ppl");
    let step = GrpoStep { model: &m, reward: &reward, settings: settings(k), reference: None, decoding: None };
    let out = step.lr_grpo(&b, noise(k, &device)).expect("step");

    let naive_logp = naive_noisy_logp(&m, &b, noise(k, &device));
    let cached = noisy_logp(&m, &m.prefix(&b), &m.targets(&b).expand(k), noise(k, &device));
    let d = host(naive_logp.clone() - cached).into_iter().fold(0.0f32, |a, x| a.max(x.abs()));
    assert!(d < 1e-5, "log-probs maxdiff {d}");
    // The naive loss with the same advantages.
    let g = &out.generation;
    let naive = surrogate(SurrogateInput {
        logp: naive_logp.clone(),
        old_logp: naive_logp.clone().detach(),
        ref_logp: None,
        real: g.targets.real.clone(),
        advantages: &g.advantages,
        group_tokens: &g.group_tokens,
        epsilon_low: 0.2,
        epsilon_high: 0.28,
        beta: 0.0,
    });
    let (a, c) = (out.loss_value, f64::from(naive.loss.clone().into_scalar::<f32>()));
    assert!((a - c).abs() < 1e-6 * a.abs().max(1e-3), "loss {a} vs naive {c}");
    // ρ ≡ 1: the loss is −mean advantage of each group (equal target lengths within a group).
    let want = -(g.advantages[..k].iter().sum::<f64>() + g.advantages[k..].iter().sum::<f64>()) / (2 * k) as f64;
    assert!((a - want).abs() < 1e-6, "loss {a} vs −mean A {want}");
    assert_eq!(out.clip_ratio, 0.0);
    let ours = ratt_grads(&m, out.loss);
    let theirs = ratt_grads(&m, naive.loss);
    for (i, (x, y)) in ours.iter().zip(&theirs).enumerate() {
        let d = x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let n = y.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(n > 1e-6, "gradient {i} vanishes");
        assert!(d < 1e-5 * n.max(1.0), "gradient {i}: maxdiff {d} (norm {n})");
    }
    // Without noise, the naive reference is the official two-pass forward.
    let zero = Tensor::<3>::zeros([2, 1, D], &device);
    let a = naive_noisy_logp(&m, &b, zero);
    let bnaive = m.naive_forward(&b).target_logp;
    let d = host(a - bnaive).into_iter().fold(0.0f32, |a, x| a.max(x.abs()));
    assert!(d < 1e-5, "zero-noise naive vs LatentModel::naive_forward maxdiff {d}");
}

/// The clipped surrogate: ratios outside [1 − ε_low, 1 + ε_high] stop the gradient in the direction of the
/// advantage, and are counted.
#[test]
fn surrogate_clips_and_counts() {
    let device = test_device().autodiff();
    let logp = Tensor::<2>::from_data([[0.5f32, 0.0], [-0.5, 0.0]], &device).require_grad();
    let old = Tensor::<2>::zeros([2, 2], &device);
    let real = Tensor::<2, Bool>::from_data([[true, true], [true, false]], &device);
    let out = surrogate(SurrogateInput {
        logp: logp.clone(),
        old_logp: old,
        ref_logp: None,
        real,
        advantages: &[1.0, -1.0],
        group_tokens: &[3],
        epsilon_low: 0.2,
        epsilon_high: 0.28,
        beta: 0.0,
    });
    // Token (0,0): ρ = e^0.5 = 1.65 > 1.28 with A > 0: clipped, −1.28. Token (0,1): ρ = 1: −1.
    // Token (1,0): ρ = e^−0.5 = 0.61 < 0.8 with A < 0: min(−0.61, −0.8) = −0.8 → +0.8. Sum / 3 tokens.
    let want = (-1.28 - 1.0 + 0.8) / 3.0;
    let got = f64::from(out.loss.clone().into_scalar::<f32>());
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    assert!((out.clip_ratio - 2.0 / 3.0).abs() < 1e-12);
    let grad = host(logp.grad(&out.loss.backward()).expect("grad"));
    assert_eq!(grad[0], 0.0, "a clipped token passes no gradient");
    assert_eq!(grad[2], 0.0, "a clipped token passes no gradient");
    assert!((grad[1] + 1.0 / 3.0).abs() < 1e-6, "{grad:?}");
    assert_eq!(grad[3], 0.0, "padding passes no gradient");
}

/// β > 0 adds the k3 KL to the reference; at the reference it is 0, away from it positive.
#[test]
fn kl_against_the_reference() {
    let device = test_device().autodiff();
    let m = model(&device);
    let b = batch();
    let reward = Registry::default().build(&r3_rewards::lr_grpo_rewards()).expect("neg_ppl");
    let same = m.ratt.clone().expect("ratt").valid();
    let s = StepSettings { beta: 0.04, ..settings(2) };
    let out = GrpoStep { model: &m, reward: &reward, settings: s, reference: Some(&same), decoding: None }
        .lr_grpo(&b, noise(2, &device))
        .expect("step");
    assert!(out.kl.expect("kl").abs() < 1e-6, "{:?}", out.kl);
    let mut other = m.ratt.clone().expect("ratt").valid();
    other.v.weight = Param::from_tensor(other.v.weight.val() * 1.5);
    let out2 = GrpoStep { model: &m, reward: &reward, settings: s, reference: Some(&other), decoding: None }
        .lr_grpo(&b, noise(2, &device))
        .expect("step");
    assert!(out2.kl.expect("kl") > 1e-6, "{:?}", out2.kl);
}

/// The original GRPO: one constrained rollout per noisy latent, exact-match rewards in {0, 1}, group-normalised
/// advantages, and the surrogate on the rollout tokens.
#[test]
fn original_grpo_rolls_out_over_the_trie() {
    let device = test_device().autodiff();
    let m = model(&device);
    let b = batch();
    // The targets of the batch and two other items; EOS = 7.
    let trie = Trie::new(&[vec![10, 20, 30, 7], vec![40, 41, 7], vec![10, 21, 7], vec![40, 7]]).expect("trie");
    let reward = Registry::default().build(&r3_rewards::grpo_rewards()).expect("exact_match");
    let k = 4;
    let s = StepSettings { advantage: AdvantageMode::Group, ..settings(k) };
    let step = GrpoStep { model: &m, reward: &reward, settings: s, reference: None, decoding: None };
    let rollouts = Rollouts { trie: &trie, eos_id: 7, temperature: 1.0, max_new_tokens: 8, seed: 5 };
    let out = step.grpo(&b, noise(k, &device), rollouts).expect("grpo step");
    let g = &out.generation;
    assert!(g.rewards.iter().all(|&r| r == 0.0 || r == 1.0), "{:?}", g.rewards);
    for (grp, adv) in g.rewards.chunks(k).zip(g.advantages.chunks(k)) {
        let mean = grp.iter().sum::<f64>() / k as f64;
        assert!(adv.iter().sum::<f64>().abs() < 1e-9);
        for (r, a) in grp.iter().zip(adv) {
            assert_eq!((r - mean).signum() * (r != &mean) as i32 as f64, a.signum() * (a != &0.0) as i32 as f64);
        }
    }
    // Rollout tokens are trie paths: each scored row is a real path ending at a leaf.
    let ids: Vec<i64> = g.targets.ids.clone().into_data().convert::<i64>().try_to_vec().expect("ids");
    let t = g.targets.ids.dims()[1];
    let real = host_mask(&g.targets.real);
    for row in 0..2 * k {
        let path: Vec<u32> = (0..t).filter(|&j| real[row * t + j]).map(|j| ids[row * t + j] as u32).collect();
        assert!(trie.walk(&path).is_some_and(|n| !trie.items_at(n).is_empty()), "row {row}: {path:?}");
    }
    assert!(out.loss_value.is_finite());
}

/// LR-GRPO with a reward on decoded candidates (`rank`): every noisy latent is beam-decoded over the trie;
/// without a `BeamDecoding` the step says what is missing.
#[test]
fn lr_grpo_with_a_decoding_reward() {
    let device = test_device().autodiff();
    let m = model(&device);
    let b = batch();
    let trie = Trie::new(&[vec![10, 20, 30, 7], vec![40, 41, 7], vec![10, 21, 7], vec![40, 7]]).expect("trie");
    let reward = Registry::default()
        .build(&[r3_rewards::RewardSpec::new("neg_ppl", 1.0), r3_rewards::RewardSpec::new("rank", 1.0)])
        .expect("rewards");
    let k = 2;
    let no = GrpoStep { model: &m, reward: &reward, settings: settings(k), reference: None, decoding: None };
    let err = no.lr_grpo(&b, noise(k, &device)).expect_err("needs decoding");
    assert!(err.to_string().contains("BeamDecoding"), "{err}");
    let decoding = Some(BeamDecoding { trie: &trie, eos_id: 7, num_beams: 4 });
    let step = GrpoStep { decoding, ..no };
    let out = step.lr_grpo(&b, noise(k, &device)).expect("step");
    let plain = Registry::default().build(&r3_rewards::lr_grpo_rewards()).expect("neg_ppl");
    let base = GrpoStep { reward: &plain, decoding: None, ..no }.lr_grpo(&b, noise(k, &device)).expect("step");
    // The rank part is the reciprocal rank of the target among the 4 beams (all 4 trie items), in (0, 1].
    for (with, without) in out.generation.rewards.iter().zip(&base.generation.rewards) {
        let rank = with - without;
        assert!(rank > 0.2 && rank <= 1.0 + 1e-9, "rank reward {rank}");
    }
}
