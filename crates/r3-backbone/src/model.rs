//! The decoder: token embedding, pre-norm decoder layers (RMSNorm, grouped-query attention with RoPE, SwiGLU
//! MLP), the final RMSNorm and the LM head, as `LlamaForCausalLM` / `Qwen2ForCausalLM` in `transformers`.
//!
//! The forward pass is split in three calls so that callers pay only for what they use (LatentR³ needs the
//! final hidden state, beam search only the last logits):
//! - [`Backbone::embed`]: ids `[B, L]` → embeddings `[B, L, d]`;
//! - [`Backbone::hidden`]: embeddings (plus padding, positions and a [`KvCache`]) → final-RMSNorm output
//!   `[B, L, d]` and the extended cache;
//! - [`Backbone::logits`]: hidden states at the positions the caller selected → logits over the vocabulary.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::attention::{Attention, AttentionConfig, AttentionInput, AttentionMask, AttentionOutput, Context};
use crate::config::BackboneConfig;
use crate::inference::{KvCache, LayerKv};
use crate::kernels;
use crate::pack::Rows;
use crate::rope::{RotaryEmbedding, RotaryEmbeddingConfig};

/// Configuration of [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// The model width `d`.
    pub d_model: usize,
    /// The inner width `f`.
    pub d_ff: usize,
}

impl MlpConfig {
    /// Creates the MLP with random weights.
    pub fn init(&self, device: &Device) -> Mlp {
        let proj = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Mlp {
            gate_proj: proj(self.d_model, self.d_ff),
            up_proj: proj(self.d_model, self.d_ff),
            down_proj: proj(self.d_ff, self.d_model),
        }
    }
}

/// The SwiGLU MLP: `down(silu(gate(x)) ⊙ up(x))`, no biases. On a flex device without autodiff, `silu(g) ⊙ u`
/// is one vectorised pass (`kernels::silu_mul`); elsewhere it is burn's `silu` and a product.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `d → f`, passed through SiLU.
    pub gate_proj: Linear,
    /// `d → f`.
    pub up_proj: Linear,
    /// `f → d`.
    pub down_proj: Linear,
}

impl Mlp {
    /// Applies the MLP.
    ///
    /// # Shapes
    /// - x: `[..., d]`
    /// - output: `[..., d]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let gate = self.gate_proj.forward(x.clone());
        let up = self.up_proj.forward(x);
        let h = if kernels::host_kernels(&gate) { kernels::silu_mul(gate, up) } else { silu(gate) * up };
        self.down_proj.forward(h)
    }
}

/// Configuration of [`DecoderLayer`].
#[derive(Config, Debug)]
pub struct DecoderLayerConfig {
    /// The attention block.
    pub attention: AttentionConfig,
    /// The MLP block.
    pub mlp: MlpConfig,
    /// The ε of both RMSNorms.
    pub rms_norm_eps: f64,
}

impl DecoderLayerConfig {
    /// Creates the layer with random weights (norm gains at one).
    pub fn init(&self, device: &Device) -> DecoderLayer {
        let norm = || RmsNormConfig::new(self.attention.d_model).with_epsilon(self.rms_norm_eps).init(device);
        DecoderLayer {
            input_layernorm: norm(),
            self_attn: self.attention.init(device),
            post_attention_layernorm: norm(),
            mlp: self.mlp.init(device),
        }
    }
}

/// One pre-norm decoder layer: `h = x + attn(norm₁(x))`, `y = h + mlp(norm₂(h))`.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// RMSNorm before attention.
    pub input_layernorm: RmsNorm,
    /// Self-attention.
    pub self_attn: Attention,
    /// RMSNorm before the MLP.
    pub post_attention_layernorm: RmsNorm,
    /// The MLP.
    pub mlp: Mlp,
}

