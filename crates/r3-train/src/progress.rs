//! Progress reporting: the trainer calls a [`TrainProgress`] (r3-cli draws an indicatif bar with it); the
//! library itself only logs through `tracing`.

use std::path::Path;

/// What [`TrainProgress::on_start`] receives.
#[derive(Clone, Debug)]
pub struct StartInfo<'a> {
    /// The run folder.
    pub run_dir: &'a Path,
    /// The optimizer steps already taken (non-zero when resuming).
    pub start_step: u64,
    /// The optimizer steps of the whole run (the schedule's length; early stopping may end sooner).
    pub total_steps: u64,
    /// Training samples per epoch.
    pub train_samples: usize,
    /// Validation samples.
    pub valid_samples: usize,
}

/// What [`TrainProgress::on_step`] receives after every optimizer step.
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// The 1-based optimizer step just taken.
    pub step: u64,
    /// The optimizer steps of the whole run.
    pub total_steps: u64,
    /// The 0-based epoch.
    pub epoch: usize,
    /// The loss of the global batch (Σ NLL / target tokens).
    pub loss: f64,
    /// The learning rate of the step.
    pub lr: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Target tokens per second of this step.
    pub tokens_per_s: f64,
    /// The estimated seconds left (from the mean step time of this session).
    pub eta_s: f64,
}

/// What [`TrainProgress::on_eval`] receives after every validation.
#[derive(Clone, Debug)]
pub struct EvalInfo {
    /// The optimizer steps taken.
    pub step: u64,
    /// The 0-based epoch that was running.
    pub epoch: usize,
    /// The validation loss (Σ NLL / target tokens over the validation set).
    pub val_loss: f64,
    /// The best validation loss so far (this one included).
    pub best_val_loss: f64,
    /// Whether this evaluation improved on the best.
    pub improved: bool,
}

/// Callbacks of a training run; every method has an empty default.
pub trait TrainProgress {
    /// Before the first step.
    fn on_start(&mut self, _info: &StartInfo<'_>) {}
    /// After every optimizer step.
    fn on_step(&mut self, _info: &StepInfo) {}
    /// After every validation.
    fn on_eval(&mut self, _info: &EvalInfo) {}
    /// When the run ends (normally, by early stopping, or by the stop hook; not on errors).
    fn on_end(&mut self, _outcome: &crate::SftSummary) {}
}

/// A [`TrainProgress`] that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl TrainProgress for NoProgress {}

/// Turns the generic loop's callbacks into a [`TrainProgress`]'s.
pub(crate) struct SftProgress(pub(crate) Box<dyn TrainProgress>);

impl r3_trainer::Progress<crate::run::MetricRecord> for SftProgress {
    fn on_start(&mut self, info: &r3_trainer::StartInfo<'_>) {
        self.0.on_start(&StartInfo {
            run_dir: info.run_dir,
            start_step: info.start_step,
            total_steps: info.total_steps,
            train_samples: info.train_len,
            valid_samples: info.valid_len,
        });
    }

    fn on_step(&mut self, record: &crate::run::MetricRecord, m: &r3_trainer::StepMeta) {
        if let crate::run::MetricRecord::Step { loss, grad_norm, tokens_per_s, .. } = *record {
            let (step, total_steps, epoch, lr, eta_s) = (m.step, m.total_steps, m.epoch, m.lr, m.eta_s);
            self.0.on_step(&StepInfo { step, total_steps, epoch, loss, lr, grad_norm, tokens_per_s, eta_s });
        }
    }

    fn on_eval(&mut self, _record: &crate::run::MetricRecord, m: &r3_trainer::EvalMeta) {
        let (step, epoch, improved) = (m.step, m.epoch, m.improved);
        self.0.on_eval(&EvalInfo { step, epoch, val_loss: m.metric, best_val_loss: m.best, improved });
    }

    fn on_end(&mut self, summary: &r3_trainer::LoopSummary) {
        self.0.on_end(&crate::SftSummary::from(summary));
    }
}
