//! Causal grouped-query self-attention with rotary embeddings.
//!
//! Implements `softmax(q kᵀ / √h + mask) v` per head, as `LlamaAttention`/`Qwen2Attention` in `transformers`
//! (eager path). Grouped-query attention shares each key/value head with `G = n_heads / n_kv_heads` consecutive
//! query heads (HF `repeat_kv`); instead of copying the keys and values `G` times, the `G` query heads of a
//! group are stacked along the query axis so that one batched matmul serves the whole group.
//!
//! Two paths compute the same function. The plain path is made of burn ops only and is differentiable (training
//! runs it). On a flex device without autodiff, inference takes the host path: the same matmuls, with RoPE, the
//! head transpose and the scaling done in one pass (`kernels::rope_heads`) and the mask and softmax
//! in another (`kernels::attention_probs`), instead of a dozen burn ops. The two agree to 1e-6
//! (`host_path_equals_plain_path`).

use std::sync::{Arc, OnceLock};

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Device, Tensor, TensorData};

use crate::inference::LayerKv;
use crate::kernels::{self, Visibility};
use crate::pack::Rows;
use crate::rope::RopeTables;

/// The value written into masked attention scores. It is finite on purpose (burn#4697: a row of `-inf` turns
/// into NaN after softmax); no row is ever fully masked anyway (see [`attention_mask`]).
pub const MASKED_SCORE: f32 = -1e9;

/// Configuration of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// The model width `d`.
    pub d_model: usize,
    /// The number of query heads `H`.
    pub n_heads: usize,
    /// The number of key/value heads `K` (divides `H`).
    pub n_kv_heads: usize,
    /// The width of one head `h`.
    pub head_dim: usize,
    /// Whether q, k and v have biases (Qwen2).
    pub qkv_bias: bool,
}

impl AttentionConfig {
    /// Creates the layer with random weights.
    pub fn init(&self, device: &Device) -> Attention {
        assert!(
            self.n_heads.is_multiple_of(self.n_kv_heads),
            "n_kv_heads {} must divide n_heads {}",
            self.n_kv_heads,
            self.n_heads
        );
        let proj = |out: usize, bias: bool| LinearConfig::new(self.d_model, out).with_bias(bias).init(device);
        Attention {
            q_proj: proj(self.n_heads * self.head_dim, self.qkv_bias),
            k_proj: proj(self.n_kv_heads * self.head_dim, self.qkv_bias),
            v_proj: proj(self.n_kv_heads * self.head_dim, self.qkv_bias),
            o_proj: LinearConfig::new(self.n_heads * self.head_dim, self.d_model).with_bias(false).init(device),
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
        }
    }
}

/// Multi-head causal self-attention with grouped key/value heads.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection `d → H·h`.
    pub q_proj: Linear,
    /// Key projection `d → K·h`.
    pub k_proj: Linear,
    /// Value projection `d → K·h`.
    pub v_proj: Linear,
    /// Output projection `H·h → d` (no bias).
    pub o_proj: Linear,
    /// The number of query heads `H`.
    pub n_heads: usize,
    /// The number of key/value heads `K`.
    pub n_kv_heads: usize,
    /// The width of one head `h`.
    pub head_dim: usize,
}

/// The inputs of [`Attention::forward`].
#[derive(Clone, Debug)]
pub struct AttentionInput {
    /// The normalised hidden states of the new tokens, `[B, L, d]`.
    pub x: Tensor<3>,
    /// The rotary tables of the new tokens' positions.
    pub rope: RopeTables,
    /// Which keys each new token sees (causal, padding).
    pub mask: AttentionMask,
    /// The keys and values of the earlier positions.
    pub cache: Option<LayerKv>,
}

/// What an attention layer needs besides its input rows: an [`AttentionInput`] without `x`.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    /// The rotary tables of the new tokens' positions.
    pub rope: RopeTables,
    /// Which keys each new token sees.
    pub mask: AttentionMask,
    /// The keys and values of the earlier positions.
    pub cache: Option<LayerKv>,
}

/// The q, k and v projections of the new tokens, `[B, L, ·]`, with their [`Context`].
struct Projected {
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    ctx: Context,
}