impl DecoderLayer {
    /// Applies the layer. The input is the same as [`Attention::forward`]'s except that `x` is the residual
    /// stream (the layer normalises it); the output's `y` is the new residual stream.
    ///
    /// # Shapes
    /// - x: `[B, L, d]`; mask `[B, 1, L, L_c + L]`
    /// - y: `[B, L, d]`
    pub fn forward(&self, input: AttentionInput) -> AttentionOutput {
        let AttentionInput { x, rope, mask, cache } = input;
        let [b, l, d] = x.dims();
        let rows = Rows::dense(b, l);
        let (y, kv) = self.forward_rows(x.reshape([b * l, d]), &rows, Context { rope, mask, cache });
        AttentionOutput { y: rows.unpack(y), kv }
    }

    /// [`DecoderLayer::forward`] over the rows of a possibly packed batch: the residual stream, the norms and
    /// the MLP hold only the rows ([`Rows`]).
    ///
    /// # Shapes
    /// - x: `[rows, d]`
    /// - y: `[rows, d]`
    fn forward_rows(&self, x: Tensor<2>, rows: &Rows, ctx: Context) -> (Tensor<2>, LayerKv) {
        let normed = norm(&self.input_layernorm, x.clone());
        let (y, kv) = self.self_attn.forward_rows(normed, rows, ctx);
        let h = x + y;
        let y = h.clone() + self.mlp.forward(norm(&self.post_attention_layernorm, h));
        (y, kv)
    }
}

/// `norm.forward(x)`, in one pass on a flex device without autodiff ([`crate::kernels::rms_norm`]).
fn norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    if kernels::host_kernels(&x) { kernels::rms_norm(x, norm.gamma.val(), norm.epsilon) } else { norm.forward(x) }
}

impl BackboneConfig {
    /// A randomly initialised decoder (tests, training from scratch). Pretrained weights come from
    /// [`crate::import`]. Parameters are initialised lazily by burn.
    pub fn init(&self, device: &Device) -> Backbone {
        let layer = DecoderLayerConfig::new(
            AttentionConfig::new(self.hidden_size, self.n_heads, self.n_kv_heads, self.head_dim, self.qkv_bias),
            MlpConfig::new(self.hidden_size, self.intermediate_size),
            self.rms_norm_eps,
        );
        Backbone {
            embed_tokens: EmbeddingConfig::new(self.vocab_size, self.hidden_size).init(device),
            layers: (0..self.n_layers).map(|_| layer.init(device)).collect(),
            norm: RmsNormConfig::new(self.hidden_size).with_epsilon(self.rms_norm_eps).init(device),
            lm_head: (!self.tie_word_embeddings)
                .then(|| LinearConfig::new(self.hidden_size, self.vocab_size).with_bias(false).init(device)),
            rope: RotaryEmbeddingConfig::new(self.head_dim, self.rope_theta).init(device),
        }
    }
}

/// A Llama or Qwen2 decoder.
#[derive(Module, Debug)]
pub struct Backbone {
    /// The token embedding `[V, d]`.
    pub embed_tokens: Embedding,
    /// The decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// The final RMSNorm.
    pub norm: RmsNorm,
    /// The LM head `d → V`; `None` when tied to the embedding (`logits = h · Eᵀ`).
    pub lm_head: Option<Linear>,
    /// The rotary embedding (no parameters).
    pub rope: RotaryEmbedding,
}

/// The inputs of [`Backbone::hidden`]. Build it with [`HiddenInput::new`] and the `with_` methods.
#[derive(Clone, Debug)]
pub struct HiddenInput {
    /// The input embeddings of the new tokens, `[B, L, d]` (from [`Backbone::embed`], possibly edited, e.g. a
    /// latent vector in place of a token).
    pub embeddings: Tensor<3>,
    /// `[B, L]`, `true` for real tokens and `false` for padding of the new tokens (left padding: padding comes
    /// first in a row). `None`: every new token is real. The cache remembers the padding of earlier tokens.
    pub padding: Option<Tensor<2, Bool>>,
    /// `[B, L]`, the RoPE positions of the new tokens. `None`: the number of real tokens before each token
    /// (cached ones included), padded tokens get position 1, as `transformers`' `generate` derives them from the
    /// attention mask, so that a left-padded row gives the same outputs as the row alone.
    ///
    /// NOTE: a plain `transformers` forward call without `position_ids` uses `0..L` including the padding;
    /// pass `arange` positions explicitly to reproduce that (e.g. to match training code that relied on it).
    pub positions: Option<Tensor<2, Int>>,
    /// The cache of the earlier tokens of the same rows.
    pub cache: Option<KvCache>,
    /// Only the last position's hidden state is wanted (a prefill before decoding): the last layer computes the
    /// keys and values of every new token, as always, but its attention output and MLP only at the last
    /// position of each row, and [`HiddenOutput::hidden`] is `[B, 1, d]`. The last position of every row must
    /// be a real token (left padding). The cache is the same as without it.
    pub last_only: bool,
}

