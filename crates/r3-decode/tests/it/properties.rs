//! Property tests on random small tries and a tiny random backbone (Qwen2 layout, V = 24, d = 16, 2 layers):
//! - when nothing can be pruned (no more trie paths than beams), beam search returns every path exactly once,
//!   scored as the teacher-forced sum of full-vocabulary log-probs divided by `len^length_penalty`, best first;
//! - otherwise its results are unique, complete trie paths in descending score order, deterministic, and the
//!   same for a user alone and inside a left-padded batch of 8;
//! - D3 guidance: scale 1 changes nothing, scale 0 ranks by the assistant's item weights;
//! - constrained sampling draws trie paths, reproducibly, and a row's draws do not depend on the other rows;
//! - free greedy generation of a left-padded batch equals `r3_backbone::greedy_generate` per prompt.

use std::collections::HashSet;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use proptest::prelude::*;
use r3_backbone::{Backbone, HiddenInput, greedy_generate};
use r3_decode::{
    BeamSearchConfig, BeamSearchInput, DecodeStart, GenerateConfig, Guidance, Hypothesis, SampleConfig, Trie,
};

use crate::common::{EOS, PAD, V, prompt, test_device, tiny_model, titles};

/// The teacher-forced sum of full-vocabulary log-probs of `path` after `prompt`.
fn path_log_prob(model: &Backbone, prompt: &[u32], path: &[u32], device: &Device) -> f32 {
    let ids: Vec<i64> = prompt.iter().chain(path).map(|&t| i64::from(t)).collect();
    let l = ids.len();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, l]), device);
    let hidden = model.hidden(HiddenInput::new(model.embed(ids))).hidden;
    let logits = model.logits(hidden.narrow(1, prompt.len() - 1, path.len())); // [1, n, V]
    let lp: Vec<f32> = log_softmax(logits, 2).into_data().try_into_vec_as::<f32>().unwrap();
    path.iter().enumerate().map(|(i, &t)| lp[i * V + t as usize]).sum()
}

/// Checks that the hypotheses are complete, distinct trie paths in non-increasing score order.
fn check_paths(hyps: &[Hypothesis], trie: &Trie, catalogue: &[Vec<u32>]) -> Result<(), TestCaseError> {
    let mut seen = HashSet::new();
    for (i, h) in hyps.iter().enumerate() {
        let item = h.item.ok_or_else(|| TestCaseError::fail(format!("hypothesis {i} is not a complete path")))?;
        prop_assert_eq!(&catalogue[item], &h.tokens, "hypothesis {} is item {}'s path", i, item);
        prop_assert_eq!(trie.item(&h.tokens), Some(item));
        prop_assert!(seen.insert(h.tokens.clone()), "hypothesis {} repeats {:?}", i, h.tokens);
        if i > 0 {
            prop_assert!(hyps[i - 1].score >= h.score, "scores not sorted: {:?}", hyps);
        }
    }
    Ok(())
}

