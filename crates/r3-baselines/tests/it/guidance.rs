//! D3's assistant guidance with a trained SASRec: scale 1 is the plain search, and lowering the scale toward 0
//! (`processed = scale · (log p − cf) + cf`, r3-decode's `Guidance`) moves the beams to the assistant's ranking.

use burn::module::Module;
use r3_backbone::{Arch, Backbone, BackboneConfig};
use r3_baselines::{Assistant, BaselineExperiment, Error, Evaluator, FitInput, ModelKind, Sequences, fit, seed_device};
use r3_decode::{BeamSearchConfig, BeamSearchInput, DecodeStart, Guidance, Hypothesis, ItemScorer, Trie};
use r3_metrics::Cutoffs;

use crate::common::{catalogue, cycle_rows, test_device};

const V: usize = 24;
const PAD: u32 = 0;
const EOS: u32 = 2;

/// A tiny random decoder (Qwen2 layout, d = 16, 2 layers), seeded.
fn tiny_llm(seed: u64) -> Backbone {
    let device = test_device();
    device.seed(seed);
    BackboneConfig::new(Arch::Qwen2, V, 16, 2, 4, 2, 4, 32, 10_000.0, 1e-6, true, true, 128).init(&device)
}

/// `n` distinct token paths (two tokens in 3..V, then EOS): item `i` ↦ `[3 + i / 7, 3 + i % 7 + 8, EOS]`.
fn item_paths(n: usize) -> Vec<Vec<u32>> {
    (0..n as u32).map(|i| vec![3 + i / 7, 11 + i % 7, EOS]).collect()
}

#[test]
fn guidance_scale_one_is_neutral_and_lower_scales_follow_the_assistant() {
    let n = 21;
    // The assistant: SASRec trained on a cycle over the 21 items, so that it is confident about the next item.
    let train = cycle_rows(30, n, 8, 4);
    let seqs = Sequences::from_train(&train, n);
    let cat = catalogue(n);
    let eval = Evaluator::new(&cat, train.iter().collect(), Cutoffs::new(vec![10]).unwrap(), 64).unwrap();
    let mut exp = BaselineExperiment::defaults(ModelKind::Sasrec);
    exp.train.epochs = 15;
    exp.train.batch_size = 8;
    exp.train.lr = 5e-3;
    let device = test_device().autodiff();
    seed_device(&device, 1);
    let run = tempfile::tempdir().unwrap();
    let input = FitInput {
        seqs: &seqs,
        max_len: exp.max_len(),
        valid: &eval,
        settings: &exp.train,
        run_dir: run.path(),
        resume: false,
        stop_after_steps: None,
    };
    let out = fit(input, exp.init(n, &device), &mut |_| Ok::<(), Error>(())).unwrap();
    let assistant = Assistant::new(&out.model.valid());

    let llm = tiny_llm(9);
    let paths = item_paths(n);
    let trie = Trie::new(&paths).unwrap();
    let search = BeamSearchConfig::d3(EOS).with_num_beams(5).with_num_return_sequences(5).init().unwrap();
    let histories: [&[u32]; 3] = [&[3, 4, 5], &[10, 11], &[20]];
    let prompts = vec![vec![5u32, 6, 7, 8], vec![9, 10, 4], vec![12, 13, 14, 15, 16]];
    let weights = assistant.weights(&histories);
    let run = |guidance: Option<Guidance<'_>>| -> Vec<Vec<Hypothesis>> {
        let start = DecodeStart::from_prompts(&llm, &prompts, PAD, &test_device());
        search.search(&llm, BeamSearchInput { start, trie: &trie, guidance }).hypotheses
    };
    let plain = run(None);
    let neutral = run(Some(Guidance { scorer: &weights, scale: 1.0 }));
    assert_eq!(plain, neutral, "scale 1 changes nothing");

    // The assistant's probability mass on each user's returned items, at decreasing scales.
    let mass = |hyps: &[Vec<Hypothesis>], u: usize| -> f32 {
        let w = weights.item_weights(u);
        hyps[u].iter().map(|h| w[h.item.expect("a catalogue item")]).sum()
    };
    let scales = [1.0f32, 0.5, 0.0];
    let runs: Vec<_> = scales.iter().map(|&s| run(Some(Guidance { scorer: &weights, scale: s }))).collect();
    for u in 0..histories.len() {
        let m: Vec<f32> = runs.iter().map(|r| mass(r, u)).collect();
        println!("user {u}: assistant mass of the 5 beams at scales {scales:?}: {m:?}");
        assert!(m[0] <= m[1] + 1e-6 && m[1] <= m[2] + 1e-6, "user {u}: not moving toward the assistant: {m:?}");
        assert!(m[2] > m[0], "user {u}: scale 0 should differ from the plain search: {m:?}");
        // At scale 0 the beams are the assistant's own top 5 (paths are distinct items here).
        let w = weights.item_weights(u);
        let mut top: Vec<usize> = (0..n).collect();
        top.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
        let got: Vec<usize> = runs[2][u].iter().map(|h| h.item.unwrap()).collect();
        assert_eq!(got, top[..5], "user {u}: scale 0 ranks by the assistant");
    }
    // The trained assistant predicts the cycle: after item k comes k + 1.
    for (u, h) in histories.iter().enumerate() {
        let w = weights.item_weights(u);
        let best = (0..n).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap();
        assert_eq!(best as u32, (h[h.len() - 1] + 1) % n as u32, "assistant of user {u}");
    }
}
