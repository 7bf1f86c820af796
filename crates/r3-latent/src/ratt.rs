//! LatentRATT, the reasoning attention of LatentR³ (docs/method.md §3, arXiv 2505.19092 §3.2): one attention step
//! from the last prompt position over the whole prompt's final hidden states, whose output `r` replaces the
//! input embedding of the `<|Thought|>` token.
//!
//! With `H` the final-RMSNorm outputs of the positions `< t` (t = the thought token's position),
//! `r = softmax(RoPE(q_{t−1}) · RoPE(K)ᵀ / √d) · V` with `q = H W_q + b_q`, `K = H W_k + b_k`, `V = H W_v + b_v`.
//!
//! NOTE: we follow the official code (`SelfAttentionLayer` in `src/latent/layers.py` of xuwenxinedu/R3) where
//! the paper leaves details open: one head over the full width `d`, biases on q, k and v, no output projection,
//! residual, norm or MLP, and RoPE over the whole vector with base 1000 (not the backbone's base), in the
//! rotate-half convention. Extra heads and an output projection are options for ablations.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay, Param};
use burn::nn::{Initializer, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Device, Int, Tensor};
use r3_backbone::attention::MASKED_SCORE;
use r3_backbone::rope::{RotaryEmbedding, RotaryEmbeddingConfig};

use crate::error::Error;

/// Configuration of [`LatentRatt`]. Defaults are the official code's.
#[derive(Config, Debug)]
pub struct LatentRattConfig {
    /// The width `d` of the backbone's hidden states (576 for SmolLM2-135M, 1536 for Qwen2.5-1.5B).
    pub d_model: usize,
    /// The number of attention heads; `d_model / n_heads` must be even (RoPE pairs). `[CODE]` 1: one head over the
    /// full width.
    #[config(default = 1)]
    pub n_heads: usize,
    /// Whether a `d × d` output projection (with bias) follows the attention. `[CODE]` false.
    #[config(default = false)]
    pub out_proj: bool,
    /// The RoPE base θ of LatentRATT's own rotary embedding. `[CODE]` 1000 (the backbone's base is not used).
    #[config(default = 1000.0)]
    pub rope_base: f64,
    /// The standard deviation of the normal initialisation of the weights; biases start at zero.
    /// `[CODE]` 0.02 (`transformers`' `_init_weights` with `initializer_range` 0.02, since the layer is not in the
    /// pretrained checkpoint).
    #[config(default = 0.02)]
    pub init_std: f64,
}

impl LatentRattConfig {
    /// Checks that the heads split the width into even parts.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and the fix.
    pub fn validate(&self) -> crate::Result<()> {
        if self.d_model == 0 {
            return Err(Error::Config { key: "d_model", message: "must be the backbone's hidden size, got 0".into() });
        }
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return Err(Error::Config {
                key: "n_heads",
                message: format!(
                    "{} does not divide d_model {}; use 1 (the official setting)",
                    self.n_heads, self.d_model
                ),
            });
        }
        if !(self.d_model / self.n_heads).is_multiple_of(2) {
            return Err(Error::Config {
                key: "n_heads",
                message: format!(
                    "the head width d_model / n_heads = {} is odd, but RoPE rotates pairs; choose n_heads so that it is even",
                    self.d_model / self.n_heads
                ),
            });
        }
        if self.rope_base.is_nan() || self.rope_base <= 1.0 {
            return Err(Error::Config { key: "rope_base", message: format!("must be > 1, got {}", self.rope_base) });
        }
        Ok(())
    }

    /// Creates the layer: weights `N(0, init_std²)`, zero biases.
    ///
    /// # Panics
    /// When [`LatentRattConfig::validate`] fails (call it first where the values come from a user).
    pub fn init(&self, device: &Device) -> LatentRatt {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let d = self.d_model;
        let linear = || {
            let weight =
                Initializer::Normal { mean: 0.0, std: self.init_std }.init_with([d, d], Some(d), Some(d), device);
            let bias: Param<Tensor<1>> = Initializer::Zeros.init([d], device);
            Linear { weight, bias: Some(bias) }
        };
        let head_dim = d / self.n_heads;
        LatentRatt {
            q: linear(),
            k: linear(),
            v: linear(),
            out: self.out_proj.then(linear),
            rope: RotaryEmbeddingConfig::new(head_dim, self.rope_base).init(device),
            d_model: d,
            n_heads: self.n_heads,
        }
    }
}

