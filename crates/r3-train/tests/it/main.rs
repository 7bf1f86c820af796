//! Integration tests of r3-train (one module per topic). The trainer is generic over `SftModel`; most tests
//! train a tiny random r3-backbone decoder (the BIGRec case: prompt ++ target, CE on the target tokens) on
//! synthetic samples, on the flex CPU backend; `overfit_real` trains the LatentR³ model of SmolLM2 on real CDs
//! samples.

mod accumulation;
mod config;
mod lora;
mod overfit;
mod overfit_real;
mod parallel;
mod resume;
mod schedule;
mod stops;

use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use r3_backbone::{Arch, Backbone, BackboneConfig, HiddenInput};
use r3_data::raw::PyRandom;
use r3_data::{EncodedSample, SftBatch};
use r3_train::{Nll, SftConfig, SftData, SftModel, target_nll};

/// The vocabulary of the tiny model.
pub const VOCAB: usize = 32;
/// The padding id.
pub const PAD: u32 = 0;
/// The end-of-sequence id (last target token).
pub const EOS: u32 = 2;
/// A target id that makes the tiny model's loss NaN (for the NaN test).
pub const POISON: u32 = 31;

/// The autodiff device of the tests (flex CPU backend).
pub fn ad_device() -> Device {
    Device::flex().autodiff()
}

/// A tiny decoder with a target-token CE: the BIGRec case of `SftModel`.
#[derive(Module, Debug)]
pub struct TinyLm {
    /// The decoder.
    pub backbone: Backbone,
}

/// burn's initialisers and `Tensor::random` draw from one generator per backend, shared by the tests of this
/// binary, which run on parallel threads. A test that seeds it and then draws (`build_latent`) holds this lock
/// from the seed to the last draw, and every draw here takes it, so that no other test draws in between.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`DEVICE_RNG`] (a test that panicked while holding it does not poison the others).
pub fn device_rng() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TinyLm {
    /// A tiny decoder (width 32, 2 layers) with weights drawn from a seeded generator, so that every test run
    /// trains the same model (burn's own initialisers draw from a global generator shared by parallel tests).
    pub fn new(device: &Device, seed: u64) -> Self {
        let config = BackboneConfig::new(Arch::Qwen2, VOCAB, 32, 2, 4, 2, 8, 64, 10_000.0, 1e-6, true, true, 128);
        let backbone = {
            let _rng = device_rng();
            config.init(device)
        };
        TinyLm { backbone }.map(&mut SeededInit { rng: PyRandom::seed(seed) })
    }
}

/// Replaces every parameter that is not all ones (the RMSNorm gains) by uniform values in `±1/√rows` (the tied
/// embedding then has std ≈ 0.1, so the first loss is near ln V rather than ≈ 30 as with burn's N(0, 1)).
struct SeededInit {
    rng: PyRandom,
}

impl ModuleMapper for SeededInit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val();
        let shape = value.shape();
        let data: Vec<f32> = value.clone().into_data().convert::<f32>().try_to_vec().expect("f32 data");
        if data.iter().all(|x| *x == 1.0) {
            return param;
        }
        let scale = 1.0 / (shape.dims::<D>()[0] as f32).sqrt();
        let fresh: Vec<f32> =
            data.iter().map(|_| (self.rng.getrandbits(24) as f32 / (1u32 << 23) as f32 - 1.0) * scale).collect();
        Param::from_tensor(Tensor::from_data(TensorData::new(fresh, shape), &value.device()))
    }
}

impl SftModel for TinyLm {
    fn nll(&self, batch: &SftBatch) -> Nll {
        let device = self.backbone.embed_tokens.weight.device();
        let (b, p, n, t) = (batch.rows, batch.prompt_len, batch.n_thought, batch.target_len);
        let width = p + n + t;
        let mut ids = Vec::with_capacity(b * width);
        let mut real = Vec::with_capacity(b * width);
        for r in 0..b {
            ids.extend(batch.prompt_ids[r * p..(r + 1) * p].iter().map(|&x| i64::from(x)));
            real.extend_from_slice(&batch.prompt_real[r * p..(r + 1) * p]);
            ids.extend(std::iter::repeat_n(i64::from(batch.thought_id), n));
            real.extend(std::iter::repeat_n(true, n));
            ids.extend(batch.target_ids[r * t..(r + 1) * t].iter().map(|&x| i64::from(x)));
            real.extend_from_slice(&batch.target_real[r * t..(r + 1) * t]);
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, width]), &device);
        let real = Tensor::<2, Bool>::from_data(TensorData::new(real, [b, width]), &device);
        let hidden = self.backbone.hidden(HiddenInput::new(self.backbone.embed(ids)).with_padding(real)).hidden;
        let logits = self.backbone.logits(hidden.narrow(1, p + n - 1, t)); // [B, T, V]
        let mut nll = target_nll(logits, batch);
        if batch.target_ids.contains(&POISON) {
            nll.sum = nll.sum.mul_scalar(f32::NAN);
        }
        nll
    }
}

/// The batch of the samples (BIGRec: no thought tokens), as `r3_data::Encoder::batch` lays it out.
pub fn collate(samples: &[EncodedSample]) -> SftBatch {
    SftBatch::new(samples, 0, VOCAB as u32 - 1, PAD)
}

/// `n` synthetic samples: prompts of 2–5 tokens (ids 3..=20) starting with 1, targets of 1–3 tokens (ids
/// 21..=29, a function of the prompt, plus `offset`) followed by EOS.
pub fn samples(n: usize, offset: u32) -> Vec<EncodedSample> {
    (0..n as u32)
        .map(|i| {
            let len = 2 + (i * 7 % 4) as usize;
            let mut prompt = vec![1];
            prompt.extend((0..len as u32).map(|j| 3 + (i * 5 + j * 3) % 18));
            let t_len = 1 + (i % 3) as usize;
            let mut target: Vec<u32> = (0..t_len as u32).map(|j| 21 + (i * 3 + j + offset) % 9).collect();
            target.push(EOS);
            EncodedSample { prompt_ids: prompt, n_thought: 0, target_ids: target }
        })
        .collect()
}

/// The data of a run.
pub fn data(train: Vec<EncodedSample>, valid: Vec<EncodedSample>) -> SftData {
    SftData { train, valid, collate: Box::new(collate) }
}

/// A config for the tiny model writing into `dir` (not timestamped).
pub fn config(dir: &Path, overrides: &[&str]) -> SftConfig {
    let mut all: Vec<String> = vec![
        format!("run.output_dir={:?}", dir.display().to_string()),
        "run.timestamped=false".into(),
        "model.id=tiny".into(),
        "data.no_latent=true".into(),
    ];
    all.extend(overrides.iter().map(|s| s.to_string()));
    SftConfig::from_toml_str("", "<test>", &all).expect("test config")
}

/// All float parameters of a module, in visiting order.
pub fn weights<M: Module>(model: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data"));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// The largest absolute difference between two weight lists.
pub fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "different parameter counts");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(u, v)| (u - v).abs())
        })
        .fold(0.0, f32::max)
}

/// Σ NLL / tokens of `model` over `samples` (inference copy).
pub fn loss_of<M: SftModel>(model: &M, samples: &[EncodedSample]) -> f64 {
    let model = model.valid();
    let nll = model.nll(&collate(samples));
    f64::from(nll.sum.into_scalar::<f32>()) / nll.tokens as f64
}
