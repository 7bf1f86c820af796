//! Constrained beam search over the item trie, equal to HF transformers 5.24 `generate(num_beams=10,
//! num_return_sequences=10, length_penalty=…, prefix_allowed_tokens_fn=trie)` (docs/method.md §5 `[CODE]`).
//!
//! The semantics, step by step (`transformers/generation/utils.py`, `_beam_search` and its helpers):
//! 1. log-softmax over the **full** vocabulary, then `PrefixConstrainedLogitsProcessor` sets every token the trie
//!    does not allow to −inf; a beam whose prefix allows nothing gets `[eos]` (the usual `prefix_allowed_tokens_fn`
//!    fallback; HF 5.24 raises on an empty list). Only a beam that has left the trie can hit this, see below.
//! 2. Candidates: running score (f32 sum of processed log-probs) + the token's processed log-prob; the best
//!    `2 · num_beams` over all beams of a user (ties: lower beam rank, then lower token id, as in the flattened
//!    `topk`).
//! 3. A candidate that ends with EOS, or that reaches `max_new_tokens`, finishes. It enters the finished set only
//!    when it ranks within the first `num_beams` candidates, with score `sum / (generated length)^length_penalty`
//!    (EOS counted), and only while the early-stop heuristic still allows improvement; the finished set keeps the
//!    best `num_beams` (earlier entries first on ties).
//! 4. The next running beams are the best `num_beams` unfinished candidates.
//! 5. Early stop (`early_stopping=False`): a user stops improving once it has `num_beams` finished hypotheses
//!    and `best running score / (current generated length)^length_penalty` is not above the worst finished
//!    score. Generation ends when no user can improve, or at `max_new_tokens`.
//! 6. The result is the finished set in descending score order, the first `num_return_sequences` of it.
//!
//! NOTE: HF starts every user with `num_beams` copies of the prompt, all but the first scored −1e9 so that they
//! only fill slots, and keeps such "dead" beams running whenever fewer than `num_beams` live continuations exist.
//! They never outrank a live candidate, so they change nothing above, but when fewer than `num_beams` trie paths
//! can be completed, HF pads its output with copies of live paths scored about −1e9 / length. We do not compute
//! dead beams and return only the live hypotheses: such a user gets fewer than `num_return_sequences` results,
//! all distinct. The HF output is ours followed by those filler rows.
//!
//! D3 decoding (docs/method.md §5): `length_penalty = 0` ([`BeamSearchConfig::d3`]) and an optional [`Guidance`]: the
//! item scores of an assistant model mixed into every step as in D3's `CFEnhancedLogitsProcessor`.

use burn::config::Config;
use r3_backbone::Backbone;

use crate::error::Error;
use crate::start::DecodeStart;
use crate::stream::StreamInput;
use crate::trie::{NodeId, Trie};

/// The score HF gives an empty slot of the finished set (`-1e9`); a live score is always above it.
const EMPTY_SLOT: f32 = -1.0e9;

/// Configuration of [`BeamSearch`].
#[derive(Config, Debug)]
pub struct BeamSearchConfig {
    /// The end-of-sequence token: the tokenizer's EOS, the last token of every `encode_target`.
    pub eos_id: u32,
    /// The number of beams. `[CODE]` 10.
    #[config(default = 10)]
    pub num_beams: usize,
    /// How many finished hypotheses to return per user (at most `num_beams`). `[CODE]` 10.
    #[config(default = 10)]
    pub num_return_sequences: usize,
    /// The exponent of the generated length that divides a finished score. `[CODE]` 1.0 (BIGRec); 0.0 for D3.
    #[config(default = 1.0)]
    pub length_penalty: f64,
    /// The most tokens generated per hypothesis, EOS included. `[CODE]` 128.
    #[config(default = 128)]
    pub max_new_tokens: usize,
}

impl BeamSearchConfig {
    /// D3's setting: the same search with `length_penalty = 0`, i.e. scores are plain sums of log-probs.
    pub fn d3(eos_id: u32) -> Self {
        Self::new(eos_id).with_length_penalty(0.0)
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] for zero beams, more returned sequences than beams, zero new tokens or a non-finite
    /// length penalty.
    pub fn init(&self) -> crate::Result<BeamSearch> {
        let err = |key, value: String, hint| Err(Error::Config { key, value, hint });
        if self.num_beams == 0 {
            return err("num_beams", "0".into(), "use at least one beam ([CODE] 10)");
        }
        if self.num_return_sequences == 0 || self.num_return_sequences > self.num_beams {
            return err(
                "num_return_sequences",
                self.num_return_sequences.to_string(),
                "return between 1 and num_beams sequences, as HF generate requires",
            );
        }
        if self.max_new_tokens == 0 {
            return err("max_new_tokens", "0".into(), "allow at least one new token ([CODE] 128)");
        }
        if !self.length_penalty.is_finite() {
            return err(
                "length_penalty",
                self.length_penalty.to_string(),
                "use a finite exponent (1.0 BIGRec, 0.0 D3)",
            );
        }
        Ok(BeamSearch { config: self.clone() })
    }
}

