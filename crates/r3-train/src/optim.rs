//! AdamW in one pass over memory.
//!
//! burn's AdamW (burn-optim 0.22.1 `adamw.rs`) updates a parameter with about fifteen tensor ops, most of which
//! allocate a fresh tensor of the parameter's size: for Qwen2.5-Coder-0.5B, gigabytes of new pages per step
//! that the kernel must fault in and zero (17 % of an SFT step's profile). [`FusedAdamW`] computes the same
//! update in one pass per parameter on a flex device, in place in the parameter's, the moments' and the
//! gradient's buffers when they are not shared, and falls back to burn's AdamW elsewhere (other backends,
//! other dtypes, AMSGrad state).
//!
//! The update is torch's and burn's AdamW (Loshchilov & Hutter, 2019), in burn's operation order and in f32:
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `Δ = (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)`,
//! `w ← w(1 − lr·λ) − lr·Δ`. The state is burn's [`AdamWState`], so optimizer checkpoints are
//! interchangeable with burn's AdamW (tested).

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

/// Elements per rayon task: a memory-bound pass, split in pieces large enough to amortise the hand-off.
const CHUNK: usize = 1 << 16;

/// AdamW with burn's semantics, fused into one pass on the flex backend. Build it with [`FusedAdamW::new`] and
/// wrap it in a `ModuleOptimizer` (`ModuleOptimizer::from`).
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// burn's AdamW with the same settings, for the cases the fused pass does not cover.
    reference: AdamW,
}

impl std::fmt::Debug for FusedAdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedAdamW")
            .field("beta_1", &self.beta_1)
            .field("beta_2", &self.beta_2)
            .field("epsilon", &self.epsilon)
            .field("weight_decay", &self.weight_decay)
            .finish()
    }
}

