//! A complete training stage in one file: least-squares regression `y = W x + b` trained by AdamW through
//! `r3_trainer::Trainer`, with validation, early stopping, checkpoints, resume and a typed `metrics.jsonl`.
//!
//! A new stage (a researcher's own RL variant, say) has the same parts: the data and model it holds, a
//! [`Policy`] that lays out its loop, one optimizer step on a batch of indices at a learning rate, a validation
//! metric, the records it logs, and what it checkpoints. The loop itself (order, schedule, checkpoints, resume,
//! metrics, progress, the stop hook) is the trainer's.
//!
//! Run it with `cargo run -p r3-trainer --example linear_stage -- /tmp/linear-run`.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use r3_trainer::checkpoint::{load_model, load_optimizer, save_model, save_optimizer};
use r3_trainer::{EvalMeta, LoopSummary, MetricLine, Policy, Schedule, Stage, StepAt, StepMeta, Stepped, Trainer};
use serde::{Deserialize, Serialize};

/// Input and output widths of the regression.
pub const D_IN: usize = 4;
/// Output width.
pub const D_OUT: usize = 2;

/// One line of the stage's `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinearRecord {
    /// An optimizer step.
    Step {
        /// The 1-based step.
        step: u64,
        /// The mean squared error of the batch.
        loss: f64,
        /// The learning rate of the step.
        lr: f64,
    },
    /// A validation.
    Eval {
        /// The step.
        step: u64,
        /// The validation mean squared error.
        mse: f64,
    },
}

impl MetricLine for LinearRecord {
    fn step(&self) -> u64 {
        match self {
            LinearRecord::Step { step, .. } | LinearRecord::Eval { step, .. } => *step,
        }
    }
}

/// The stage: the model, its optimizer, the data and the loop's layout.
pub struct LinearStage {
    /// `None` only while an optimizer step holds it.
    model: Option<Linear>,
    optimizer: ModuleOptimizer,
    device: Device,
    train: (Vec<[f32; D_IN]>, Vec<[f32; D_OUT]>),
    valid: (Vec<[f32; D_IN]>, Vec<[f32; D_OUT]>),
    policy: Policy,
}

/// `n` points of a fixed linear map with a little deterministic noise (`offset` picks another set).
pub fn points(n: usize, offset: usize) -> (Vec<[f32; D_IN]>, Vec<[f32; D_OUT]>) {
    let x: Vec<[f32; D_IN]> =
        (0..n).map(|i| std::array::from_fn(|j| (((i + offset) * 7 + j * 3) % 11) as f32 / 5.0 - 1.0)).collect();
    let y = x
        .iter()
        .enumerate()
        .map(|(i, x)| {
            std::array::from_fn(|o| {
                x.iter().enumerate().map(|(j, v)| v * (o + j) as f32 * 0.5).sum::<f32>() + 0.01 * (i % 3) as f32
            })
        })
        .collect();
    (x, y)
}

fn tensor<const W: usize>(rows: &[[f32; W]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), W]), device)
}

impl LinearStage {
    /// A stage on `device` (with autodiff) training on `n_train` points, with `epochs` epochs of batches of 8.
    pub fn new(device: &Device, n_train: usize, epochs: usize) -> Self {
        // Zeros, not a random draw: burn's generator is shared by the threads of a test binary.
        let model = LinearConfig::new(D_IN, D_OUT).with_initializer(Initializer::Zeros).init(device);
        let policy = Policy {
            batch: 8,
            drop_last: false,
            epochs,
            max_steps: 0,
            iterations: 1,
            seed: 11,
            schedule: Schedule::Constant(5e-2),
            validate: true,
            eval_every: 0,
            eval_at_epoch_end: true,
            checkpoint_every: 2,
            checkpoint_every_eval: true,
            checkpoint_on_stop: false,
            keep_checkpoints: 2,
            patience: 0,
            higher_is_better: false,
        };
        let optimizer = AdamWConfig::new().with_weight_decay(0.0).init();
        LinearStage {
            model: Some(model),
            optimizer,
            device: device.clone(),
            train: points(n_train, 0),
            valid: points(16, 100),
            policy,
        }
    }

