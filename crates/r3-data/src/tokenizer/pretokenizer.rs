//! The pre-tokenizers: how text is split into words before BPE (the GGUF `tokenizer.ggml.pre` value), and the
//! byte-level alphabet.

use std::fmt;
use std::str::FromStr;

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{Error, Result};

/// The split regex of Qwen2 / Qwen2.5 (HF `Qwen2Converter`; llama.cpp `LLAMA_VOCAB_PRE_TYPE_QWEN2`): like Llama 3's
/// but with single digits (`\p{N}`) instead of runs of up to three.
pub const QWEN2_SPLIT_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex of Llama 3 (`llama-bpe` in GGUF files): digits in runs of up to three.
pub const LLAMA3_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How text is split into words before BPE: the GGUF `tokenizer.ggml.pre` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PreTokenizerKind {
    /// `gpt2`: the GPT-2 byte-level split regex. NOTE: not checked against a reference in this repository.
    Gpt2,
    /// `smollm`: single digits, then the GPT-2 byte-level split (SmolLM / SmolLM2).
    Smollm,
    /// `qwen2`: NFC, then [`QWEN2_SPLIT_REGEX`] (Qwen2, Qwen2.5, Qwen2.5-Coder).
    Qwen2,
    /// `llama-bpe`: [`LLAMA3_SPLIT_REGEX`] (Llama 3). NOTE: not checked against a reference in this repository.
    Llama3,
}

/// GPT-2's byte-to-symbol map (`bytes_to_unicode` of byte-level BPE): entry `b` is the one-character token
/// of byte `b`. Printable bytes map to themselves, the others to U+0100 and up, in byte order. A byte-level
/// vocabulary starts with these 256 tokens (tests and tiny models build their vocabularies from it).
pub fn byte_level_alphabet() -> Vec<String> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut next = 256;
    (0u32..256)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(c).expect("U+0021..U+0143 are characters").to_string()
        })
        .collect()
}

impl PreTokenizerKind {
    /// Every kind, in the order of the table in the module docs.
    pub const ALL: [PreTokenizerKind; 4] =
        [PreTokenizerKind::Smollm, PreTokenizerKind::Qwen2, PreTokenizerKind::Gpt2, PreTokenizerKind::Llama3];

    /// The kind named `name` as in GGUF `tokenizer.ggml.pre` (`smollm`, `qwen2`, `gpt2`, `llama-bpe`).
    pub fn from_gguf_name(name: &str) -> Result<Self> {
        match name {
            "smollm" => Ok(PreTokenizerKind::Smollm),
            "qwen2" => Ok(PreTokenizerKind::Qwen2),
            "gpt2" => Ok(PreTokenizerKind::Gpt2),
            "llama-bpe" => Ok(PreTokenizerKind::Llama3),
            _ => Err(Error::UnknownPreTokenizer {
                name: name.into(),
                hint: format!(
                    "supported: {}; for another model, load its Hugging Face tokenizer.json instead of the GGUF \
                     tokenizer, or add its split regex here (see llama.cpp `llama-vocab.cpp`)",
                    Self::ALL.map(|k| format!("`{}`", k.gguf_name())).join(", ")
                ),
            }),
        }
    }

    /// The GGUF name of the kind.
    pub fn gguf_name(self) -> &'static str {
        match self {
            PreTokenizerKind::Gpt2 => "gpt2",
            PreTokenizerKind::Smollm => "smollm",
            PreTokenizerKind::Qwen2 => "qwen2",
            PreTokenizerKind::Llama3 => "llama-bpe",
        }
    }

    /// The pre-tokeniser of this kind, as in the published HF `tokenizer.json` files.
    pub(super) fn pre_tokenizer(self) -> Result<PreTokenizerWrapper> {
        let byte_level_regex = || PreTokenizerWrapper::from(ByteLevel::new(false, true, true));
        let split = |regex: &str| -> Result<PreTokenizerWrapper> {
            let split = Split::new(SplitPattern::Regex(regex.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| Error::Tokenizer { path: None, message: "bad split regex".into(), source: Some(e) })?;
            Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, false, false).into(),
            ])))
        };
        Ok(match self {
            PreTokenizerKind::Gpt2 => byte_level_regex(),
            PreTokenizerKind::Smollm => {
                PreTokenizerWrapper::Sequence(Sequence::new(vec![Digits::new(true).into(), byte_level_regex()]))
            }
            PreTokenizerKind::Qwen2 => split(QWEN2_SPLIT_REGEX)?,
            PreTokenizerKind::Llama3 => split(LLAMA3_SPLIT_REGEX)?,
        })
    }
}

impl FromStr for PreTokenizerKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_gguf_name(s)
    }
}

impl fmt::Display for PreTokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gguf_name())
    }
}
