//! The tokenizer on handmade byte-level vocabularies: merge ranks, pre-tokenisers, whole-token matching of control
//! and added tokens, `tokenizer.json` round trips and the errors of malformed vocabularies. (The real checkpoints
//! are checked against the HF golden ids in `r3-backbone`'s `tokenizer_golden`.)

use proptest::prelude::*;
use r3_data::tokenizer::token_type;
use r3_data::{BpeVocab, Error, PreTokenizerKind, Tokenizer};

use crate::common::byte_symbols;

/// A vocabulary of the 256 byte symbols, then `extra` (merge results and special tokens, with their types).
fn vocab(pre: PreTokenizerKind, extra: &[(&str, i32)], merges: &[&str]) -> BpeVocab {
    let mut tokens = byte_symbols();
    let mut token_types = vec![token_type::NORMAL; tokens.len()];
    for &(t, ty) in extra {
        tokens.push(t.into());
        token_types.push(ty);
    }
    BpeVocab {
        tokens,
        token_types,
        merges: merges.iter().map(|m| (*m).into()).collect(),
        pre,
        bos: None,
        eos: None,
        pad: None,
        add_bos: false,
    }
}

const N: i32 = token_type::NORMAL;

/// The tokenizer used by most tests: merges `b c`, `a b`, `a bc`, `Ġ a`, and two control tokens and one
/// user-defined token.
fn tiny(pre: PreTokenizerKind) -> Tokenizer {
    let mut v = vocab(
        pre,
        &[
            ("bc", N),
            ("ab", N),
            ("abc", N),
            ("Ġa", N),
            ("<|end|>", token_type::CONTROL),
            ("<|im_start|>", token_type::CONTROL),
            ("<tool>", token_type::USER_DEFINED),
        ],
        &["b c", "a b", "a bc", "Ġ a"],
    );
    v.eos = Some(256 + 4);
    v.bos = Some(256 + 5);
    v.pad = Some(256 + 4);
    Tokenizer::from_bpe_vocab(v).unwrap()
}

/// The id of a single byte in [`vocab`].
fn byte(b: u8) -> u32 {
    b.into()
}

#[test]
fn merges_apply_by_rank() {
    let t = tiny(PreTokenizerKind::Smollm);
    // `b c` (rank 0) before `a b` (rank 1), then `a bc` (rank 2).
    assert_eq!(t.encode("abc"), [258]);
    assert_eq!(t.encode("ab"), [257]);
    // With `a b` first, `abc` can only become `ab` + `c`: no rule merges `ab c`.
    let swapped = vocab(PreTokenizerKind::Smollm, &[("bc", N), ("ab", N), ("abc", N)], &["a b", "b c", "a bc"]);
    let t2 = Tokenizer::from_bpe_vocab(swapped).unwrap();
    assert_eq!(t2.encode("abc"), [257, byte(b'c')]);
    // A space is the byte symbol `Ġ` and merges with the following word.
    assert_eq!(t.encode("abc a"), [258, 259]);
    assert_eq!(t.decode(&[258, 259]), "abc a");
}

#[test]
fn control_and_user_defined_tokens_match_whole() {
    let t = tiny(PreTokenizerKind::Qwen2);
    let (end, start, tool) = (260, 261, 262);
    assert_eq!(t.encode("<|im_start|>abc<|end|>"), [start, 258, end]);
    assert_eq!(t.encode("a<tool>b"), [byte(b'a'), tool, byte(b'b')]);
    // An incomplete control token is ordinary text, byte by byte.
    let partial = t.encode("<|end|");
    assert_eq!(partial.len(), 6);
    assert!(!partial.contains(&end));
    assert_eq!(t.decode(&[start, 258, end]), "<|im_start|>abc<|end|>");
    assert_eq!(t.token_to_id("<|end|>"), Some(end));
    assert_eq!((t.bos_id(), t.eos_id(), t.pad_id(), t.add_bos()), (Some(start), Some(end), Some(end), false));
    assert_eq!(t.vocab_size(), 263);
}

#[test]
fn add_special_token_appends_one_id_matched_whole() {
    let mut t = tiny(PreTokenizerKind::Smollm);
    let before = t.vocab_size();
    let thought = t.add_special_token("<|Thought|>");
    assert_eq!(thought as usize, before, "the new id is the old vocabulary size");
    assert_eq!(t.vocab_size(), before + 1);
    assert_eq!(t.token_to_id("<|Thought|>"), Some(thought));
    let ids = t.encode("abc<|Thought|> a");
    assert_eq!(ids, [258, thought, 259]);
    assert_eq!(t.decode(&ids), "abc<|Thought|> a");
    // Adding it again, or adding a token the vocabulary already has, keeps the id.
    assert_eq!(t.add_special_token("<|Thought|>"), thought);
    assert_eq!(t.add_special_token("<|end|>"), 260);
    assert_eq!(t.vocab_size(), before + 1);
    // It survives a tokenizer.json round trip.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    t.save(&path).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    assert_eq!(back.encode("abc<|Thought|> a"), ids);
    assert_eq!(back.vocab_size(), before + 1);
}

