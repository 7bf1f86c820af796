//! Chain-of-thought decoding (`ChainOfThought`) on a tiny random backbone (Qwen2 layout, V = 24) and random tries:
//! - `max_tokens = 0` is exactly the plain decoding (no cue, no generation, the same hypotheses bit for bit);
//! - with `max_tokens = N > 0`, each user's reasoning is the per-prompt greedy continuation of `prompt ++ cue`
//!   (`r3_backbone::greedy_generate`, cut at EOS, which is dropped, and after the first stop token), so it has at
//!   most `N` tokens and does not depend on the batch; the hypotheses are unique, complete catalogue paths, the
//!   same as a plain beam search from `prompt ++ cue ++ reasoning ++ answer cue`, deterministic, and the same
//!   for a user alone and inside a left-padded batch (rows of different prompt and reasoning lengths).

use std::collections::HashSet;

use proptest::prelude::*;
use r3_backbone::{Backbone, greedy_generate};
use r3_decode::{BeamSearchConfig, BeamSearchInput, ChainOfThought, DecodeStart, Hypothesis, Trie};

use crate::common::{EOS, PAD, prompt, test_device, tiny_model, titles};

/// The tests' "empty line" token: a row stops right after writing it.
const STOP: u32 = 3;

fn cot(max_tokens: usize) -> ChainOfThought {
    ChainOfThought { reasoning_cue: vec![5, 6, 7], answer_cue: vec![8, 9], max_tokens, eos_id: EOS }
}

fn stop(tokens: &[u32]) -> bool {
    tokens.last() == Some(&STOP)
}

/// The reference reasoning of one prompt: greedy decoding of `prompt ++ cue` alone, cut at EOS (dropped) and
/// after the first stop token.
fn reference_reasoning(model: &Backbone, c: &ChainOfThought, p: &[u32], device: &burn::tensor::Device) -> Vec<u32> {
    let cued: Vec<u32> = p.iter().chain(&c.reasoning_cue).copied().collect();
    let mut out = Vec::new();
    for t in greedy_generate(model, &cued, c.max_tokens, Some(EOS), device) {
        if t == EOS {
            break;
        }
        out.push(t);
        if t == STOP {
            break;
        }
    }
    out
}

fn check_paths(hyps: &[Hypothesis], trie: &Trie, catalogue: &[Vec<u32>]) -> Result<(), TestCaseError> {
    prop_assert_eq!(hyps.len(), trie.num_paths().min(4));
    let mut seen = HashSet::new();
    for (i, h) in hyps.iter().enumerate() {
        let item = h.item.ok_or_else(|| TestCaseError::fail(format!("hypothesis {i} is not a complete path")))?;
        prop_assert_eq!(&catalogue[item], &h.tokens);
        prop_assert!(seen.insert(h.tokens.clone()), "hypothesis {} repeats {:?}", i, h.tokens);
        if i > 0 {
            prop_assert!(hyps[i - 1].score >= h.score, "scores not sorted: {:?}", hyps);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn zero_tokens_is_plain_decoding_exactly(
        catalogue in titles(30, 4), prompts in prop::collection::vec(prompt(), 1..5), seed in 0u64..1000
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let trie = Trie::new(&catalogue).unwrap();
        let search = BeamSearchConfig::new(EOS).with_num_beams(4).with_num_return_sequences(4).with_max_new_tokens(8).init().unwrap();
        let c = cot(0);
        prop_assert!(c.is_plain());
        let out = c.search(&model, &prompts, PAD, &search, &trie, stop);
        let start = DecodeStart::from_prompts(&model, &prompts, PAD, &device);
        let plain = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
        prop_assert_eq!(&out.beams.hypotheses, &plain.hypotheses, "bit for bit");
        prop_assert_eq!(out.beams.steps, plain.steps);
        prop_assert!(out.reasoning.iter().all(Vec::is_empty));
        prop_assert_eq!(c.answer_prompt(&prompts[0], &[]), prompts[0].clone());
    }

    #[test]
    fn reasoning_then_constrained_search_is_batch_invariant(
        catalogue in titles(30, 4), prompts in prop::collection::vec(prompt(), 2..6), seed in 0u64..1000,
        n in 1usize..10
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let trie = Trie::new(&catalogue).unwrap();
        let search = BeamSearchConfig::new(EOS).with_num_beams(4).with_num_return_sequences(4).with_max_new_tokens(8).init().unwrap();
        let c = cot(n);
        let batch = c.search(&model, &prompts, PAD, &search, &trie, stop);
        let again = c.search(&model, &prompts, PAD, &search, &trie, stop);
        prop_assert_eq!(&batch.reasoning, &again.reasoning, "deterministic");
        prop_assert_eq!(&batch.beams.hypotheses, &again.beams.hypotheses, "deterministic");
        for (u, p) in prompts.iter().enumerate() {
            let r = &batch.reasoning[u];
            prop_assert!(r.len() <= n, "user {}: {} reasoning tokens > {}", u, r.len(), n);
            prop_assert!(!r.contains(&EOS), "user {}: EOS is not part of the reasoning", u);
            prop_assert!(r.iter().rev().skip(1).all(|&t| t != STOP), "user {}: ran past the stop token: {:?}", u, r);
            prop_assert_eq!(r, &reference_reasoning(&model, &c, p, &device), "user {}: greedy reasoning", u);
            check_paths(&batch.beams.hypotheses[u], &trie, &catalogue)?;
            // The user alone: the same reasoning and beams.
            let alone = c.search(&model, std::slice::from_ref(p), PAD, &search, &trie, stop);
            prop_assert_eq!(&alone.reasoning[0], r, "user {}: reasoning alone vs in the batch", u);
            let (a, b) = (&alone.beams.hypotheses[0], &batch.beams.hypotheses[u]);
            prop_assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                prop_assert_eq!(&x.tokens, &y.tokens, "user {}: alone {:?} vs batch {:?}", u, a, b);
                prop_assert!((x.score - y.score).abs() <= 1e-4, "user {}: scores {} vs {}", u, x.score, y.score);
            }
            // The beams are a plain search from the extended prompt.
            let full = c.answer_prompt(p, r);
            prop_assert_eq!(full.len(), p.len() + 3 + r.len() + 2);
            let start = DecodeStart::from_prompts(&model, &[full], PAD, &device);
            let plain = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
            prop_assert_eq!(&plain.hypotheses[0], a, "user {}: search from prompt ++ cue ++ reasoning ++ answer cue", u);
        }
    }
}

/// A budget long enough to reach EOS or the stop token on some seed, and the stop predicate cutting a row.
#[test]
fn rows_stop_early_at_the_stop_predicate() {
    let device = test_device();
    let model = tiny_model(&device, 11);
    let prompts = vec![vec![1, 4, 9, 12], vec![17], vec![20, 21, 5, 5, 6, 7, 1]];
    let c = cot(40);
    let free = c.reason(&model, &prompts, PAD, |_| false);
    // Stopping after a token that the free reasoning of a row contains cuts that row right after it.
    let cut_at = free[0][free[0].len() / 2];
    let cut = c.reason(&model, &prompts, PAD, |t: &[u32]| t.last() == Some(&cut_at));
    for (u, (f, s)) in free.iter().zip(&cut).enumerate() {
        let want = match f.iter().position(|&t| t == cut_at) {
            Some(i) => &f[..=i],
            None => &f[..],
        };
        assert_eq!(s.as_slice(), want, "user {u}");
        assert!(f.len() <= 40);
    }
    assert!(cut[0].len() < free[0].len() || free[0].len() == 1, "row 0 stopped early: {:?} vs {:?}", cut[0], free[0]);
}
