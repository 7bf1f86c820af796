//! Integration tests of `r3-rewards`.
//!
//! - `builtins`: hand-computed values of every built-in reward, with the arithmetic in comments.
//! - `combined`: weighted sums, per-part scores, weight validation.
//! - `registry`: rewards selected by name from TOML, unknown names, params, custom registrations.
//! - `errors`: missing decoded candidates, non-finite rewards, empty targets, wrong score counts.
//! - `props`: property tests of `neg_ppl` (range, monotone in the mean log-prob).
//! - `golden`: `neg_ppl` against the PyTorch LR-GRPO rewards and `rank` on real golden beams.
//! - `example`: the custom reward of `examples/custom_reward.rs` (the code of `docs/extending.md`).

mod builtins;
mod combined;
mod errors;
mod example;
mod golden;
mod props;
mod registry;

/// Natural log of a probability, as the trainer's f32 log-softmax gives it.
pub fn ln(p: f32) -> f32 {
    p.ln()
}

/// Asserts `|got − want| ≤ tol` for each pair, printing the largest difference on failure.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ: got {got:?}, want {want:?}");
    let maxdiff = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
    assert!(maxdiff <= tol, "maxdiff {maxdiff:e} > {tol:e}: got {got:?}, want {want:?}");
}
