//! The `<|Thought|>` vocabulary rows (docs/method.md §2–3): LatentR³ appends one token per latent position to the
//! vocabulary; its input embedding is replaced by the latent `r` in the two-pass forward, but the row remains in
//! the (tied) LM head, so the log-softmax over the vocabulary includes it.

use burn::nn::Linear;
use burn::tensor::Tensor;
use r3_backbone::Backbone;

/// Appends `n` rows to the token embedding of `backbone` (and to its LM head when untied) and returns the
/// backbone with the id of the first new row, which is the old vocabulary size (49152 for SmolLM2).
///
/// Each new embedding row is the mean of the existing embedding rows, as `transformers`'
/// `resize_token_embeddings` initialises them (the official code calls it after adding `<|Thought|>`). A tied LM
/// head is the embedding, so it gains the same row.
///
/// NOTE: for an untied head the new rows are the mean of the head's own rows, as `transformers` resizes an
/// untied `lm_head`. `transformers` ≥ 4.46 samples the rows from a normal distribution with that mean and 10⁻⁹
/// times the covariance; the mean is that sample up to ~10⁻⁵.
///
/// The parameters keep their ids and their gradient setting; the appended values start a new lineage (they are
/// not a function of the old rows for autodiff).
pub fn append_thought_rows(mut backbone: Backbone, n: usize) -> (Backbone, usize) {
    let first_id = backbone.vocab_size();
    if n == 0 {
        return (backbone, first_id);
    }
    backbone.embed_tokens.weight = backbone.embed_tokens.weight.map(|w| append_mean_rows(w, n, 0));
    if let Some(head) = backbone.lm_head.take() {
        // burn stores the head as `[d, V]`: the vocabulary is the second axis. It has no bias (Llama, Qwen2).
        backbone.lm_head = Some(Linear { weight: head.weight.map(|w| append_mean_rows(w, n, 1)), bias: head.bias });
    }
    (backbone, first_id)
}

/// `w` with `n` copies of its mean along `axis` appended on that axis, with `w`'s gradient setting.
fn append_mean_rows(w: Tensor<2>, n: usize, axis: usize) -> Tensor<2> {
    let require_grad = w.is_require_grad();
    let autodiff = w.is_autodiff();
    // Computed without autodiff, so that the result is a fresh leaf that may require gradients again.
    let w = w.inner();
    let mean = match axis {
        0 => mean_rows(w.clone()),                         // [1, d]
        _ => mean_rows(w.clone().transpose()).transpose(), // [d, 1]
    };
    let extra = mean.repeat_dim(axis, n); // [n, d] or [d, n]
    let out = Tensor::cat(vec![w, extra], axis);
    let out = if autodiff { out.autodiff() } else { out };
    out.set_require_grad(require_grad)
}

/// The mean of the rows of `w`, summed in blocks of about √V rows and then over the blocks: a plain sequential
/// sum of 49 152 f32 rows is off by ~2·10⁻⁶ (PyTorch's reduction agrees with an f64 mean to 4·10⁻⁸).
///
/// # Shapes
/// - w: `[V, d]`
/// - output: `[1, d]`
fn mean_rows(w: Tensor<2>) -> Tensor<2> {
    let [v, d] = w.dims();
    let block = ((v as f64).sqrt().ceil() as usize).max(1);
    let full = v / block;
    let mut sum = w.clone().narrow(0, 0, full * block).reshape([full, block, d]).sum_dim(1).sum_dim(0); // [1, 1, d]
    if full * block < v {
        let rest = w.narrow(0, full * block, v - full * block).sum_dim(0).reshape([1, 1, d]); // [1, 1, d]
        sum = sum + rest;
    }
    sum.reshape([1, d]).div_scalar(v as f64) // [1, d]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use r3_backbone::{Arch, BackboneConfig};

    #[test]
    fn rows_are_the_mean_and_ids_follow_the_vocabulary() {
        let device = test_device();
        for tied in [true, false] {
            let config = BackboneConfig::new(Arch::Qwen2, 50, 16, 1, 2, 1, 8, 32, 1e4, 1e-6, true, tied, 64);
            let model = config.init(&device);
            let emb = model.embed_tokens.weight.val();
            let head = model.lm_head.as_ref().map(|h| h.weight.val());
            let (model, id) = append_thought_rows(model, 2);
            assert_eq!(id, 50);
            assert_eq!(model.vocab_size(), 52);
            let new = model.embed_tokens.weight.val();
            let want = emb.clone().mean_dim(0); // [1, 16]
            for row in [50, 51] {
                let diff = (new.clone().narrow(0, row, 1) - want.clone()).abs().max().into_scalar::<f32>();
                assert!(diff < 1e-6, "tied={tied} row {row}: {diff}");
            }
            let same = (new.narrow(0, 0, 50) - emb).abs().max().into_scalar::<f32>();
            assert_eq!(same, 0.0);
            let logits = model.logits(Tensor::<2>::ones([1, 16], &device));
            assert_eq!(logits.dims(), [1, 52], "tied={tied}");
            if let (Some(old), Some(h)) = (head, model.lm_head.as_ref()) {
                let h = h.weight.val();
                assert_eq!(h.dims(), [16, 52]);
                let diff = (h.narrow(1, 50, 1) - old.mean_dim(1)).abs().max().into_scalar::<f32>();
                assert!(diff < 1e-6, "head row: {diff}");
            }
        }
    }
}