/// The LatentRATT layer (3·(d² + d) parameters in the default setting).
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct LatentRatt {
    /// `W_q`, `b_q`: `d → d` (burn layout `[in, out]`; PyTorch name `q.weight` is `[out, in]`).
    pub q: Linear,
    /// `W_k`, `b_k`: `d → d`.
    pub k: Linear,
    /// `W_v`, `b_v`: `d → d`.
    pub v: Linear,
    /// The optional output projection `d → d` (absent in the official code).
    pub out: Option<Linear>,
    /// LatentRATT's own rotary embedding over one head's width (no parameters).
    pub rope: RotaryEmbedding,
    /// The width `d`.
    pub d_model: usize,
    /// The number of heads.
    pub n_heads: usize,
}

impl ModuleDisplay for LatentRatt {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new().with_new_line_after_attribute(false).optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("d_model", &self.d_model)
            .add("n_heads", &self.n_heads)
            .add("rope_base", &self.rope.theta)
            .add("out_proj", &self.out.is_some())
            .optional()
    }
}

impl LatentRatt {
    /// Computes the latent `r` of each row from the final hidden states of its prefix: the query is the last
    /// position, the keys and values are every real position.
    ///
    /// `padding` (`true` = real) marks left padding; `None` means every position is real. RoPE positions count
    /// from the row's first real token, so a left-padded row gives the same `r` as the row alone.
    ///
    /// NOTE: the official code uses the positions `0..L` of the padded tensor (right padding in training, left
    /// padding at inference). RoPE scores depend only on `position(query) − position(key)`, so shifting every
    /// position of a row by its padding length changes nothing but rounding: counting from the first real token
    /// is the same function, and it keeps the angles small.
    ///
    /// # Shapes
    /// - hidden: `[B, L, d]`; padding: `[B, L]` (the last position of every row must be real)
    /// - output: `[B, d]`
    pub fn forward(&self, hidden: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<2> {
        let [b, l, d] = hidden.dims();
        assert_eq!(d, self.d_model, "LatentRATT of width {} got hidden states {:?}", self.d_model, [b, l, d]);
        let (n_h, h) = (self.n_heads, d / self.n_heads);
        let device = hidden.device();
        let positions = match &padding {
            None => Tensor::<1, Int>::arange(0..l as i64, &device).reshape([1, l]).expand([b, l]), // [B, L]
            Some(p) => {
                assert_eq!(p.dims(), [b, l], "LatentRATT padding mask shape");
                // Padded positions get −1 → clamped to 0; their scores are masked anyway.
                p.clone().int().cumsum(1).sub_scalar(1).clamp_min(0) // [B, L]
            }
        };
        let dtype = hidden.dtype();
        let tables = self.rope.tables(positions.clone(), dtype);
        let last_tables = self.rope.tables(positions.narrow(1, l - 1, 1), dtype);

        let last = hidden.clone().narrow(1, l - 1, 1); // [B, 1, d]
        let q = self.q.forward(last).reshape([b, 1, n_h, h]).swap_dims(1, 2); // [B, H, 1, h]
        let k = self.k.forward(hidden.clone()).reshape([b, l, n_h, h]).swap_dims(1, 2); // [B, H, L, h]
        let v = self.v.forward(hidden).reshape([b, l, n_h, h]).swap_dims(1, 2); // [B, H, L, h]
        let q = last_tables.apply(q).mul_scalar(1.0 / (h as f64).sqrt());
        let k = tables.apply(k);

        let scores = q.matmul(k.swap_dims(2, 3)); // [B, H, 1, L]
        let scores = match padding {
            Some(p) => {
                let masked = p.bool_not().reshape([b, 1, 1, l]).expand([b, n_h, 1, l]); // [B, H, 1, L]
                scores.mask_fill(masked, MASKED_SCORE)
            }
            None => scores,
        };
        let probs = if scores.dtype() == DType::F32 {
            softmax(scores, 3)
        } else {
            softmax(scores.cast(DType::F32), 3).cast(dtype)
        };
        let r = probs.matmul(v).swap_dims(1, 2).reshape([b, d]); // [B, d]
        match &self.out {
            Some(out) => out.forward(r),
            None => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use burn::tensor::{Distribution, TensorData};

    fn maxdiff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// 3·(d² + d) parameters, and the display prints them (burn's `mha.rs` display test).
    #[test]
    fn parameter_count_and_display() {
        let device = test_device();
        let ratt = LatentRattConfig::new(16).init(&device);
        assert_eq!(ratt.num_params(), 3 * (16 * 16 + 16));
        assert_eq!(
            format!("{ratt}"),
            "LatentRatt {d_model: 16, n_heads: 1, rope_base: 1000, out_proj: false, params: 816}"
        );
        // SmolLM2's width: 3·(576² + 576) = 997 056.
        assert_eq!(LatentRattConfig::new(576).init(&device).num_params(), 997_056);
        let with_out = LatentRattConfig::new(16).with_out_proj(true).init(&device);
        assert_eq!(with_out.num_params(), 4 * (16 * 16 + 16));
    }

    /// Weights start as N(0, 0.02²) and biases at zero.
    #[test]
    fn initialisation() {
        let device = test_device();
        device.seed(3);
        let ratt = LatentRattConfig::new(64).init(&device);
        let w: Vec<f32> = ratt.q.weight.val().into_data().try_to_vec().expect("f32");
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let std = (w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
        assert!(mean.abs() < 2e-3 && (std - 0.02).abs() < 2e-3, "mean {mean} std {std}");
        let bias = ratt.v.bias.as_ref().expect("bias").val();
        assert_eq!(bias.abs().max().into_scalar::<f32>(), 0.0);
    }

    /// The forward equals a direct transcription of the official `SelfAttentionLayer` (rotate-half RoPE of the
    /// whole vector with base 1000, query at the last position, softmax over all positions).
    #[test]
    fn matches_the_formula() {
        let device = test_device();
        device.seed(5);
        let (b, l, d) = (2, 5, 8);
        let mut ratt = LatentRattConfig::new(d).init(&device);
        // Non-zero biases so that a missing bias would show.
        ratt.k.bias = Some(Param::from_tensor(Tensor::random([d], Distribution::Normal(0.0, 0.5), &device)));
        ratt.q.bias = Some(Param::from_tensor(Tensor::random([d], Distribution::Normal(0.0, 0.5), &device)));
        let hidden = Tensor::<3>::random([b, l, d], Distribution::Normal(0.0, 3.0), &device);
        let got = ratt.forward(hidden.clone(), None);

        let host = |t: Tensor<3>| -> Vec<f32> { t.into_data().try_to_vec().expect("f32") };
        let (q, k, v) =
            (host(ratt.q.forward(hidden.clone())), host(ratt.k.forward(hidden.clone())), host(ratt.v.forward(hidden)));
        let inv: Vec<f32> = (0..d / 2).map(|j| 1.0 / 1000f32.powf((2 * j) as f32 / d as f32)).collect();
        let rope = |x: &[f32], p: usize| -> Vec<f32> {
            (0..d)
                .map(|i| {
                    let j = i % (d / 2);
                    let (s, c) = (p as f32 * inv[j]).sin_cos();
                    let rot = if i < d / 2 { -x[i + d / 2] } else { x[i - d / 2] };
                    x[i] * c + rot * s
                })
                .collect()
        };
        let mut want = Vec::new();
        for row in 0..b {
            let at = |t: &[f32], p: usize| t[(row * l + p) * d..(row * l + p + 1) * d].to_vec();
            let qr = rope(&at(&q, l - 1), l - 1);
            let scores: Vec<f32> = (0..l)
                .map(|p| rope(&at(&k, p), p).iter().zip(&qr).map(|(a, b)| a * b).sum::<f32>() / (d as f32).sqrt())
                .collect();
            let m = scores.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f32 = e.iter().sum();
            for i in 0..d {
                want.push((0..l).map(|p| e[p] / z * at(&v, p)[i]).sum::<f32>());
            }
        }
        let want = Tensor::<2>::from_data(TensorData::new(want, [b, d]), &device);
        let diff = maxdiff(got, want);
        assert!(diff < 1e-5, "maxdiff {diff}");
    }

    /// A left-padded row gives the same latent as the row alone, and the padding's content does not matter.
    #[test]
    fn left_padding_is_invisible() {
        let device = test_device();
        device.seed(9);
        let d = 8;
        let ratt = LatentRattConfig::new(d).with_n_heads(2).with_out_proj(true).init(&device);
        let alone = Tensor::<3>::random([1, 3, d], Distribution::Normal(0.0, 1.0), &device);
        let junk = Tensor::<3>::random([1, 2, d], Distribution::Normal(0.0, 100.0), &device);
        let padded = Tensor::cat(vec![junk, alone.clone()], 1); // [1, 5, d]
        let padding = Tensor::<2, Bool>::from_data([[false, false, true, true, true]], &device);
        let diff = maxdiff(ratt.forward(alone, None), ratt.forward(padded, Some(padding)));
        assert!(diff < 1e-5, "maxdiff {diff}");
    }

    #[test]
    fn validation_names_the_key() {
        let e = LatentRattConfig::new(10).with_n_heads(2).validate().expect_err("odd head width");
        assert!(matches!(e, Error::Config { key: "n_heads", .. }), "{e}");
        let e = LatentRattConfig::new(12).with_n_heads(5).validate().expect_err("not a divisor");
        assert!(e.to_string().contains("does not divide"), "{e}");
        assert!(LatentRattConfig::new(576).validate().is_ok());
    }
}
