//! Inference kernels for the flex CPU backend: the steps of the decoder that flex runs with scalar `libm` calls
//! or in several passes over memory, each done here in one vectorised pass over the tensor's host storage.
//!
//! flex (burn 0.22.1) computes every `exp` with a scalar `libm` call (burn-flex `ops/activation.rs`: "Scalar exp
//! (no SIMD exp in macerator)"), and the masked scores of the plain attention path (`-1e9`) send `expf` down its
//! underflow path, which sets `errno`. Rotary embeddings, the head transposes and the mask cost five to seven
//! passes with as many allocations. The kernels:
//! - [`rms_norm`]: RMSNorm in one pass instead of five burn ops;
//! - [`silu_mul`]: `silu(gate) ⊙ up` of the SwiGLU MLP, in place;
//! - [`rope_heads`]: RoPE of a q or k projection, written head-major (`[B, n, L, h]`) or transposed
//!   (`[B, n, h, L]`, the cached kᵀ), times a scale;
//! - [`attention_probs`]: the causal + padding mask and the softmax of attention scores, in place; masked
//!   scores get probability exactly 0, as in the plain path, without being exponentiated.
//!
//! They only run where [`host_kernels`] says so: an f32 tensor on a flex device without autodiff. Training (an
//! autodiff device) always takes the plain burn-op path, which stays differentiable, and so does every other
//! backend. The storage is reached through `Tensor::into_data` / `Tensor::from_data`, which move flex's buffer
//! without copying when the tensor is contiguous and not shared (the outputs of the projections and matmuls
//! they are applied to always are; tested in `zero_copy_round_trip`).
//!
//! The exponential is Cephes' `expf` (a degree-6 polynomial after range reduction), written without branches so
//! that the compiler vectorises the loops (SSE2 at the baseline target); its relative error against `f32::exp`
//! is below 3e-7 on `[-87, 88]` (tested). Rows and chunks are spread over rayon's global pool, the one flex uses
//! (`RAYON_NUM_THREADS`).

use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::rope::RopeTables;

/// Elements per rayon task of the element-wise kernels: large enough to amortise scheduling, small enough to
/// split one MLP activation (`[1600, 1536]` for SmolLM2 at 8 × 200 tokens) over the threads.
const CHUNK: usize = 1 << 14;

/// Accumulators of the row reductions: the maximum and the sum are kept in this many lanes, so that the
/// compiler can vectorise them (a single running sum is a serial chain of dependent additions).
const LANES: usize = 8;

const F32: &str = "the kernels only receive f32 tensors (host_kernels checks the dtype)";

/// Calls `f(i, chunk)` for the `chunk`-long pieces of `data`, on rayon's pool unless `data` is at most
/// [`CHUNK`] long: a small tensor (a decoding step) is not worth the hand-off to the pool's threads.
fn for_each_chunk(data: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Send + Sync) {
    if data.len() <= CHUNK {
        data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Whether the kernels of this module apply to `t`: f32, on a flex device, without autodiff.
pub(crate) fn host_kernels<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && !t.is_autodiff() && is_flex(&t.device())
}

/// Whether `device` is a flex device. The library enables no backend, so it cannot name flex's device type;
/// burn's `Debug` output of a device names its backend (`Device<Flex(Cpu)>`), which the test
/// `host_kernels_only_on_flex_without_autodiff` pins.
pub(crate) fn is_flex(device: &Device) -> bool {
    format!("{device:?}").starts_with("Device<Flex")
}

/// `e^x`, flushed to 0 below `-87.3` (where `e^x < 1.2e-38` is subnormal) and saturated at `e^88` above 88;
/// NaN stays NaN.
///
/// Cephes `expf`: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by a degree-6 polynomial, `2^n` built in the
/// exponent bits. Branch-free, so loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| < 2^9 (Cephes).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LOW: f32 = -87.3;
    let c = x.clamp(LOW, 88.0);
    let t = c * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (c - n * LN2_HI) - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let er = p * r * r + r + 1.0;
    // n = t.bits − ROUND.bits exactly (both have the exponent of 2^23); 2^n has the biased exponent n + 127.
    let biased = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    let y = er * f32::from_bits(biased << 23);
    if x < LOW { 0.0 } else { y }
}