#[test]
fn pre_tokenizers_split_digits_and_normalise_as_their_models() {
    let extra = [("19", N), ("Ã©", N)];
    let merges = ["1 9", "Ã ©"];
    let tok = |pre| Tokenizer::from_bpe_vocab(vocab(pre, &extra, &merges)).unwrap();
    let (d1, d9, d6, d4, nineteen) = (byte(b'1'), byte(b'9'), byte(b'6'), byte(b'4'), 256);
    // SmolLM and Qwen2 split digits one by one, so the merge `1 9` never applies; GPT-2 keeps runs of digits.
    assert_eq!(tok(PreTokenizerKind::Smollm).encode("1964"), [d1, d9, d6, d4]);
    assert_eq!(tok(PreTokenizerKind::Qwen2).encode("1964"), [d1, d9, d6, d4]);
    assert_eq!(tok(PreTokenizerKind::Gpt2).encode("1964"), [nineteen, d6, d4]);
    // Llama 3 splits digits in runs of up to three: `196` + `4`.
    assert_eq!(tok(PreTokenizerKind::Llama3).encode("1964"), [nineteen, d6, d4]);
    // Qwen2 applies NFC: `e` + combining acute becomes `é` (bytes C3 A9, merged by `Ã ©`).
    let decomposed = "e\u{301}";
    assert_eq!(tok(PreTokenizerKind::Qwen2).encode(decomposed), [257]);
    assert_eq!(tok(PreTokenizerKind::Smollm).encode(decomposed), [byte(b'e'), 0xcc, 0x81]);
    assert_eq!(tok(PreTokenizerKind::Smollm).encode("é"), [257]);
}

