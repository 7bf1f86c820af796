//! [`Combined`]: several rewards as one weighted sum.

use crate::error::{Error, Result};
use crate::input::RewardInput;
use crate::reward::{Reward, check_scores};

/// A weighted sum of rewards, `s = Σ_j w_j · s_j`, itself a [`Reward`]: what the trainer holds after building
/// a config's `rewards` list ([`Registry::build`](crate::Registry::build)).
///
/// Each part is [evaluated](Reward::evaluate), so a missing candidate or a non-finite score is reported under the
/// part's own name; the sum is checked again under the combined name.
#[derive(Debug)]
pub struct Combined {
    parts: Vec<(f64, Box<dyn Reward>)>,
    name: String,
}

/// The outputs of [`Combined::score_parts`].
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedScores {
    /// Per sample, the weighted sum.
    pub total: Vec<f64>,
    /// Per part, in config order: its name, its weight and its (unweighted) per-sample scores, for logging.
    pub parts: Vec<(String, f64, Vec<f64>)>,
}

impl Combined {
    /// The weighted sum of `parts` (weight, reward); [`Error::NoRewards`] when empty and [`Error::InvalidWeight`]
    /// (key `rewards[j].weight`) for a NaN or infinite weight.
    pub fn new(parts: Vec<(f64, Box<dyn Reward>)>) -> Result<Self> {
        if parts.is_empty() {
            return Err(Error::NoRewards);
        }
        if let Some(j) = parts.iter().position(|(w, _)| !w.is_finite()) {
            return Err(Error::InvalidWeight {
                key: format!("rewards[{j}].weight"),
                reward: parts[j].1.name().to_owned(),
                weight: parts[j].0,
            });
        }
        let name = parts.iter().map(|(w, r)| format!("{w}*{}", r.name())).collect::<Vec<_>>().join(" + ");
        Ok(Self { parts, name })
    }

    /// The parts, in config order: (weight, reward).
    pub fn parts(&self) -> &[(f64, Box<dyn Reward>)] {
        &self.parts
    }

    /// Every part's scores and their weighted sum; errors as [`Reward::evaluate`] of the failing part.
    pub fn score_parts(&self, input: &RewardInput<'_>) -> Result<CombinedScores> {
        let mut total = vec![0.0; input.len()];
        let mut parts = Vec::with_capacity(self.parts.len());
        for (w, reward) in &self.parts {
            let scores = reward.evaluate(input)?;
            for (t, s) in total.iter_mut().zip(&scores) {
                *t += w * s;
            }
            parts.push((reward.name().to_owned(), *w, scores));
        }
        Ok(CombinedScores { total, parts })
    }
}

impl Reward for Combined {
    /// The parts as a formula, `1*neg_ppl + 0.5*rank`.
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether any part needs decoding.
    fn needs_decoding(&self) -> bool {
        self.parts.iter().any(|(_, r)| r.needs_decoding())
    }

    fn score(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        self.score_parts(input).map(|s| s.total)
    }

    /// Evaluates every part (so a missing candidate or a non-finite score names the part, not the sum), then
    /// checks the sum, which can still overflow, under the combined name.
    fn evaluate(&self, input: &RewardInput<'_>) -> Result<Vec<f64>> {
        let total = self.score(input)?;
        check_scores(&self.name, input.len(), &total)?;
        Ok(total)
    }
}
