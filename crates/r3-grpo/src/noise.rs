//! Seeded latent noise for LR-GRPO's reparameterised sampling `r_k = r + ε_k`, `ε_k ~ N(0, σ²I)` (docs/method.md §4
//! stage 2, step 1).
//!
//! The noise of a micro-step depends only on `(seed, optimizer step, micro-step)`: a resumed run draws exactly the
//! noise of an uninterrupted one, whatever the batch layout of the device.

use burn::tensor::{Device, Tensor, TensorData};
use r3_data::SplitMix64;

/// Where a micro-step's noise comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoiseKey {
    /// The run's seed (`train.seed`).
    pub seed: u64,
    /// The optimizer step (0-based) the micro-step belongs to.
    pub step: u64,
    /// The micro-step within the optimizer step.
    pub micro: u64,
}

/// The shape and scale of a micro-step's noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseShape {
    /// Groups (prompts) `G`.
    pub groups: usize,
    /// Samples per group `K`.
    pub group_size: usize,
    /// Latent tokens `N`.
    pub n_latent: usize,
    /// The hidden size `d`.
    pub d_model: usize,
    /// σ.
    pub std: f64,
    /// Whether sample 0 of every group is un-noised (\[CODE\] yes).
    pub unnoised_first: bool,
}

/// Draws the noise `[G·K, N, d]` of one micro-step: standard normal numbers by the Box–Muller transform of a
/// [`SplitMix64`] stream seeded from the key, times σ; sample 0 of each group is all zeros when `unnoised_first`.
///
/// NOTE: \[CODE\] the first sample of each group is un-noised (`ε_1 = 0`); the paper samples all K.
pub fn latent_noise(key: NoiseKey, shape: NoiseShape, device: &Device) -> Tensor<3> {
    let NoiseShape { groups, group_size, n_latent, d_model, std, unnoised_first } = shape;
    let rows = groups * group_size;
    let mut rng = SplitMix64::new(
        SplitMix64::new(key.seed ^ 0xA076_1D64_78BD_642F).next_u64()
            ^ key.step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ key.micro.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    let per_row = n_latent * d_model;
    let mut values = Vec::with_capacity(rows * per_row);
    for row in 0..rows {
        if unnoised_first && row % group_size == 0 {
            values.extend(std::iter::repeat_n(0.0f32, per_row));
            continue;
        }
        let mut j = 0;
        while j < per_row {
            // Box–Muller: two uniforms in (0, 1] and [0, 1) give two independent standard normals.
            let u1 = 1.0 - rng.next_f64();
            let u2 = rng.next_f64();
            let r = (-2.0 * u1.ln()).sqrt();
            let theta = 2.0 * std::f64::consts::PI * u2;
            values.push((std * r * theta.cos()) as f32);
            if j + 1 < per_row {
                values.push((std * r * theta.sin()) as f32);
            }
            j += 2;
        }
    }
    Tensor::from_data(TensorData::new(values, [rows, n_latent, d_model]), device) // [G·K, N, d]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    #[test]
    fn noise_is_seeded_zero_on_first_samples_and_has_the_right_scale() {
        let device = test_device();
        let shape = NoiseShape { groups: 2, group_size: 4, n_latent: 1, d_model: 1000, std: 1.5, unnoised_first: true };
        let key = NoiseKey { seed: 3, step: 7, micro: 1 };
        let a: Vec<f32> = latent_noise(key, shape, &device).into_data().try_to_vec().expect("f32");
        let b: Vec<f32> = latent_noise(key, shape, &device).into_data().try_to_vec().expect("f32");
        assert_eq!(a, b);
        let c: Vec<f32> =
            latent_noise(NoiseKey { micro: 2, ..key }, shape, &device).into_data().try_to_vec().expect("f32");
        assert_ne!(a, c);
        for row in 0..8 {
            let r = &a[row * 1000..(row + 1) * 1000];
            if row % 4 == 0 {
                assert!(r.iter().all(|&x| x == 0.0));
            } else {
                let mean = r.iter().map(|&x| f64::from(x)).sum::<f64>() / 1000.0;
                let std = (r.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / 1000.0).sqrt();
                assert!(mean.abs() < 0.15 && (std - 1.5).abs() < 0.15, "row {row}: mean {mean}, std {std}");
            }
        }
    }
}