impl HiddenInput {
    /// Embeddings of new tokens, no padding, derived positions, no cache.
    pub fn new(embeddings: Tensor<3>) -> Self {
        HiddenInput { embeddings, padding: None, positions: None, cache: None, last_only: false }
    }

    /// Sets the padding mask of the new tokens (`[B, L]`, `true` = real).
    pub fn with_padding(mut self, padding: Tensor<2, Bool>) -> Self {
        self.padding = Some(padding);
        self
    }

    /// Sets explicit positions (`[B, L]`).
    pub fn with_positions(mut self, positions: Tensor<2, Int>) -> Self {
        self.positions = Some(positions);
        self
    }

    /// Sets (or clears) the cache of earlier tokens.
    pub fn with_cache(mut self, cache: Option<KvCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Asks for the last position's hidden state only ([`HiddenInput::last_only`]).
    pub fn last_only(mut self) -> Self {
        self.last_only = true;
        self
    }
}

/// The outputs of [`Backbone::hidden`].
#[derive(Clone, Debug)]
pub struct HiddenOutput {
    /// The final-RMSNorm output of the new tokens, `[B, L, d]` (`[B, 1, d]`, the last position, with
    /// [`HiddenInput::last_only`]).
    pub hidden: Tensor<3>,
    /// The input cache extended by the new tokens (drop it when not decoding further).
    pub cache: KvCache,
}

impl Backbone {
    /// Looks up token embeddings.
    ///
    /// # Shapes
    /// - ids: `[B, L]`
    /// - output: `[B, L, d]`
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.embed_tokens.forward(ids)
    }

    /// Runs the decoder layers and the final RMSNorm over new tokens, after the cached ones.
    ///
    /// # Shapes
    /// - embeddings: `[B, L, d]`; padding, positions: `[B, L]`; cache: `B` rows of `L_c` positions
    /// - hidden: `[B, L, d]`; cache: `B` rows of `L_c + L` positions
    ///
    /// On flex the pass runs on a worker of rayon's global pool ([`crate::pool::on_pool`]), so that flex's
    /// operations split their work in place instead of each being handed to the pool from outside.
    pub fn hidden(&self, input: HiddenInput) -> HiddenOutput {
        crate::pool::on_pool(&input.embeddings.device(), || self.hidden_on_pool(input))
    }