/// RMSNorm, `x / sqrt(mean(x²) + ε) · γ` over the last axis, with the arithmetic of burn's `RmsNorm::forward`
/// (a division by the root mean square, then the gain) in one pass over each row.
///
/// # Shapes
/// - x: `[..., d]`; gamma: `[d]`
/// - output: `[..., d]`
pub(crate) fn rms_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, epsilon: f64) -> Tensor<D> {
    let d = x.dims()[D - 1];
    assert_eq!(gamma.dims(), [d], "rms_norm: the gain does not fit the last axis of {:?}", x.dims());
    let device = x.device();
    let gamma = gamma.cast(DType::F32).into_data();
    let gamma = gamma.as_slice::<f32>().expect(F32);
    let eps = epsilon as f32;
    let mut data = x.into_data();
    let rows = (CHUNK / d).max(1);
    for_each_chunk(data.as_mut_slice::<f32>().expect(F32), rows * d, |_, chunk| {
        for row in chunk.chunks_exact_mut(d) {
            let mut acc = [0f32; LANES];
            let mut lanes = row.chunks_exact(LANES);
            for c in &mut lanes {
                for (a, &v) in acc.iter_mut().zip(c) {
                    *a += v * v;
                }
            }
            let sum = lanes.remainder().iter().map(|v| v * v).sum::<f32>() + acc.iter().sum::<f32>();
            let rms = (sum / d as f32 + eps).sqrt();
            for (v, &g) in row.iter_mut().zip(gamma) {
                *v = *v / rms * g;
            }
        }
    });
    Tensor::from_data(data, (&device, DType::F32))
}

/// `silu(gate) ⊙ up` (SwiGLU), computed in `gate`'s storage: `g / (1 + e^-g) · u`.
///
/// # Shapes
/// - gate, up: `[..., f]`
/// - output: `[..., f]`
pub(crate) fn silu_mul<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    assert_eq!(gate.dims(), up.dims(), "silu_mul: gate and up differ in shape");
    let device = gate.device();
    let mut g = gate.into_data();
    let u = up.into_data();
    let us = u.as_slice::<f32>().expect(F32);
    for_each_chunk(g.as_mut_slice::<f32>().expect(F32), CHUNK, |i, g| {
        for (g, &u) in g.iter_mut().zip(&us[i * CHUNK..]) {
            *g = *g / (1.0 + exp(-*g)) * u;
        }
    });
    Tensor::from_data(g, (&device, DType::F32))
}

/// The cosines and sines of [`RopeTables`] on the host, `[B, L, h]` each (both halves equal).
#[derive(Clone, Debug)]
pub(crate) struct HostRope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// `[B, L, h]`.
    dims: [usize; 3],
}

impl HostRope {
    /// Copies the tables to the host.
    pub(crate) fn new(tables: &RopeTables) -> Self {
        let [b, _, l, h] = tables.cos.dims();
        let read = |t: &Tensor<4>| t.clone().cast(DType::F32).into_data().try_into_vec::<f32>().expect(F32);
        HostRope { cos: read(&tables.cos), sin: read(&tables.sin), dims: [b, l, h] }
    }
}

/// Where [`rope_heads`] writes a head's `[L, h]` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeadLayout {
    /// `[B, n, L, h]`.
    Rows,
    /// `[B, n, h, L]` (transposed, the layout of the cached kᵀ).
    Transposed,
}

/// RoPE of a projection's output, split into heads and laid out head-major, times `scale`:
/// `out[b, j, p, i] = scale · rope(y[b, p, j·h .. (j+1)·h])[i]`. The arithmetic is that of
/// [`RopeTables::apply`] followed by a scalar multiplication, so the result is identical to the plain path's.
///
/// # Shapes
/// - y: `[B, L, n·h]`
/// - output: `[B, n, L, h]`
pub(crate) fn rope_heads(y: Tensor<3>, n: usize, rope: &HostRope, scale: f32) -> Tensor<4> {
    rope_heads_in(y, n, rope, scale, HeadLayout::Rows)
}

