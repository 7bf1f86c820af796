//! The tokenizer metadata of a GGUF file as an [`r3_data::BpeVocab`], from which `r3-data` builds the tokenizer.
//!
//! The model crates never tokenise text (docs/conventions.md §10): this module only copies the `tokenizer.ggml.*` arrays and
//! ids out of the header, and `r3_data::Tokenizer::from_bpe_vocab` checks and uses them.

use r3_data::{BpeVocab, PreTokenizerKind};

use crate::error::{Error, Result};
use crate::gguf::{Gguf, Value};

/// The tokenizer model this crate reads: byte-level BPE (`gpt2` in GGUF terms).
const BYTE_LEVEL_BPE: &str = "gpt2";

/// Reads the byte-level BPE vocabulary of `gguf`: `tokenizer.ggml.model` (must be `gpt2`), `pre`, `tokens`,
/// `token_type` (optional: all normal when absent), `merges`, `bos_token_id`, `eos_token_id`, `padding_token_id`
/// (each optional) and `add_bos_token` (optional, default false).
///
/// Errors are [`Error::Metadata`] naming the key that is missing, mistyped or unsupported.
pub fn bpe_vocab(gguf: &Gguf) -> Result<BpeVocab> {
    let meta_err = |key: &str, message: String| Error::Metadata { path: gguf.path.clone(), key: key.into(), message };

    let model = gguf.get_str("tokenizer.ggml.model")?;
    if model != BYTE_LEVEL_BPE {
        return Err(meta_err(
            "tokenizer.ggml.model",
            format!(
                "`{model}` is not supported: only byte-level BPE (`{BYTE_LEVEL_BPE}`) is; load the model's Hugging Face \
                 tokenizer.json instead"
            ),
        ));
    }
    let pre_key = "tokenizer.ggml.pre";
    let pre = PreTokenizerKind::from_gguf_name(gguf.get_str(pre_key)?).map_err(|e| meta_err(pre_key, e.to_string()))?;
    let tokens: Vec<String> = gguf.get_strings("tokenizer.ggml.tokens")?.into_iter().map(str::to_owned).collect();
    let merges: Vec<String> = gguf.get_strings("tokenizer.ggml.merges")?.into_iter().map(str::to_owned).collect();

    let types_key = "tokenizer.ggml.token_type";
    let token_types = match gguf.metadata.get(types_key) {
        None => Vec::new(),
        Some(value) => {
            let arr = value.as_array().ok_or_else(|| meta_err(types_key, "expected an array of integers".into()))?;
            arr.iter()
                .enumerate()
                .map(|(i, v)| match *v {
                    Value::I32(t) => Ok(t),
                    _ => v.as_u64().and_then(|t| i32::try_from(t).ok()).ok_or_else(|| {
                        meta_err(types_key, format!("entry {i} is {v:?}, expected a token type (an integer 0..=6)"))
                    }),
                })
                .collect::<Result<Vec<i32>>>()?
        }
    };

    let optional_id = |key: &str| -> Result<Option<u32>> {
        match gguf.metadata.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .map(Some)
                .ok_or_else(|| meta_err(key, format!("{v:?} is not a token id"))),
        }
    };
    let bos_key = "tokenizer.ggml.add_bos_token";
    let add_bos = match gguf.metadata.get(bos_key) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(meta_err(bos_key, format!("{v:?} is not a bool"))),
    };
    Ok(BpeVocab {
        tokens,
        token_types,
        merges,
        pre,
        bos: optional_id("tokenizer.ggml.bos_token_id")?,
        eos: optional_id("tokenizer.ggml.eos_token_id")?,
        pad: optional_id("tokenizer.ggml.padding_token_id")?,
        add_bos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::write_gguf;

    fn strings(xs: &[&str]) -> Value {
        Value::Array(xs.iter().map(|s| Value::String((*s).into())).collect())
    }

    fn tiny(extra: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
        let mut meta = vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            ("tokenizer.ggml.tokens", strings(&["a", "b", "ab", "<|end|>"])),
            (
                "tokenizer.ggml.token_type",
                Value::Array(vec![Value::I32(1), Value::I32(1), Value::I32(1), Value::I32(3)]),
            ),
            ("tokenizer.ggml.merges", strings(&["a b"])),
            ("tokenizer.ggml.eos_token_id", Value::U32(3)),
        ];
        for (k, v) in extra {
            meta.retain(|(key, _)| *key != k);
            meta.push((k, v));
        }
        meta
    }

    fn read(meta: &[(&str, Value)]) -> Result<BpeVocab> {
        bpe_vocab(&Gguf::parse(&write_gguf(meta, &[], 32)).unwrap())
    }

    #[test]
    fn reads_the_tokenizer_metadata() {
        let v = read(&tiny(vec![])).unwrap();
        assert_eq!(v.tokens, ["a", "b", "ab", "<|end|>"]);
        assert_eq!(v.token_types, [1, 1, 1, 3]);
        assert_eq!(v.merges, ["a b"]);
        assert_eq!(v.pre, PreTokenizerKind::Smollm);
        assert_eq!((v.bos, v.eos, v.pad, v.add_bos), (None, Some(3), None, false));
        let tok = r3_data::Tokenizer::from_bpe_vocab(v).unwrap();
        assert_eq!(tok.encode("ab<|end|>a"), [2, 3, 0]);
    }

    #[test]
    fn errors_name_the_key() {
        let key_of = |meta: Vec<(&'static str, Value)>| match read(&meta) {
            Err(Error::Metadata { key, message, .. }) => (key, message),
            other => panic!("expected a metadata error, got {other:?}"),
        };
        let (key, msg) = key_of(tiny(vec![("tokenizer.ggml.model", Value::String("llama".into()))]));
        assert_eq!(key, "tokenizer.ggml.model");
        assert!(msg.contains("`llama`"), "{msg}");
        let (key, msg) = key_of(tiny(vec![("tokenizer.ggml.pre", Value::String("deepseek-coder".into()))]));
        assert_eq!(key, "tokenizer.ggml.pre");
        assert!(msg.contains("deepseek-coder") && msg.contains("qwen2"), "{msg}");
        let (key, _) = key_of(tiny(vec![("tokenizer.ggml.merges", Value::U32(1))]));
        assert_eq!(key, "tokenizer.ggml.merges");
        let (key, _) = key_of(tiny(vec![("tokenizer.ggml.bos_token_id", Value::String("1".into()))]));
        assert_eq!(key, "tokenizer.ggml.bos_token_id");
        let (key, _) = key_of(tiny(vec![("tokenizer.ggml.token_type", strings(&["x"]))]));
        assert_eq!(key, "tokenizer.ggml.token_type");
        let (key, msg) = key_of(tiny(vec![("tokenizer.ggml.tokens", Value::Bool(true))]));
        assert_eq!(key, "tokenizer.ggml.tokens");
        assert!(msg.contains("array"), "{msg}");
        let meta: Vec<_> = tiny(vec![]).into_iter().filter(|(k, _)| *k != "tokenizer.ggml.tokens").collect();
        let (key, msg) = key_of(meta);
        assert_eq!((key.as_str(), msg.as_str()), ("tokenizer.ggml.tokens", "missing"));
    }
}
