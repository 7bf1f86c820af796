//! Integration tests of r3-decode (one module per topic).
//!
//! - `cot`: chain-of-thought decoding on a tiny random backbone: zero tokens is the plain decoding exactly; the
//!   reasoning is the per-prompt greedy continuation (at most N tokens, cut at EOS and the stop predicate), the
//!   beams are unique catalogue paths, deterministic and batch-invariant.
//! - `golden`: constrained beam search with SmolLM2 over the CDs catalogue trie against HF transformers
//!   (`golden/smollm2/latent_golden.json`, entries `beam`).
//! - `hf_tiny`: the same against HF on a tiny random Llama (`tests/fixtures/hf_tiny`): pruning, early stopping,
//!   length penalties 0/1/2, paths cut by the length limit, fewer paths than beams, a left-padded batch.
//! - `properties`: property tests on random tries and a tiny random backbone: beam search returns unique trie
//!   paths in score order, equals exhaustive scoring when nothing is pruned, is deterministic and batch-invariant
//!   under left padding; D3 guidance; constrained sampling; free generation.
//! - `recommend`: `Recommender` (prompt encoding, the latent model's start, beam search, catalogue titles) with
//!   SmolLM2 on CDs test users: batch sizes 1 and 4 agree, Base and one-latent-token models.

mod common;
mod cot;
mod golden;
mod hf_tiny;
mod properties;
mod recommend;
