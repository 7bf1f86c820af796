//! What the trainer needs from a model: [`SftModel::nll`], the summed token NLL of a batch's targets.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, FloatDType, Int, Tensor, TensorData};
use r3_data::SftBatch;

/// The summed negative log-likelihood of the real target tokens of a batch, and how many tokens it sums.
#[derive(Clone, Debug)]
pub struct Nll {
    /// `Σ −log P(y_i | x, r, y_<i)` over the real target tokens (a one-element tensor on the model's device,
    /// tracked by autodiff when the model is).
    pub sum: Tensor<1>,
    /// The number of real target tokens summed (`target_real` count of the batch, EOS included).
    pub tokens: usize,
}

/// A model the SFT trainer can train: a burn [`Module`] (parameters, records, `valid()`) with a token loss,
/// shared with a worker of rayon's pool for its forward and backward passes (hence `Sync`).
///
/// The trainer forms the loss of a global batch as `Σ nll.sum / Σ nll.tokens` over its micro-batches (docs/method.md
/// §4: labels only on the target tokens), so `nll` must *sum*, not average. Implemented for
/// `r3_latent::LatentModel` (the two-pass latent forward) and usable for any BIGRec-style decoder.
pub trait SftModel: Module + Sync + 'static {
    /// The summed NLL of the real target tokens of `batch` (see [`target_nll`] for the usual last step).
    fn nll(&self, batch: &SftBatch) -> Nll;
}

/// The summed NLL of a batch's real target tokens from the logits that predict them.
///
/// `logits[b, j]` must be the logits at the position *before* target token `j` of row `b` (position
/// `P + N + j − 1` of the full sequence of an [`SftBatch`]). The log-softmax runs in f32 whatever the model
/// dtype; padded target positions (`target_real = false`) are excluded.
///
/// # Shapes
/// - logits: `[B, T, V]` with `B = batch.rows`, `T = batch.target_len`
/// - output: `sum` `[1]`
pub fn target_nll(logits: Tensor<3>, batch: &SftBatch) -> Nll {
    let [b, t, v] = logits.dims();
    assert_eq!([b, t], [batch.rows, batch.target_len], "logits [B, T, V] = {:?} do not match the batch", [b, t, v]);
    let device = logits.device();
    let ids: Vec<i64> = batch.target_ids.iter().map(|&id| i64::from(id)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &device).reshape([b, t, 1]); // [B, T, 1]
    let padding = Tensor::<2, Bool>::from_data(
        TensorData::new(batch.target_real.iter().map(|r| !r).collect::<Vec<bool>>(), [b, t]),
        &device,
    );
    let logp = log_softmax(logits.cast(FloatDType::F32), 2); // [B, T, V]
    let picked = logp.gather(2, ids).reshape([b, t]); // [B, T]
    let sum = picked.mask_fill(padding, 0.0).sum().neg(); // [1]
    Nll { sum, tokens: batch.target_real.iter().filter(|r| **r).count() }
}
