//! Unit tests of `model.rs`.

use super::*;
use crate::test_device;
use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Distribution, Gradients};
use r3_backbone::{Arch, BackboneConfig};

const VOCAB: usize = 61;
const D: usize = 32;

/// A tiny random Qwen2-style backbone (tied head) or Llama-style one (untied), seeded.
fn backbone(tied: bool, device: &Device) -> Backbone {
    device.seed(17);
    let arch = if tied { Arch::Qwen2 } else { Arch::Llama };
    BackboneConfig::new(arch, VOCAB, D, 2, 4, 2, 8, 40, 10_000.0, 1e-6, tied, tied, 128).init(device)
}

/// A model with a LatentRATT whose weights are large enough for the latent to matter.
fn model(n_latent: usize, with_ratt: bool, tied: bool, device: &Device) -> LatentModel {
    let ratt = with_ratt.then(|| LatentRattConfig::new(D).with_init_std(0.3));
    let mut m = LatentModelConfig::new().with_ratt(ratt).with_n_latent(n_latent).init(backbone(tied, device), device);
    if let Some(r) = m.ratt.as_mut() {
        r.k.bias = Some(Param::from_tensor(Tensor::random([D], Distribution::Normal(0.0, 0.5), device)));
    }
    m
}

/// A batch of the given prompts and targets (left-padded prompts, right-padded targets, padding id 0).
fn batch(prompts: &[&[u32]], targets: &[&[u32]], n_thought: usize) -> SftBatch {
    let p = prompts.iter().map(|x| x.len()).max().unwrap_or(0);
    let t = targets.iter().map(|x| x.len()).max().unwrap_or(0);
    let mut b = SftBatch {
        rows: prompts.len(),
        prompt_len: p,
        prompt_ids: Vec::new(),
        prompt_real: Vec::new(),
        n_thought,
        thought_id: VOCAB as u32,
        target_len: t,
        target_ids: Vec::new(),
        target_real: Vec::new(),
        pad_id: 0,
    };
    for (prompt, target) in prompts.iter().zip(targets) {
        b.prompt_ids.extend(std::iter::repeat_n(0, p - prompt.len()).chain(prompt.iter().copied()));
        b.prompt_real.extend((0..p).map(|i| i >= p - prompt.len()));
        b.target_ids.extend(target.iter().copied().chain(std::iter::repeat_n(0, t - target.len())));
        b.target_real.extend((0..t).map(|i| i < target.len()));
    }
    b
}

/// Three rows of different prompt and target lengths (padding on both sides).
fn three_rows(n_thought: usize) -> SftBatch {
    batch(
        &[&[3, 14, 15, 9, 26], &[5, 35, 8], &[1, 2, 3, 4, 5, 6, 7]],
        &[&[10, 20, 30], &[40], &[11, 12, 13, 60]],
        n_thought,
    )
}

fn host<const N: usize>(t: Tensor<N>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 tensor")
}

fn maxdiff<const N: usize>(a: Tensor<N>, b: Tensor<N>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Collects the gradient of every float parameter, in visiting order.
struct CollectGrads<'a> {
    grads: &'a Gradients,
    out: Vec<Option<Vec<f32>>>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<N>>) {
        self.out.push(param.val().grad(self.grads).map(host));
    }
}

fn all_grads(model: &LatentModel, loss: Tensor<1>) -> Vec<Option<Vec<f32>>> {
    let grads = loss.backward();
    let mut visitor = CollectGrads { grads: &grads, out: Vec::new() };
    model.visit(&mut visitor);
    visitor.out
}

/// The naive loss: mean NLL of the naive forward's log-probabilities.
fn naive_loss(model: &LatentModel, batch: &SftBatch) -> Tensor<1> {
    let n = batch.target_real.iter().filter(|&&x| x).count();
    model.naive_forward(batch).target_logp.sum().neg().div_scalar(n as f64)
}