/// The outputs of [`Attention::forward`].
#[derive(Clone, Debug)]
pub struct AttentionOutput {
    /// The attention output, `[B, L, d]`.
    pub y: Tensor<3>,
    /// The keys and values of the earlier and the new positions.
    pub kv: LayerKv,
}

impl Attention {
    /// Attends from the new tokens to the cached and the new tokens.
    ///
    /// # Shapes
    /// - x: `[B, L, d]`; cache kᵀ: `[B, K, h, L_c]`, v: `[B, K, L_c, h]`; mask: `L_c` cached positions, padding
    ///   `[B, L_c + L]`
    /// - y: `[B, L, d]`; kv kᵀ: `[B, K, h, L_c + L]`, v: `[B, K, L_c + L, h]`
    pub fn forward(&self, input: AttentionInput) -> AttentionOutput {
        let AttentionInput { x, rope, mask, cache } = input;
        let [b, l, d] = x.dims();
        let rows = Rows::dense(b, l);
        let (y, kv) = self.forward_rows(x.reshape([b * l, d]), &rows, Context { rope, mask, cache });
        AttentionOutput { y: rows.unpack(y), kv }
    }

    /// [`Attention::forward`] over the rows of a possibly packed batch ([`Rows`]): the projections run over the
    /// rows, attention over the `[B, L]` layout (zeros at packed-out padding, which the mask hides).
    ///
    /// # Shapes
    /// - x: `[rows, d]`
    /// - y: `[rows, d]`; kv as [`Attention::forward`]
    pub(crate) fn forward_rows(&self, x: Tensor<2>, rows: &Rows, ctx: Context) -> (Tensor<2>, LayerKv) {
        let q = rows.unpack(self.q_proj.forward(x.clone())); // [B, L, H·h]
        let k = rows.unpack(self.k_proj.forward(x.clone())); // [B, L, K·h]
        let v = rows.unpack(self.v_proj.forward(x)); // [B, L, K·h]
        let qkv = Projected { q, k, v, ctx };
        let (y, kv) = if kernels::host_kernels(&qkv.q) { self.attend_host(qkv) } else { self.attend_plain(qkv) };
        (self.o_proj.forward(rows.pack(y)), kv) // [rows, d]
    }

    /// The keys and values of the rows `x` (already normalised), in the cache layout and appended to `cache`:
    /// the projections and RoPE of [`Attention::forward_rows`] without the queries, attention and output.
    ///
    /// # Shapes
    /// - x: `[rows, d]`; cache as [`Attention::forward`]
    /// - output: kᵀ `[B, K, h, L_c + L]`, v `[B, K, L_c + L, h]`
    pub(crate) fn keys_values(&self, x: Tensor<2>, rows: &Rows, rope: &RopeTables, cache: Option<LayerKv>) -> LayerKv {
        let k = rows.unpack(self.k_proj.forward(x.clone())); // [B, L, K·h]
        let v = rows.unpack(self.v_proj.forward(x)); // [B, L, K·h]
        let host = kernels::host_kernels(&k);
        self.append_kv(cache, (k, v), rope, host)
    }

    /// The plain path: burn ops only, differentiable. Returns the heads' outputs `[B, L, H·h]` before `o_proj`.
    fn attend_plain(&self, input: Projected) -> (Tensor<3>, LayerKv) {
        let Projected { q, k, v, ctx: Context { rope, mask, cache } } = input;
        let [b, l, _] = q.dims();
        let (n_h, n_kv, h) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let g = n_h / n_kv;

        let q = rope.apply(q.reshape([b, l, n_h, h]).swap_dims(1, 2)); // [B, H, L, h]
        let LayerKv { k_t, v } = self.append_kv(cache, (k, v), &rope, false);
        let lk = k_t.dims()[3];

        // Query head `j·G + i` uses key/value head `j` (HF repeat_kv): stack the G heads of a group along the
        // query axis, [B, H, L, h] → [B, K, G·L, h], so that one matmul per key/value head serves the group.
        let q = q.mul_scalar(1.0 / (h as f64).sqrt()).reshape([b, n_kv, g * l, h]); // [B, K, G·L, h]
        let scores = q.matmul(k_t.clone()).reshape([b, n_h, l, lk]); // [B, H, L, L_k]
        let scores = match mask.dense(b, &scores.device()) {
            Some(m) => {
                assert_eq!(m.dims(), [b, 1, l, lk], "attention mask shape");
                scores.mask_fill(m.expand([b, n_h, l, lk]), MASKED_SCORE)
            }
            None => scores,
        };
        // Softmax in f32 for half-precision models, as transformers does.
        let dtype = scores.dtype();
        let probs =
            if dtype == DType::F32 { softmax(scores, 3) } else { softmax(scores.cast(DType::F32), 3).cast(dtype) };
        let probs = probs.reshape([b, n_kv, g * l, lk]); // [B, K, G·L, L_k]
        let y = probs.matmul(v.clone()).reshape([b, n_h, l, h]); // [B, H, L, h]
        (y.swap_dims(1, 2).reshape([b, l, n_h * h]), LayerKv { k_t, v }) // [B, L, H·h]
    }