    /// [`Backbone::hidden`] on the calling thread.
    fn hidden_on_pool(&self, input: HiddenInput) -> HiddenOutput {
        let HiddenInput { embeddings, padding, positions, cache, last_only } = input;
        let [b, l, _] = embeddings.dims();
        let device = embeddings.device();
        let (cache_len, cached_layers, cached_padding) = match cache {
            Some(c) => {
                assert_eq!(c.layers.len(), self.layers.len(), "the cache has the wrong number of layers");
                assert_eq!(c.batch_size(), b, "the cache has {} rows but the input {b}", c.batch_size());
                (c.len(), c.layers.into_iter().map(Some).collect(), c.padding)
            }
            None => (0, vec![None; self.layers.len()], None),
        };
        if let Some(p) = &padding {
            assert_eq!(p.dims(), [b, l], "padding mask shape");
        }
        let all_real = |n| Tensor::<2, Bool>::ones([b, n], &device);
        let new_padding = padding.clone();
        let padding = match (cached_padding, padding) {
            (None, None) => None,
            (None, Some(p)) if cache_len == 0 => Some(p),
            (cp, np) => {
                Some(Tensor::cat(vec![cp.unwrap_or_else(|| all_real(cache_len)), np.unwrap_or_else(|| all_real(l))], 1))
            } // [B, L_c + L]
        };
        let positions = positions.unwrap_or_else(|| match &padding {
            None => Tensor::<1, Int>::arange(cache_len as i64..(cache_len + l) as i64, &device)
                .reshape([1, l])
                .expand([b, l]), // [B, L]
            // transformers: position_ids = cumsum(attention_mask) - 1, then 1 where the mask is 0.
            Some(p) => {
                let pos = p.clone().int().cumsum(1).sub_scalar(1).mask_fill(p.clone().bool_not(), 1);
                pos.narrow(1, cache_len, l) // [B, L]
            }
        });
        assert_eq!(positions.dims(), [b, l], "positions shape");

        let dtype = embeddings.dtype();
        let rope = self.rope.tables(positions.clone(), dtype);
        let mask = AttentionMask::new(padding.clone(), cache_len, l);
        // Padded new tokens are left out of every position-wise layer (crate::pack); one new token never is.
        let rows = match &new_padding {
            Some(p) if l > 1 => Rows::from_padding(p),
            _ => Rows::dense(b, l),
        };
        let mut x = rows.pack(embeddings); // [rows, d]
        let last_only = last_only && l > 1;
        let full = if last_only { self.layers.len() - 1 } else { self.layers.len() };
        let mut caches = cached_layers.into_iter();
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers[..full] {
            let ctx = Context { rope: rope.clone(), mask: mask.clone(), cache: caches.next().flatten() };
            let (y, kv) = layer.forward_rows(x, &rows, ctx);
            x = y;
            layers.push(kv);
        }
        if !last_only {
            return HiddenOutput { hidden: rows.unpack(norm(&self.norm, x)), cache: KvCache { layers, padding } }; // [B, L, d]
        }

        // The last layer, for the last position only. Its first L − 1 new tokens contribute keys and values
        // (the cache of the last token); the last token then runs the layer as one decoding step after them.
        let layer = &self.layers[full];
        let x = rows.unpack(x); // [B, L, d]
        let d = x.dims()[2];
        let pre_rows = match &new_padding {
            Some(p) => {
                // One read of the padding: every row's last token must be real; the first L − 1 give the rows.
                let real: Vec<bool> = p.clone().int().into_data().iter::<i64>().map(|v| v != 0).collect();
                assert!(
                    real.chunks(l).all(|row| row[l - 1]),
                    "HiddenInput::last_only needs a real last token in every row (left padding)"
                );
                let prefix: Vec<bool> = real.chunks(l).flat_map(|row| row[..l - 1].iter().copied()).collect();
                Rows::from_host(&prefix, b, l - 1, &device)
            }
            None => Rows::dense(b, l - 1),
        };
        let pre = norm(&layer.input_layernorm, pre_rows.pack(x.clone().narrow(1, 0, l - 1))); // [rows, d]
        let pre_rope = self.rope.tables(positions.clone().narrow(1, 0, l - 1), dtype);
        let kv = layer.self_attn.keys_values(pre, &pre_rows, &pre_rope, caches.next().flatten());
        let ctx = Context {
            rope: self.rope.tables(positions.narrow(1, l - 1, 1), dtype),
            mask: AttentionMask::new(padding.clone(), cache_len + l - 1, 1),
            cache: Some(kv),
        };
        let (y, kv) = layer.forward_rows(x.narrow(1, l - 1, 1).reshape([b, d]), &Rows::dense(b, 1), ctx); // [B, d]
        layers.push(kv);
        HiddenOutput { hidden: norm(&self.norm, y).reshape([b, 1, d]), cache: KvCache { layers, padding } }
    }