    /// The model.
    pub fn model(&self) -> &Linear {
        self.model.as_ref().expect("held between steps")
    }

    fn mse(model: &Linear, x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
        (model.forward(x) - y).powf_scalar(2.0).mean()
    }
}

impl Stage for LinearStage {
    type Error = r3_trainer::Error;
    type Record = LinearRecord;
    type Output = f64;
    type Eval = ();
    type Summary = LoopSummary;

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn train_len(&self) -> usize {
        self.train.0.len()
    }

    fn config_toml(&self) -> Result<String, Self::Error> {
        Ok(format!(
            "[train]\nbatch = {}\nepochs = {}\nseed = {}\n",
            self.policy.batch, self.policy.epochs, self.policy.seed
        ))
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn step(&mut self, at: &StepAt<'_>) -> Result<Stepped<f64>, Self::Error> {
        let xs: Vec<[f32; D_IN]> = at.idx.iter().map(|&i| self.train.0[i]).collect();
        let ys: Vec<[f32; D_OUT]> = at.idx.iter().map(|&i| self.train.1[i]).collect();
        let model = self.model.take().expect("held between steps");
        let loss = Self::mse(&model, tensor(&xs, &self.device), tensor(&ys, &self.device));
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            self.model = Some(model);
            return Err(r3_trainer::Error::Data {
                message: format!("step {}: loss {value}; last checkpoint {}", at.step, at.checkpoint),
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optimizer.step(at.lr, model, grads));
        Ok(Stepped { output: value, seen: at.idx.len() as u64 })
    }

    fn step_record(&self, loss: f64, meta: &StepMeta) -> LinearRecord {
        LinearRecord::Step { step: meta.step, loss, lr: meta.lr }
    }

    fn validate(&mut self, _step: u64, _checkpoint: &str) -> Result<(f64, ()), Self::Error> {
        let model = self.model().valid();
        let device = self.device.clone().inner();
        let mse = Self::mse(&model, tensor(&self.valid.0, &device), tensor(&self.valid.1, &device));
        Ok((f64::from(mse.into_scalar::<f32>()), ()))
    }

    fn eval_record(&self, _eval: (), meta: &EvalMeta) -> LinearRecord {
        LinearRecord::Eval { step: meta.step, mse: meta.metric }
    }

    fn save(&self, dir: &Path) -> Result<(), Self::Error> {
        save_model(dir, self.model())?;
        save_optimizer(dir, &self.optimizer)
    }

    fn load(&mut self, dir: &Path) -> Result<(), Self::Error> {
        let model = self.model.take().expect("held between steps");
        self.model = Some(load_model(dir, model)?);
        let optimizer = std::mem::replace(&mut self.optimizer, AdamWConfig::new().init());
        self.optimizer = load_optimizer(dir, optimizer)?;
        Ok(())
    }

    fn summary(&self, summary: &LoopSummary) -> LoopSummary {
        summary.clone()
    }
}

/// Trains a fresh run in `dir` (or resumes it when it holds one) and returns the summary.
///
/// # Errors
/// The loop's errors.
pub fn train(dir: &Path, stop_after: Option<u64>) -> Result<(LinearStage, LoopSummary), r3_trainer::Error> {
    let device = Device::flex().autodiff();
    let stage = LinearStage::new(&device, 40, 3);
    let trainer = if dir.join(r3_trainer::run::CONFIG_FILE).exists() {
        Trainer::resume(stage, dir)?
    } else {
        Trainer::new(stage, dir, false, "Trainer")?
    };
    let trainer = match stop_after {
        Some(k) => trainer.stop_after_steps(k),
        None => trainer,
    };
    trainer.run()
}

#[allow(dead_code)]
fn main() -> Result<(), r3_trainer::Error> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "linear-run".into());
    let (_, summary) = train(Path::new(&dir), None)?;
    println!("{summary:#?}");
    Ok(())
}
