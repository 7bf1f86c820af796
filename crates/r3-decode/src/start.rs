//! The decoder's start state and the device steps shared by beam search, sampling and free generation.
//!
//! Every decoding routine starts from a [`DecodeStart`]: the key/value cache of `B` prompts (left-padded, one row
//! per user) and the logits of their last position. BIGRec builds it from plain prompt ids
//! ([`DecodeStart::from_prompts`]); the latent model of r3-latent builds it from the prompt plus the latent
//! tokens (its cache then also holds the latent positions) and fills the struct directly. The prompt is thus
//! computed once per user; the decoding routines copy its cache rows to the beams or samples with
//! [`KvCache::select`] (a generalised [`KvCache::expand`]: only live rows are kept).

use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};
use r3_backbone::{Backbone, HiddenInput, KvCache};

/// The start state of decoding for `B` users.
#[derive(Clone, Debug)]
pub struct DecodeStart {
    /// The cache of the prompts (and of any latent tokens), `B` rows, left-padded.
    pub cache: KvCache,
    /// The logits of the last position of every row, `[B, V]`: the distribution of the first generated token.
    pub logits: Tensor<2>,
}

impl DecodeStart {
    /// Prefills plain prompts (BIGRec: no latent token): left-pads them with `pad_id` (the padding is masked, and
    /// positions count real tokens only, as `transformers`' `generate` derives them from the attention mask),
    /// runs the decoder once and keeps the cache and the last logits.
    ///
    /// # Panics
    /// When `prompts` is empty or a prompt is empty.
    ///
    /// # Shapes
    /// - prompts: `B` id lists of any lengths
    /// - output: a cache of `B` rows of `max_len` positions; logits `[B, V]`
    pub fn from_prompts(model: &Backbone, prompts: &[Vec<u32>], pad_id: u32, device: &Device) -> Self {
        assert!(!prompts.is_empty(), "DecodeStart::from_prompts needs at least one prompt");
        assert!(prompts.iter().all(|p| !p.is_empty()), "DecodeStart::from_prompts got an empty prompt");
        let b = prompts.len();
        let l = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * l);
        let mut real = Vec::with_capacity(b * l);
        for p in prompts {
            let pad = l - p.len();
            ids.extend(std::iter::repeat_n(i64::from(pad_id), pad).chain(p.iter().map(|&t| i64::from(t))));
            real.extend(std::iter::repeat_n(false, pad).chain(std::iter::repeat_n(true, p.len())));
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, l]), device);
        // Decoding reads the last position only: the last layer skips the rest (`last_only`).
        let mut input = HiddenInput::new(model.embed(ids)).last_only();
        if prompts.iter().any(|p| p.len() < l) {
            input = input.with_padding(Tensor::<2, Bool>::from_data(TensorData::new(real, [b, l]), device));
        }
        let out = model.hidden(input); // hidden: [B, 1, d]
        let logits = model.logits(out.hidden); // [B, 1, V]
        let v = logits.dims()[2];
        DecodeStart { cache: out.cache, logits: logits.reshape([b, v]) } // [B, V]
    }

    /// The number of users (rows).
    pub fn batch_size(&self) -> usize {
        self.logits.dims()[0]
    }

    /// Checks that the cache and the logits agree (a mismatch is a bug of the caller).
    pub(crate) fn check(&self, model: &Backbone) {
        let [b, v] = self.logits.dims();
        assert_eq!(
            self.cache.batch_size(),
            b,
            "the start cache has {} rows but the logits {b}",
            self.cache.batch_size()
        );
        assert_eq!(
            v,
            model.vocab_size(),
            "the start logits have {v} columns but the model's vocabulary is {}",
            model.vocab_size()
        );
        assert_eq!(self.cache.layers.len(), model.n_layers(), "the start cache has the wrong number of layers");
    }
}

/// Full-vocabulary log-probabilities at the requested `(row, token)` pairs: `log_softmax(logits[row])[token]`,
/// computed as `torch.log_softmax` does (`(x − max) − log Σ exp(x − max)`, in f32). Only the requested values
/// come back to the host.
///
/// # Shapes
/// - logits: `[R, V]`
/// - output: one value per pair
pub(crate) fn log_probs_at(logits: Tensor<2>, pairs: &[(usize, u32)]) -> Vec<f32> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let [r, v] = logits.dims();
    let device = logits.device();
    let logits = logits.cast(DType::F32);
    let shifted = logits.clone() - logits.max_dim(1); // [R, V]
    let log_sum = shifted.clone().exp().sum_dim(1).log().reshape([r]); // [R]
    let flat: Vec<i64> = pairs.iter().map(|&(row, t)| (row * v) as i64 + i64::from(t)).collect();
    let rows: Vec<i64> = pairs.iter().map(|&(row, _)| row as i64).collect();
    let n = pairs.len();
    let flat = Tensor::<1, Int>::from_data(TensorData::new(flat, [n]), &device);
    let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
    let picked = shifted.reshape([r * v]).select(0, flat) - log_sum.select(0, rows); // [n]
    host_f32(picked)
}