    /// The host path (f32 on flex, no autodiff): the plain path's matmuls, with RoPE, the head layout and the
    /// scaling in one kernel and the mask and softmax in another.
    fn attend_host(&self, input: Projected) -> (Tensor<3>, LayerKv) {
        let Projected { q, k, v, ctx: Context { rope, mask, cache } } = input;
        let [b, l, _] = q.dims();
        let (n_h, n_kv, h) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let g = n_h / n_kv;
        let tables = rope.host();

        // The scale 1/√h is applied to q in f32, as the plain path's `mul_scalar`.
        let scale = (1.0 / (h as f64).sqrt()) as f32;
        let q = kernels::rope_heads(q, n_h, tables, scale); // [B, H, L, h]
        let LayerKv { k_t, v } = self.append_kv(cache, (k, v), &rope, true);
        let lk = k_t.dims()[3];
        assert_eq!(mask.cache_len + l, lk, "the attention mask expects {} cached positions", mask.cache_len);

        let q = q.reshape([b, n_kv, g * l, h]); // [B, K, G·L, h]
        let scores = q.matmul(k_t.clone()); // [B, K, G·L, L_k]
        let probs = kernels::attention_probs(scores, l, Visibility { cache_len: mask.cache_len, real: mask.host() });
        let y = probs.matmul(v.clone()).reshape([b, n_h, l, h]); // [B, H, L, h]
        (y.swap_dims(1, 2).reshape([b, l, n_h * h]), LayerKv { k_t, v }) // [B, L, H·h]
    }

    /// The new tokens' keys, rotated (RoPE) and transposed, and values in the cache layout, appended to the cached
    /// ones (kᵀ made contiguous, see [`LayerKv`]). `host`: RoPE by the host kernel, else by burn ops.
    ///
    /// # Shapes
    /// - k, v: `[B, L, K·h]`; cache: kᵀ `[B, K, h, L_c]`, v `[B, K, L_c, h]`
    /// - output: kᵀ `[B, K, h, L_c + L]`, v `[B, K, L_c + L, h]`
    fn append_kv(
        &self,
        cache: Option<LayerKv>,
        (k, v): (Tensor<3>, Tensor<3>),
        rope: &RopeTables,
        host: bool,
    ) -> LayerKv {
        let [b, l, _] = k.dims();
        let (n_kv, h) = (self.n_kv_heads, self.head_dim);
        let k_t = if host {
            kernels::rope_heads_transposed(k, n_kv, rope.host())
        } else {
            rope.apply(k.reshape([b, l, n_kv, h]).swap_dims(1, 2)).swap_dims(2, 3)
        }; // [B, K, h, L]
        let v = v.reshape([b, l, n_kv, h]).swap_dims(1, 2); // [B, K, L, h]
        let (k_t, v) = match cache {
            Some(c) => {
                let [cb, ck, ch, _] = c.k_t.dims();
                assert!(
                    cb == b && ck == n_kv && ch == h,
                    "cached kᵀ {:?} does not fit [{b}, {n_kv}, {h}, _]",
                    c.k_t.dims()
                );
                (Tensor::cat(vec![c.k_t, k_t], 3), Tensor::cat(vec![c.v, v], 2))
            }
            None => (contiguous(k_t), v),
        };
        LayerKv { k_t, v }
    }
}