    /// The logits at the given hidden states. Select the positions first (the last one, a target span): the
    /// vocabulary-wide matmul is the most expensive single operation of a short forward pass.
    ///
    /// # Shapes
    /// - hidden: `[..., d]`
    /// - output: `[..., V]`
    pub fn logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                // The embedding is [V, d] and Eᵀ a strided view: a 2-D matmul reads it through its strides,
                // whereas `linear` would reshape it to [1, d, V], which copies the whole matrix.
                let dims = hidden.dims();
                let d = dims[D - 1];
                let n = dims[..D - 1].iter().product();
                let logits = hidden.reshape([n, d]).matmul(self.embed_tokens.weight.val().transpose()); // [N, V]
                let mut out = dims;
                out[D - 1] = logits.dims()[1];
                logits.reshape(out) // [..., V]
            }
        }
    }

    /// The number of decoder layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The vocabulary size (rows of the embedding).
    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.weight.shape().dims::<2>()[0]
    }

    /// The model width `d`.
    pub fn hidden_size(&self) -> usize {
        self.embed_tokens.weight.shape().dims::<2>()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;
    use crate::test_device;
    use burn::tensor::{Distribution, TensorData};

    fn tiny(arch: Arch, tied: bool) -> BackboneConfig {
        BackboneConfig::new(arch, 61, 32, 2, 4, 2, 8, 40, 10_000.0, 1e-6, arch == Arch::Qwen2, tied, 128)
    }

    fn randomized(config: &BackboneConfig, device: &Device) -> Backbone {
        device.seed(11);
        let mut m = config.init(device);
        // Non-trivial norm gains, so that a mix-up of the norms would show.
        m.norm.gamma = burn::module::Param::from_tensor(Tensor::random(
            [config.hidden_size],
            Distribution::Uniform(0.5, 1.5),
            device,
        ));
        m
    }

    fn maxdiff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn num_params_matches_the_closed_form() {
        let device = test_device();
        for (arch, tied) in [(Arch::Llama, true), (Arch::Llama, false), (Arch::Qwen2, true), (Arch::Qwen2, false)] {
            let c = tiny(arch, tied);
            let m = c.init(&device);
            assert_eq!(m.num_params(), c.num_params(), "{arch:?} tied={tied}");
        }
        // Llama, tied, d = 32, V = 61, f = 40, 2 layers of 4 heads of 8, 2 kv heads:
        // per layer 2·32 + 2·32·32 + 2·32·16 + 3·32·40 = 64 + 2048 + 1024 + 3840 = 6976; 61·32 + 2·6976 + 32.
        assert_eq!(tiny(Arch::Llama, true).num_params(), 1952 + 13952 + 32);
        // The module display lists the layers (burn derives it).
        let shown = format!("{}", tiny(Arch::Qwen2, false).init(&device));
        assert!(shown.contains("q_proj") && shown.contains("lm_head"), "{shown}");
    }

    /// Prefill + one-token steps with the cache give the same hidden states as one full forward.
    #[test]
    fn cached_decoding_equals_full_forward() {
        let device = test_device();
        for arch in [Arch::Llama, Arch::Qwen2] {
            let c = tiny(arch, arch == Arch::Llama);
            let m = randomized(&c, &device);
            let ids: Vec<i64> = vec![3, 14, 15, 9, 26, 5, 35, 8];
            let l = ids.len();
            let x = m.embed(Tensor::from_data(TensorData::new(ids, [1, l]), &device));
            let full = m.hidden(HiddenInput::new(x.clone())).hidden;
            let mut out = m.hidden(HiddenInput::new(x.clone().narrow(1, 0, 3)));
            let mut parts = vec![out.hidden.clone()];
            for i in 3..l {
                out = m.hidden(HiddenInput::new(x.clone().narrow(1, i, 1)).with_cache(Some(out.cache)));
                parts.push(out.hidden.clone());
            }
            assert_eq!(out.cache.len(), l);
            let d = maxdiff(full, Tensor::cat(parts, 1));
            assert!(d < 1e-5, "{arch:?}: maxdiff {d}");
        }
    }

    /// `last_only` gives the full forward's last hidden state and the same cache (so the same next step), on the
    /// host path (flex) and the plain path (autodiff), left-padded (packed) or not, with and without an earlier
    /// cache.
    #[test]
    fn last_only_equals_the_last_position_of_the_full_forward() {
        for device in [test_device(), test_device().autodiff()] {
            for arch in [Arch::Llama, Arch::Qwen2] {
                let m = randomized(&tiny(arch, arch == Arch::Llama), &device);
                let (b, l) = (3, 6);
                let ids: Vec<i64> = (0..(b * l) as i64).map(|i| (i * 7 + 3) % 61).collect();
                let x = m.embed(Tensor::from_data(TensorData::new(ids, [b, l]), &device));
                // Row 1 is left-padded by four positions, row 2 by one.
                let real: Vec<bool> = (0..b * l).map(|i| !matches!(i, 6..=9 | 12)).collect();
                let padding = Tensor::<2, Bool>::from_data(TensorData::new(real, [b, l]), &device);
                for pad in [false, true] {
                    let input = |x: Tensor<3>| {
                        let i = HiddenInput::new(x);
                        if pad { i.with_padding(padding.clone()) } else { i }
                    };
                    let full = m.hidden(input(x.clone()));
                    let last = m.hidden(input(x.clone()).last_only());
                    assert_eq!(last.hidden.dims(), [b, 1, 32]);
                    let d = maxdiff(full.hidden.clone().narrow(1, l - 1, 1), last.hidden);
                    assert!(d < 1e-5, "{arch:?}, padding {pad}: last hidden maxdiff {d}");
                    assert_eq!(last.cache.len(), l);
                    // Keys and values agree at every real position; the next step sees the same cache.
                    for (a, c) in full.cache.layers.iter().zip(&last.cache.layers) {
                        let keep = if pad {
                            padding.clone().float().reshape([b, 1, l, 1])
                        } else {
                            Tensor::ones([b, 1, l, 1], &device)
                        };
                        let dk = (a.k_t.clone().swap_dims(2, 3) - c.k_t.clone().swap_dims(2, 3)).abs() * keep.clone();
                        let dv = (a.v.clone() - c.v.clone()).abs() * keep;
                        let dk = dk.max().into_scalar::<f32>();
                        let dv = dv.max().into_scalar::<f32>();
                        assert!(dk < 1e-5 && dv < 1e-5, "{arch:?}, padding {pad}: cache maxdiff {dk}, {dv}");
                    }
                    let step = m.embed(Tensor::from_data(TensorData::new(vec![5i64, 6, 7], [b, 1]), &device));
                    let after = |cache| m.hidden(HiddenInput::new(step.clone()).with_cache(Some(cache))).hidden;
                    let d = maxdiff(after(full.cache.clone()), after(last.cache.clone()));
                    assert!(d < 1e-5, "{arch:?}, padding {pad}: next step maxdiff {d}");
                    // After a cache: three more tokens, last only.
                    let more = m
                        .embed(Tensor::from_data(TensorData::new(vec![1i64, 2, 3, 4, 5, 6, 7, 8, 9], [b, 3]), &device));
                    let full2 = m.hidden(HiddenInput::new(more.clone()).with_cache(Some(full.cache.clone())));
                    let last2 = m.hidden(HiddenInput::new(more).with_cache(Some(full.cache)).last_only());
                    let d = maxdiff(full2.hidden.narrow(1, 2, 1), last2.hidden);
                    assert!(d < 1e-5, "{arch:?}, padding {pad}: after a cache, maxdiff {d}");
                    assert_eq!(last2.cache.len(), l + 3);
                }
            }
        }
    }

    /// A padded batch is packed (crate::pack) and gives, at its real positions, the outputs and the gradients of
    /// its rows run alone: left padding (prompts) and right padding (targets) alike.
    #[test]
    fn packed_batch_gives_the_rows_alone_with_gradients() {
        let device = test_device().autodiff();
        for arch in [Arch::Llama, Arch::Qwen2] {
            let m = randomized(&tiny(arch, arch == Arch::Llama), &device);
            let rows: [&[i64]; 3] = [&[4, 8, 15], &[16, 23, 42, 7, 9], &[1, 2]];
            let l = 5;
            for left in [true, false] {
                let mut ids: Vec<i64> = Vec::new();
                let mut real: Vec<bool> = Vec::new();
                for r in rows {
                    let pad = l - r.len();
                    let (ri, rr) = (r.to_vec(), vec![true; r.len()]);
                    let (pi, pr) = (vec![0i64; pad], vec![false; pad]);
                    if left {
                        ids.extend(pi.iter().chain(&ri));
                        real.extend(pr.iter().chain(&rr));
                    } else {
                        ids.extend(ri.iter().chain(&pi));
                        real.extend(rr.iter().chain(&pr));
                    }
                }
                let padding = Tensor::<2, Bool>::from_data(TensorData::new(real.clone(), [3, l]), &device);
                assert!(Rows::from_padding(&padding).is_packed());
                let x = m.embed(Tensor::from_data(TensorData::new(ids, [3, l]), &device));
                let w = Tensor::<3>::random([3, l, 32], Distribution::Normal(0.0, 1.0), &device);
                let hidden = m.hidden(HiddenInput::new(x).with_padding(padding.clone())).hidden;
                let keep = padding.clone().float().reshape([3, l, 1]);
                let grads = (hidden.clone() * keep * w.clone()).sum().backward();
                let g_batch = m.layers[0].mlp.up_proj.weight.val().grad(&grads).unwrap();

                let mut g_alone = None;
                for (i, r) in rows.iter().enumerate() {
                    let n = r.len();
                    let at = if left { l - n } else { 0 };
                    let x = m.embed(Tensor::from_data(TensorData::new(r.to_vec(), [1, n]), &device));
                    let alone = m.hidden(HiddenInput::new(x)).hidden; // [1, n, d]
                    let got = hidden.clone().narrow(0, i, 1).narrow(1, at, n);
                    let d = maxdiff(alone.clone(), got);
                    assert!(d < 1e-5, "{arch:?}, left {left}, row {i}: maxdiff {d}");
                    let grads = (alone * w.clone().narrow(0, i, 1).narrow(1, at, n)).sum().backward();
                    let g = m.layers[0].mlp.up_proj.weight.val().grad(&grads).unwrap();
                    g_alone = Some(match g_alone {
                        None => g,
                        Some(acc) => acc + g,
                    });
                }
                let (a, b) = (g_batch.reshape([1, 32, 40]), g_alone.unwrap().reshape([1, 32, 40]));
                let d = maxdiff(a, b);
                assert!(d < 1e-5, "{arch:?}, left {left}: gradient maxdiff {d}");
            }
        }
    }

    /// A left-padded row gives the same outputs at its real positions as the row alone.
    #[test]
    fn left_padding_is_invisible() {
        let device = test_device();
        let c = tiny(Arch::Qwen2, false);
        let m = randomized(&c, &device);
        let short: Vec<i64> = vec![7, 8, 9];
        let long: Vec<i64> = vec![1, 2, 3, 4, 5, 6];
        let alone =
            m.hidden(HiddenInput::new(m.embed(Tensor::from_data(TensorData::new(short.clone(), [1, 3]), &device))));
        let batch: Vec<i64> = [vec![0, 0, 0], short, long].concat();
        let padding = Tensor::<2, Bool>::from_data(
            TensorData::new([[false; 3], [true; 3]].concat().into_iter().chain([true; 6]).collect(), [2, 6]),
            &device,
        );
        let x = m.embed(Tensor::from_data(TensorData::new(batch, [2, 6]), &device));
        let out = m.hidden(HiddenInput::new(x).with_padding(padding));
        let got = out.hidden.narrow(0, 0, 1).narrow(1, 3, 3);
        let d = maxdiff(alone.hidden, got);
        assert!(d < 1e-5, "maxdiff {d}");
        assert!(!out.cache.layers[0].k_t.clone().is_nan().any().into_scalar::<bool>(), "NaN in padded rows");
    }
}