/// Reads a float tensor back to the host as f32.
pub(crate) fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(DType::F32).into_data().try_into_vec_as::<f32>().expect("an f32 tensor reads back as f32")
}

/// Reads an int tensor back to the host as i64.
pub(crate) fn host_i64<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.into_data().try_into_vec_as::<i64>().expect("an int tensor converts to i64")
}

/// One decoding step: keeps the cache rows `parents` (in that order, rows may repeat), feeds `tokens` (one per
/// kept row) and returns the extended cache and the logits of the new tokens.
///
/// # Shapes
/// - cache: `R` rows; parents, tokens: `R'` entries with parents in `0..R`
/// - output: a cache of `R'` rows; logits `[R', V]`
pub(crate) fn advance(model: &Backbone, cache: KvCache, parents: &[usize], tokens: &[u32]) -> (KvCache, Tensor<2>) {
    assert_eq!(parents.len(), tokens.len(), "one token per kept row");
    let device = cache.device();
    let r = parents.len();
    let identity = parents.len() == cache.batch_size() && parents.iter().enumerate().all(|(i, &p)| i == p);
    let cache = if identity {
        cache
    } else {
        let idx: Vec<i64> = parents.iter().map(|&p| p as i64).collect();
        let mut cache = cache.select(Tensor::from_data(TensorData::new(idx, [r]), &device));
        // NOTE: on flex, `select` returns a bool tensor stored as u8, which `Tensor::cat` then refuses to join with
        // the backbone's native-bool `ones` mask of the new tokens ("cat: dtype mismatch"). A comparison gives the
        // native bool dtype back.
        cache.padding = cache.padding.map(|p| p.int().equal_elem(1));
        cache
    };
    let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [r, 1]), &device);
    let out = model.hidden(HiddenInput::new(model.embed(ids)).with_cache(Some(cache)));
    let logits = model.logits(out.hidden); // [R', 1, V]
    let v = logits.dims()[2];
    (out.cache, logits.reshape([r, v])) // [R', V]
}

#[cfg(test)]
mod tests {
    use super::*;
    use r3_backbone::{Arch, BackboneConfig};

    /// Left-padded prompts give each row the logits of the prompt alone, and `log_probs_at` equals a host
    /// log-softmax; `advance` continues every row as a separate prefill would.
    #[test]
    fn padded_start_and_steps_match_single_prompts() {
        let device = crate::test_device();
        device.seed(3);
        let model =
            BackboneConfig::new(Arch::Qwen2, 20, 16, 2, 4, 2, 4, 32, 10_000.0, 1e-6, true, true, 64).init(&device);
        let prompts = vec![vec![3, 4, 5, 6], vec![7, 8], vec![9]];
        let batch = DecodeStart::from_prompts(&model, &prompts, 0, &device);
        let logits = host_f32(batch.logits.clone());
        for (i, p) in prompts.iter().enumerate() {
            let alone = host_f32(DecodeStart::from_prompts(&model, std::slice::from_ref(p), 0, &device).logits);
            let d = alone.iter().zip(&logits[i * 20..(i + 1) * 20]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(d < 1e-5, "row {i}: maxdiff {d}");
        }
        // log_probs_at == log_softmax on the host.
        let pairs = [(0, 3u32), (2, 19), (1, 0)];
        let got = log_probs_at(batch.logits.clone(), &pairs);
        for (&(r, t), g) in pairs.iter().zip(&got) {
            let row = &logits[r * 20..(r + 1) * 20];
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
            assert!((g - (row[t as usize] - lse)).abs() < 1e-5);
        }
        // Two steps with reordered, repeated rows: row 2 twice, then row 0.
        let (cache, step) = advance(&model, batch.cache, &[2, 2, 0], &[11, 12, 13]);
        let (_, step2) = advance(&model, cache, &[1, 2], &[14, 15]);
        let step = host_f32(step);
        let step2 = host_f32(step2);
        let want = |ids: Vec<u32>| host_f32(DecodeStart::from_prompts(&model, &[ids], 0, &device).logits);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) < 1e-5;
        assert!(close(&step[20..40], &want(vec![9, 12])));
        assert!(close(&step[40..60], &want(vec![3, 4, 5, 6, 13])));
        assert!(close(&step2[..20], &want(vec![9, 12, 14])));
        assert!(close(&step2[20..40], &want(vec![3, 4, 5, 6, 13, 15])));
    }
}