/// [`rope_heads`] written transposed, the layout of the cached kᵀ: `out[b, j, i, p]`.
///
/// # Shapes
/// - y: `[B, L, n·h]`
/// - output: `[B, n, h, L]`
pub(crate) fn rope_heads_transposed(y: Tensor<3>, n: usize, rope: &HostRope) -> Tensor<4> {
    rope_heads_in(y, n, rope, 1.0, HeadLayout::Transposed)
}

fn rope_heads_in(y: Tensor<3>, n: usize, rope: &HostRope, scale: f32, layout: HeadLayout) -> Tensor<4> {
    let [b, l, nh] = y.dims();
    let [rb, rl, h] = rope.dims;
    assert!(
        rb == b && rl == l && n * h == nh,
        "RoPE tables [{rb}, 1, {rl}, {h}] do not fit {n} heads of [{b}, {l}, {nh}]"
    );
    let half = h / 2;
    let device = y.device();
    let y = y.into_data();
    let src = y.as_slice::<f32>().expect(F32);
    let mut out = vec![0f32; b * n * l * h];
    // One task per (row, head): its [L, h] (or [h, L]) block of the output.
    for_each_chunk(&mut out, l * h, |bj, block| {
        let (bi, j) = (bj / n, bj % n);
        for p in 0..l {
            let row = (bi * l + p) * h;
            let x = &src[row * n + j * h..][..h];
            let (x1, x2) = x.split_at(half);
            let (cos, sin) = (&rope.cos[row..][..half], &rope.sin[row..][..half]);
            for i in 0..half {
                // rope(x) = x ⊙ cos + [-x₂, x₁] ⊙ sin, with cos and sin equal on both halves.
                let lo = (x1[i] * cos[i] + -x2[i] * sin[i]) * scale;
                let hi = (x2[i] * cos[i] + x1[i] * sin[i]) * scale;
                match layout {
                    HeadLayout::Rows => {
                        block[p * h + i] = lo;
                        block[p * h + half + i] = hi;
                    }
                    HeadLayout::Transposed => {
                        block[i * l + p] = lo;
                        block[(half + i) * l + p] = hi;
                    }
                }
            }
        }
    });
    let dims = match layout {
        HeadLayout::Rows => [b, n, l, h],
        HeadLayout::Transposed => [b, n, h, l],
    };
    Tensor::from_data(TensorData::new(out, dims), (&device, DType::F32))
}

/// Where the queries of [`attention_probs`] may look: query `i` of a row (absolute position `cache_len + i`)
/// sees key `j` iff `j ≤ cache_len + i` and key `j` is real or is the query itself, the rule of
/// [`crate::attention::attention_mask`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Visibility<'a> {
    /// The number of cached positions before the new tokens.
    pub cache_len: usize,
    /// `[B, L_c + L]` row-major, `true` for real tokens; `None`: every token is real.
    pub real: Option<&'a [bool]>,
}

