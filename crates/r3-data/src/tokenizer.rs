//! Byte-level BPE tokenizers that give the same ids as Hugging Face on the project's checkpoints.
//!
//! A [`Tokenizer`] wraps a [`tokenizers::Tokenizer`] (the Rust core of HF `tokenizers`) and is built either
//!
//! - from a [`BpeVocab`]: the tokenizer metadata of a GGUF file (`tokenizer.ggml.tokens`, `token_type`, `merges`,
//!   `pre`, special ids), which `r3-backbone` reads and hands over as plain data, or
//! - from a Hugging Face `tokenizer.json` ([`Tokenizer::from_file`]), with the special ids taken from the
//!   neighbouring `tokenizer_config.json` / `config.json`.
//!
//! [`Tokenizer::save`] writes a `tokenizer.json` that HF `tokenizers` reads back (and [`Tokenizer::save_config`] a
//! `tokenizer_config.json` naming the special tokens), so that a model can be exported as a HF folder.
//!
//! This module is the only place of the workspace that turns text into ids or ids into text (docs/conventions.md §10): the
//! model crates see ids only.
//!
//! The pipelines follow what HF `transformers` builds for the same checkpoints (`convert_slow_tokenizer.py` and the
//! published `tokenizer.json` files) and were checked against the golden ids of `shared/golden/*/golden.json`:
//!
//! | [`PreTokenizerKind`] | normaliser | pre-tokeniser |
//! |---|---|---|
//! | `smollm` | none | `Digits(individual_digits)`, then `ByteLevel(use_regex)` (the GPT-2 split regex) |
//! | `qwen2` | NFC | `Split(`[`QWEN2_SPLIT_REGEX`]`, Isolated)`, then `ByteLevel(use_regex = false)` |
//! | `gpt2` | none | `ByteLevel(use_regex)` |
//! | `llama-bpe` | none | `Split(`[`LLAMA3_SPLIT_REGEX`]`, Isolated)`, then `ByteLevel(use_regex = false)` |
//!
//! Every kind uses a BPE model without unknown token or byte fallback (every byte has a symbol), a `ByteLevel`
//! decoder, and matches control (GGUF token type 3) and user-defined (4) tokens whole before pre-tokenisation.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PostProcessorWrapper};

use crate::error::{Error, Result};
use crate::layout::write_atomic;

mod pretokenizer;
pub use pretokenizer::{LLAMA3_SPLIT_REGEX, PreTokenizerKind, QWEN2_SPLIT_REGEX, byte_level_alphabet};

/// GGUF token types (`tokenizer.ggml.token_type`, llama.cpp `llama_token_type`).
pub mod token_type {
    /// Not set; treated as [`NORMAL`].
    pub const UNDEFINED: i32 = 0;
    /// An ordinary BPE token.
    pub const NORMAL: i32 = 1;
    /// The unknown token (unused by byte-level BPE).
    pub const UNKNOWN: i32 = 2;
    /// A special token such as `<|im_start|>`: matched whole in the text and registered as special.
    pub const CONTROL: i32 = 3;
    /// A token added by the user (such as `<tool_call>`): matched whole in the text, not special.
    pub const USER_DEFINED: i32 = 4;
    /// A placeholder that pads the vocabulary to the embedding size (`[PAD151665]`); never produced by encoding.
    pub const UNUSED: i32 = 5;
    /// A byte token `<0xNN>` (SentencePiece byte fallback; unused by byte-level BPE).
    pub const BYTE: i32 = 6;
}

/// The vocabulary of a byte-level BPE tokenizer as plain data: what a GGUF file stores under `tokenizer.ggml.*`.
#[derive(Debug, Clone, PartialEq)]
pub struct BpeVocab {
    /// Token strings by id, in the byte-level alphabet (`Ġ` for a space).
    pub tokens: Vec<String>,
    /// GGUF token types by id (see [`token_type`]); empty means every token is [`token_type::NORMAL`].
    pub token_types: Vec<i32>,
    /// Merge rules by rank (first = applied first), each two tokens separated by one space (`"Ġ t"`).
    pub merges: Vec<String>,
    /// The pre-tokeniser.
    pub pre: PreTokenizerKind,
    /// The beginning-of-sequence id, if any.
    pub bos: Option<u32>,
    /// The end-of-sequence id, if any.
    pub eos: Option<u32>,
    /// The padding id, if any.
    pub pad: Option<u32>,
    /// Whether the model expects BOS before each sequence (GGUF `tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
}