/// Which keys the new tokens of one forward pass see: the causal rule after `cache_len` cached positions plus
/// the padding of the cached and new tokens. Built once per forward pass and shared by every layer; the dense
/// mask of the plain path and the host copy of the padding of the host path are derived from it once, on first
/// use.
#[derive(Clone, Debug)]
pub struct AttentionMask {
    /// The number of cached positions before the new tokens.
    pub cache_len: usize,
    /// The number of new tokens `L`.
    pub len: usize,
    /// `[B, L_c + L]`, `true` for real tokens; `None` when every token is real.
    pub padding: Option<Tensor<2, Bool>>,
    dense: Arc<OnceLock<Option<Tensor<4, Bool>>>>,
    host: Arc<OnceLock<Option<Vec<bool>>>>,
}

impl AttentionMask {
    /// The mask of `len` new tokens after `cache_len` cached ones, with the padding `[B, cache_len + len]`
    /// (`true` = real) of both.
    pub fn new(padding: Option<Tensor<2, Bool>>, cache_len: usize, len: usize) -> Self {
        if let Some(p) = &padding {
            assert_eq!(p.dims()[1], cache_len + len, "padding mask shape");
        }
        AttentionMask { cache_len, len, padding, dense: Arc::default(), host: Arc::default() }
    }

    /// The dense mask of [`attention_mask`]: `true` where a score is masked, `[B, 1, L, L_c + L]`; `None` when
    /// nothing is masked (one new token and no padding).
    pub fn dense(&self, batch: usize, device: &Device) -> Option<Tensor<4, Bool>> {
        self.dense.get_or_init(|| attention_mask(self.padding.clone(), batch, self.cache_len, self.len, device)).clone()
    }

    /// The padding on the host, `[B, L_c + L]` row-major.
    fn host(&self) -> Option<&[bool]> {
        self.host
            .get_or_init(|| {
                self.padding.as_ref().map(|p| p.clone().int().into_data().iter::<i64>().map(|v| v != 0).collect())
            })
            .as_deref()
    }
}

/// The same tensor in contiguous memory: flattening a strided view cannot be a view, so it copies (once), and
/// reshaping back is free. A no-op for a tensor that is already contiguous.
fn contiguous(t: Tensor<4>) -> Tensor<4> {
    let dims = t.dims();
    t.reshape([dims.iter().product::<usize>()]).reshape(dims)
}