/// The attention probabilities of scaled scores: the mask of `vis`, then a softmax over keys, in place. Masked
/// keys get probability exactly 0 and are not exponentiated.
///
/// `scores` holds, per row and key/value head, its `G` query heads stacked along the query axis (as
/// [`crate::attention::Attention`] computes them), so that row `r` of the flattened `[B·K·G·L, L_k]` is query
/// `r mod L` of batch row `r / (K·G·L)`.
///
/// # Shapes
/// - scores: `[B, K, G·L, L_k]` with `L_k = L_c + L`
/// - output: `[B, K, G·L, L_k]`
pub(crate) fn attention_probs(scores: Tensor<4>, l: usize, vis: Visibility<'_>) -> Tensor<4> {
    let [b, k, gl, lk] = scores.dims();
    assert!(gl % l == 0 && vis.cache_len + l == lk, "scores [{b}, {k}, {gl}, {lk}] do not fit {l} new tokens");
    if let Some(real) = vis.real {
        assert_eq!(real.len(), b * lk, "padding mask of [{b}, {lk}] expected");
    }
    let device = scores.device();
    let mut data = scores.into_data();
    let rows_per_batch = k * gl;
    for_each_chunk(data.as_mut_slice::<f32>().expect(F32), lk, |r, row| {
        let i = r % l;
        let real = vis.real.map(|m| &m[(r / rows_per_batch) * lk..][..lk]);
        softmax_row(row, vis.cache_len + i + 1, real);
    });
    Tensor::from_data(data, (&device, DType::F32))
}

/// Softmax of `row[..limit]` where `real` (if any) is true, the key `limit - 1` (the query itself) always
/// included; every other entry becomes 0.
fn softmax_row(row: &mut [f32], limit: usize, real: Option<&[bool]>) {
    let (live, dead) = row.split_at_mut(limit);
    dead.fill(0.0);
    if let Some(real) = real {
        for (v, &r) in live[..limit - 1].iter_mut().zip(real) {
            if !r {
                *v = f32::NEG_INFINITY;
            }
        }
    }
    let max = row_max(live);
    let sum = exp_shifted_sum(live, max);
    let inv = 1.0 / sum;
    for v in live.iter_mut() {
        *v *= inv;
    }
}