/// A byte-level BPE tokenizer with its special ids.
///
/// [`Tokenizer::encode`] is HF `tokenizer.encode(text, add_special_tokens=False)`; [`Tokenizer::decode`] is HF
/// `tokenizer.decode(ids)` (special tokens kept). The tokenizer is cheap to share across threads (`Send + Sync`).
///
/// ```
/// use r3_data::{BpeVocab, PreTokenizerKind, Tokenizer};
/// let vocab = BpeVocab {
///     tokens: ["a", "b", "ab", "<|end|>"].map(String::from).to_vec(),
///     token_types: vec![1, 1, 1, 3], // normal, normal, normal, control
///     merges: vec!["a b".into()],
///     pre: PreTokenizerKind::Smollm,
///     bos: None,
///     eos: Some(3),
///     pad: None,
///     add_bos: false,
/// };
/// let mut tok = Tokenizer::from_bpe_vocab(vocab).unwrap();
/// assert_eq!(tok.encode("ab<|end|>a"), [2, 3, 0]);
/// assert_eq!(tok.decode(&[2, 3]), "ab<|end|>");
/// let thought = tok.add_special_token("<|Thought|>");
/// assert_eq!((thought, tok.encode("a<|Thought|>")), (4, vec![0, 4]));
/// ```
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    /// The largest id plus one (model vocabulary and added tokens together).
    vocab_size: usize,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("added_tokens", &self.inner.get_added_vocabulary().len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

/// A [`Error::Tokenizer`] without file.
fn tok_err(message: impl Into<String>, source: Option<tokenizers::Error>) -> Error {
    Error::Tokenizer { path: None, message: message.into(), source }
}

/// Splits a GGUF merge line `"a b"` at its first space after the first character, as llama.cpp does (so that a
/// first part that is itself a space still parses).
fn split_merge(line: &str) -> Option<(&str, &str)> {
    let first_len = line.chars().next()?.len_utf8();
    let pos = first_len + line[first_len..].find(' ')?;
    let (a, b) = (&line[..pos], &line[pos + 1..]);
    (!b.is_empty()).then_some((a, b))
}

impl Tokenizer {
    /// Builds the tokenizer of a GGUF vocabulary, checking every entry.
    ///
    /// Errors name the offending entry: a duplicate token or unknown token type ([`Error::VocabEntry`] with field
    /// `tokens` or `token_types`), a merge line that is not two tokens separated by a space or whose parts or
    /// result are not tokens (field `merges`), a special id out of range ([`Error::Tokenizer`]).
    pub fn from_bpe_vocab(vocab: BpeVocab) -> Result<Self> {
        let BpeVocab { tokens, token_types, merges, pre, bos, eos, pad, add_bos } = vocab;
        if tokens.is_empty() {
            return Err(tok_err("the vocabulary has no tokens", None));
        }
        if !token_types.is_empty() && token_types.len() != tokens.len() {
            return Err(tok_err(
                format!(
                    "{} token types for {} tokens: the two arrays must have one entry per id",
                    token_types.len(),
                    tokens.len()
                ),
                None,
            ));
        }
        let n = u32::try_from(tokens.len()).map_err(|_| tok_err("more than 2^32 tokens", None))?;
        for (index, &t) in token_types.iter().enumerate() {
            if !(token_type::UNDEFINED..=token_type::BYTE).contains(&t) {
                return Err(Error::VocabEntry {
                    field: "token_types",
                    index,
                    message: format!("unknown token type {t} (known: 0 undefined ..= 6 byte)"),
                });
            }
        }
        let mut ids = Vocab::with_capacity(tokens.len());
        for (id, token) in tokens.iter().enumerate() {
            if token.is_empty() {
                return Err(Error::VocabEntry { field: "tokens", index: id, message: "empty token".into() });
            }
            if let Some(first) = ids.insert(token.clone(), id as u32) {
                return Err(Error::VocabEntry {
                    field: "tokens",
                    index: id,
                    message: format!("`{token}` duplicates tokens[{first}]"),
                });
            }
        }
        let mut pairs = Vec::with_capacity(merges.len());
        for (index, line) in merges.iter().enumerate() {
            let bad = |message: String| Error::VocabEntry { field: "merges", index, message };
            let (a, b) =
                split_merge(line).ok_or_else(|| bad(format!("`{line}` is not two tokens separated by one space")))?;
            for part in [a, b] {
                if !ids.contains_key(part) {
                    return Err(bad(format!("`{line}`: `{part}` is not in the vocabulary")));
                }
            }
            if !ids.contains_key(&format!("{a}{b}")) {
                return Err(bad(format!("`{line}`: the merged token `{a}{b}` is not in the vocabulary")));
            }
            pairs.push((a.to_owned(), b.to_owned()));
        }
        for (name, id) in [("bos", bos), ("eos", eos), ("pad", pad)] {
            if let Some(id) = id.filter(|&id| id >= n) {
                return Err(tok_err(format!("{name} id {id} is out of range for {n} tokens"), None));
            }
        }
        if add_bos && bos.is_none() {
            return Err(tok_err("add_bos is set but the vocabulary has no bos id", None));
        }

        let bpe = BPE::builder()
            .vocab_and_merges(ids, pairs)
            .byte_fallback(false)
            .ignore_merges(false)
            .build()
            .map_err(|e| tok_err("cannot build the BPE model", Some(e)))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        if pre == PreTokenizerKind::Qwen2 {
            inner.with_normalizer(Some(NFC)).map_err(|e| tok_err("cannot set the NFC normaliser", Some(e)))?;
        }
        inner.with_pre_tokenizer(Some(pre.pre_tokenizer()?));
        inner.with_decoder(Some(ByteLevel::default()));
        let bos_token = bos.map(|id| tokens[id as usize].clone());
        inner.with_post_processor(Some(post_processor(add_bos.then_some(bos_token.as_deref()).flatten(), bos)?));

        // Control and user-defined tokens are matched whole, before normalisation and pre-tokenisation, as in the
        // `added_tokens` of HF `tokenizer.json` files (`normalized: false`). Their ids stay those of the vocabulary.
        let added = |kind: i32, special: bool| -> Vec<AddedToken> {
            token_types
                .iter()
                .zip(&tokens)
                .filter(|&(&t, _)| t == kind)
                .map(|(_, s)| AddedToken::from(s.clone(), special).normalized(false))
                .collect()
        };
        inner
            .add_special_tokens(added(token_type::CONTROL, true))
            .map_err(|e| tok_err("cannot add the control tokens", Some(e)))?;
        inner
            .add_tokens(added(token_type::USER_DEFINED, false))
            .map_err(|e| tok_err("cannot add the user-defined tokens", Some(e)))?;
        Ok(Tokenizer { inner, bos, eos, pad, add_bos, vocab_size: tokens.len() })
    }

    /// Reads a Hugging Face `tokenizer.json`.
    ///
    /// The special ids come, for each of bos, eos and pad, from the first of: the token named in the neighbouring
    /// `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`: a string or `{"content": ...}`; an explicit
    /// `"bos_token": null` means no BOS); the id in the
    /// neighbouring `config.json` (`bos_token_id`, ...; the first of a list); for bos, the special token the
    /// post-processor puts first; a well-known name (`<|begin_of_text|>`, `<s>`, `<bos>` for bos;
    /// `<|end_of_text|>`, `</s>`, `<eos>` for eos). `add_bos` is `tokenizer_config.json`'s `add_bos_token`, else
    /// whether the post-processor adds a special token first.
    pub fn from_file(path: &Path) -> Result<Self> {
        let file_err =
            |path: &Path, message: String, source| Error::Tokenizer { path: Some(path.to_path_buf()), message, source };
        if !path.is_file() {
            return Err(Error::Missing {
                path: path.to_path_buf(),
                hint: "expected a Hugging Face tokenizer.json".into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| file_err(path, "cannot read the file as a Hugging Face tokenizer.json".into(), Some(e)))?;
        let vocab_size = inner.get_vocab(true).values().max().map_or(0, |&m| m as usize + 1);
        let mut tok = Tokenizer { inner, bos: None, eos: None, pad: None, add_bos: false, vocab_size };

        let dir = path.parent().unwrap_or(Path::new("."));
        let read_json = |name: &str| -> Result<Option<(PathBuf, serde_json::Value)>> {
            let p = dir.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "read", e))?;
            let value =
                serde_json::from_str(&text).map_err(|e| file_err(&p, "not valid JSON".into(), Some(Box::new(e))))?;
            Ok(Some((p, value)))
        };
        let tokenizer_config = read_json("tokenizer_config.json")?;
        let config = read_json("config.json")?;
        let template_first = tok.post_processor_first_special();

        let resolve = |field: &str, well_known: &[&str]| -> Result<Option<u32>> {
            if let Some((p, cfg)) = &tokenizer_config {
                let name = match cfg.get(format!("{field}_token")) {
                    // An explicit `"bos_token": null` means no BOS (Qwen2.5), as `transformers` reads it: the
                    // `bos_token_id` of config.json describes the model, and the prompt encoding puts BOS first
                    // whenever the tokenizer has one. (A null eos still falls back to config.json: the targets
                    // need an EOS.)
                    Some(serde_json::Value::Null) if field == "bos" => return Ok(None),
                    Some(serde_json::Value::String(s)) => Some(s.as_str()),
                    Some(serde_json::Value::Object(o)) => o.get("content").and_then(|c| c.as_str()),
                    _ => None,
                };
                if let Some(name) = name {
                    return tok.token_to_id(name).map(Some).ok_or_else(|| {
                        file_err(p, format!("`{field}_token` is `{name}`, which is not in the vocabulary"), None)
                    });
                }
            }
            if let Some((p, cfg)) = &config {
                let id = match cfg.get(format!("{field}_token_id")) {
                    Some(serde_json::Value::Array(a)) => a.first().and_then(|v| v.as_u64()),
                    Some(v) => v.as_u64(),
                    None => None,
                };
                if let Some(id) = id {
                    return match u32::try_from(id) {
                        Ok(id) if (id as usize) < tok.vocab_size => Ok(Some(id)),
                        _ => Err(file_err(
                            p,
                            format!("`{field}_token_id` {id} is out of range for {} ids", tok.vocab_size),
                            None,
                        )),
                    };
                }
            }
            if field == "bos"
                && let Some(id) = template_first
            {
                return Ok(Some(id));
            }
            Ok(well_known.iter().find_map(|name| tok.token_to_id(name)))
        };
        let bos = resolve("bos", &["<|begin_of_text|>", "<s>", "<bos>"])?;
        let eos = resolve("eos", &["<|end_of_text|>", "</s>", "<eos>"])?;
        let pad = resolve("pad", &[])?;
        let add_bos = tokenizer_config
            .as_ref()
            .and_then(|(_, cfg)| cfg.get("add_bos_token").and_then(|v| v.as_bool()))
            .unwrap_or(template_first.is_some());
        tok.bos = bos;
        tok.eos = eos;
        tok.pad = pad;
        tok.add_bos = add_bos;
        Ok(tok)
    }

    /// The id of the special token that the post-processor puts before the text, if it is a template (possibly
    /// inside a sequence) whose single-sequence form starts with one special token.
    fn post_processor_first_special(&self) -> Option<u32> {
        let value = serde_json::to_value(self.inner.get_post_processor()?).ok()?;
        let template = match value.get("type")?.as_str()? {
            "TemplateProcessing" => value,
            "Sequence" => value
                .get("processors")?
                .as_array()?
                .iter()
                .find(|p| p.get("type").and_then(|t| t.as_str()) == Some("TemplateProcessing"))?
                .clone(),
            _ => return None,
        };
        let name = template.get("single")?.as_array()?.first()?.get("SpecialToken")?.get("id")?.as_str()?;
        let ids = template.get("special_tokens")?.get(name)?.get("ids")?.as_array()?;
        match ids.as_slice() {
            [id] => id.as_u64().and_then(|id| u32::try_from(id).ok()),
            _ => None,
        }
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json` (atomically: a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.inner.to_string(true).map_err(|e| Error::Tokenizer {
            path: Some(path.to_path_buf()),
            message: "cannot serialise the tokenizer".into(),
            source: Some(e),
        })?;
        write_atomic(path, |w: &mut dyn Write| w.write_all(json.as_bytes()))
    }

    /// Writes a Hugging Face `tokenizer_config.json` naming the special tokens, so that [`Tokenizer::from_file`] and
    /// `transformers.AutoTokenizer` find bos, eos, pad and `add_bos_token` again.
    pub fn save_config(&self, path: &Path) -> Result<()> {
        let name = |id: Option<u32>| id.and_then(|id| self.id_to_token(id));
        let config = serde_json::json!({
            "add_bos_token": self.add_bos,
            "add_eos_token": false,
            "bos_token": name(self.bos),
            "eos_token": name(self.eos),
            "pad_token": name(self.pad),
            "clean_up_tokenization_spaces": false,
            "tokenizer_class": "PreTrainedTokenizerFast",
        });
        let text = serde_json::to_string_pretty(&config).map_err(|e| Error::Tokenizer {
            path: Some(path.to_path_buf()),
            message: "cannot serialise the tokenizer config".into(),
            source: Some(Box::new(e)),
        })?;
        write_atomic(path, |w: &mut dyn Write| w.write_all(text.as_bytes()))
    }

    /// The ids of `text`, without special tokens added (HF `encode(text, add_special_tokens=False)`); control
    /// tokens written in the text are matched whole.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.inner.encode_fast(text, false).map_err(|e| tok_err(format!("cannot encode {text:?}"), Some(e)))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// [`Tokenizer::try_encode`] for the tokenizers of this crate, whose steps cannot fail.
    ///
    /// # Panics
    /// If encoding fails, which byte-level BPE (normaliser, split regex, BPE without unknown token) never does; a
    /// `tokenizer.json` with a fallible model (such as WordPiece without an unknown token) should use
    /// [`Tokenizer::try_encode`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.try_encode(text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The text of `ids`, special tokens included (HF `decode(ids)`); ids that are not in the vocabulary (such as
    /// the rows by which a model's embedding exceeds the tokenizer) are skipped, as HF does.
    pub fn try_decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| tok_err(format!("cannot decode {ids:?}"), Some(e)))
    }

    /// [`Tokenizer::try_decode`] for the tokenizers of this crate, whose byte-level decoder cannot fail.
    ///
    /// # Panics
    /// If decoding fails, which the byte-level decoder never does.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.try_decode(ids).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The number of ids: the largest id (of the vocabulary and the added tokens) plus one.
    ///
    /// For a GGUF vocabulary this is the number of tokens, placeholders included (151,936 for Qwen2.5, equal to the
    /// embedding rows); for a HF `tokenizer.json` it is the vocabulary plus the added tokens (151,665 for Qwen2.5,
    /// fewer than the embedding rows).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The beginning-of-sequence id, if any.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id, if any.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// The padding id, if any.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether the model expects [`Tokenizer::bos_id`] before each sequence ([`Tokenizer::encode`] never adds it).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The id of a token string (byte-level form for vocabulary tokens, plain text for added tokens).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Adds a special (control) token matched whole in text, such as LatentR³'s `<|Thought|>`, and returns its id:
    /// [`Tokenizer::vocab_size`] before the call, so the model grows one embedding row at the end. A token that
    /// is already known keeps its id (and becomes special).
    ///
    /// # Panics
    /// If `token` is empty.
    pub fn add_special_token(&mut self, token: &str) -> u32 {
        assert!(!token.is_empty(), "a special token cannot be empty");
        let id = self.token_to_id(token).unwrap_or(self.vocab_size as u32);
        // Adding a non-normalised token can only fail in the normaliser, which is not run for it.
        let added = self.inner.add_special_tokens([AddedToken::from(token, true).normalized(false)]);
        added.unwrap_or_else(|e| panic!("adding the special token {token:?}: {e}"));
        let got = self.token_to_id(token);
        assert_eq!(got, Some(id), "the special token {token:?} got id {got:?}, expected {id}");
        self.vocab_size = self.vocab_size.max(id as usize + 1);
        id
    }
}

/// The post-processor: a template that puts `bos` first when the model wants it, else HF's byte-level one (which
/// only adjusts offsets).
fn post_processor(bos_token: Option<&str>, bos: Option<u32>) -> Result<PostProcessorWrapper> {
    match (bos_token, bos) {
        (Some(token), Some(id)) => {
            let err = |e: String| tok_err(format!("cannot build a template with bos `{token}`: {e}"), None);
            let pair_bos = format!("{token}:1");
            let template = TemplateProcessing::builder()
                .try_single(vec![token, "$A:0"])
                .map_err(err)?
                .try_pair(vec![token, "$A:0", pair_bos.as_str(), "$B:1"])
                .map_err(err)?
                .special_tokens(vec![(token, id)])
                .build()
                .map_err(|e| err(e.to_string()))?;
            Ok(template.into())
        }
        _ => Ok(ByteLevel::default().trim_offsets(false).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_lines_split_like_llama_cpp() {
        assert_eq!(split_merge("Ġ t"), Some(("Ġ", "t")));
        assert_eq!(split_merge("  x"), Some((" ", "x")));
        assert_eq!(split_merge("ab"), None);
        assert_eq!(split_merge("a "), None);
        assert_eq!(split_merge(""), None);
    }

    #[test]
    fn pre_tokenizer_names_round_trip() {
        for kind in PreTokenizerKind::ALL {
            assert_eq!(kind.gguf_name().parse::<PreTokenizerKind>().unwrap(), kind);
            kind.pre_tokenizer().unwrap();
        }
    }
}
