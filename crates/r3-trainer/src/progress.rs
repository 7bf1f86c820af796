//! Progress reporting: the loop calls a [`Progress`] with the stage's typed records (r3-cli draws an indicatif
//! bar with it); the library itself only logs through `tracing`.

use std::path::Path;

use crate::trainer::LoopSummary;

/// What [`Progress::on_start`] receives.
#[derive(Clone, Debug)]
pub struct StartInfo<'a> {
    /// The run folder.
    pub run_dir: &'a Path,
    /// The optimizer steps already taken (non-zero when resuming).
    pub start_step: u64,
    /// The optimizer steps of the whole run (the schedule's length; early stopping may end sooner).
    pub total_steps: u64,
    /// Training items (samples, prompts, examples) per epoch.
    pub train_len: usize,
    /// Validation items.
    pub valid_len: usize,
}

/// Where an optimizer step stands, for its record and the progress display.
#[derive(Clone, Debug, PartialEq)]
pub struct StepMeta {
    /// The 1-based optimizer step just taken.
    pub step: u64,
    /// The optimizer steps of the whole run.
    pub total_steps: u64,
    /// The 0-based epoch of the step.
    pub epoch: usize,
    /// The learning rate of the step.
    pub lr: f64,
    /// Seconds the step took (at least 1 ns).
    pub step_s: f64,
    /// Seconds of training so far, over all sessions of the run.
    pub elapsed_s: f64,
    /// The estimated seconds left (from the mean step time of this session).
    pub eta_s: f64,
}

/// Where a validation stands, for its record and the progress display.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalMeta {
    /// The optimizer steps taken.
    pub step: u64,
    /// The 0-based epoch of the last step.
    pub epoch: usize,
    /// The validation metric.
    pub metric: f64,
    /// The best metric so far (this one included).
    pub best: f64,
    /// Whether this validation improved on the best.
    pub improved: bool,
}

/// Callbacks of a training run, with the stage's metric records; every method has an empty default.
pub trait Progress<R> {
    /// Before the first step of a session.
    fn on_start(&mut self, _info: &StartInfo<'_>) {}
    /// After every optimizer step, with the record written to `metrics.jsonl`.
    fn on_step(&mut self, _record: &R, _meta: &StepMeta) {}
    /// After every validation, with the record written to `metrics.jsonl`.
    fn on_eval(&mut self, _record: &R, _meta: &EvalMeta) {}
    /// When the run ends (normally, by early stopping, or by the stop hook; not on errors).
    fn on_end(&mut self, _summary: &LoopSummary) {}
}

/// A [`Progress`] that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl<R> Progress<R> for NoProgress {}