/// The maximum of `xs` (`-∞` for an empty slice).
fn row_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    chunks.remainder().iter().chain(&acc).fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// Replaces each `x` by `e^(x - max)` and returns their sum.
fn exp_shifted_sum(xs: &mut [f32], max: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
            *v = exp(*v - max);
            *a += *v;
        }
    }
    let mut sum = 0.0;
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    acc.iter().sum::<f32>() + sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use burn::tensor::activation::{silu, softmax};
    use burn::tensor::{Distribution, Int};

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    fn maxdiff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn exp_matches_libm() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        assert!(worst < 3e-7, "max relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(1000.0).is_finite());
    }

    /// flex moves the buffer of an unshared contiguous tensor in and out of `TensorData` without copying.
    #[test]
    fn zero_copy_round_trip() {
        let device = test_device();
        let t = Tensor::<2>::random([64, 64], Distribution::Default, &device) * 2.0;
        let data = t.into_data();
        let ptr = data.as_slice::<f32>().unwrap().as_ptr();
        let t = Tensor::<2>::from_data(data, (&device, DType::F32));
        assert_eq!(t.into_data().as_slice::<f32>().unwrap().as_ptr(), ptr);
    }

    #[test]
    fn host_kernels_only_on_flex_without_autodiff() {
        let device = test_device();
        let t = Tensor::<2>::zeros([2, 2], &device);
        assert!(host_kernels(&t));
        assert!(!host_kernels(&t.clone().autodiff()));
        assert!(!host_kernels(&Tensor::<2>::zeros([2, 2], &device.clone().autodiff())));
        assert!(!host_kernels(&t.cast(DType::F64)));
    }

    #[test]
    fn silu_mul_equals_the_plain_ops() {
        let device = test_device();
        device.seed(3);
        // Odd sizes: several rayon chunks and a remainder, and large |x| on both sides.
        let g = Tensor::<2>::random([5, 7001], Distribution::Normal(0.0, 30.0), &device);
        let u = Tensor::<2>::random([5, 7001], Distribution::Normal(0.0, 1.0), &device);
        let want: Vec<f32> = (silu(g.clone()) * u.clone()).into_data().try_into_vec().unwrap();
        let got: Vec<f32> = silu_mul(g, u).into_data().try_into_vec().unwrap();
        let worst = want.iter().zip(&got).map(|(w, g)| (w - g).abs() / w.abs().max(1.0)).fold(0.0, f32::max);
        assert!(worst < 1e-6, "max relative difference {worst}");
    }

    #[test]
    fn rms_norm_equals_burns_module() {
        let device = test_device();
        device.seed(9);
        let d = 37;
        let mut norm = burn::nn::RmsNormConfig::new(d).with_epsilon(1e-5).init(&device);
        norm.gamma = burn::module::Param::from_tensor(Tensor::random([d], Distribution::Uniform(0.5, 1.5), &device));
        let x = Tensor::<3>::random([3, 700, d], Distribution::Normal(0.0, 4.0), &device);
        let want: Vec<f32> = norm.forward(x.clone()).into_data().try_into_vec().unwrap();
        let got: Vec<f32> = rms_norm(x, norm.gamma.val(), norm.epsilon).into_data().try_into_vec().unwrap();
        let worst = want.iter().zip(&got).map(|(w, g)| (w - g).abs() / w.abs().max(1.0)).fold(0.0, f32::max);
        assert!(worst < 1e-6, "max relative difference {worst}");
    }

    /// Both layouts equal `RopeTables::apply` (times the scale) exactly.
    #[test]
    fn rope_heads_equals_the_plain_ops() {
        let device = test_device();
        let (b, l, n, h) = (2, 5, 3, 8);
        let rope = crate::rope::RotaryEmbeddingConfig::new(h, 10_000.0).init(&device);
        let pos = Tensor::<2, Int>::from_data([[0, 1, 2, 3, 4], [1, 1, 4, 9, 300]], &device);
        let tables = rope.tables(pos, DType::F32);
        let y = Tensor::<3>::random([b, l, n * h], Distribution::Normal(0.0, 1.0), &device);
        let plain = tables.apply(y.clone().reshape([b, l, n, h]).swap_dims(1, 2)); // [B, n, L, h]
        let host_rope = HostRope::new(&tables);
        let scale = 0.125;
        assert_eq!(host(rope_heads(y.clone(), n, &host_rope, scale)), host(plain.clone().mul_scalar(scale)));
        assert_eq!(host(rope_heads_transposed(y, n, &host_rope)), host(plain.swap_dims(2, 3)));
    }

    /// The kernel equals mask_fill + softmax with the dense mask of `attention_mask`, with and without padding
    /// and a cache, for stacked query heads.
    #[test]
    fn attention_probs_equals_mask_fill_and_softmax() {
        let device = test_device();
        let (b, k, g) = (2, 2, 3);
        for (cache_len, l, pad) in
            [(0, 5, false), (0, 5, true), (3, 4, true), (6, 1, false), (6, 1, true), (0, 37, true)]
        {
            let lk = cache_len + l;
            let scores = Tensor::<4>::random([b, k, g * l, lk], Distribution::Normal(0.0, 3.0), &device);
            // Row 0: the first two positions are padding; row 1: real.
            let real: Vec<bool> = (0..b * lk).map(|i| i >= 2 || i / lk == 1).collect();
            let padding = pad
                .then(|| Tensor::<2, burn::tensor::Bool>::from_data(TensorData::new(real.clone(), [b, lk]), &device));
            let want = match crate::attention::attention_mask(padding, b, cache_len, l, &device) {
                Some(m) => {
                    let s = scores.clone().reshape([b, k * g, l, lk]); // [B, H, L, L_k]
                    let m = m.expand([b, k * g, l, lk]);
                    softmax(s.mask_fill(m, crate::attention::MASKED_SCORE), 3).reshape([b, k, g * l, lk])
                }
                None => softmax(scores.clone(), 3),
            };
            let vis = Visibility { cache_len, real: pad.then_some(real.as_slice()) };
            let got = host(attention_probs(scores, l, vis));
            let want = host(want);
            let d = maxdiff(&got, &want);
            assert!(d < 1e-6, "cache {cache_len}, l {l}, padding {pad}: maxdiff {d}");
            assert!(got.iter().zip(&want).all(|(g, w)| (*g == 0.0) == (*w == 0.0)), "zeros differ");
        }
    }
}
