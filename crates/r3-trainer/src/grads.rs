//! Gradient bookkeeping over a whole module: accumulation across micro-batches and global-norm clipping.
//!
//! burn's `GradientClipping::Norm` clips every tensor by its own norm; the paper's setting (\[CODE\], HF
//! `max_grad_norm = 1.0`, i.e. `torch.nn.utils.clip_grad_norm_`) clips by the norm of *all* gradients together.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{FloatDType, Tensor};

/// Adds `new` into `acc` parameter by parameter (burn's [`GradientsAccumulator`]).
pub fn accumulate<M: Module>(model: &M, acc: Option<GradientsParams>, new: GradientsParams) -> GradientsParams {
    let mut accumulator = GradientsAccumulator::<M>::new();
    if let Some(acc) = acc {
        accumulator.accumulate(model, acc);
    }
    accumulator.accumulate(model, new);
    accumulator.grads()
}

/// The L2 norm of all gradients of `model`'s parameters together, `sqrt(Σ_p ‖g_p‖²)`, computed in f32 per
/// tensor and summed in f64.
pub fn global_grad_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sum_sq: f64,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let sq: f32 = g.cast(FloatDType::F32).square().sum().into_scalar();
                self.sum_sq += f64::from(sq);
            }
        }
    }
    let mut v = Norm { grads, sum_sq: 0.0 };
    model.visit(&mut v);
    v.sum_sq.sqrt()
}

/// Multiplies every gradient of `model`'s parameters by `factor`.
pub fn scale_grads<M: Module>(model: &M, grads: GradientsParams, factor: f64) -> GradientsParams {
    struct Scale {
        grads: GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut v = Scale { grads, factor };
    model.visit(&mut v);
    v.grads
}

/// Clips the gradients by their global norm as `torch.nn.utils.clip_grad_norm_` does: with
/// `coef = max_norm / (norm + 1e-6)`, every gradient is multiplied by `coef` when `coef < 1`. Returns the
/// gradients and the norm *before* clipping. `max_norm = 0` disables clipping (the norm is still computed).
pub fn clip_global_norm<M: Module>(model: &M, grads: GradientsParams, max_norm: f64) -> (GradientsParams, f64) {
    let norm = global_grad_norm(model, &grads);
    if max_norm > 0.0 && norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            return (scale_grads(model, grads, coef), norm);
        }
    }
    (grads, norm)
}