/// The cached forward (prefix once, pass 2 over the cache) equals the official code's two full passes:
/// log-probs, loss, and the gradients of every parameter, for N = 0, 1, 2, with and without LatentRATT,
/// tied and untied heads.
#[test]
fn cached_forward_equals_naive_two_passes() {
    let device = test_device().autodiff();
    for (n, with_ratt, tied) in
        [(1, true, true), (1, true, false), (2, true, true), (0, false, true), (1, false, false)]
    {
        let m = model(n, with_ratt, tied, &device);
        let b = three_rows(n);
        let prefix = m.prefix(&b);
        let naive = m.naive_forward(&b);
        if n > 0 {
            let d = maxdiff(prefix.latents.clone().expect("latents"), naive.latents.clone().expect("latents"));
            assert!(d < 1e-5, "N={n} ratt={with_ratt}: latents maxdiff {d}");
        }
        let logp = m.target_logp(&prefix, &m.targets(&b));
        let d = maxdiff(logp.clone(), naive.target_logp.clone());
        assert!(d < 1e-5, "N={n} ratt={with_ratt} tied={tied}: target_logp maxdiff {d}");
        let padded: Vec<f32> =
            host(logp).into_iter().zip(&b.target_real).filter(|(_, real)| !**real).map(|(x, _)| x).collect();
        assert!(padded.iter().all(|&x| x == 0.0), "log-probs at padding: {padded:?}");

        let loss = m.sft_loss(&b);
        let naive = naive_loss(&m, &b);
        let (a, c) = (loss.mean.clone().into_scalar::<f32>(), naive.clone().into_scalar::<f32>());
        assert!((a - c).abs() < 1e-5, "N={n}: loss {a} vs naive {c}");
        assert_eq!(loss.n_tokens, 8);
        let sum = loss.sum.clone().into_scalar::<f32>();
        assert!((sum / 8.0 - a).abs() < 1e-6, "sum / tokens {} vs mean {a}", sum / 8.0);

        let cached = all_grads(&m, loss.mean);
        let reference = all_grads(&m, naive);
        assert_eq!(cached.len(), reference.len());
        let mut checked = 0;
        for (i, (g1, g2)) in cached.iter().zip(&reference).enumerate() {
            match (g1, g2) {
                (Some(g1), Some(g2)) => {
                    let d = g1.iter().zip(g2).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
                    assert!(d < 1e-5, "N={n} ratt={with_ratt} tied={tied}: parameter {i} gradient maxdiff {d}");
                    checked += 1;
                }
                (None, None) => {}
                _ => panic!("N={n}: parameter {i} has a gradient in one forward only"),
            }
        }
        // Every parameter gets a gradient (2 layers, embedding, norm, the untied head, LatentRATT).
        let per_layer = if tied { 12 } else { 9 }; // the tied models here are Qwen2 (q, k, v biases)
        let want = 2 * per_layer + 2 + usize::from(!tied) + if with_ratt { 6 } else { 0 };
        assert_eq!(checked, want, "N={n} ratt={with_ratt} tied={tied}");
    }
}

/// A row gives the same latents and log-probs alone and left-padded in a batch with longer prompts.
#[test]
fn left_padding_is_invisible() {
    let device = test_device();
    for n in [0, 1, 2] {
        let m = model(n, true, true, &device);
        let both = three_rows(n);
        let alone = batch(&[&[5, 35, 8]], &[&[40, 41]], n);
        let (pb, pa) = (m.prefix(&both), m.prefix(&alone));
        if n > 0 {
            let d = maxdiff(pb.latents.clone().expect("latents").narrow(0, 1, 1), pa.latents.clone().expect("latents"));
            assert!(d < 1e-5, "N={n}: latents maxdiff {d}");
        }
        let lb = m.target_logp(&pb, &m.targets(&both)).narrow(0, 1, 1).narrow(1, 0, 1);
        let la = m.target_logp(&pa, &m.targets(&alone)).narrow(1, 0, 1);
        let d = maxdiff(lb, la);
        assert!(d < 1e-5, "N={n}: target_logp maxdiff {d}");
    }
}

