//! Chain-of-thought decoding: the "CoT" row of Table 1 and the CoT curves of the inference-time figure
//! (docs/method.md §6): the untuned backbone first writes a free-text reasoning, then names the next item with the same
//! constrained beam search over the catalogue trie as BIGRec.
//!
//! For every prompt (the paper's template, ending with `### Response: \n`, no thought token):
//! 1. the [`REASONING_CUE`] is appended and up to `max_tokens` tokens are generated greedily from the prompt's
//!    cache, left-padded and batched ([`ChainOfThought::reason`]); a row stops early at EOS or once it has
//!    written an empty line (`"\n\n"`, the caller's stop predicate): the template's sections are separated by
//!    empty lines, so an empty line ends the reasoning paragraph, and what follows it is usually a made-up next
//!    section. The EOS is not part of the reasoning; the tokens up to and including the empty line are;
//! 2. the sequence `prompt ++ reasoning cue ++ reasoning ++ answer cue` ([`ChainOfThought::answer_prompt`]) is
//!    prefilled again, left-padded (rows that stopped early are simply shorter), and the beam search runs from
//!    that cache. The [`ANSWER_CUE`] ends with a newline, as the template's `### Response: \n` does, so the trie's
//!    titles (`"title"\n` + EOS, starting with `"`) are tokenized exactly as after the plain prompt.
//!
//! With `max_tokens = 0` nothing is appended and nothing generated: the decoding is the plain one.
//!
//! NOTE: the paper does not publish its CoT prompt; the cues are ours. The prompt prefix is prefilled twice (once
//! for the reasoning, once with it): simpler than growing a padded cache in place and exactly batch-invariant
//! under left padding, at the cost of one extra prefill per user (small next to `max_tokens` decoding steps).

use r3_backbone::Backbone;
use r3_data::Encoder;

use crate::beam::{BeamSearch, BeamSearchInput, BeamSearchOutput};
use crate::start::{DecodeStart, advance, host_i64};
use crate::trie::Trie;

/// The reasoning cue appended to the prompt (after `### Response: \n`) before the free generation.
pub const REASONING_CUE: &str = "Let's think step by step about the user's preferences, based on the items above, before naming the next \
     item.\nReasoning:";

/// The answer cue appended after the reasoning; the constrained item decoding starts right after it (with the
/// title's opening `"`).
pub const ANSWER_CUE: &str = "\nTherefore, the next item is:\n";

/// Chain-of-thought decoding settings: the tokenized cues, the reasoning budget and the EOS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainOfThought {
    /// The tokens of [`REASONING_CUE`].
    pub reasoning_cue: Vec<u32>,
    /// The tokens of [`ANSWER_CUE`].
    pub answer_cue: Vec<u32>,
    /// The most reasoning tokens per user (EOS included); 0 = plain decoding.
    pub max_tokens: usize,
    /// The end-of-sequence token (stops a row's reasoning; not kept in it).
    pub eos_id: u32,
}

/// The outputs of [`ChainOfThought::search`].
#[derive(Clone, Debug)]
pub struct CotOutput {
    /// Per user, the reasoning tokens (without EOS; empty with `max_tokens = 0`).
    pub reasoning: Vec<Vec<u32>>,
    /// The beam search from the extended prompts.
    pub beams: BeamSearchOutput,
}

impl ChainOfThought {
    /// The paper's CoT baseline for an encoder: [`REASONING_CUE`] and [`ANSWER_CUE`] tokenized with its tokenizer,
    /// its EOS, and `max_tokens` reasoning tokens.
    pub fn new(encoder: &Encoder, max_tokens: usize) -> Self {
        let tokenizer = encoder.tokenizer();
        ChainOfThought {
            reasoning_cue: tokenizer.encode(REASONING_CUE),
            answer_cue: tokenizer.encode(ANSWER_CUE),
            max_tokens,
            eos_id: encoder.eos_id(),
        }
    }

    /// Whether this is plain decoding (`max_tokens = 0`: no cue, no generation).
    pub fn is_plain(&self) -> bool {
        self.max_tokens == 0
    }