/// The item scores of an assistant model for D3's guided decoding (`Sync`: the search runs on a worker of
/// rayon's pool).
pub trait ItemScorer: Sync {
    /// Non-negative weights of every trie item (the trie's input indices, i.e. catalogue item ids when the trie
    /// was built from the titles in catalogue order) for user `user` (the row of the start state), e.g. the
    /// assistant's softmax probabilities. Must return [`Trie::num_items`] values.
    fn item_weights(&self, user: usize) -> Vec<f32>;
}

impl<F: Fn(usize) -> Vec<f32> + Sync> ItemScorer for F {
    fn item_weights(&self, user: usize) -> Vec<f32> {
        self(user)
    }
}

/// D3's guidance: at a prefix whose allowed tokens lead to subtrees `c`, the assistant's token score is
/// `cf(c) = ln((m(c) + 1e-20) / Σ_c' (m(c') + 1e-20))` with `m` the summed item weights of a subtree, and the
/// processed log-prob is `scale · (log p − cf) + cf`. `scale = 1` is the plain search (exactly, as in D3's
/// code); `scale = 0` ranks by the assistant alone.
///
/// NOTE: D3's `CFEnhancedLogitsProcessor` scores a subtree by its *largest* item probability (its comment reads
/// "max or sum"); we use the sum, the assistant's probability of the prefix. The two agree wherever a subtree holds
/// one item (the last tokens of most titles) and differ only in how shared title prefixes are weighed.
#[derive(Clone, Copy)]
pub struct Guidance<'a> {
    /// The assistant.
    pub scorer: &'a dyn ItemScorer,
    /// D3's `guidance_scale`.
    pub scale: f32,
}

impl std::fmt::Debug for Guidance<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guidance").field("scale", &self.scale).finish_non_exhaustive()
    }
}

/// The inputs of [`BeamSearch::search`].
#[derive(Clone, Debug)]
pub struct BeamSearchInput<'a> {
    /// The decoder's start state for `B` users.
    pub start: DecodeStart,
    /// The item trie that constrains every step.
    pub trie: &'a Trie,
    /// D3's optional assistant guidance.
    pub guidance: Option<Guidance<'a>>,
}

/// A finished hypothesis.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// The generated tokens, EOS included (a trie path, unless cut at `max_new_tokens`).
    pub tokens: Vec<u32>,
    /// The HF sequence score: the sum of processed log-probs divided by `len(tokens)^length_penalty`.
    pub score: f32,
    /// The trie item (the first input index) whose sequence the tokens complete, `None` when the path is
    /// incomplete (cut at `max_new_tokens`).
    pub item: Option<usize>,
}

/// The outputs of [`BeamSearch::search`].
#[derive(Clone, Debug)]
pub struct BeamSearchOutput {
    /// Per user, the hypotheses in descending score order (at most `num_return_sequences`).
    pub hypotheses: Vec<Vec<Hypothesis>>,
    /// The number of decoding steps run (generated positions, the first one from the start logits).
    pub steps: usize,
}

/// A validated beam search (build it with [`BeamSearchConfig::init`]).
#[derive(Clone, Debug)]
pub struct BeamSearch {
    config: BeamSearchConfig,
}

/// A running beam.
#[derive(Clone, Debug)]
struct Beam {
    tokens: Vec<u32>,
    node: NodeId,
    score: f32,
    /// The beam's row in the current cache and logits.
    row: usize,
}

/// A finished hypothesis before the item lookup.
#[derive(Clone, Debug)]
struct Done {
    tokens: Vec<u32>,
    node: NodeId,
    score: f32,
}

/// The search state of one user.
pub(crate) struct UserState {
    /// The user's index (the row of the start state for [`BeamSearch::search`], the stream's user otherwise).
    pub(crate) user: usize,
    running: Vec<Beam>,
    finished: Vec<Done>,
    /// HF's `is_early_stop_heuristic_unsatisfied`: new hypotheses can still improve the finished set.
    improvable: bool,
    /// Subtree masses of the assistant's item weights (guided search only).
    mass: Option<Vec<f64>>,
    /// The positions generated so far (the steps this user took part in).
    pub(crate) steps: usize,
}

impl UserState {
    /// Whether the user still decodes: it can improve its finished set and has running beams.
    pub(crate) fn active(&self) -> bool {
        self.improvable && !self.running.is_empty()
    }

