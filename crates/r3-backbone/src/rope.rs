//! Rotary position embeddings (RoPE) in the rotate-half convention of GPT-NeoX and Hugging Face.
//!
//! The head vector is split into halves `x = [x₁, x₂]`; dimension `i < h/2` is rotated together with dimension
//! `i + h/2` by the angle `p · θ^(-2i/h)`, i.e. `rope(x) = x ⊙ cos + rotate_half(x) ⊙ sin` with
//! `rotate_half(x) = [-x₂, x₁]` and `cos`, `sin` repeated over both halves. llama.cpp stores llama q/k weights
//! for the other (interleaved, adjacent-pair) convention; [`crate::import`] undoes that permutation, so one
//! convention serves every architecture here.
//!
//! Angles are computed in f32 from explicit integer positions, whatever the model dtype, as `transformers`
//! does: positions are inputs so that left-padded rows and cached decoding see the positions they would see
//! alone.

use burn::config::Config;
use burn::module::Module;
use std::sync::{Arc, OnceLock};

use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};

use crate::kernels::HostRope;

/// Configuration of [`RotaryEmbedding`].
#[derive(Config, Debug)]
pub struct RotaryEmbeddingConfig {
    /// The width of one attention head (even).
    pub head_dim: usize,
    /// The RoPE base θ.
    pub theta: f64,
}

impl RotaryEmbeddingConfig {
    /// Creates the module (it has no parameters; the device is accepted for symmetry with the other modules).
    pub fn init(&self, _device: &Device) -> RotaryEmbedding {
        assert!(
            self.head_dim.is_multiple_of(2) && self.head_dim > 0,
            "RoPE needs an even head_dim, got {}",
            self.head_dim
        );
        RotaryEmbedding { head_dim: self.head_dim, theta: self.theta }
    }
}

/// Rotary position embedding (no parameters): turns positions into [`RopeTables`].
#[derive(Module, Debug)]
pub struct RotaryEmbedding {
    /// The width of one attention head.
    pub head_dim: usize,
    /// The RoPE base θ.
    pub theta: f64,
}

/// The cosines and sines for one batch of positions, computed once per forward and shared by every layer.
#[derive(Clone, Debug)]
pub struct RopeTables {
    /// `cos` of the angles, `[B, 1, L, h]` (both halves equal).
    pub cos: Tensor<4>,
    /// `sin` of the angles, `[B, 1, L, h]` (both halves equal).
    pub sin: Tensor<4>,
    /// The tables on the host for the inference kernels, copied on first use and shared by every layer.
    host: Arc<OnceLock<HostRope>>,
}

impl RotaryEmbedding {
    /// The inverse frequencies `θ^(-2i/h)` for `i < h/2`, rounded to f32 as `transformers` computes them.
    pub fn inv_freq(&self) -> Vec<f32> {
        let h = self.head_dim as f32;
        (0..self.head_dim / 2).map(|i| 1.0 / (self.theta as f32).powf((2 * i) as f32 / h)).collect()
    }

    /// The tables for `positions`, in `dtype` (the model's float type).
    ///
    /// # Shapes
    /// - positions: `[B, L]`
    /// - output: cos and sin `[B, 1, L, h]`
    pub fn tables(&self, positions: Tensor<2, Int>, dtype: DType) -> RopeTables {
        let [b, l] = positions.dims();
        let device = positions.device();
        let half = self.head_dim / 2;
        let inv_freq = Tensor::<1>::from_data(TensorData::new(self.inv_freq(), [half]), (&device, DType::F32));
        // The angles are computed in f32 even for a bf16 model: bf16 cannot represent positions above 256.
        let pos = positions.cast(FloatDType::F32).reshape([b, l, 1]); // [B, L, 1]
        let freqs = pos * inv_freq.reshape([1, 1, half]); // [B, L, h/2]
        let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([b, 1, l, self.head_dim]); // [B, 1, L, h]
        RopeTables { cos: emb.clone().cos().cast(dtype), sin: emb.sin().cast(dtype), host: Arc::default() }
    }
}

impl RopeTables {
    /// The tables on the host (copied once), for [`crate::kernels::rope_heads`].
    pub(crate) fn host(&self) -> &HostRope {
        self.host.get_or_init(|| HostRope::new(self))
    }

    /// Rotates `x` by the tables' angles.
    ///
    /// # Shapes
    /// - x: `[B, n_heads, L, h]`
    /// - output: `[B, n_heads, L, h]`
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, n, l, h] = x.dims();
        let [tb, _, tl, th] = self.cos.dims();
        assert!(tb == b && tl == l && th == h, "RoPE tables [{tb}, 1, {tl}, {th}] do not fit x [{b}, {n}, {l}, {h}]");
        let x1 = x.clone().narrow(3, 0, h / 2); // [B, n, L, h/2]
        let x2 = x.clone().narrow(3, h / 2, h / 2); // [B, n, L, h/2]
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3); // [B, n, L, h]
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    /// Dimension `i` pairs with `i + h/2` (rotate-half), not with `i ± 1` (interleaved): a vector that is
    /// non-zero only at `i` gets its rotated part only at `i + h/2`, with `(cos, sin)` of `p · inv_freq[i]`.
    #[test]
    fn rotate_half_pairs_i_with_i_plus_half() {
        let device = test_device();
        let h = 8;
        let rope = RotaryEmbeddingConfig::new(h, 10_000.0).init(&device);
        let p = 3i64;
        let tables = rope.tables(Tensor::from_data([[p]], &device), DType::F32);
        let inv = rope.inv_freq();
        for i in 0..h / 2 {
            let mut v = vec![0f32; h];
            v[i] = 1.0;
            let x = Tensor::<4>::from_data(TensorData::new(v, [1, 1, 1, h]), &device);
            let y: Vec<f32> = tables.apply(x).into_data().try_to_vec().unwrap();
            let angle = p as f32 * inv[i];
            for (j, &yj) in y.iter().enumerate() {
                let want = if j == i {
                    angle.cos()
                } else if j == i + h / 2 {
                    angle.sin()
                } else {
                    0.0
                };
                assert!((yj - want).abs() < 1e-6, "i={i} j={j}: {yj} vs {want}");
            }
        }
    }

    /// A rotation preserves norms, and position 0 is the identity.
    #[test]
    fn rotation_is_orthogonal_and_zero_is_identity() {
        let device = test_device();
        let rope = RotaryEmbeddingConfig::new(16, 1e6).init(&device);
        let x = Tensor::<4>::random([2, 3, 4, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let pos = Tensor::<2, Int>::from_data([[0, 1, 2, 500], [0, 7, 8, 9]], &device);
        let y = rope.tables(pos, DType::F32).apply(x.clone());
        let nx: Vec<f32> = x.clone().square().sum_dim(3).into_data().try_to_vec().unwrap();
        let ny: Vec<f32> = y.clone().square().sum_dim(3).into_data().try_to_vec().unwrap();
        for (a, b) in nx.iter().zip(&ny) {
            assert!((a - b).abs() < 1e-4 * a.max(1.0), "{a} vs {b}");
        }
        let x0: Vec<f32> = x.narrow(2, 0, 1).into_data().try_to_vec().unwrap();
        let y0: Vec<f32> = y.narrow(2, 0, 1).into_data().try_to_vec().unwrap();
        assert_eq!(x0, y0);
    }
}