    /// Generates the reasoning of every prompt greedily: `prompt ++ reasoning_cue` prefilled left-padded, then one
    /// token per step (the first argmax) for the rows still running. A row stops after `max_tokens` tokens, at
    /// EOS (dropped from the result) or when `stop(tokens so far)` holds (the last token kept). Rows are
    /// independent of each other (up to floating-point rounding of padded rows).
    ///
    /// # Panics
    /// When `prompts` is empty or a prompt and the cue are both empty.
    ///
    /// # Shapes
    /// - prompts: `B` id lists of any lengths
    /// - output: `B` token lists of at most `max_tokens` tokens
    pub fn reason(
        &self,
        model: &Backbone,
        prompts: &[Vec<u32>],
        pad_id: u32,
        stop: impl Fn(&[u32]) -> bool,
    ) -> Vec<Vec<u32>> {
        let b = prompts.len();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
        if self.max_tokens == 0 {
            return out;
        }
        let cued: Vec<Vec<u32>> =
            prompts.iter().map(|p| p.iter().chain(&self.reasoning_cue).copied().collect()).collect();
        let device = model.embed_tokens.weight.val().device();
        let DecodeStart { cache, logits } = DecodeStart::from_prompts(model, &cued, pad_id, &device);
        let mut live: Vec<usize> = (0..b).collect(); // user of each cache row
        let (mut cache, mut logits) = (Some(cache), logits);
        for step in 0..self.max_tokens {
            let picked: Vec<u32> = host_i64(logits.argmax(1)).into_iter().map(|t| t as u32).collect(); // [R]
            let mut parents = Vec::new();
            let mut tokens = Vec::new();
            let mut kept = Vec::new();
            for (i, (user, t)) in live.into_iter().zip(picked).enumerate() {
                if t == self.eos_id {
                    continue;
                }
                out[user].push(t);
                if step + 1 < self.max_tokens && !stop(&out[user]) {
                    parents.push(i);
                    tokens.push(t);
                    kept.push(user);
                }
            }
            live = kept;
            if live.is_empty() {
                break;
            }
            let (c, l) = advance(model, cache.take().expect("the cache is present while rows run"), &parents, &tokens);
            cache = Some(c);
            logits = l;
        }
        out
    }

    /// The prompt of the constrained decoding: `prompt ++ reasoning_cue ++ reasoning ++ answer_cue`, or the
    /// prompt itself for plain decoding.
    pub fn answer_prompt(&self, prompt: &[u32], reasoning: &[u32]) -> Vec<u32> {
        if self.is_plain() {
            return prompt.to_vec();
        }
        [prompt, &self.reasoning_cue, reasoning, &self.answer_cue].concat()
    }

    /// Reasoning ([`ChainOfThought::reason`]) then the constrained beam search from the prefilled
    /// [`ChainOfThought::answer_prompt`]s (plain prompts, no latent token). With `max_tokens = 0` this is exactly
    /// `search` from `DecodeStart::from_prompts(prompts)`.
    ///
    /// # Panics
    /// As [`ChainOfThought::reason`] and [`BeamSearch::search`].
    pub fn search(
        &self,
        model: &Backbone,
        prompts: &[Vec<u32>],
        pad_id: u32,
        search: &BeamSearch,
        trie: &Trie,
        stop: impl Fn(&[u32]) -> bool,
    ) -> CotOutput {
        let reasoning = self.reason(model, prompts, pad_id, stop);
        let full: Vec<Vec<u32>> = prompts.iter().zip(&reasoning).map(|(p, r)| self.answer_prompt(p, r)).collect();
        let device = model.embed_tokens.weight.val().device();
        let start = DecodeStart::from_prompts(model, &full, pad_id, &device);
        let beams = search.search(model, BeamSearchInput { start, trie, guidance: None });
        CotOutput { reasoning, beams }
    }
}

/// The stop predicate of the paper's CoT decoding: the reasoning decoded with `encoder`'s tokenizer has written
/// an empty line (`"\n\n"` within its last two tokens).
pub fn stops_at_empty_line(encoder: &Encoder) -> impl Fn(&[u32]) -> bool + '_ {
    move |tokens: &[u32]| {
        let tail = &tokens[tokens.len().saturating_sub(2)..];
        encoder.tokenizer().decode(tail).contains("\n\n")
    }
}
