//! The tokenizers built from the real GGUF files against HF transformers (`golden/*/golden.json`): the 53 golden
//! strings give exactly the golden ids, decoding inverts encoding, the special ids and vocabulary size agree, control
//! tokens are single ids, and a `tokenizer.json` round trip changes nothing.
//!
//! Tolerance: none, ids are exact. To regenerate the reference, see `../shared/golden/README.md` (HF transformers
//! loading the GGUF file, `tokenizer.encode(text, add_special_tokens=False)`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use r3_backbone::gguf::Gguf;
use r3_backbone::vocab::bpe_vocab;
use r3_data::tokenizer::token_type;
use r3_data::{BpeVocab, Tokenizer};
use serde::Deserialize;

use crate::common::{golden_dir, model_path};

#[derive(Deserialize)]
struct Golden {
    bos_token_id: u32,
    eos_token_id: u32,
    vocab_size: usize,
    tokenize: Vec<Tokenized>,
    forward: Vec<Forward>,
}

#[derive(Deserialize)]
struct Tokenized {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Forward {
    ids: Vec<u32>,
}

fn golden(name: &str) -> Golden {
    let path = golden_dir().join(name).join("golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The GGUF vocabulary and its tokenizer of model `id`, built once per test binary (the Qwen vocabulary has
/// 151,936 tokens and 151,387 merges).
fn tokenizer(id: &'static str) -> (BpeVocab, Tokenizer) {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, (BpeVocab, Tokenizer)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // Building under the lock builds each tokenizer once, however the tests are scheduled.
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(id)
        .or_insert_with(|| {
            let gguf = Gguf::open(&model_path(id)).unwrap();
            let vocab = bpe_vocab(&gguf).unwrap();
            let tok = Tokenizer::from_bpe_vocab(vocab.clone()).unwrap();
            (vocab, tok)
        })
        .clone()
}

/// Asserts `got == want`, printing both id lists and the first differing position.
fn assert_ids(got: &[u32], want: &[u32], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: ids differ at position {at}\n  got:  {got:?}\n  want: {want:?}");
    }
}

/// Every check of this module for one model.
fn check_model(model: &'static str, golden_name: &str) {
    let g = golden(golden_name);
    let (vocab, tok) = tokenizer(model);
    assert_eq!(g.tokenize.len(), 53, "the golden file should hold 53 strings");

    for (i, t) in g.tokenize.iter().enumerate() {
        let ids = tok.encode(&t.text);
        assert_ids(&ids, &t.ids, &format!("{model}: tokenize[{i}] {:?}", t.text));
        assert_eq!(tok.decode(&ids), t.text, "{model}: decode(encode(tokenize[{i}]))");
    }

    assert_eq!(tok.bos_id(), Some(g.bos_token_id), "{model}: bos");
    assert_eq!(tok.eos_id(), Some(g.eos_token_id), "{model}: eos");
    assert!(!tok.add_bos(), "{model}: these GGUF files set add_bos_token = false");
    // The golden `vocab_size` is the model's (its embedding rows). GGUF pads the token list to that size with
    // `[PAD…]` placeholders of type UNUSED (Qwen: 271 of them), so the tokenizer's id count equals it; the real
    // tokens are the HF tokenizer's `len()` (49,152 for SmolLM2, 151,665 for Qwen2.5).
    assert_eq!(tok.vocab_size(), g.vocab_size, "{model}: vocab_size");
    let unused = vocab.token_types.iter().filter(|&&t| t == token_type::UNUSED).count();
    for (id, (t, &ty)) in vocab.tokens.iter().zip(&vocab.token_types).enumerate() {
        if ty == token_type::UNUSED {
            assert_eq!(*t, format!("[PAD{id}]"), "{model}: placeholder {id}");
        }
    }
    let real = g.vocab_size - unused;
    assert_eq!(real, if model.starts_with("smollm") { 49_152 } else { 151_665 }, "{model}: real tokens");

    // Control and user-defined tokens are single ids wherever they stand.
    let mut whole = 0;
    for (id, (t, &ty)) in vocab.tokens.iter().zip(&vocab.token_types).enumerate() {
        if ty == token_type::CONTROL || ty == token_type::USER_DEFINED {
            let id = id as u32;
            assert_ids(&tok.encode(t), &[id], &format!("{model}: control token {t:?}"));
            let text = format!("Hi{t}there {t}\n");
            let ids = tok.encode(&text);
            assert_eq!(ids.iter().filter(|&&x| x == id).count(), 2, "{model}: {text:?} -> {ids:?}");
            assert_eq!(tok.decode(&ids), text);
            whole += 1;
        }
    }
    assert!(whole >= 3, "{model}: only {whole} control tokens");
    let im_start = tok.token_to_id("<|im_start|>").unwrap();
    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    let chat = tok.encode("<|im_start|>user\nGive me a record<|im_end|>\n");
    assert_eq!((chat[0], chat[chat.len() - 2]), (im_start, im_end), "{model}: {chat:?}");

    // The forward prompts were encoded from one text each (no BOS: add_bos_token is false), so re-encoding their
    // decoded text gives them back. BPE is deterministic and byte-level decoding lossless, so this holds for any
    // ids that are themselves an encoding of a text.
    for (i, f) in g.forward.iter().enumerate() {
        let ids = match tok.bos_id() {
            Some(bos) if tok.add_bos() && f.ids.first() == Some(&bos) => &f.ids[1..],
            _ => &f.ids[..],
        };
        assert_ids(&tok.encode(&tok.decode(ids)), ids, &format!("{model}: forward[{i}] re-encoded"));
    }
}

/// `save` then `from_file` (with the saved `tokenizer_config.json`) gives the same ids, special ids and size.
fn check_tokenizer_json(model: &'static str, golden_name: &str) {
    let g = golden(golden_name);
    let (_, tok) = tokenizer(model);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tok.save(&path).unwrap();
    tok.save_config(&dir.path().join("tokenizer_config.json")).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    for (i, t) in g.tokenize.iter().enumerate() {
        assert_ids(&back.encode(&t.text), &t.ids, &format!("{model} via tokenizer.json: tokenize[{i}] {:?}", t.text));
    }
    let chat = "<|im_start|>user\nGive me a record<|im_end|>\n";
    assert_ids(&back.encode(chat), &tok.encode(chat), &format!("{model} via tokenizer.json: chat"));
    assert_eq!(
        (back.bos_id(), back.eos_id(), back.pad_id(), back.add_bos(), back.vocab_size()),
        (tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.add_bos(), tok.vocab_size()),
        "{model} via tokenizer.json: special ids and size"
    );
}

#[test]
fn smollm2_matches_hf() {
    check_model("smollm2-135m", "smollm2");
}

#[test]
fn qwen2_0_5b_matches_hf() {
    check_model("qwen2.5-coder-0.5b", "qwen2_0_5b");
}

#[test]
fn qwen2_1_5b_matches_hf() {
    if std::env::var_os("R3_SLOW").is_none_or(|v| v != "1") {
        eprintln!(
            "skipped: qwen2.5-coder-1.5b (1.1 GB) is fetched only for slow runs, and its tokenizer equals the 0.5B \
             one; set R3_SLOW=1 to run it"
        );
        return;
    }
    check_model("qwen2.5-coder-1.5b", "qwen2_1_5b");
}

#[test]
fn smollm2_tokenizer_json_round_trip() {
    check_tokenizer_json("smollm2-135m", "smollm2");
}

#[test]
fn qwen2_0_5b_tokenizer_json_round_trip() {
    check_tokenizer_json("qwen2.5-coder-0.5b", "qwen2_0_5b");
}

/// The LatentR³ golden (`smollm2/latent_golden.json`): `<|Thought|>` added to the SmolLM2 tokenizer gets id
/// 49152 and is matched whole; the SFT targets are `encode('"' + title + '"\n') + [eos]`; the prompts are BOS
/// followed by the encoding of one text (ending with the thought token for the SFT examples).
#[test]
fn smollm2_latent_golden_ids() {
    use crate::common::LatentGolden as Latent;
    let path = golden_dir().join("smollm2").join("latent_golden.json");
    let g: Latent = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (_, mut tok) = tokenizer("smollm2-135m");
    assert_eq!(tok.add_special_token("<|Thought|>"), g.thought_id);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(g.bos_id), Some(g.eos_id)));
    for (i, e) in g.examples.iter().enumerate() {
        let mut target = tok.encode(&format!("\"{}\"\n", e.title));
        target.push(g.eos_id);
        assert_ids(&target, &e.target_ids, &format!("examples[{i}].target_ids"));
        assert_eq!(e.prompt_ids.first(), Some(&g.bos_id));
        assert_eq!(e.prompt_ids.last(), Some(&g.thought_id));
        let body = &e.prompt_ids[1..];
        assert_ids(&tok.encode(&tok.decode(body)), body, &format!("examples[{i}].prompt_ids re-encoded"));
    }
    for (i, b) in g.beam.iter().enumerate() {
        assert_eq!(b.prompt_ids.first(), Some(&g.bos_id));
        let body = &b.prompt_ids[1..];
        assert_ids(&tok.encode(&tok.decode(body)), body, &format!("beam[{i}].prompt_ids re-encoded"));
    }
}