/// Same tokens and scores within `tol`.
fn check_same(a: &[Hypothesis], b: &[Hypothesis], tol: f32, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len(), "{}: lengths", what);
    for (x, y) in a.iter().zip(b) {
        prop_assert_eq!(&x.tokens, &y.tokens, "{}: {:?} vs {:?}", what, a, b);
        prop_assert!((x.score - y.score).abs() <= tol, "{}: scores {} vs {}", what, x.score, y.score);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn exhaustive_when_nothing_is_pruned(
        catalogue in titles(6, 3), p in prompt(), seed in 0u64..1000, lp_index in 0usize..2
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let trie = Trie::new(&catalogue).unwrap();
        let length_penalty = [0.0, 1.0][lp_index];
        let search = BeamSearchConfig::new(EOS)
            .with_num_beams(6)
            .with_num_return_sequences(6)
            .with_length_penalty(length_penalty)
            .with_max_new_tokens(8)
            .init()
            .unwrap();
        let start = DecodeStart::from_prompts(&model, std::slice::from_ref(&p), PAD, &device);
        let out = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
        let hyps = &out.hypotheses[0];
        check_paths(hyps, &trie, &catalogue)?;
        prop_assert_eq!(hyps.len(), trie.num_paths(), "every path comes back");
        for h in hyps {
            let want = path_log_prob(&model, &p, &h.tokens, &device) / (h.tokens.len() as f32).powf(length_penalty as f32);
            prop_assert!((h.score - want).abs() < 1e-4, "{:?}: score {} teacher-forced {}", h.tokens, h.score, want);
        }
    }

    #[test]
    fn beams_are_unique_sorted_paths_and_batch_invariant(
        catalogue in titles(40, 3), prompts in prop::collection::vec(prompt(), 8), seed in 0u64..1000
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let trie = Trie::new(&catalogue).unwrap();
        let search = BeamSearchConfig::new(EOS).with_num_beams(4).with_num_return_sequences(4).with_max_new_tokens(8).init().unwrap();
        let run = |ps: &[Vec<u32>]| {
            let start = DecodeStart::from_prompts(&model, ps, PAD, &device);
            search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None }).hypotheses
        };
        let batch = run(&prompts);
        prop_assert_eq!(batch.len(), 8);
        let again = run(&prompts);
        for (u, p) in prompts.iter().enumerate() {
            check_paths(&batch[u], &trie, &catalogue)?;
            prop_assert_eq!(&batch[u], &again[u], "deterministic");
            let alone = run(std::slice::from_ref(p));
            check_same(&alone[0], &batch[u], 1e-4, &format!("user {u} alone vs in a batch of 8"))?;
            // Fewer results than beams only when fewer paths exist.
            prop_assert_eq!(batch[u].len(), trie.num_paths().min(4));
        }
    }

    #[test]
    fn d3_guidance_scale_one_is_neutral_and_zero_follows_the_assistant(
        catalogue in titles(12, 3), p in prompt(), seed in 0u64..1000, weights_seed in 0u64..1000
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let trie = Trie::new(&catalogue).unwrap();
        let n = catalogue.len();
        // Distinct positive weights per item, from a simple hash of the seed.
        let weights: Vec<f32> = (0..n).map(|i| 1.0 + ((i as u64 * 7919 + weights_seed * 104_729) % 997) as f32).collect();
        let scorer = |_user: usize| weights.clone();
        let search = BeamSearchConfig::d3(EOS).with_num_beams(4).with_num_return_sequences(4).with_max_new_tokens(8).init().unwrap();
        let run = |guidance| {
            let start = DecodeStart::from_prompts(&model, std::slice::from_ref(&p), PAD, &device);
            search.search(&model, BeamSearchInput { start, trie: &trie, guidance }).hypotheses.remove(0)
        };
        let plain = run(None);
        let neutral = run(Some(Guidance { scorer: &scorer, scale: 1.0 }));
        prop_assert_eq!(&plain, &neutral, "scale 1 changes nothing");
        let assistant = run(Some(Guidance { scorer: &scorer, scale: 0.0 }));
        check_paths(&assistant, &trie, &catalogue)?;
        // Scale 0: a path scores ln(mass(path) / total mass) (the per-step terms telescope), so the best path is
        // the one with the largest summed item weight, and the scores follow the assistant.
        let total: f32 = weights.iter().sum();
        let mass = |path: &[u32]| -> f32 { (0..n).filter(|&i| catalogue[i] == path).map(|i| weights[i]).sum() };
        let best = catalogue.iter().map(|c| mass(c)).fold(0f32, f32::max);
        prop_assert_eq!(mass(&assistant[0].tokens), best, "the assistant's favourite comes first");
        for h in &assistant {
            prop_assert!((h.score - (mass(&h.tokens) / total).ln()).abs() < 1e-4, "{:?}", h);
        }
    }

    #[test]
    fn constrained_samples_are_paths_reproducible_and_batch_invariant(
        catalogue in titles(20, 3), prompts in prop::collection::vec(prompt(), 3), seed in 0u64..1000, temperature in 0.3f64..2.0
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let trie = Trie::new(&catalogue).unwrap();
        let config = SampleConfig::new(EOS).with_num_samples(4).with_temperature(temperature).with_max_new_tokens(8).with_seed(seed);
        let run = |ps: &[Vec<u32>]| config.sample(&model, DecodeStart::from_prompts(&model, ps, PAD, &device), &trie).unwrap();
        let batch = run(&prompts);
        prop_assert_eq!(&batch, &run(&prompts), "reproducible");
        for (u, p) in prompts.iter().enumerate() {
            prop_assert_eq!(batch[u].len(), 4);
            for s in &batch[u] {
                let item = s.item.ok_or_else(|| TestCaseError::fail("a sample is not a complete path"))?;
                prop_assert_eq!(&catalogue[item], &s.tokens);
                let want = path_log_prob(&model, p, &s.tokens, &device);
                prop_assert!((s.log_prob - want).abs() < 1e-4, "log_prob {} teacher-forced {}", s.log_prob, want);
            }
        }
        // The random streams are keyed by (seed, row, sample): the first row draws the same alone and in a batch.
        let alone = run(&prompts[..1]);
        let same_tokens = alone[0].iter().zip(&batch[0]).all(|(a, b)| a.tokens == b.tokens);
        prop_assert!(same_tokens, "row 0 alone {:?} vs in the batch {:?}", alone[0], batch[0]);
    }

    #[test]
    fn free_greedy_generation_equals_backbone_greedy(
        prompts in prop::collection::vec(prompt(), 1..5), seed in 0u64..1000
    ) {
        let device = test_device();
        let model = tiny_model(&device, seed);
        let config = GenerateConfig::new().with_eos_id(Some(EOS)).with_max_new_tokens(6);
        let got = config.generate(&model, DecodeStart::from_prompts(&model, &prompts, PAD, &device)).unwrap();
        for (p, g) in prompts.iter().zip(&got) {
            prop_assert_eq!(g, &greedy_generate(&model, p, 6, Some(EOS), &device));
        }
    }
}

