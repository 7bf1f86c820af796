//! LatentR³ reward functions (docs/method.md §4): what LR-GRPO and GRPO maximise.
//!
//! - [`Reward`] is the trait: it receives a [`RewardInput`] (one [`Sample`] per sampled latent or completion: the
//!   per-token log-probs of the target, EOS included, and, when the trainer decoded, the [`Decoded`] candidates
//!   and the target) and returns one scalar per sample. [`Reward::needs_decoding`] tells the trainer whether to
//!   decode; [`Reward::evaluate`] checks the scores (one per sample, all finite) and names the reward and the
//!   sample when one is not.
//! - Built-ins: [`NegPpl`] (`neg_ppl`, the LR-GRPO reward `−exp(−mean log-prob)`), [`ExactMatch`]
//!   (`exact_match`, vanilla GRPO's binary reward), [`LogLikelihood`] (`log_likelihood`, mean or sum of the
//!   log-probs) and [`Rank`] (`rank`, reciprocal rank among the beams), built from the plain functions
//!   [`neg_ppl`], [`mean_log_prob`], [`sum_log_prob`], [`exact_match`] and [`reciprocal_rank`].
//! - Configs select rewards by name: a list of [`RewardSpec`] (`name`, `weight`, `params`), built by a
//!   [`Registry`] into a [`Combined`] weighted sum. Downstream crates [register](Registry::register) their own
//!   rewards; `docs/extending.md` walks through it.
//!
//! Rewards take log-probs as plain numbers, never a model or tensors (docs/conventions.md §10), so this crate has no burn
//! dependency. Implements the reward of LR-GRPO, Eq. for `s_k` in §3.3 of LatentR³ (arXiv 2505.19092).
//!
//! ```
//! use r3_rewards::{Decoded, Registry, Reward, RewardInput, RewardSpec, Sample};
//!
//! #[derive(serde::Deserialize)]
//! struct Experiment {
//!     rewards: Vec<RewardSpec>,
//! }
//! let exp: Experiment = toml::from_str(
//!     r#"rewards = [{ name = "neg_ppl", weight = 1.0 }, { name = "rank", weight = 0.5 }]"#,
//! )?;
//! let reward = Registry::default().build(&exp.rewards)?;
//! assert!(reward.needs_decoding()); // `rank` reads the beams.
//!
//! // Two samples of one group. Sample 0: target tokens with probabilities 1/2 and 1/8, so the mean log-prob
//! // is ln(1/4), PPL = 4, neg_ppl = −4; the target is the second beam, rank = 1/2.
//! // Sample 1: probabilities 1/2 and 1/2, PPL = 2, neg_ppl = −2; the target is not among the beams, rank = 0.
//! let beams = ["\"Help!\"\n".to_string(), "\"Revolver\"\n".to_string()];
//! let lp0 = [0.5f32.ln(), 0.125f32.ln()];
//! let lp1 = [0.5f32.ln(), 0.5f32.ln()];
//! let samples = [
//!     Sample::new(&lp0).with_decoded(Decoded::from_titles(&beams, "Revolver")),
//!     Sample::new(&lp1).with_decoded(Decoded::from_titles(&beams, "Abbey Road")),
//! ];
//! let s = reward.evaluate(&RewardInput::new(&samples))?;
//! // 1·(−4) + 0.5·(1/2) = −3.75 and 1·(−2) + 0.5·0 = −2.
//! assert!((s[0] + 3.75).abs() < 1e-6 && (s[1] + 2.0).abs() < 1e-6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod builtin;
mod combined;
mod config;
mod error;
mod input;
mod registry;
mod reward;

pub use builtin::{
    ExactMatch, LogLikelihood, LogLikelihoodParams, NegPpl, Rank, Reduction, exact_match, mean_log_prob, neg_ppl,
    reciprocal_rank, sum_log_prob,
};
pub use combined::{Combined, CombinedScores};
pub use config::{Params, RewardSpec, grpo_rewards, lr_grpo_rewards};
pub use error::{Error, Result};
pub use input::{Decoded, RewardInput, Sample};
pub use registry::{Constructor, Registry};
pub use reward::Reward;
