//! `r3_data::encode` with the real SmolLM2 tokenizer against the LatentR³ golden (`smollm2/latent_golden.json`):
//! the prompts of CDs test rows 0 and 5 (SFT examples, ending with the thought id) and 0, 5, 11 (beam prompts,
//! without thought) and their targets are reproduced exactly, with the paper template and the word "musics". The
//! Qwen2.5 BOS rule is checked against `qwen2_0_5b/golden.json`.
//!
//! Tolerance: none, ids are exact. To regenerate the reference, see `../shared/golden/README.md`.

use r3_backbone::gguf::Gguf;
use r3_backbone::vocab::bpe_vocab;
use r3_data::encode::{Encoder, EncoderConfig, Template};
use r3_data::{Dataset, Split, Tokenizer};
use serde::Deserialize;

use crate::common::{golden_dir, model_path};

const CDS: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

/// The CDs test rows of the golden examples (`examples[i]` is row `EXAMPLE_ROWS[i]`, `beam[i]` is row
/// `BEAM_ROWS[i]`), found by matching the golden prompts against every row.
const EXAMPLE_ROWS: [usize; 2] = [0, 5];
const BEAM_ROWS: [usize; 3] = [0, 5, 11];

use crate::common::LatentGolden as Latent;

fn tokenizer(id: &str) -> Tokenizer {
    let gguf = Gguf::open(&model_path(id)).unwrap();
    Tokenizer::from_bpe_vocab(bpe_vocab(&gguf).unwrap()).unwrap()
}

/// Asserts `got == want`, printing the first differing position and both id lists.
fn assert_ids(got: &[u32], want: &[u32], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: ids differ at position {at} (lengths {} and {})\n  got:  {got:?}\n  want: {want:?}\nIf the \
             template or the BOS rule changed on purpose, regenerate the golden (shared/golden/README.md).",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn smollm2_prompts_and_targets_match_the_latent_golden() {
    let path = golden_dir().join("smollm2").join("latent_golden.json");
    let g: Latent = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(g.examples.len(), EXAMPLE_ROWS.len());
    assert_eq!(g.beam.len(), BEAM_ROWS.len());

    let data = Dataset::load(&r3_data::shared_data_dir().expect("the shared data folder"), CDS).unwrap();
    let test = data.split(Split::Test);
    let config = EncoderConfig::for_dataset(CDS).unwrap();
    assert_eq!((config.category.as_str(), config.template, config.n_thought), ("musics", Template::Paper, 1));
    let tok = tokenizer("smollm2-135m");
    let vocab = tok.vocab_size();
    let enc = Encoder::new(tok, config).unwrap();

    assert_eq!(enc.thought_id(), Some(g.thought_id));
    assert_eq!(g.thought_id as usize, vocab, "the thought id is the old vocabulary size (the new embedding row)");
    assert_eq!((enc.bos_id(), enc.eos_id()), (Some(g.bos_id), g.eos_id));

    for (e, &r) in g.examples.iter().zip(&EXAMPLE_ROWS) {
        let row = &test[r];
        assert_eq!(row.item_title, e.title, "examples of row {r}: title");
        let s = enc.encode_sample(row, true).unwrap();
        let mut prompt = s.prompt_ids.clone();
        prompt.extend(std::iter::repeat_n(g.thought_id, s.n_thought));
        assert_ids(&prompt, &e.prompt_ids, &format!("row {r}: prompt_ids + thought"));
        assert_ids(&s.target_ids, &e.target_ids, &format!("row {r}: target_ids"));
        assert_ids(&enc.encode_target(&e.title), &e.target_ids, &format!("row {r}: encode_target"));
        // The batch of one row puts the same ids in its full sequence.
        let full = enc.batch(std::slice::from_ref(&s)).full();
        assert_ids(&full.ids, &[e.prompt_ids.clone(), e.target_ids.clone()].concat(), &format!("row {r}: full"));
    }
    for (b, &r) in g.beam.iter().zip(&BEAM_ROWS) {
        let row = &test[r];
        assert_eq!(row.item_title, b.target_title, "beam of row {r}: title");
        let s = enc.encode_sample(row, false).unwrap();
        assert_ids(&s.prompt_ids, &b.prompt_ids, &format!("row {r}: beam prompt_ids"));
        assert!(s.target_ids.is_empty());
    }
}

#[test]
fn qwen2_gets_its_defined_bos_as_in_the_reference() {
    #[derive(Deserialize)]
    struct Golden {
        bos_token_id: u32,
        eos_token_id: u32,
        vocab_size: usize,
    }
    let path = golden_dir().join("qwen2_0_5b").join("golden.json");
    let g: Golden = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let tok = tokenizer("qwen2.5-coder-0.5b");
    assert!(!tok.add_bos(), "the GGUF sets add_bos_token = false, like SmolLM2's");
    let data = Dataset::load(&r3_data::shared_data_dir().expect("the shared data folder"), CDS).unwrap();
    let row = &data.split(Split::Test)[0];

    let enc = Encoder::new(tok.clone(), EncoderConfig::for_dataset(CDS).unwrap()).unwrap();
    assert_eq!((enc.bos_id(), enc.eos_id()), (Some(g.bos_token_id), g.eos_token_id));
    assert_eq!(enc.thought_id(), Some(g.vocab_size as u32), "thought id = embedding rows of the GGUF model");
    let s = enc.encode_sample(row, true).unwrap();
    assert_eq!(s.prompt_ids[0], g.bos_token_id);
    // Without BOS (the HF-hub tokenizer, bos_token null) the prompt is the same ids minus the first.
    let hub = Encoder::new(tok, EncoderConfig::for_dataset(CDS).unwrap().with_bos(false)).unwrap();
    let h = hub.encode_sample(row, true).unwrap();
    assert_ids(&h.prompt_ids, &s.prompt_ids[1..], "qwen without BOS");
    assert_eq!(h.target_ids.last(), Some(&g.eos_token_id));
}
