//! The learning-rate schedule (warm-up 20, then linear decay) and global grad-norm clipping.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use r3_train::grads::{clip_global_norm, global_grad_norm};
use r3_train::{LinearSchedule, SftConfig, total_steps};

use crate::ad_device;

#[test]
fn warmup_then_linear_decay_at_chosen_steps() {
    // [CODE] lr 3e-4, 20 warm-up steps; a run of 120 steps decays over the last 100.
    let s = LinearSchedule { peak_lr: 3e-4, warmup: 20, total: 120 };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
    assert_eq!(s.lr(0), 0.0, "HF's first step runs at lr 0");
    assert!(close(s.lr(1), 3e-4 / 20.0));
    assert!(close(s.lr(10), 1.5e-4));
    assert!(close(s.lr(19), 3e-4 * 19.0 / 20.0));
    assert!(close(s.lr(20), 3e-4), "peak at the end of the warm-up");
    assert!(close(s.lr(70), 1.5e-4), "(120 − 70) / 100 = 0.5 of the peak");
    assert!(close(s.lr(119), 3e-6));
    assert_eq!(s.lr(120), 0.0);
    assert_eq!(s.lr(500), 0.0, "never negative");
    let none = LinearSchedule { peak_lr: 1.0, warmup: 0, total: 4 };
    assert_eq!([none.lr(0), none.lr(1), none.lr(2), none.lr(3)], [1.0, 0.75, 0.5, 0.25]);
}

#[test]
fn total_steps_round_up_partial_batches_and_respect_max_steps() {
    let mut c = SftConfig::default();
    assert_eq!(total_steps(&c, 1000), 8 * 3, "⌈1000 / 128⌉ = 8 steps per epoch, 3 epochs");
    c.train.max_steps = 10;
    assert_eq!(total_steps(&c, 1000), 10);
}

/// Two parameters (weight 3×1 and bias 1) of a Linear; gradients set by hand.
fn linear_and_grads() -> (Linear, GradientsParams) {
    let device = ad_device();
    let linear = {
        let _rng = crate::device_rng();
        LinearConfig::new(3, 1).init(&device)
    };
    let mut grads = GradientsParams::new();
    // ‖g_w‖ = sqrt(9 + 0 + 0) = 3, ‖g_b‖ = 4: global norm 5 (per-tensor norms would be 3 and 4).
    grads.register(linear.weight.id, Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 0.0, 0.0], [3, 1]), &device));
    let bias = linear.bias.as_ref().expect("bias").id;
    grads.register(bias, Tensor::<1>::from_data(TensorData::new(vec![4.0f32], [1]), &device));
    (linear, grads)
}

#[test]
fn clipping_uses_the_norm_of_all_gradients_together() {
    let (linear, grads) = linear_and_grads();
    assert!((global_grad_norm(&linear, &grads) - 5.0).abs() < 1e-12);
    let (clipped, norm) = clip_global_norm(&linear, grads, 1.0);
    assert!((norm - 5.0).abs() < 1e-12, "the reported norm is the pre-clip one: {norm}");
    let w: Vec<f32> = clipped.get::<2>(linear.weight.id).expect("w").into_data().try_to_vec().expect("f32");
    let b: Vec<f32> =
        clipped.get::<1>(linear.bias.as_ref().expect("bias").id).expect("b").into_data().try_to_vec().expect("f32");
    // Every gradient is scaled by the same coef = 1 / (5 + 1e-6): 0.6 and 0.8, not 1 and 1 (per tensor).
    let coef = 1.0 / (5.0 + 1e-6);
    assert!((f64::from(w[0]) - 3.0 * coef).abs() < 1e-6, "{w:?}");
    assert!((f64::from(b[0]) - 4.0 * coef).abs() < 1e-6, "{b:?}");
    assert!((global_grad_norm(&linear, &clipped) - 1.0).abs() < 1e-5);
    assert_eq!(linear.num_params(), 4);
}

#[test]
fn clipping_leaves_small_gradients_and_zero_disables_it() {
    let (linear, grads) = linear_and_grads();
    let (same, norm) = clip_global_norm(&linear, grads, 10.0);
    assert!((norm - 5.0).abs() < 1e-12);
    assert!((global_grad_norm(&linear, &same) - 5.0).abs() < 1e-12, "a norm below the limit is untouched");
    let (linear, grads) = linear_and_grads();
    let (same, _) = clip_global_norm(&linear, grads, 0.0);
    assert!((global_grad_norm(&linear, &same) - 5.0).abs() < 1e-12, "clip = 0 disables clipping");
}