/// The final hidden states before the thought token do not depend on what stands at the thought position
/// (the thought embedding, or any latent), and the prefix's hidden states are exactly those; the positions
/// after it do depend on it.
#[test]
fn positions_before_the_thought_ignore_it() {
    let device = test_device();
    let m = model(1, true, true, &device);
    let b = three_rows(1);
    let (rows, p) = (b.rows, b.prompt_len);
    let ids: Vec<i64> = b.prompt_ids.iter().map(|&x| i64::from(x)).chain([m.thought_id as i64; 3]).collect();
    // [B, P] prompts then one thought column: put the thought column last per row.
    let mut seq = Vec::new();
    for r in 0..rows {
        seq.extend_from_slice(&ids[r * p..(r + 1) * p]);
        seq.push(m.thought_id as i64);
    }
    let _ = ids;
    let emb = m.backbone.embed(Tensor::from_data(TensorData::new(seq, [rows, p + 1]), &device)); // [B, P + 1, d]
    let real: Vec<bool> =
        (0..rows).flat_map(|r| b.prompt_real[r * p..(r + 1) * p].iter().copied().chain([true])).collect();
    let padding = Tensor::<2, Bool>::from_data(TensorData::new(real, [rows, p + 1]), &device);
    let run = |x: Tensor<3>| m.backbone.hidden(HiddenInput::new(x).with_padding(padding.clone())).hidden;
    let other = Tensor::<3>::random([rows, 1, D], Distribution::Normal(0.0, 5.0), &device);
    let h1 = run(emb.clone());
    let h2 = run(Tensor::cat(vec![emb.narrow(1, 0, p), other], 1));
    let before = maxdiff(h1.clone().narrow(1, 0, p), h2.clone().narrow(1, 0, p));
    assert_eq!(before, 0.0, "positions before the thought changed");
    let after = maxdiff(h1.clone().narrow(1, p, 1), h2.narrow(1, p, 1));
    assert!(after > 1e-3, "the thought position ignored its input ({after})");
    // The prefix's hidden states are those of the real prompt positions (padding rows are meaningless).
    let prefix = m.prefix(&b);
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(b.prompt_real.clone(), [rows, p]), &device)
        .reshape([rows, p, 1])
        .expand([rows, p, D]);
    let d = maxdiff(
        prefix.hidden.mask_fill(mask.clone().bool_not(), 0.0),
        h1.narrow(1, 0, p).mask_fill(mask.bool_not(), 0.0),
    );
    assert!(d < 1e-6, "prefix hidden maxdiff {d}");
}

/// N = 2: the second latent attends over the first one's hidden state, so it differs from the first and from
/// N = 1's; the prefix holds P + 1 hidden states.
#[test]
fn two_latent_tokens() {
    let device = test_device();
    let m2 = model(2, true, true, &device);
    let b2 = three_rows(2);
    let prefix = m2.prefix(&b2);
    let latents = prefix.latents.clone().expect("latents");
    assert_eq!(latents.dims(), [3, 2, D]);
    assert_eq!(prefix.hidden.dims(), [3, b2.prompt_len + 1, D]);
    assert_eq!(prefix.cache.len(), b2.prompt_len);
    let d = maxdiff(latents.clone().narrow(1, 0, 1), latents.clone().narrow(1, 1, 1));
    assert!(d > 1e-4, "r_2 equals r_1");
    // r_1 is the same as with N = 1 (same weights, same seed).
    let m1 = LatentModel::new(m2.backbone.clone(), m2.ratt.clone(), m2.thought_id, 1);
    let r1 = m1.prefix(&three_rows(1)).latents.expect("latents");
    assert!(maxdiff(r1, latents.narrow(1, 0, 1)) < 1e-6);
    let logp = m2.target_logp(&prefix, &m2.targets(&b2));
    assert_eq!(logp.dims(), [3, 4]);
}

/// Without LatentRATT the latent is the last prompt position's final hidden state.
#[test]
fn without_latent_ratt_the_latent_is_the_last_hidden_state() {
    let device = test_device();
    let m = model(1, false, true, &device);
    assert!(m.ratt.is_none());
    let b = three_rows(1);
    let prefix = m.prefix(&b);
    let p = b.prompt_len;
    let last = prefix.hidden.clone().narrow(1, p - 1, 1); // [B, 1, d]
    assert_eq!(maxdiff(prefix.latents.clone().expect("latents"), last), 0.0);
    // The ablation has exactly the backbone's parameters (plus the thought row).
    let base = backbone(true, &device).num_params();
    assert_eq!(m.num_params(), base + D);
}

/// LatentRATT adds 3·(d² + d) parameters to the backbone (plus d for the thought row).
#[test]
fn parameter_count() {
    let device = test_device();
    let base = backbone(true, &device).num_params();
    assert_eq!(model(1, true, true, &device).num_params(), base + D + 3 * (D * D + D));
    // BIGRec: no thought row.
    let bigrec = LatentModelConfig::new().with_n_latent(0).init(backbone(true, &device), &device);
    assert_eq!(bigrec.num_params(), base);
    assert_eq!(bigrec.thought_id, VOCAB);
}

