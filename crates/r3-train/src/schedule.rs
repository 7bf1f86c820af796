//! The learning-rate schedule: linear warm-up, then linear decay to 0 (HF `get_linear_schedule_with_warmup`).

/// Linear warm-up from 0 to `peak_lr` over `warmup` steps, then linear decay to 0 at step `total`.
///
/// \[CODE\] the official trainer uses HF's default `lr_scheduler_type = "linear"` with `warmup_steps = 20`. HF
/// evaluates the schedule at the number of optimizer steps already taken, so the first update (step index 0)
/// runs with lr 0 when `warmup > 0`: `lr(s) = peak · s / warmup` for `s < warmup`, else
/// `peak · max(0, (total − s) / max(1, total − warmup))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSchedule {
    /// The learning rate at the end of the warm-up.
    pub peak_lr: f64,
    /// The number of warm-up steps.
    pub warmup: u64,
    /// The total number of optimizer steps of the run (the decay reaches 0 there).
    pub total: u64,
}

impl LinearSchedule {
    /// The learning rate of the optimizer step with 0-based index `step` (= steps already taken).
    pub fn lr(&self, step: u64) -> f64 {
        let factor = if step < self.warmup {
            step as f64 / self.warmup.max(1) as f64
        } else {
            (self.total.saturating_sub(step)) as f64 / (self.total.saturating_sub(self.warmup)).max(1) as f64
        };
        self.peak_lr * factor.max(0.0)
    }
}
