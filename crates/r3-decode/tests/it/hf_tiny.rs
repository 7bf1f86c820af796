//! Constrained beam search against HF transformers on a tiny random Llama (`tests/fixtures/hf_tiny`, made by its
//! `generate.py`): random tries whose titles share prefixes (so beams are pruned and the early-stop rule fires),
//! 3 left-padded prompts per batch, 3/5/10 beams, length penalties 0, 1 and 2, paths cut by `max_new_tokens`, and
//! tries with fewer paths than beams. Every live HF hypothesis in the same order, scores within 1e-4; HF's filler
//! rows (score ≤ −1e6, copies of live paths or of the empty prompt) are not returned by us.
//!
//! To regenerate: `python generate.py` in the fixture folder (torch + transformers 5.24).

use r3_backbone::load_hf_dir;
use r3_decode::{BeamSearchConfig, BeamSearchInput, DecodeStart, Trie};
use serde::Deserialize;

use crate::common::test_device;

#[derive(Deserialize)]
struct Row {
    tokens: Vec<u32>,
    score: f32,
}

#[derive(Deserialize)]
struct Case {
    titles: Vec<Vec<u32>>,
    prompts: Vec<Vec<u32>>,
    num_beams: usize,
    length_penalty: f64,
    max_new_tokens: usize,
    results: Vec<Vec<Row>>,
}

#[derive(Deserialize)]
struct Fixture {
    eos: u32,
    pad: u32,
    cases: Vec<Case>,
}

#[test]
fn tiny_llama_beam_search_matches_hf() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("hf_tiny");
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("beams.json")).expect("beams.json")).expect("parse");
    let device = test_device();
    let model = load_hf_dir(&dir, &device).expect("the tiny Llama").model;
    let mut failures = Vec::new();
    let mut max_diff = 0f32;
    for (ci, case) in fixture.cases.iter().enumerate() {
        let trie = Trie::new(&case.titles).unwrap();
        let search = BeamSearchConfig::new(fixture.eos)
            .with_num_beams(case.num_beams)
            .with_num_return_sequences(case.num_beams)
            .with_length_penalty(case.length_penalty)
            .with_max_new_tokens(case.max_new_tokens)
            .init()
            .unwrap();
        let start = DecodeStart::from_prompts(&model, &case.prompts, fixture.pad, &device);
        let out = search.search(&model, BeamSearchInput { start, trie: &trie, guidance: None });
        for (u, (got, want)) in out.hypotheses.iter().zip(&case.results).enumerate() {
            let live: Vec<&Row> = want.iter().filter(|r| r.score > -1e6).collect();
            let got_tokens: Vec<&Vec<u32>> = got.iter().map(|h| &h.tokens).collect();
            let want_tokens: Vec<&Vec<u32>> = live.iter().map(|r| &r.tokens).collect();
            if got_tokens != want_tokens {
                failures.push(format!("case {ci} user {u}: got {got_tokens:?}\n  want {want_tokens:?}"));
                continue;
            }
            for (g, w) in got.iter().zip(&live) {
                let d = (g.score - w.score).abs();
                max_diff = max_diff.max(d);
                if d > 1e-4 {
                    failures.push(format!(
                        "case {ci} user {u} {:?}: score {} want {} (diff {d:.2e})",
                        g.tokens, g.score, w.score
                    ));
                }
            }
        }
    }
    eprintln!("{} cases, max score diff {max_diff:.2e}", fixture.cases.len());
    assert!(failures.is_empty(), "beam search differs from HF:\n{}", failures.join("\n"));
}