/// Sampled free generation is reproducible per seed, stops at EOS or the length limit, and a low temperature
/// gives the greedy result.
#[test]
fn free_sampled_generation() {
    let device = test_device();
    let model = tiny_model(&device, 5);
    let prompts = vec![vec![3, 4, 5], vec![7, 8], vec![9, 10, 11, 12]];
    let start = || DecodeStart::from_prompts(&model, &prompts, PAD, &device);
    let sampled =
        GenerateConfig::new().with_eos_id(Some(EOS)).with_max_new_tokens(10).with_temperature(Some(1.0)).with_seed(3);
    let a = sampled.generate(&model, start()).unwrap();
    assert_eq!(a, sampled.generate(&model, start()).unwrap());
    for g in &a {
        assert!(g.len() == 10 || g.last() == Some(&EOS), "{g:?}");
        assert!(g.iter().rev().skip(1).all(|&t| t != EOS), "EOS only at the end: {g:?}");
    }
    let cold = GenerateConfig::new().with_eos_id(Some(EOS)).with_max_new_tokens(10).with_temperature(Some(1e-4));
    let greedy = GenerateConfig::new().with_eos_id(Some(EOS)).with_max_new_tokens(10);
    assert_eq!(cold.generate(&model, start()).unwrap(), greedy.generate(&model, start()).unwrap());
    assert!(GenerateConfig::new().with_temperature(Some(0.0)).generate(&model, start()).is_err());
}

/// Fewer than `num_beams` completable paths: only the live hypotheses come back, each once (HF pads its output
/// with copies scored about −1e9 / length; see the module docs of `beam`).
#[test]
fn fewer_paths_than_beams() {
    let device = test_device();
    let model = tiny_model(&device, 9);
    let catalogue = vec![vec![5, 6, EOS], vec![5, 7, 8, EOS], vec![9, EOS]];
    let trie = Trie::new(&catalogue).unwrap();
    let search = BeamSearchConfig::new(EOS).with_max_new_tokens(6).init().unwrap();
    let start = DecodeStart::from_prompts(&model, &[vec![1, 3, 4, 10]], PAD, &device);
    let out = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
    let items: HashSet<_> = out.hypotheses[0].iter().map(|h| h.item).collect();
    assert_eq!(items, HashSet::from([Some(0), Some(1), Some(2)]));
    // A path cut by max_new_tokens finishes without an item.
    let short = BeamSearchConfig::new(EOS).with_num_beams(2).with_num_return_sequences(2).with_max_new_tokens(2);
    let start = DecodeStart::from_prompts(&model, &[vec![1, 3, 4, 10]], PAD, &device);
    let out = short.init().unwrap().search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
    assert!(out.hypotheses[0].iter().all(|h| h.tokens.len() <= 2));
    assert!(out.hypotheses[0].iter().any(|h| h.item.is_none()), "{:?}", out.hypotheses);
    // Invalid settings are errors that name the key.
    let e = BeamSearchConfig::new(EOS).with_num_return_sequences(11).init().unwrap_err().to_string();
    assert!(e.contains("num_return_sequences"), "{e}");
}