    /// The number of running beams (the user's rows in the next step).
    pub(crate) fn rows(&self) -> usize {
        self.running.len()
    }
}

/// The tokens a beam may take at `node`: the trie's children, or `[eos]` where the trie allows nothing.
fn allowed_at<'t>(trie: &'t Trie, eos: &'t [u32; 1], node: NodeId) -> &'t [u32] {
    let a = trie.allowed_at(node);
    if a.is_empty() { eos } else { a }
}

impl BeamSearch {
    /// The configuration.
    pub fn config(&self) -> &BeamSearchConfig {
        &self.config
    }

    /// Runs the search for every user of the start state. Users are independent: a user's result does not
    /// depend on the other rows of the batch (up to floating-point differences of padded rows).
    ///
    /// # Panics
    /// When the start state does not fit the model, or the trie holds a token outside the vocabulary.
    pub fn search(&self, model: &Backbone, input: BeamSearchInput<'_>) -> BeamSearchOutput {
        let BeamSearchInput { start, trie, guidance } = input;
        let b = start.batch_size();
        let mut start = Some(start);
        let mut first = move |users: std::ops::Range<usize>| {
            assert_eq!(users, 0..b, "the one start state holds every user");
            start.take().expect("the start state is used once")
        };
        let mut hypotheses = vec![Vec::new(); b];
        let mut done = |u: usize, h: Vec<Hypothesis>| hypotheses[u] = h;
        let input = StreamInput { users: b, width: b, trie, guidance, start: &mut first, done: &mut done };
        let stats = self.search_stream(model, input);
        BeamSearchOutput { hypotheses, steps: stats.steps }
    }

    /// A new user whose start logits are row `row`.
    pub(crate) fn new_user(&self, user: usize, row: usize, trie: &Trie, guidance: Option<Guidance<'_>>) -> UserState {
        UserState {
            user,
            running: vec![Beam { tokens: Vec::new(), node: Trie::ROOT, score: 0.0, row }],
            finished: Vec::new(),
            improvable: true,
            mass: guidance.map(|g| {
                let w = g.scorer.item_weights(user);
                assert_eq!(w.len(), trie.num_items(), "the assistant must score every trie item");
                trie.subtree_mass(&w)
            }),
            steps: 0,
        }
    }

    /// Appends the `(row, token)` pairs whose log-probs the user's next step reads: every allowed continuation
    /// of every running beam, beam by beam.
    pub(crate) fn push_pairs(&self, user: &UserState, trie: &Trie, pairs: &mut Vec<(usize, u32)>) {
        let eos = [self.config.eos_id];
        for b in &user.running {
            pairs.extend(allowed_at(trie, &eos, b.node).iter().map(|&t| (b.row, t)));
        }
    }

