//! The built-in rewards: [`NegPpl`] (LR-GRPO), [`ExactMatch`] (vanilla GRPO), [`LogLikelihood`] and [`Rank`],
//! with the plain functions they are made of.

use serde::{Deserialize, Serialize};

use crate::config::Params;
use crate::error::{Error, Result};
use crate::input::{Decoded, RewardInput};
use crate::reward::Reward;

/// The sum `Σ_i log π(y_i | ...)` of a target's log-probs, accumulated in f64.
pub fn sum_log_prob(target_log_probs: &[f32]) -> f64 {
    target_log_probs.iter().map(|&l| f64::from(l)).sum()
}

/// The mean `(1/|y|) Σ_i log π(y_i | ...)` of a target's log-probs, in f64; `None` when `|y| = 0`.
pub fn mean_log_prob(target_log_probs: &[f32]) -> Option<f64> {
    (!target_log_probs.is_empty()).then(|| sum_log_prob(target_log_probs) / target_log_probs.len() as f64)
}

/// The negative perplexity of a target, `s = −exp(−(1/|y|) Σ_i log π(y_i | x, r, y_<i))` (docs/method.md §4, step 2;
/// the LR-GRPO reward of LatentR³, arXiv 2505.19092, §3.3); `None` when `|y| = 0`.
///
/// For log-probs ≤ 0 the value lies in `[−∞, −1]`: −1 when the model is certain of every token, `−∞` when
/// a log-prob is `−∞` or the mean is below about −709 (f64 overflow). A NaN log-prob gives NaN.
///
/// ```
/// // Mean log-prob (ln 0.5 + ln 0.125) / 2 = ln 0.25, so PPL = 4 and s = −4.
/// let s = r3_rewards::neg_ppl(&[0.5f32.ln(), 0.125f32.ln()]).unwrap();
/// assert!((s + 4.0).abs() < 1e-6);
/// ```
pub fn neg_ppl(target_log_probs: &[f32]) -> Option<f64> {
    mean_log_prob(target_log_probs).map(|m| -(-m).exp())
}

/// Whether a decoded completion equals the target after the official stripping of spaces, newlines and quotes
/// (`r3_metrics::strip_prediction` on the completion, `r3_metrics::strip_target_text` on the target).
///
/// ```
/// assert!(r3_rewards::exact_match("\"Abbey Road\"\n", "Abbey Road"));
/// assert!(!r3_rewards::exact_match("\"Abbey Road (Remastered)\"\n", "Abbey Road"));
/// ```
pub fn exact_match(completion: &str, target: &str) -> bool {
    r3_metrics::strip_prediction(completion) == r3_metrics::strip_target_text(target)
}

/// The reciprocal rank `1 / (rank + 1)` of a 0-based rank, 0 for a miss.
pub fn reciprocal_rank(rank: Option<usize>) -> f64 {
    rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0))
}

/// The params of a reward that takes none: an empty table (any key is an error).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// Scores every sample from its log-probs with `f`; [`Error::EmptyTarget`] for a sample with `|y| = 0`.
fn from_log_probs(name: &str, input: &RewardInput<'_>, f: impl Fn(&[f32]) -> f64) -> Result<Vec<f64>> {
    input
        .samples
        .iter()
        .enumerate()
        .map(|(sample, s)| match s.target_log_probs {
            [] => Err(Error::EmptyTarget { reward: name.to_owned(), sample }),
            lp => Ok(f(lp)),
        })
        .collect()
}

/// Scores every sample from its decoded candidates with `f` (given the candidates and the sample's index, for its
/// errors); [`Error::MissingDecoding`] for a sample without them.
fn from_decoded(
    name: &str,
    input: &RewardInput<'_>,
    f: impl Fn(&Decoded<'_>, usize) -> Result<f64>,
) -> Result<Vec<f64>> {
    input.samples.iter().enumerate().map(|(sample, s)| f(s.decoded_for(name, sample)?, sample)).collect()
}

/// The LR-GRPO reward (`neg_ppl`): the negative perplexity of the ground-truth target under the sampled latent,
/// `s_k = −exp(−(1/|y|) Σ_i log π(y_i | x, r_k, y_<i))` (\[PAPER\] LatentR³ §3.3; docs/method.md §4, step 2), with |y|
/// counting every target token including EOS. Needs no decoding. No params.
///
/// NOTE: the official trainer computes the mean in the model's dtype; we accumulate in f64, which agrees with the
/// golden rewards to about 1e-6 relative.
#[derive(Debug, Clone, Copy, Default)]
pub struct NegPpl;

impl NegPpl {
    /// The config name.
    pub const NAME: &str = "neg_ppl";

    /// Builds the reward from its (empty) params.
    pub fn from_params(params: &Params<'_>) -> Result<Self> {
        params.parse::<NoParams>().map(|_| Self)
    }
}

impl Reward for NegPpl {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn score(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        from_log_probs(Self::NAME, input, |lp| neg_ppl(lp).unwrap_or(f64::NAN))
    }
}

/// How [`LogLikelihood`] reduces the per-token log-probs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// `(1/|y|) Σ_i log π(y_i | ...)`: independent of the title length (the default).
    #[default]
    Mean,
    /// `Σ_i log π(y_i | ...)`: the sequence log-likelihood, which favours short titles.
    Sum,
}

