//! The [`Reward`] trait: one scalar per sample, from log-probs and (optionally) decoded candidates.

use std::fmt::Debug;

use crate::error::{Error, Result};
use crate::input::RewardInput;

/// A reward function of LR-GRPO or GRPO (docs/method.md §4): receives every sample of one group or batch and returns
/// one scalar per sample, in sample order; the trainer turns the scalars into advantages.
///
/// Implement [`Reward::name`] and [`Reward::score`] (and [`Reward::needs_decoding`] when the reward reads decoded
/// candidates); callers use [`Reward::evaluate`], which checks what `score` returns. A reward takes log-probs
/// and decoded text, never a model or tensors (docs/conventions.md §10), so it can be tested without a model.
pub trait Reward: Send + Sync + Debug {
    /// The name that selects the reward in configs and appears in logs and errors (`neg_ppl`).
    fn name(&self) -> &str;

    /// Whether the reward reads [`Sample::decoded`](crate::Sample::decoded): when it does, the trainer decodes
    /// candidates for every sample before scoring (costly: the reason LR-GRPO's −PPL reward needs none).
    fn needs_decoding(&self) -> bool {
        false
    }

    /// One score per sample of `input`, in sample order.
    ///
    /// Errors: a reward that needs decoded candidates returns [`Error::MissingDecoding`] for a sample without
    /// them (use [`Sample::decoded_for`](crate::Sample::decoded_for)), never panics; rewards defined outside
    /// this crate report other problems with [`Error::Custom`].
    fn score(&self, input: &RewardInput<'_>) -> Result<Vec<f64>>;

    /// [`Reward::score`], checked: [`Error::MissingDecoding`] for the first sample without decoded candidates
    /// when [`Reward::needs_decoding`]; [`Error::Count`] unless there is exactly one score per sample;
    /// [`Error::NonFinite`] naming the reward and the first sample whose score is NaN or infinite (the trainer
    /// stops the run on it). Do not override ([`Combined`](crate::Combined) does, only to name its failing part).
    fn evaluate(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        if self.needs_decoding()
            && let Some(sample) = input.samples.iter().position(|s| s.decoded.is_none())
        {
            return Err(Error::MissingDecoding { reward: self.name().to_owned(), sample });
        }
        let scores = self.score(input)?;
        check_scores(self.name(), input.len(), &scores)?;
        Ok(scores)
    }
}

/// Checks one score per sample and every score finite; errors name `reward` and the first bad sample.
pub(crate) fn check_scores(reward: &str, expected: usize, scores: &[f64]) -> Result<()> {
    if scores.len() != expected {
        return Err(Error::Count { reward: reward.to_owned(), expected, got: scores.len() });
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(sample) => Err(Error::NonFinite {
            reward: reward.to_owned(),
            sample,
            value: scores[sample],
            hint: "look for a NaN or -inf target log-prob (a target token masked out, a NaN in the forward pass) \
                   or a value that overflows f64; the run must stop, since one such reward poisons every advantage",
        }),
        None => Ok(()),
    }
}