    /// One step of one user (steps 2 to 5 of the module documentation) from the log-probs of its
    /// [`BeamSearch::push_pairs`], in that order; returns how many it read.
    pub(crate) fn step_user(
        &self,
        user: &mut UserState,
        lps: &[f32],
        trie: &Trie,
        guidance: Option<Guidance<'_>>,
    ) -> usize {
        let c = &self.config;
        let nb = c.num_beams;
        let eos = [c.eos_id];
        user.steps += 1;
        let gen_len = user.steps;
        let denom = |len: usize| (len as f64).powf(c.length_penalty) as f32;
        // 2. Candidates (score, beam rank, token), sorted as the flattened top-k.
        let mut cands: Vec<(f32, usize, u32)> = Vec::new();
        let mut cursor = 0;
        for (rank, b) in user.running.iter().enumerate() {
            let toks = allowed_at(trie, &eos, b.node);
            let lp = &lps[cursor..cursor + toks.len()];
            cursor += toks.len();
            let cf = match (&user.mass, guidance) {
                (Some(mass), Some(g)) if g.scale != 1.0 => Some((assistant_scores(trie, b.node, toks, mass), g.scale)),
                _ => None,
            };
            for (j, (&t, &l)) in toks.iter().zip(lp).enumerate() {
                let l = match &cf {
                    Some((cf, scale)) => scale * (l - cf[j]) + cf[j],
                    None => l,
                };
                cands.push((b.score + l, rank, t));
            }
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        cands.truncate(2 * nb);
        // 3. and 4. Finished candidates within the first num_beams; the next running beams.
        let mut next = Vec::with_capacity(nb);
        let mut new_done = Vec::new();
        for (i, &(score, rank, t)) in cands.iter().enumerate() {
            let parent = &user.running[rank];
            let node = trie.child(parent.node, t).unwrap_or(parent.node);
            let tokens = || {
                let mut tokens = parent.tokens.clone();
                tokens.push(t);
                tokens
            };
            if t == c.eos_id || gen_len >= c.max_new_tokens {
                if i < nb && user.improvable {
                    new_done.push(Done { tokens: tokens(), node, score: score / denom(gen_len) });
                }
            } else if next.len() < nb {
                next.push(Beam { tokens: tokens(), node, score, row: parent.row });
            }
        }
        if !new_done.is_empty() {
            user.finished.extend(new_done);
            // Stable: earlier entries win ties, as `topk` over `cat(finished, new)`.
            user.finished.sort_by(|a, b| b.score.total_cmp(&a.score));
            user.finished.truncate(nb);
        }
        // 5. The early-stop heuristic with the new current length.
        if let Some(best) = next.first() {
            let worst = if user.finished.len() == nb {
                user.finished.iter().map(|d| d.score).fold(f32::INFINITY, f32::min)
            } else {
                EMPTY_SLOT
            };
            user.improvable &= best.score / denom(gen_len) > worst;
        }
        user.running = next;
        cursor
    }

    /// Moves the running beams of a user to the next step's rows: their parent rows and last tokens are
    /// appended to `parents` and `tokens`, and each beam's row becomes its index there.
    pub(crate) fn push_rows(user: &mut UserState, parents: &mut Vec<usize>, tokens: &mut Vec<u32>) {
        for b in &mut user.running {
            parents.push(b.row);
            tokens.push(*b.tokens.last().expect("a running beam has generated a token"));
            b.row = parents.len() - 1;
        }
    }

    /// The finished hypotheses of a user, best first (at most `num_return_sequences`).
    pub(crate) fn hypotheses(&self, user: UserState, trie: &Trie) -> Vec<Hypothesis> {
        user.finished
            .into_iter()
            .take(self.config.num_return_sequences)
            .map(|d| Hypothesis {
                item: trie.items_at(d.node).first().map(|&i| i as usize),
                tokens: d.tokens,
                score: d.score,
            })
            .collect()
    }
}

/// D3's assistant token scores at `node`: `ln((m(c) + 1e-20) / Σ (m(c') + 1e-20))` over the allowed tokens'
/// subtrees `c`, in f32 as the reference computes them. A token without a subtree (the EOS fallback) scores 0.
fn assistant_scores(trie: &Trie, node: NodeId, tokens: &[u32], mass: &[f64]) -> Vec<f32> {
    let w: Vec<Option<f32>> =
        tokens.iter().map(|&t| trie.child(node, t).map(|c| mass[c as usize] as f32 + 1e-20)).collect();
    let total: f32 = w.iter().flatten().sum();
    w.into_iter().map(|x| x.map_or(0.0, |x| (x / total).ln())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// D3's token scores at a node: the log of each subtree's share of the assistant's mass.
    #[test]
    fn assistant_scores_are_subtree_shares() {
        let trie = Trie::new(&[vec![5, 6, 2], vec![5, 7, 2], vec![5, 7, 2], vec![9, 2]]).unwrap();
        let mass = trie.subtree_mass(&[1.0, 2.0, 3.0, 4.0]);
        let root = assistant_scores(&trie, Trie::ROOT, trie.allowed_at(Trie::ROOT), &mass);
        assert!((root[0] - (6.0f32 / 10.0).ln()).abs() < 1e-6 && (root[1] - (4.0f32 / 10.0).ln()).abs() < 1e-6);
        let five = trie.walk(&[5]).unwrap();
        let s = assistant_scores(&trie, five, trie.allowed_at(five), &mass);
        assert!((s[0] - (1.0f32 / 6.0).ln()).abs() < 1e-6 && (s[1] - (5.0f32 / 6.0).ln()).abs() < 1e-6);
        // The EOS fallback off the trie scores 0, as D3's default `cf_score = log 1`.
        let leaf = trie.walk(&[9, 2]).unwrap();
        assert_eq!(assistant_scores(&trie, leaf, &[2], &mass), vec![0.0]);
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let msg = |c: BeamSearchConfig| c.init().unwrap_err().to_string();
        assert!(msg(BeamSearchConfig::new(2).with_num_beams(0)).contains("num_beams"));
        assert!(msg(BeamSearchConfig::new(2).with_num_return_sequences(11)).contains("num_return_sequences"));
        assert!(msg(BeamSearchConfig::new(2).with_max_new_tokens(0)).contains("max_new_tokens"));
        assert!(msg(BeamSearchConfig::new(2).with_length_penalty(f64::NAN)).contains("length_penalty"));
        assert_eq!(BeamSearchConfig::d3(2).length_penalty, 0.0);
        let c = BeamSearchConfig::new(2);
        assert_eq!((c.num_beams, c.num_return_sequences, c.length_penalty, c.max_new_tokens), (10, 10, 1.0, 128));
    }
}