impl FusedAdamW {
    /// AdamW with these β₁, β₂, ε and decoupled weight decay λ.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let reference = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        FusedAdamW { beta_1, beta_2, epsilon, weight_decay, reference }
    }

    /// Whether the fused pass applies: f32 parameter, gradient and moments on a flex device, no AMSGrad state.
    fn fusable<const D: usize>(tensor: &Tensor<D>, grad: &Tensor<D>, state: Option<&AdamWState<D>>) -> bool {
        let f32_flex = |t: &Tensor<D>| t.dtype() == DType::F32 && r3_backbone::is_flex(&t.device());
        f32_flex(tensor)
            && f32_flex(grad)
            && state.is_none_or(|s| {
                let m = &s.momentum;
                m.max_moment_2.is_none() && f32_flex(&m.moment_1) && f32_flex(&m.moment_2)
            })
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !Self::fusable(&tensor, &grad, state.as_ref()) {
            return self.reference.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let (time, m, v) = match state {
            Some(s) => (s.momentum.time + 1, s.momentum.moment_1.into_data(), s.momentum.moment_2.into_data()),
            // m = v = 0 before the first step: β·0 + x = x exactly, so this is burn's initialisation.
            None => (1, zeros(n, &shape), zeros(n, &shape)),
        };
        let (mut w, g, mut m, mut v) = (tensor.into_data(), grad.into_data(), m, v);
        let consts = Consts::new(self, lr, time);
        let slices = (
            w.as_mut_slice::<f32>().expect(F32),
            g.as_slice::<f32>().expect(F32),
            m.as_mut_slice::<f32>().expect(F32),
            v.as_mut_slice::<f32>().expect(F32),
        );
        update(slices, &consts);
        let back = |data: TensorData| Tensor::<D>::from_data(data, (&device, DType::F32));
        let momentum = AdaptiveMomentumState::new(time, back(m), back(v));
        (back(w), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

const F32: &str = "FusedAdamW::fusable checked the dtype";

fn zeros(n: usize, shape: &burn::tensor::Shape) -> TensorData {
    TensorData::new(vec![0f32; n], shape.clone())
}

/// The scalars of one step, rounded to f32 as burn's scalar ops round them.
struct Consts {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    /// `1 − lr·λ`, or `None` without decay (burn then skips the product).
    decay: Option<f32>,
    lr: f32,
}

impl Consts {
    fn new(o: &FusedAdamW, lr: LearningRate, time: usize) -> Self {
        let t = time as i32;
        let decay_rate = lr * f64::from(o.weight_decay);
        Consts {
            beta_1: o.beta_1,
            beta_2: o.beta_2,
            factor_1: 1.0 - o.beta_1,
            factor_2: 1.0 - o.beta_2,
            correction_1: 1.0 - o.beta_1.powi(t),
            correction_2: 1.0 - o.beta_2.powi(t),
            epsilon: o.epsilon,
            decay: (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32),
            lr: lr as f32,
        }
    }
}

/// One AdamW step over `(w, g, m, v)`, in place in `w`, `m` and `v`, spread over rayon's pool.
fn update((w, g, m, v): (&mut [f32], &[f32], &mut [f32], &mut [f32]), c: &Consts) {
    let run = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = *m * c.beta_1 + g * c.factor_1;
            *v = *v * c.beta_2 + g * g * c.factor_2;
            let delta = (*m / c.correction_1) / ((*v / c.correction_2).sqrt() + c.epsilon);
            let decayed = match c.decay {
                Some(d) => *w * d,
                None => *w,
            };
            *w = decayed - delta * c.lr;
        }
    };
    if w.len() <= CHUNK {
        run(w, g, m, v);
    } else {
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((w, g), m), v)| run(w, g, m, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, ModuleOptimizer};
    use burn::tensor::Distribution;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    fn worst_relative(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / x.abs().max(1e-3)).fold(0.0, f32::max)
    }

    /// Several steps of the fused pass give burn's AdamW's parameters and moments, with and without decay, on a
    /// tensor of several rayon chunks.
    #[test]
    fn fused_steps_equal_burns_adamw() {
        let device = Device::flex();
        device.seed(1);
        for decay in [0.0, 0.05] {
            let fused = FusedAdamW::new(0.9, 0.999, 1e-8, decay);
            let reference = fused.reference.clone();
            let mut w = Tensor::<2>::random([3, CHUNK + 77], Distribution::Normal(0.0, 1.0), &device);
            let (mut wf, mut wr) = (w.clone(), w.clone());
            let (mut sf, mut sr) = (None, None);
            for step in 0..4 {
                let g = Tensor::<2>::random([3, CHUNK + 77], Distribution::Normal(0.0, 0.1 + step as f64), &device);
                (wf, sf) = fused.step(3e-4, wf, g.clone(), sf);
                (wr, sr) = reference.step(3e-4, wr, g, sr);
            }
            let (a, b) = (sf.unwrap().momentum, sr.unwrap().momentum);
            assert_eq!(a.time, b.time);
            let dw = worst_relative(&host(wr.clone()), &host(wf.clone()));
            let dm = worst_relative(&host(b.moment_1), &host(a.moment_1));
            let dv = worst_relative(&host(b.moment_2), &host(a.moment_2));
            assert!(dw < 1e-6 && dm < 1e-6 && dv < 1e-6, "decay {decay}: w {dw}, m {dm}, v {dv}");
            // The update moved the weights (a test that cannot fail otherwise would pass on a no-op).
            w = w - wf;
            assert!(host(w).iter().any(|&x| x.abs() > 1e-5));
        }
    }

    /// Optimizer checkpoints are interchangeable with burn's AdamW: a state saved by either and loaded into the
    /// other gives the same next update as continuing without the round trip.
    #[test]
    fn checkpoints_are_interchangeable_with_burns_adamw() {
        let device = Device::flex().autodiff();
        device.seed(2);
        let model: Linear = LinearConfig::new(6, 4).init(&device);
        let x = Tensor::<2>::random([5, 6], Distribution::Normal(0.0, 1.0), &device);
        let grads = |m: &Linear| GradientsParams::from_grads(m.forward(x.clone()).powi_scalar(2).sum().backward(), m);
        let fused = || ModuleOptimizer::from(FusedAdamW::new(0.9, 0.999, 1e-8, 0.01));
        let burns = || AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01).init();
        for (first, second) in [(fused(), burns()), (burns(), fused())] {
            let mut opt = first;
            let m1 = opt.step(1e-2, model.clone(), grads(&model));
            let bytes = opt.into_bytes().unwrap();
            let mut cont = opt;
            let want = cont.step(1e-2, m1.clone(), grads(&m1));
            let mut other = second.from_bytes(bytes).unwrap();
            let got = other.step(1e-2, m1.clone(), grads(&m1));
            let d = worst_relative(&host(want.weight.val()), &host(got.weight.val()));
            assert!(d < 1e-6, "weights differ after a round trip: {d}");
            let moved = worst_relative(&host(m1.weight.val()), &host(got.weight.val()));
            assert!(moved > 1e-4, "the second step did not move the weights");
        }
    }
}
