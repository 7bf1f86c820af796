//! The official trainer's per-sample computation, the reference of the shared-prefix micro-step (tests, bench).
//!
//! For every sample, the official LR-GRPO trainer runs the backbone over the whole sequence
//! `[prompt, <|Thought|>, target]` (pass 1), reads `r` from LatentRATT, adds the sample's noise, and runs the
//! whole sequence again with `r + ε` in place of the thought embedding (pass 2): two full passes per sample and
//! no sharing between the `K` samples of a prompt. [`GrpoStep::lr_grpo`](crate::GrpoStep::lr_grpo) computes the
//! prompt once per group instead; the two agree up to rounding (tested).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use r3_backbone::HiddenInput;
use r3_data::SftBatch;
use r3_latent::LatentModel;

/// The per-token target log-probs of every sample, computed sample by sample with two full passes each
/// (`n_latent = 1`, with LatentRATT).
///
/// # Panics
/// When the model has no LatentRATT or `n_latent ≠ 1`, or the noise is not `[G·K, 1, d]`.
///
/// # Shapes
/// - batch: `G` rows (prompts and targets); noise: `[G·K, 1, d]`
/// - output: `[G·K, T]` (0 at target padding)
pub fn naive_noisy_logp(model: &LatentModel, batch: &SftBatch, noise: Tensor<3>) -> Tensor<2> {
    assert_eq!(model.n_latent, 1, "the naive reference covers N = 1 (the official code)");
    let ratt = model.ratt.as_ref().expect("the naive reference needs LatentRATT");
    let [rows, n, d] = noise.dims();
    assert_eq!(n, 1, "noise [G·K, 1, d]");
    let (g, p, t) = (batch.rows, batch.prompt_len, batch.target_len);
    assert!(rows.is_multiple_of(g), "noise rows {rows} vs {g} prompts");
    let k = rows / g;
    let device = model.device();
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        let row = i / k;
        let prompt: Vec<i64> = (0..p)
            .filter(|&j| batch.prompt_real[row * p + j])
            .map(|j| i64::from(batch.prompt_ids[row * p + j]))
            .collect();
        let target: Vec<i64> = (0..t)
            .filter(|&j| batch.target_real[row * t + j])
            .map(|j| i64::from(batch.target_ids[row * t + j]))
            .collect();
        let (pl, tl) = (prompt.len(), target.len());
        let ids: Vec<i64> =
            prompt.iter().copied().chain([model.thought_id as i64]).chain(target.iter().copied()).collect();
        let l = ids.len();
        let emb = model.backbone.embed(Tensor::<2, Int>::from_data(TensorData::new(ids, [1, l]), &device)); // [1, L, d]
        // Pass 1 over the whole sequence, as the official code does.
        let h1 = model.backbone.hidden(HiddenInput::new(emb.clone())).hidden; // [1, L, d]
        let r = ratt.forward(h1.narrow(1, 0, pl), None); // [1, d]
        let r = r + noise.clone().narrow(0, i, 1).reshape([1, d]); // [1, d]
        // Pass 2 with r + ε at the thought position.
        let x = Tensor::cat(vec![emb.clone().narrow(1, 0, pl), r.reshape([1, 1, d]), emb.narrow(1, pl + 1, tl)], 1); // [1, L, d]
        let h2 = model.backbone.hidden(HiddenInput::new(x)).hidden.narrow(1, pl, tl); // [1, T_i, d]
        let logp = log_softmax(model.backbone.logits(h2), 2); // [1, T_i, V]
        let ids = Tensor::<3, Int>::from_data(TensorData::new(target, [1, tl, 1]), &device);
        let logp = logp.gather(2, ids).reshape([1, tl]); // [1, T_i]
        let logp = if tl < t { Tensor::cat(vec![logp, Tensor::zeros([1, t - tl], &device)], 1) } else { logp }; // [1, T]
        out.push(logp);
    }
    Tensor::cat(out, 0) // [G·K, T]
}
