//! Constrained beam search against HF transformers 5.24 (`golden/smollm2/latent_golden.json`, `beam[0..3]` and
//! `beam_config`): SmolLM2-135M with one extra vocabulary row (`<|Thought|>`, id 49152, the mean of the embedding
//! rows; the head is tied, so there are 49153 logits), the trie of every CDs catalogue title, 10 beams, 10
//! returned, length penalty 1.0. The same 10 beams in the same order for all 3 prompts, scores within 1e-3,
//! both one prompt at a time and the 3 prompts as one left-padded batch.
//!
//! To regenerate the reference, see `../shared/golden/README.md` (HF `generate` with `prefix_allowed_tokens_fn`
//! over the same trie).

use std::time::Instant;

use burn::module::Param;
use burn::tensor::Tensor;
use r3_backbone::gguf::Gguf;
use r3_backbone::vocab::bpe_vocab;
use r3_backbone::{Backbone, load_gguf};
use r3_data::{Catalogue, Encoder, EncoderConfig, Tokenizer};
use r3_decode::{BeamSearchConfig, BeamSearchInput, DecodeStart, Hypothesis, Trie};
use serde::Deserialize;

use crate::common::{golden_dir, model_path, test_device};

const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";
const TOLERANCE: f32 = 1e-3;

#[derive(Deserialize)]
struct BeamCase {
    prompt_ids: Vec<u32>,
    beams: Vec<Vec<u32>>,
    titles: Vec<String>,
    scores: Vec<f32>,
}

#[derive(Deserialize)]
struct BeamConfig {
    num_beams: usize,
    length_penalty: f64,
    max_new_tokens: usize,
}

#[derive(Deserialize)]
struct Golden {
    thought_id: u32,
    eos_id: u32,
    beam: Vec<BeamCase>,
    beam_config: BeamConfig,
}

/// SmolLM2 with the `<|Thought|>` row appended (the mean of the embedding rows), as in the golden model.
fn model_with_thought_row(thought_id: u32) -> Backbone {
    let mut m = load_gguf(&model_path("smollm2-135m"), &test_device()).expect("loading SmolLM2").model;
    assert!(m.lm_head.is_none(), "SmolLM2 ties its head to the embedding");
    let w = m.embed_tokens.weight.val(); // [V, d]
    assert_eq!(w.dims()[0], thought_id as usize, "the thought row is appended at id = vocabulary size");
    let mean = w.clone().mean_dim(0); // [1, d]
    m.embed_tokens.weight = Param::from_tensor(Tensor::cat(vec![w, mean], 0)); // [V + 1, d]
    m
}

/// Compares one user's hypotheses with the golden case; returns a description of every difference.
fn diff(got: &[Hypothesis], want: &BeamCase, tok: &Tokenizer) -> Vec<String> {
    let mut out = Vec::new();
    if got.len() != want.beams.len() {
        out.push(format!("{} hypotheses, want {}", got.len(), want.beams.len()));
    }
    for (i, (g, (wb, (wt, ws)))) in
        got.iter().zip(want.beams.iter().zip(want.titles.iter().zip(&want.scores))).enumerate()
    {
        if &g.tokens != wb {
            out.push(format!("beam {i}: got {:?} ({:?}), want {wb:?} ({wt:?})", g.tokens, tok.decode(&g.tokens)));
        }
        let d = (g.score - ws).abs();
        if d > TOLERANCE {
            out.push(format!("beam {i}: score {} want {ws} (diff {d:.2e})", g.score));
        }
    }
    out
}

#[test]
fn smollm2_beam_search_matches_hf() {
    let golden: Golden = {
        let path = golden_dir().join("smollm2").join("latent_golden.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    assert_eq!(golden.beam.len(), 3);
    let tok = Tokenizer::from_bpe_vocab(bpe_vocab(&Gguf::open(&model_path("smollm2-135m")).unwrap()).unwrap()).unwrap();
    assert_eq!(tok.eos_id(), Some(golden.eos_id));
    // The targets as the trainer encodes them (`encode('"' + title + '"\n') + [eos]`), with `<|Thought|>` added to
    // the tokenizer as in the golden model.
    let enc = Encoder::new(tok, EncoderConfig::for_dataset(STEM).unwrap()).unwrap();
    assert_eq!(enc.thought_id(), Some(golden.thought_id));
    let tok = enc.tokenizer();
    let data = r3_data::shared_data_dir().expect("the shared data folder");
    let catalogue = Catalogue::read(&data.join("info").join(format!("{STEM}.txt"))).unwrap();
    let t0 = Instant::now();
    let targets: Vec<Vec<u32>> = catalogue.titles().iter().map(|t| enc.encode_target(t)).collect();
    let trie = Trie::new(&targets).unwrap();
    eprintln!(
        "trie: {} titles, {} distinct paths, {} nodes, built in {:.2} s (encoding included)",
        trie.num_items(),
        trie.num_paths(),
        trie.num_nodes(),
        t0.elapsed().as_secs_f64()
    );
    let model = model_with_thought_row(golden.thought_id);
    let c = &golden.beam_config;
    let search = BeamSearchConfig::new(golden.eos_id)
        .with_num_beams(c.num_beams)
        .with_num_return_sequences(c.num_beams)
        .with_length_penalty(c.length_penalty)
        .with_max_new_tokens(c.max_new_tokens)
        .init()
        .unwrap();
    let device = test_device();
    let mut failures = Vec::new();

    // One prompt at a time (as the golden was made).
    for (i, case) in golden.beam.iter().enumerate() {
        let t = Instant::now();
        let start = DecodeStart::from_prompts(&model, std::slice::from_ref(&case.prompt_ids), golden.eos_id, &device);
        let out = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
        eprintln!(
            "prompt {i} ({} tokens): {} steps, {:.2} s (prefill included)",
            case.prompt_ids.len(),
            out.steps,
            t.elapsed().as_secs_f64()
        );
        let got = &out.hypotheses[0];
        let max = got.iter().zip(&case.scores).map(|(g, w)| (g.score - w).abs()).fold(0f32, f32::max);
        eprintln!("prompt {i}: max score diff {max:.2e}");
        for (j, (h, title)) in got.iter().zip(&case.titles).enumerate() {
            match h.item {
                Some(it) if targets[it] == h.tokens && catalogue.titles()[it] == *title => {}
                other => failures.push(format!("prompt {i} beam {j}: item {other:?}, want the title {title:?}")),
            }
        }
        failures.extend(diff(got, case, tok).into_iter().map(|d| format!("prompt {i} alone: {d}")));
    }

    // The three prompts as one left-padded batch.
    let t = Instant::now();
    let prompts: Vec<Vec<u32>> = golden.beam.iter().map(|c| c.prompt_ids.clone()).collect();
    let start = DecodeStart::from_prompts(&model, &prompts, golden.eos_id, &device);
    let out = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
    eprintln!("batch of 3: {} steps, {:.2} s", out.steps, t.elapsed().as_secs_f64());
    for (i, (got, case)) in out.hypotheses.iter().zip(&golden.beam).enumerate() {
        failures.extend(diff(got, case, tok).into_iter().map(|d| format!("prompt {i} in a batch of 3: {d}")));
    }
    assert!(
        failures.is_empty(),
        "beam search differs from HF (tolerance {TOLERANCE}); regenerate the reference as \
         ../shared/golden/README.md says if the model or the trie changed:\n{}",
        failures.join("\n")
    );
}