#[test]
fn tokenizer_json_round_trip_keeps_ids_and_special_tokens() {
    let t = tiny(PreTokenizerKind::Qwen2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    t.save(&path).unwrap();
    let texts = ["abc a", "<|im_start|>a<tool>b<|end|>", "1964 héllo\n\n  x", ""];
    // Without a tokenizer_config.json, none of these names is a well-known bos/eos name.
    let bare = Tokenizer::from_file(&path).unwrap();
    assert_eq!((bare.bos_id(), bare.eos_id(), bare.pad_id(), bare.add_bos()), (None, None, None, false));
    t.save_config(&dir.path().join("tokenizer_config.json")).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    for s in texts {
        assert_eq!(back.encode(s), t.encode(s), "{s:?}");
        assert_eq!(back.decode(&t.encode(s)), s);
    }
    assert_eq!((back.bos_id(), back.eos_id(), back.pad_id(), back.add_bos()), (Some(261), Some(260), Some(260), false));
    assert_eq!(back.vocab_size(), t.vocab_size());
    // `config.json` ids are used when tokenizer_config.json does not name the token.
    std::fs::write(dir.path().join("tokenizer_config.json"), r#"{"eos_token": null}"#).unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"bos_token_id": 261, "eos_token_id": [260, 261]}"#).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    assert_eq!((back.bos_id(), back.eos_id()), (Some(261), Some(260)));
    // An explicit `"bos_token": null` (Qwen2.5 on the hub) means no BOS, whatever config.json says.
    std::fs::write(dir.path().join("tokenizer_config.json"), r#"{"bos_token": null, "eos_token": null}"#).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    assert_eq!((back.bos_id(), back.eos_id()), (None, Some(260)));
}

#[test]
fn add_bos_becomes_a_template_that_from_file_recognises() {
    let mut v = vocab(PreTokenizerKind::Smollm, &[("<s>", token_type::CONTROL)], &[]);
    v.bos = Some(256);
    v.add_bos = true;
    let t = Tokenizer::from_bpe_vocab(v).unwrap();
    assert!(t.add_bos());
    assert_eq!(t.encode("a"), [byte(b'a')], "encode never adds special tokens");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    t.save(&path).unwrap();
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.contains("TemplateProcessing"), "{json}");
    let back = Tokenizer::from_file(&path).unwrap();
    assert_eq!((back.bos_id(), back.add_bos()), (Some(256), true));
}

#[test]
fn malformed_vocabularies_name_the_entry() {
    let entry = |v: BpeVocab| match Tokenizer::from_bpe_vocab(v) {
        Err(Error::VocabEntry { field, index, message }) => (field, index, message),
        other => panic!("expected a vocabulary entry error, got {other:?}"),
    };
    let (f, i, m) = entry(vocab(PreTokenizerKind::Smollm, &[("ab", N)], &["a b", "ab"]));
    assert_eq!((f, i), ("merges", 1));
    assert!(m.contains("`ab`"), "{m}");
    let (f, i, m) = entry(vocab(PreTokenizerKind::Smollm, &[("ab", N)], &["a b", "a zz"]));
    assert_eq!((f, i), ("merges", 1));
    assert!(m.contains("`zz` is not in the vocabulary"), "{m}");
    let (f, i, m) = entry(vocab(PreTokenizerKind::Smollm, &[], &["a b"]));
    assert_eq!((f, i), ("merges", 0));
    assert!(m.contains("merged token `ab`"), "{m}");
    let (f, i, m) = entry(vocab(PreTokenizerKind::Smollm, &[("a", N)], &[]));
    assert_eq!((f, i), ("tokens", 256));
    assert!(m.contains("duplicates tokens[97]"), "{m}");
    let (f, i, _) = entry(vocab(PreTokenizerKind::Smollm, &[("ab", 9)], &[]));
    assert_eq!((f, i), ("token_types", 256));

    let msg = |v: BpeVocab| Tokenizer::from_bpe_vocab(v).unwrap_err().to_string();
    let mut v = vocab(PreTokenizerKind::Smollm, &[], &[]);
    v.eos = Some(256);
    assert!(msg(v).contains("eos id 256 is out of range for 256 tokens"));
    let mut v = vocab(PreTokenizerKind::Smollm, &[], &[]);
    v.token_types.pop();
    assert!(msg(v).contains("255 token types for 256 tokens"));
}

#[test]
fn unknown_pre_tokenizer_is_an_error_with_a_hint() {
    let err = PreTokenizerKind::from_gguf_name("deepseek-llm").unwrap_err();
    assert!(matches!(&err, Error::UnknownPreTokenizer { name, .. } if name == "deepseek-llm"));
    let msg = err.to_string();
    assert!(msg.contains("`smollm`") && msg.contains("`qwen2`") && msg.contains("tokenizer.json"), "{msg}");
    assert_eq!("qwen2".parse::<PreTokenizerKind>().unwrap(), PreTokenizerKind::Qwen2);
}

#[test]
fn from_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("tokenizer.json");
    assert!(matches!(Tokenizer::from_file(&missing), Err(Error::Missing { .. })));
    std::fs::write(&missing, "{not json").unwrap();
    let err = Tokenizer::from_file(&missing).unwrap_err();
    assert!(matches!(&err, Error::Tokenizer { path: Some(p), .. } if *p == missing), "{err}");
    tiny(PreTokenizerKind::Smollm).save(&missing).unwrap();
    std::fs::write(dir.path().join("tokenizer_config.json"), r#"{"bos_token": "<nope>"}"#).unwrap();
    let err = Tokenizer::from_file(&missing).unwrap_err().to_string();
    assert!(err.contains("tokenizer_config.json") && err.contains("`<nope>`"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Byte-level BPE is lossless: every string decodes back to itself (to its NFC form for Qwen2, so that one is
    /// tested on ASCII).
    #[test]
    fn decode_inverts_encode(s in any::<String>(), ascii in "[ -~\t\n]{0,40}") {
        let smollm = tiny(PreTokenizerKind::Smollm);
        prop_assert_eq!(smollm.decode(&smollm.encode(&s)), s.clone());
        let gpt2 = tiny(PreTokenizerKind::Gpt2);
        prop_assert_eq!(gpt2.decode(&gpt2.encode(&s)), s);
        let qwen = tiny(PreTokenizerKind::Qwen2);
        prop_assert_eq!(qwen.decode(&qwen.encode(&ascii)), ascii);
    }
}

/// The layout of HF's own Qwen2.5 `tokenizer.json`: the added tokens are not in the BPE model's vocabulary but
/// follow it (model 0..151643, added 151643..151665). They still match whole, and a new special token follows them.
#[test]
fn hf_layout_with_added_tokens_after_the_model_vocabulary() {
    let t = tiny(PreTokenizerKind::Qwen2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    t.save(&path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object_mut().unwrap();
    for added in ["<|end|>", "<|im_start|>", "<tool>"] {
        assert!(vocab.remove(added).is_some());
    }
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    let mut hf = Tokenizer::from_file(&path).unwrap();
    assert_eq!(hf.vocab_size(), 263);
    let text = "<|im_start|>abc a<tool>1964<|end|>";
    assert_eq!(hf.encode(text), t.encode(text));
    assert_eq!(hf.add_special_token("<|Thought|>"), 263);
    assert_eq!(hf.encode("a<|Thought|>"), [byte(b'a'), 263]);
}
