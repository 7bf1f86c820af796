//! LatentR³ decoding (docs/method.md §5): the item trie and constrained beam search, equal to HF transformers'
//! `generate`, plus constrained sampling and free generation.
//!
//! - [`Trie`] is the prefix tree over `encode_target(title)` of every catalogue title (flat node arrays; the
//!   allowed tokens of a prefix are one slice).
//! - [`DecodeStart`] is the decoder's start state for `B` users: the KV cache of the left-padded prompts (plus
//!   the latent tokens, when the latent model builds it) and the logits of the last position.
//!   [`DecodeStart::from_prompts`] builds it from plain prompt ids (BIGRec).
//! - [`BeamSearchConfig`] → [`BeamSearch::search`]: constrained beam search with HF's exact semantics (10 beams,
//!   10 returned, length penalty 1.0, at most 128 new tokens `[CODE]`); [`BeamSearchConfig::d3`] and [`Guidance`]
//!   give D3's decoding (length penalty 0, optional assistant item scores through [`ItemScorer`]).
//! - [`BeamSearch::search_stream`] ([`StreamInput`]): the same search over a stream of users: users whose search
//!   ended leave the batch and the next users' prefills join it ([`StreamStats`]: steps per user, live rows).
//! - [`EvalRun`]: an evaluation run folder ([`EvalSettings`] checked on resume, prediction records appended as
//!   users finish, [`EvalMetrics`] written as `metrics.json`).
//! - [`SampleConfig::sample`]: temperature sampling constrained to the trie (GRPO rollouts), seeded.
//! - [`GenerateConfig::generate`]: free generation, greedy or sampled.
//! - [`ChainOfThought`] ([`cot`]): the CoT baseline of Table 1: a greedy free-text reasoning after a cue, then an
//!   answer cue and the same constrained beam search ([`Recommender::recommend_cot_encoded`]).
//! - [`Recommender`] ([`RecommenderInput`]) ties a LatentR³ model (`r3_latent::LatentModel`, or an untuned "Base"
//!   backbone), its prompt encoder and the [`CatalogueTrie`] together: histories in, ranked catalogue titles with
//!   scores and item ids out ([`Recommended`]); the latent tokens run before decoding, the prompt once; with
//!   [`Recommender::with_shared_prefix`] the prefix common to every prompt ([`SharedPrefix`]) runs once per run.
//!
//! ```
//! use r3_decode::Trie;
//! // encode_target of three titles, EOS = 2; the first and the last are the same title.
//! let trie = Trie::new(&[vec![5, 6, 2], vec![5, 7, 8, 2], vec![5, 6, 2]]).unwrap();
//! assert_eq!(trie.allowed(&[]), &[5]);
//! assert_eq!(trie.allowed(&[5]), &[6, 7]);
//! assert_eq!(trie.item(&[5, 7, 8, 2]), Some(1));
//! assert_eq!(trie.items_at(trie.walk(&[5, 6, 2]).unwrap()), &[0, 2]);
//! assert_eq!(trie.num_paths(), 2);
//! ```
#![deny(missing_docs)]

mod beam;
pub mod cot;
mod error;
mod eval;
mod prefix;
mod run;
mod sample;
mod settings;
mod start;
mod stream;
mod trie;

pub use beam::{BeamSearch, BeamSearchConfig, BeamSearchInput, BeamSearchOutput, Guidance, Hypothesis, ItemScorer};
pub use cot::{ANSWER_CUE, ChainOfThought, CotOutput, REASONING_CUE};
pub use error::{Error, Result};
pub use eval::{CatalogueTrie, RecommendOutput, Recommended, Recommender, RecommenderInput};
pub use prefix::SharedPrefix;
pub use run::{Decoded, EvalRun, JSON_FILE, JSONL_FILE, METRICS_FILE, SETTINGS_FILE, UserRecord, input_text};
pub use sample::{GenerateConfig, Sample, SampleConfig};
pub use settings::{
    CotSummary, Decoding, EvalMetrics, EvalSettings, GuidanceSummary, Latency, PopularitySummary, SearchSummary,
    StreamSummary, percentile,
};
pub use start::DecodeStart;
pub use stream::{StreamInput, StreamStats};
pub use trie::{NodeId, Trie};

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