/// K noisy latents per prompt through an expanded prefix equal K separate computations.
#[test]
fn expanded_prefix_equals_separate_computations() {
    let device = test_device();
    let m = model(1, true, true, &device);
    let b = three_rows(1);
    let k = 4;
    let prefix = m.prefix(&b);
    let targets = m.targets(&b);
    let r = prefix.latents.clone().expect("latents"); // [B, 1, d]
    // Sample 1 is un-noised, as in LR-GRPO.
    let noise = Tensor::<3>::random([3 * k, 1, D], Distribution::Normal(0.0, 1.5), &device);
    let keep = Tensor::<3>::from_data(
        TensorData::new((0..3 * k).map(|i| if i % k == 0 { 0.0f32 } else { 1.0 }).collect(), [3 * k, 1, 1]),
        &device,
    );
    let noise = noise * keep;
    let expanded = prefix.expand(k);
    assert_eq!(expanded.rows(), 3 * k);
    let noisy = expanded.latents.clone().expect("latents") + noise.clone();
    let logp = m.target_logp(&expanded.with_latents(noisy), &targets.expand(k)); // [B·K, T]
    for row in 0..3 {
        for s in 0..k {
            let i = row * k + s;
            let one = prefix.clone().with_latents(r.clone() + noise.clone().narrow(0, i, 1).expand([3, 1, D]));
            let want = m.target_logp(&one, &targets).narrow(0, row, 1);
            let d = maxdiff(logp.clone().narrow(0, i, 1), want);
            assert!(d < 1e-5, "row {row} sample {s}: maxdiff {d}");
        }
    }
    // The un-noised sample reproduces the plain forward.
    let plain = m.target_logp(&prefix, &targets);
    let first = logp.clone().reshape([3, k, 4]).narrow(1, 0, 1).reshape([3, 4]);
    assert!(maxdiff(plain, first) < 1e-6);
    // Noise changes the log-probs.
    let second = logp.reshape([3, k, 4]).narrow(1, 1, 1).reshape([3, 4]);
    assert!(maxdiff(m.target_logp(&prefix, &targets), second) > 1e-4);
}

/// BIGRec (N = 0): the prefix has no latents and the log-probs are those of a plain forward over
/// `[prompt, target]`.
#[test]
fn no_latent_is_a_plain_forward() {
    let device = test_device();
    let m = LatentModelConfig::new().with_n_latent(0).init(backbone(true, &device), &device);
    let b = batch(&[&[3, 14, 15, 9]], &[&[26, 5, 35]], 0);
    let prefix = m.prefix(&b);
    assert!(prefix.latents.is_none());
    let logp = host(m.target_logp(&prefix, &m.targets(&b)));
    let ids = Tensor::<2, Int>::from_data([[3, 14, 15, 9, 26, 5]], &device);
    let h = m.backbone.hidden(HiddenInput::new(m.backbone.embed(ids))).hidden.narrow(1, 3, 3); // [1, 3, d]
    let logits = host(log_softmax(m.backbone.logits(h), 2)); // [1, 3, V]
    let v = m.backbone.vocab_size();
    let want = [logits[26], logits[v + 5], logits[2 * v + 35]];
    for (a, b) in logp.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{logp:?} vs {want:?}");
    }
    // A one-token target needs no pass 2.
    let one = batch(&[&[3, 14, 15, 9]], &[&[26]], 0);
    let lp = host(m.target_logp(&m.prefix(&one), &m.targets(&one)));
    assert!((lp[0] - logp[0]).abs() < 1e-6);
}

/// Decoding from [`LatentModel::decode_start`] one token at a time gives the target log-probs of pass 2.
#[test]
fn decode_start_continues_like_pass_two() {
    let device = test_device();
    for n in [0, 1, 2] {
        let m = model(n, true, true, &device);
        let b = batch(&[&[3, 14, 15, 9, 26], &[5, 35, 8]], &[&[10, 20, 30], &[40, 41, 42]], n);
        let prefix = m.prefix(&b);
        let want = m.target_logp(&prefix, &m.targets(&b)); // [2, 3]
        let start = m.decode_start(&prefix);
        assert_eq!(start.cache.len(), b.prompt_len + n);
        let mut cache = start.cache;
        let mut hidden = start.last_hidden; // [2, d]
        for j in 0..3 {
            let logp = log_softmax(m.backbone.logits(hidden.clone()), 1); // [2, V]
            let ids: Vec<i64> = (0..2).map(|r| i64::from(b.target_ids[r * 3 + j])).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 1]), &device);
            let got = logp.gather(1, ids.clone()); // [2, 1]
            let d = maxdiff(got, want.clone().narrow(1, j, 1));
            assert!(d < 1e-5, "N={n} token {j}: maxdiff {d}");
            let out = m.backbone.hidden(HiddenInput::new(m.backbone.embed(ids)).with_cache(Some(cache)));
            cache = out.cache;
            hidden = out.hidden.reshape([2, D]);
        }
    }
}
