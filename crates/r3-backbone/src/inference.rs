//! Inference helpers: the key/value cache and greedy decoding.
//!
//! A [`KvCache`] is a value, not hidden state: [`Backbone::hidden`] takes it in [`HiddenInput::cache`] and
//! returns the extended cache in [`HiddenOutput::cache`]. Tensors are reference counted, so cloning a cache is
//! cheap and a prefix computed once can be shared by many continuations ([`KvCache::expand`] for samples or
//! beams, [`KvCache::select`] to reorder beams).

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::model::{Backbone, HiddenInput, HiddenOutput};

/// The keys and values of one layer, after RoPE.
///
/// The keys are stored transposed, ready to be the contiguous right operand of `q · kᵀ`: a strided `kᵀ` view
/// made the score matmul 3× (prefill) to 13× (one-token decoding) slower on flex, and the copy into this layout
/// is free because appending to a cache copies anyway.
#[derive(Clone, Debug)]
pub struct LayerKv {
    /// Keys, transposed: `[B, n_kv_heads, head_dim, L_cache]`.
    pub k_t: Tensor<4>,
    /// Values `[B, n_kv_heads, L_cache, head_dim]`.
    pub v: Tensor<4>,
}

/// The key/value cache of every layer plus the padding mask of the cached tokens.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// One entry per decoder layer.
    pub layers: Vec<LayerKv>,
    /// `[B, L_cache]`, `true` for real tokens and `false` for (left) padding; `None` when every cached token is
    /// real, which lets a one-token decode step skip the attention mask altogether.
    pub padding: Option<Tensor<2, Bool>>,
}

impl KvCache {
    /// The number of cached positions (padding included).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.v.dims()[2])
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of rows.
    pub fn batch_size(&self) -> usize {
        self.layers.first().map_or(0, |l| l.v.dims()[0])
    }

    /// Repeats every row `n` times consecutively (`repeat_interleave`): row `i` becomes rows `i·n .. i·n + n` of
    /// the returned cache. Use it to continue one prompt with `n` samples or beams after a single prefill.
    pub fn expand(&self, n: usize) -> KvCache {
        let b = self.batch_size();
        let indices: Vec<i64> = (0..b as i64).flat_map(|i| std::iter::repeat_n(i, n)).collect();
        let device = self.device();
        self.select(Tensor::from_data(TensorData::new(indices, [b * n]), &device))
    }

    /// Keeps the rows `indices` in that order (rows may repeat): beam-search reordering.
    ///
    /// # Shapes
    /// - indices: `[B']` with values in `0..B`
    /// - output: a cache of `B'` rows
    pub fn select(&self, indices: Tensor<1, Int>) -> KvCache {
        KvCache {
            layers: self
                .layers
                .iter()
                .map(|l| LayerKv {
                    k_t: l.k_t.clone().select(0, indices.clone()),
                    v: l.v.clone().select(0, indices.clone()),
                })
                .collect(),
            // NOTE: through an int tensor: on flex, `select` on a bool tensor returns u8-stored bools, which a
            // later `cat` with a native bool mask (the next `Backbone::hidden` step) rejects as a dtype mismatch.
            padding: self.padding.clone().map(|p| p.int().select(0, indices).equal_elem(1)),
        }
    }

    /// The device of the cached tensors.
    pub fn device(&self) -> Device {
        self.layers.first().expect("a cache has at least one layer").v.device()
    }
}

/// Greedy decoding with the cache: one prefill over `prompt_ids`, then one token per step, each the argmax of
/// the last logits. Stops after `max_new` tokens or after `eos` (which is included in the result).
///
/// Returns only the generated ids. One host read per step (the argmax) is unavoidable here.
pub fn greedy_generate(
    model: &Backbone,
    prompt_ids: &[u32],
    max_new: usize,
    eos: Option<u32>,
    device: &Device,
) -> Vec<u32> {
    assert!(!prompt_ids.is_empty(), "greedy_generate needs a non-empty prompt");
    let mut out = Vec::with_capacity(max_new);
    let mut ids: Vec<i64> = prompt_ids.iter().map(|&t| i64::from(t)).collect();
    let mut cache = None;
    while out.len() < max_new {
        let l = ids.len();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, l]), device);
        let embeddings = model.embed(input);
        let input = HiddenInput::new(embeddings).with_cache(cache).last_only();
        let HiddenOutput { hidden, cache: next } = model.hidden(input);
        cache = Some(next);
        let logits = model.logits(hidden); // [1, 1, V]
        let token = logits.argmax(2).into_scalar::<i64>() as u32;
        out.push(token);
        if Some(token) == eos {
            break;
        }
        ids = vec![i64::from(token)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Arch, BackboneConfig};
    use crate::test_device;

    /// A padded cache that was expanded and reordered still extends with a new step (regression: the padding
    /// mask came back from `select` in a storage that the next step's `cat` rejected), and each selected row
    /// continues exactly as its source row.
    #[test]
    fn a_selected_padded_cache_extends() {
        let device = test_device();
        device.seed(3);
        let model =
            BackboneConfig::new(Arch::Qwen2, 40, 16, 2, 4, 2, 4, 24, 10_000.0, 1e-6, true, true, 64).init(&device);
        let ids = Tensor::<2, Int>::from_data([[0, 5, 6], [7, 8, 9]], &device);
        let padding = Tensor::<2, Bool>::from_data([[false, true, true], [true, true, true]], &device);
        let out = model.hidden(HiddenInput::new(model.embed(ids)).with_padding(padding));
        let picked = out.cache.expand(2).select(Tensor::from_data([3, 0], &device)); // rows 1 and 0
        let step = Tensor::<2, Int>::from_data([[4], [4]], &device);
        let next = model.hidden(HiddenInput::new(model.embed(step.clone())).with_cache(Some(picked)));
        let alone = model.hidden(HiddenInput::new(model.embed(step)).with_cache(Some(out.cache)));
        let a: Vec<f32> = next.hidden.into_data().try_to_vec().unwrap();
        let b: Vec<f32> = alone.hidden.into_data().try_to_vec().unwrap();
        let d = a.len() / 2;
        let maxdiff = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(maxdiff(&a[..d], &b[d..]) < 1e-6 && maxdiff(&a[d..], &b[..d]) < 1e-6);
    }
}
