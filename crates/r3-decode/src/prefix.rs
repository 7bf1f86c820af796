//! The prompt prefix once: the keys and values of the tokens that every prompt of a run starts with (BOS, the
//! instruction, the `### User Input` header: about 70 of SmolLM2's 90–200 prompt tokens on CDs), computed once
//! and shared by the start state of every batch.
//!
//! The shared prefix is the longest common token prefix of the prompts, computed at run time
//! ([`SharedPrefix::common_len`]; no template is assumed), cut so that every prompt keeps at least one token of
//! its own (its last position scores the first generated token). A batch's start state is then the prefix's
//! cache repeated for every row, followed by each row's suffix, the shorter suffixes padded in front:
//! `[prefix | pad | suffix]`. The padding is masked and positions count real tokens only (they come from the
//! padding mask, as `transformers` derives them from the attention mask), so every real token sees the same keys
//! at the same positions as in the left-padded `[pad | prefix | suffix]` of [`DecodeStart::from_prompts`]: the
//! two are equal up to the order of floating-point sums (tested).

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use r3_backbone::{Backbone, HiddenInput, KvCache};

use crate::start::DecodeStart;

/// The keys and values of a token prefix shared by every prompt, for one model.
#[derive(Clone, Debug)]
pub struct SharedPrefix {
    ids: Vec<u32>,
    cache: KvCache,
}

impl SharedPrefix {
    /// The length of the longest common token prefix of `prompts`, at most the shortest prompt's length minus
    /// one (every prompt keeps a token of its own); 0 without prompts.
    pub fn common_len(prompts: &[&[u32]]) -> usize {
        let Some((first, rest)) = prompts.split_first() else { return 0 };
        let mut n = first.len();
        for p in rest {
            n = n.min(p.len()).min(first.iter().zip(p.iter()).take_while(|(a, b)| a == b).count());
        }
        n.min(prompts.iter().map(|p| p.len()).min().unwrap_or(0).saturating_sub(1))
    }

    /// Runs the model over `ids` once and keeps their cache.
    ///
    /// # Panics
    /// When `ids` is empty.
    pub fn new(model: &Backbone, ids: Vec<u32>, device: &Device) -> SharedPrefix {
        assert!(!ids.is_empty(), "a shared prefix has at least one token");
        let n = ids.len();
        let t: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
        let x = model.embed(Tensor::<2, Int>::from_data(TensorData::new(t, [1, n]), device)); // [1, P, d]
        let cache = model.hidden(HiddenInput::new(x).last_only()).cache;
        SharedPrefix { ids, cache }
    }

    /// The prefix's tokens.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Whether `prompt` starts with the prefix and has at least one token after it.
    pub fn fits(&self, prompt: &[u32]) -> bool {
        prompt.len() > self.ids.len() && prompt.starts_with(&self.ids)
    }

    /// The start state of prompts that all start with the prefix ([`SharedPrefix::fits`]): the prefix's cache
    /// for every row, then each suffix (padded in front with `pad_id`, masked), the logits of the last position.
    ///
    /// # Panics
    /// When `prompts` is empty or a prompt does not fit.
    ///
    /// # Shapes
    /// - prompts: `B` id lists
    /// - output: a cache of `B` rows of `P + S` positions (`S` the longest suffix); logits `[B, V]`
    pub fn start(&self, model: &Backbone, prompts: &[&[u32]], pad_id: u32) -> DecodeStart {
        assert!(!prompts.is_empty(), "SharedPrefix::start needs at least one prompt");
        assert!(prompts.iter().all(|p| self.fits(p)), "every prompt must start with the shared prefix");
        let device = self.cache.device();
        let p = self.ids.len();
        let b = prompts.len();
        let s = prompts.iter().map(|q| q.len() - p).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * s);
        let mut real = Vec::with_capacity(b * s);
        for q in prompts {
            let suffix = &q[p..];
            let pad = s - suffix.len();
            ids.extend(std::iter::repeat_n(i64::from(pad_id), pad).chain(suffix.iter().map(|&t| i64::from(t))));
            real.extend(std::iter::repeat_n(false, pad).chain(std::iter::repeat_n(true, suffix.len())));
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, s]), &device);
        let cache = self.cache.expand(b);
        let mut input = HiddenInput::new(model.embed(ids)).with_cache(Some(cache)).last_only();
        if prompts.iter().any(|q| q.len() - p < s) {
            input = input.with_padding(Tensor::<2, Bool>::from_data(TensorData::new(real, [b, s]), &device));
        }
        let out = model.hidden(input); // hidden: [B, 1, d]
        let logits = model.logits(out.hidden); // [B, 1, V]
        let v = logits.dims()[2];
        DecodeStart { cache: out.cache, logits: logits.reshape([b, v]) } // [B, V]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::start::{advance, host_f32};
    use r3_backbone::{Arch, BackboneConfig};

    #[test]
    fn common_len_is_the_longest_common_prefix_minus_a_token_of_each() {
        assert_eq!(SharedPrefix::common_len(&[&[1, 2, 3, 4], &[1, 2, 3, 5, 6], &[1, 2, 3, 4, 7]]), 3);
        assert_eq!(SharedPrefix::common_len(&[&[1, 2, 3], &[1, 2, 3, 4]]), 2);
        assert_eq!(SharedPrefix::common_len(&[&[1, 2], &[3, 2]]), 0);
        assert_eq!(SharedPrefix::common_len(&[&[1, 2, 3]]), 2);
        assert_eq!(SharedPrefix::common_len(&[]), 0);
    }

    /// `[prefix | pad | suffix]` equals the left-padded prompts `[pad | prefix | suffix]`: the start logits and
    /// two decoding steps (rows reordered and repeated) agree within the cache tests' 1e-5, for both
    /// architectures.
    #[test]
    fn shared_prefix_start_equals_the_left_padded_prompts() {
        let device = crate::test_device();
        for arch in [Arch::Llama, Arch::Qwen2] {
            device.seed(9);
            let v = 30;
            let model = BackboneConfig::new(arch, v, 16, 2, 4, 2, 4, 32, 10_000.0, 1e-6, arch == Arch::Qwen2, true, 64)
                .init(&device);
            let prompts: Vec<Vec<u32>> =
                vec![vec![1, 5, 6, 7, 8, 9, 10], vec![1, 5, 6, 7, 11], vec![1, 5, 6, 7, 12, 13, 14, 15, 16]];
            let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
            let n = SharedPrefix::common_len(&refs);
            assert_eq!(n, 4);
            let shared = SharedPrefix::new(&model, prompts[0][..n].to_vec(), &device);
            let a = shared.start(&model, &refs, 0);
            let b = DecodeStart::from_prompts(&model, &prompts, 0, &device);
            let close = |x: Tensor<2>, y: Tensor<2>, what: &str| {
                let d = host_f32(x).iter().zip(host_f32(y)).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(d < 1e-5, "{arch:?}, {what}: maxdiff {d}");
            };
            close(a.logits.clone(), b.logits.clone(), "start logits");
            let (ca, la) = advance(&model, a.cache, &[2, 0, 2], &[3, 4, 5]);
            let (cb, lb) = advance(&model, b.cache, &[2, 0, 2], &[3, 4, 5]);
            close(la, lb, "step 1");
            let (_, la) = advance(&model, ca, &[1, 2], &[6, 7]);
            let (_, lb) = advance(&model, cb, &[1, 2], &[6, 7]);
            close(la, lb, "step 2");
        }
    }
}