/// Every target title of the CDs test split round-trips through both tokenizers, and the encode throughput is
/// printed (a quick benchmark, one thread: `cargo test -p r3-backbone --test integration cds_test_titles --
/// --nocapture`). "cold" is the first pass over the titles; "warm" the best of three more, with the BPE word cache
/// filled.
#[test]
fn cds_test_titles_round_trip_and_throughput() {
    let path = r3_data::shared_data_dir()
        .expect("the shared data folder")
        .join("test")
        .join("CDs_and_Vinyl_5_2015-10-2018-11.csv");
    let titles: Vec<String> = r3_data::read_split(&path).unwrap().into_iter().map(|r| r.item_title).collect();
    assert_eq!(titles.len(), 6157);
    for model in ["smollm2-135m", "qwen2.5-coder-0.5b"] {
        let start = std::time::Instant::now();
        let gguf = Gguf::open(&model_path(model)).unwrap();
        let tok = Tokenizer::from_bpe_vocab(bpe_vocab(&gguf).unwrap()).unwrap();
        let built = start.elapsed().as_secs_f64();
        let timed = || {
            let start = std::time::Instant::now();
            let encoded: Vec<Vec<u32>> = titles.iter().map(|t| tok.encode(t)).collect();
            (start.elapsed().as_secs_f64(), encoded)
        };
        let (cold, encoded) = timed();
        let warm = (0..3).map(|_| timed().0).fold(f64::INFINITY, f64::min);
        let n: usize = encoded.iter().map(Vec::len).sum();
        eprintln!(
            "{model}: header read and tokenizer built in {built:.2} s; {} titles, {n} tokens: cold {:.0} tokens/s, \
             warm {:.0} tokens/s ({:.0} titles/s)",
            titles.len(),
            n as f64 / cold,
            n as f64 / warm,
            titles.len() as f64 / warm
        );
        for (t, ids) in titles.iter().zip(&encoded) {
            assert_eq!(&tok.decode(ids), t, "{model}: decode(encode({t:?}))");
        }
    }
}