/// The attention mask for `l` new tokens after `cache_len` cached ones: `true` where query `i` (absolute index
/// `cache_len + i`) must not see key `j`, i.e. `j > cache_len + i` (causal) or key `j` is padding. A padded
/// query still sees itself, so no row is ever fully masked and softmax never divides by zero; the outputs at
/// padded positions are meaningless and callers ignore them. Returns `None` when nothing is masked (one new
/// token and no padding).
///
/// # Shapes
/// - padding: `[B, cache_len + l]`, `true` for real tokens
/// - output: `[B, 1, l, cache_len + l]`
pub fn attention_mask(
    padding: Option<Tensor<2, Bool>>,
    batch: usize,
    cache_len: usize,
    l: usize,
    device: &Device,
) -> Option<Tensor<4, Bool>> {
    let lk = cache_len + l;
    if padding.is_none() && l == 1 {
        return None;
    }
    let mut future = Vec::with_capacity(l * lk);
    let mut not_self = Vec::with_capacity(l * lk);
    for i in 0..l {
        for j in 0..lk {
            future.push(j > cache_len + i);
            not_self.push(j != cache_len + i);
        }
    }
    let future = Tensor::<4, Bool>::from_data(TensorData::new(future, [1, 1, l, lk]), device);
    let future = future.expand([batch, 1, l, lk]); // [B, 1, L, L_k]
    match padding {
        None => Some(future),
        Some(p) => {
            assert_eq!(p.dims(), [batch, lk], "padding mask shape");
            let not_self = Tensor::<4, Bool>::from_data(TensorData::new(not_self, [1, 1, l, lk]), device);
            let pad = p.bool_not().reshape([batch, 1, 1, lk]).expand([batch, 1, l, lk]); // [B, 1, L, L_k]
            Some(future.bool_or(pad.bool_and(not_self.expand([batch, 1, l, lk]))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rope::RotaryEmbeddingConfig;
    use crate::test_device;
    use burn::tensor::{Distribution, Int};

    impl Attention {
        /// The forward pass through the given path (the host path needs f32 on flex without autodiff).
        fn forward_with(&self, input: AttentionInput, host: bool) -> AttentionOutput {
            let AttentionInput { x, rope, mask, cache } = input;
            let [b, l, d] = x.dims();
            let x = x.reshape([b * l, d]);
            let proj = |p: &Linear| {
                let y = p.forward(x.clone());
                let c = y.dims()[1];
                y.reshape([b, l, c])
            };
            let ctx = Context { rope, mask, cache };
            let qkv = Projected { q: proj(&self.q_proj), k: proj(&self.k_proj), v: proj(&self.v_proj), ctx };
            let (y, kv) = if host { self.attend_host(qkv) } else { self.attend_plain(qkv) };
            AttentionOutput { y: self.o_proj.forward(y), kv }
        }

        fn forward_plain(&self, input: AttentionInput) -> AttentionOutput {
            self.forward_with(input, false)
        }

        fn forward_host(&self, input: AttentionInput) -> AttentionOutput {
            self.forward_with(input, true)
        }
    }

    fn bools(t: Tensor<4, Bool>) -> Vec<bool> {
        t.into_data().try_to_vec().unwrap()
    }

    /// Every row of the mask keeps at least one key, even the rows of padded queries.
    #[test]
    fn mask_never_masks_a_whole_row() {
        let device = test_device();
        let padding = Tensor::<2, Bool>::from_data([[false, false, true, true], [true, true, true, true]], &device);
        let m = bools(attention_mask(Some(padding), 2, 0, 4, &device).unwrap());
        for row in m.chunks(4) {
            assert!(row.iter().any(|&x| !x), "a fully masked row: {row:?}");
        }
        // Row 0: queries 0 and 1 are padding (see only themselves); queries 2 and 3 see keys 2..=i.
        let want0 = [
            [false, true, true, true],
            [true, false, true, true],
            [true, true, false, true],
            [true, true, false, false],
        ];
        assert_eq!(&m[..16], want0.concat().as_slice());
        // Row 1 is plain causal.
        let want1 = [
            [false, true, true, true],
            [false, false, true, true],
            [false, false, false, true],
            [false, false, false, false],
        ];
        assert_eq!(&m[16..], want1.concat().as_slice());
        // A one-token step after a cache: the new query sees every real cached key.
        let padding = Tensor::<2, Bool>::from_data([[false, true, true]], &device);
        assert_eq!(bools(attention_mask(Some(padding), 1, 2, 1, &device).unwrap()), [true, false, false]);
        assert!(attention_mask(None, 3, 5, 1, &device).is_none());
    }

    /// Grouped-query attention gives the documented shapes, and equals full multi-head attention with each
    /// key/value head repeated for its group (HF `repeat_kv`).
    #[test]
    fn gqa_shapes_and_repeat_kv_equivalence() {
        let device = test_device();
        device.seed(7);
        let (d, n_h, n_kv, h) = (16, 4, 2, 4);
        let attn = AttentionConfig::new(d, n_h, n_kv, h, true).init(&device);
        let (b, l) = (2, 5);
        let x = Tensor::<3>::random([b, l, d], Distribution::Normal(0.0, 1.0), &device);
        let rope = RotaryEmbeddingConfig::new(h, 10_000.0).init(&device);
        let pos = Tensor::<1, Int>::arange(0..l as i64, &device).reshape([1, l]).repeat_dim(0, b);
        let tables = rope.tables(pos, DType::F32);
        let mask = AttentionMask::new(None, 0, l);
        let out = attn.forward_plain(AttentionInput { x: x.clone(), rope: tables.clone(), mask, cache: None });
        assert_eq!(out.y.dims(), [b, l, d]);
        assert_eq!(out.kv.k_t.dims(), [b, n_kv, h, l]);
        assert_eq!(out.kv.v.dims(), [b, n_kv, l, h]);

        // Reference: repeat k and v per group, then plain per-head attention with a causal mask.
        let q = tables.apply(attn.q_proj.forward(x.clone()).reshape([b, l, n_h, h]).swap_dims(1, 2));
        let rep = |t: Tensor<4>| t.reshape([b, n_kv, 1, l, h]).repeat_dim(2, n_h / n_kv).reshape([b, n_h, l, h]);
        let k = rep(out.kv.k_t.clone().swap_dims(2, 3));
        let v = rep(out.kv.v.clone());
        let causal = Tensor::<2, Bool>::tril_mask([l, l], 0, &device).reshape([1, 1, l, l]).expand([b, n_h, l, l]);
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((h as f64).sqrt()).mask_fill(causal, -1e9);
        let y = softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        let want: Vec<f32> = attn.o_proj.forward(y).into_data().try_to_vec().unwrap();
        let got: Vec<f32> = out.y.into_data().try_to_vec().unwrap();
        let maxdiff = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(maxdiff < 1e-5, "maxdiff {maxdiff}");
    }

    fn host(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    fn maxdiff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The host path gives the plain path's outputs and cache, with padding, with a cache, for one and several new
    /// tokens, with and without q/k/v biases.
    #[test]
    fn host_path_equals_plain_path() {
        let device = test_device();
        device.seed(5);
        let (d, n_h, n_kv, h) = (24, 6, 2, 4);
        for bias in [false, true] {
            let attn = AttentionConfig::new(d, n_h, n_kv, h, bias).init(&device);
            let rope = RotaryEmbeddingConfig::new(h, 10_000.0).init(&device);
            let b = 2;
            // Row 0 is left-padded by two positions.
            let real: Vec<bool> = (0..b * 9).map(|i| !(i == 0 || i == 1)).collect();
            let padding = Tensor::<2, Bool>::from_data(TensorData::new(real, [b, 9]), &device);
            // (cached, new): a prefill, then a chunk and a single token after a cache.
            let mut cache: Option<LayerKv> = None;
            for (cache_len, l) in [(0, 5), (5, 3), (8, 1)] {
                let x = Tensor::<3>::random([b, l, d], Distribution::Normal(0.0, 1.0), &device);
                let pos = Tensor::<1, Int>::arange(cache_len as i64..(cache_len + l) as i64, &device)
                    .reshape([1, l])
                    .repeat_dim(0, b);
                let tables = rope.tables(pos, DType::F32);
                for pad in [false, true] {
                    let mask =
                        AttentionMask::new(pad.then(|| padding.clone().narrow(1, 0, cache_len + l)), cache_len, l);
                    let input = AttentionInput { x: x.clone(), rope: tables.clone(), mask, cache: cache.clone() };
                    let plain = attn.forward_plain(input.clone());
                    let fast = attn.forward_host(input);
                    let dy = maxdiff(&host(plain.y), &host(fast.y.clone()));
                    assert!(dy < 1e-6, "bias {bias}, cache {cache_len}, l {l}, padding {pad}: y maxdiff {dy}");
                    let kv = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().unwrap();
                    assert_eq!(kv(plain.kv.k_t), kv(fast.kv.k_t.clone()), "kᵀ");
                    assert_eq!(kv(plain.kv.v), kv(fast.kv.v.clone()), "v");
                    if pad {
                        cache = Some(fast.kv);
                    }
                }
            }
        }
    }

    /// On an autodiff device the forward pass takes the plain path: gradients reach the projections.
    #[test]
    fn autodiff_takes_the_differentiable_path() {
        let device = test_device().autodiff();
        let (d, n_h, n_kv, h) = (8, 2, 1, 4);
        let attn = AttentionConfig::new(d, n_h, n_kv, h, true).init(&device);
        let rope = RotaryEmbeddingConfig::new(h, 10_000.0).init(&device);
        let x = Tensor::<3>::random([1, 3, d], Distribution::Normal(0.0, 1.0), &device);
        assert!(!kernels::host_kernels(&x));
        let tables = rope.tables(Tensor::<2, Int>::from_data([[0, 1, 2]], &device), DType::F32);
        let out = attn.forward(AttentionInput { x, rope: tables, mask: AttentionMask::new(None, 0, 3), cache: None });
        let grads = out.y.sum().backward();
        let g = attn.q_proj.weight.val().grad(&grads).expect("q_proj gradient");
        assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    }
}
