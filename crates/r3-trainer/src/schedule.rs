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

/// Linear warm-up from 0 to `peak_lr`, then cosine decay to 0 at `total` (HF `get_cosine_schedule_with_warmup`
/// with half a cycle, which TRL's `lr_scheduler_type = "cosine"` uses; the LR-GRPO stage).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineSchedule {
    /// The learning rate at the end of the warm-up.
    pub peak_lr: f64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Total optimizer steps.
    pub total: u64,
}

impl CosineSchedule {
    /// The learning rate of optimizer step `step` (0-based): `peak · step / warmup` during the warm-up, then
    /// `peak · ½ (1 + cos(π · progress))` with `progress = (step − warmup) / (total − warmup)`.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.peak_lr * step as f64 / self.warmup.max(1) as f64;
        }
        let progress = (step - self.warmup) as f64 / (self.total.saturating_sub(self.warmup)).max(1) as f64;
        self.peak_lr * (0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())).max(0.0)
    }
}

/// The schedule of a stage's [`crate::Policy`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Linear warm-up and decay (SFT).
    Linear(LinearSchedule),
    /// Linear warm-up and cosine decay (LR-GRPO).
    Cosine(CosineSchedule),
    /// One learning rate throughout (the baselines' Adam).
    Constant(f64),
}

impl Schedule {
    /// The learning rate of the optimizer step with 0-based index `step`.
    pub fn lr(&self, step: u64) -> f64 {
        match self {
            Schedule::Linear(s) => s.lr(step),
            Schedule::Cosine(s) => s.lr(step),
            Schedule::Constant(lr) => *lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_zero() {
        let s = CosineSchedule { peak_lr: 1e-4, warmup: 10, total: 110 };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.5e-4).abs() < 1e-15);
        assert!((s.lr(10) - 1e-4).abs() < 1e-15);
        assert!((s.lr(60) - 0.5e-4).abs() < 1e-12, "{}", s.lr(60));
        assert!(s.lr(110).abs() < 1e-15);
        assert!(s.lr(200).abs() < 1e-15);
    }
}