/// The params of [`LogLikelihood`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLikelihoodParams {
    /// (`"mean"` | `"sum"`) How the per-token log-probs are reduced; default `"mean"`.
    #[serde(default)]
    pub reduction: Reduction,
}

/// The target log-likelihood (`log_likelihood`): the mean (default) or the sum of the target's per-token
/// log-probs under the sampled latent. `−log(−neg_ppl)` equals the mean, so with `reduction = "mean"` this is a
/// monotone, unbounded-below rescaling of [`NegPpl`] that weighs bad samples linearly instead of exponentially.
/// Not in the paper: an option for experiments. Needs no decoding. Params: `reduction = "mean" | "sum"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLikelihood {
    /// The reduction over tokens.
    pub reduction: Reduction,
}

impl LogLikelihood {
    /// The config name.
    pub const NAME: &str = "log_likelihood";

    /// Builds the reward from its params (`reduction`).
    pub fn from_params(params: &Params<'_>) -> Result<Self> {
        params.parse::<LogLikelihoodParams>().map(|p| Self { reduction: p.reduction })
    }
}

impl Reward for LogLikelihood {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn score(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        match self.reduction {
            Reduction::Mean => from_log_probs(Self::NAME, input, |lp| mean_log_prob(lp).unwrap_or(f64::NAN)),
            Reduction::Sum => from_log_probs(Self::NAME, input, sum_log_prob),
        }
    }
}

/// The reward of vanilla GRPO (`exact_match`): 1 when the sample's decoded completion equals the target after the
/// official stripping, `strip(completion) == strip(target)`, else 0 (\[CODE\] the original GRPO of the LatentR³
/// comparison figure; docs/method.md §4, step 5). The completion is the sample's first candidate (GRPO decodes one per
/// sample; with beams, the best one); a sample with no candidate scores 0. Needs decoding. No params.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactMatch;

impl ExactMatch {
    /// The config name.
    pub const NAME: &str = "exact_match";

    /// Builds the reward from its (empty) params.
    pub fn from_params(params: &Params<'_>) -> Result<Self> {
        params.parse::<NoParams>().map(|_| Self)
    }
}

impl Reward for ExactMatch {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn needs_decoding(&self) -> bool {
        true
    }

    fn score(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        from_decoded(Self::NAME, input, |d, i| Ok(if d.matches(0, Self::NAME, i)? { 1.0 } else { 0.0 }))
    }
}

/// The reciprocal rank of the target among the sample's decoded candidates (`rank`): `1 / (rank + 1)` with the
/// 0-based rank of [`Decoded::rank`](crate::Decoded::rank), 0 when the target is absent. With 10 beams it takes the
/// values 1, 1/2, …, 1/10 and 0: the per-sample MRR@10, a dense counterpart of HR@K (docs/method.md §5). Not in the
/// paper: an option for experiments. Needs decoding. No params.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rank;

impl Rank {
    /// The config name.
    pub const NAME: &str = "rank";

    /// Builds the reward from its (empty) params.
    pub fn from_params(params: &Params<'_>) -> Result<Self> {
        params.parse::<NoParams>().map(|_| Self)
    }
}

impl Reward for Rank {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn needs_decoding(&self) -> bool {
        true
    }

    fn score(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        from_decoded(Self::NAME, input, |d, i| Ok(reciprocal_rank(d.rank(Self::NAME, i)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_ppl_of_uniform_tokens_is_the_vocabulary_size() {
        // Every token has probability 1/8: mean log-prob = ln(1/8), PPL = 8, s = −8.
        let lp = [(1.0f32 / 8.0).ln(); 5];
        assert!((neg_ppl(&lp).unwrap() + 8.0).abs() < 1e-5);
        assert_eq!(neg_ppl(&[]), None);
        // Certainty: log-probs 0 → PPL 1 → s = −1.
        assert_eq!(neg_ppl(&[0.0, 0.0]), Some(-1.0));
    }

    #[test]
    fn reciprocal_rank_values() {
        assert_eq!(reciprocal_rank(Some(0)), 1.0);
        assert_eq!(reciprocal_rank(Some(3)), 0.25);
        assert_eq!(reciprocal_rank(None), 0.0);
    }
}
