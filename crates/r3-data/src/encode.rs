//! Prompts, targets and batches of LatentR³ (docs/method.md §2): one [`Interaction`] becomes an
//! [`EncodedSample`] (prompt ids, thought tokens, target ids), and samples become an [`SftBatch`].
//!
//! Only this module turns prompt text into ids; the decoding trie and the SFT labels share
//! [`Encoder::encode_target`].
//!
//! - [`EncoderConfig`] names the [`Template`], the category word ([`category_word`] maps a dataset stem to it), the
//!   number of `<|Thought|>` tokens and the cutoff.
//! - [`Encoder`] owns a copy of the [`Tokenizer`] with `<|Thought|>` added ([`Encoder::thought_id`]) and encodes
//!   samples ([`Encoder::encode_sample`]) and targets ([`Encoder::encode_target`]).
//! - [`SftBatch`] lays samples out for the two-pass forward (prompts left-padded, targets right-padded), gives the
//!   full sequences for a naive forward ([`SftBatch::full`]), repeats rows for GRPO ([`SftBatch::repeat_rows`]) and
//!   selects micro-batches ([`SftBatch::select_rows`]). A decoding batch is an [`SftBatch`] with `T = 0`
//!   ([`SftBatch::without_targets`], or samples encoded without their targets).
//!
//! # The prompt `[CODE]`
//! The pieces are tokenized separately and concatenated, which matters for the ids:
//! `[bos] ++ encode(instruction) ++ encode(user input) ++ [thought × N] ++ encode('"' + title + '"\n') ++ [eos]`.
//!
//! BOS rule: the tokenizer's BOS is prepended whenever the tokenizer defines one ([`Tokenizer::bos_id`]), whatever
//! its `add_bos` flag says — the official code's `Tokenizer.encode(instruction, bos=True)` adds
//! `tokenizer.bos_token_id` when it is not `None`. This reproduces the reference (HF transformers loading the GGUF
//! files) for both checkpoint families: SmolLM2 (`add_bos_token = false`, BOS id 1) gives the golden prompts that
//! start with 1; Qwen2.5 (`add_bos_token = false`, `bos_token_id` 151643 = `<|endoftext|>`, as in
//! `golden/qwen2_0_5b/golden.json`) gets 151643 first. NOTE: the Hugging Face hub copy of Qwen2.5 sets
//! `bos_token: null` in its `tokenizer_config.json`, so the official code run on it adds no BOS; set
//! [`EncoderConfig::bos`] to `false` to reproduce such a run.
//!
//! # Example
//! A tokenizer of the 256 byte symbols only (no merges), so every id is a byte of the text:
//! ```
//! use r3_data::encode::{Encoder, EncoderConfig};
//! use r3_data::{BpeVocab, Interaction, PreTokenizerKind, Tokenizer};
//! # let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
//! # let mut next = 256;
//! # let mut tokens: Vec<String> = (0u32..256)
//! #     .map(|b| {
//! #         let c = if printable(b) { b } else { next += 1; next - 1 };
//! #         char::from_u32(c).unwrap().to_string()
//! #     })
//! #     .collect();
//! // `tokens` holds the GPT-2 byte symbols (`Ġ` for a space) with id = byte; add BOS and EOS.
//! tokens.extend(["<s>".to_string(), "</s>".to_string()]);
//! let mut token_types = vec![1; 256];
//! token_types.extend([3, 3]);
//! let vocab = BpeVocab {
//!     tokens, token_types, merges: vec![], pre: PreTokenizerKind::Smollm,
//!     bos: Some(256), eos: Some(257), pad: None, add_bos: false,
//! };
//! let tok = Tokenizer::from_bpe_vocab(vocab).unwrap();
//! let enc = Encoder::new(tok, EncoderConfig::new("musics")).unwrap();
//! assert_eq!(enc.thought_id(), Some(258)); // the old vocabulary size
//!
//! assert_eq!(enc.encode_target("Help!"), [34, 72, 101, 108, 112, 33, 34, 10, 257]); // `"Help!"\n` + EOS
//! let row = Interaction {
//!     user_id: "u".into(), history_asins: vec!["a".into()], item_asin: "b".into(),
//!     history_item_ids: vec![0], item_id: 1, history_titles: vec!["Abbey Road".into()],
//!     item_title: "Help!".into(), history_ratings: vec![5.0], rating: 5.0,
//!     history_timestamps: vec![1], timestamp: 2,
//! };
//! let s = enc.encode_sample(&row, true).unwrap();
//! assert_eq!(s.prompt_ids[0], 256); // BOS
//! let text = enc.tokenizer().decode(&s.prompt_ids[1..]);
//! assert!(text.starts_with("Below is an instruction"));
//! assert!(text.ends_with("following musicss before: \"Abbey Road\"\n\n### Response: \n"));
//! assert_eq!((s.n_thought, s.target_ids.len()), (1, 9));
//!
//! let batch = enc.batch(&[s.clone(), s]).repeat_rows(4); // 2 prompts × K = 4 samples
//! assert_eq!(batch.rows, 8);
//! let full = batch.full();
//! assert_eq!(full.ids[full.len * 3 + batch.prompt_len], 258); // row 3's thought column
//! ```

use crate::error::{Error, Result};
use crate::layout::Interaction;
use crate::tokenizer::Tokenizer;

mod batch;
pub use batch::{FullSequences, SftBatch};

/// The text of the latent token (docs/method.md §2): a special token appended to the vocabulary.
pub const THOUGHT_TOKEN: &str = "<|Thought|>";

/// Dataset categories (the first part of a dataset stem) and the words the prompt uses for them (docs/method.md §2;
/// Industrial is not in the paper).
pub const CATEGORY_WORDS: [(&str, &str); 6] = [
    ("CDs_and_Vinyl", "musics"),
    ("Toys_and_Games", "toys and games"),
    ("Video_Games", "video games"),
    ("Musical_Instruments", "music instruments"),
    ("Industrial_and_Scientific", "industrial and scientific items"),
    ("Office_Products", "office products"),
];

/// The prompt word of a dataset category or stem: `CDs_and_Vinyl` and `CDs_and_Vinyl_5_2015-10-2018-11` both give
/// `"musics"` (see [`CATEGORY_WORDS`]).
///
/// An unknown category is an [`Error::Setting`] (key `category`) that lists the known ones and says how to give
/// the word explicitly.
pub fn category_word(stem: &str) -> Result<&'static str> {
    CATEGORY_WORDS
        .iter()
        .find(|(cat, _)| stem.strip_prefix(cat).is_some_and(|rest| rest.is_empty() || rest.starts_with('_')))
        .map(|&(_, word)| word)
        .ok_or_else(|| Error::Setting {
            key: "category".into(),
            message: format!(
                "no prompt word for the dataset `{stem}`: known categories are {}; for another category give the \
                 word explicitly (`EncoderConfig::new(\"...\")`, the `category` key of the experiment file)",
                CATEGORY_WORDS.iter().map(|(c, w)| format!("{c} (\"{w}\")")).collect::<Vec<_>>().join(", ")
            ),
        })
}

/// The wording of the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// The official text, typos included ("recetenly", "palyed", "{cat}s") `[CODE]`.
    Paper,
    /// The same prompt with the typos corrected.
    Corrected,
}

/// The preamble shared by both templates `[CODE]`.
const PREAMBLE: &str = "Below is an instruction that describes a task, paired with an input that provides further \
                        context. Write a response that appropriately completes the request. \n\n### Instruction:\n";

impl Template {
    /// The first prompt piece: the preamble and the instruction, ending with a newline.
    ///
    /// - [`Template::Paper`]: `… ### Instruction:\nGiven a list of {cat} the user recetenly enjoy, please write a
    ///   new {cat} that the user may bought\n` `[CODE]`.
    /// - [`Template::Corrected`]: `… ### Instruction:\nGiven a list of {cat} the user recently enjoyed, please
    ///   write a new one that the user may buy\n` (the category words are plural already, so "a new {cat}"
    ///   becomes "a new one").
    pub fn instruction(self, category: &str) -> String {
        match self {
            Template::Paper => format!(
                "{PREAMBLE}Given a list of {category} the user recetenly enjoy, please write a new {category} that \
                 the user may bought\n"
            ),
            Template::Corrected => format!(
                "{PREAMBLE}Given a list of {category} the user recently enjoyed, please write a new one that the \
                 user may buy\n"
            ),
        }
    }

    /// The second prompt piece: the history titles (oldest first), each in double quotes, joined by `", "`.
    ///
    /// - [`Template::Paper`]: `### User Input: \nThe user has palyed the following {cat}s before: "t1", "t2"\n\n###
    ///   Response: \n` `[CODE]`.
    /// - [`Template::Corrected`]: the same with "played" and "{cat}" (the word is plural already).
    pub fn user_input(self, category: &str, history_titles: &[String]) -> String {
        let mut history = String::new();
        for (i, t) in history_titles.iter().enumerate() {
            if i > 0 {
                history.push_str(", ");
            }
            history.push('"');
            history.push_str(t);
            history.push('"');
        }
        let intro = match self {
            Template::Paper => format!("The user has palyed the following {category}s before: "),
            Template::Corrected => format!("The user has played the following {category} before: "),
        };
        format!("### User Input: \n{intro}{history}\n\n### Response: \n")
    }
}

/// What an [`Encoder`] produces.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// (string) The prompt wording, `paper` or `corrected`. Default: `paper` `[CODE]`.
    #[serde(default = "default_template")]
    pub template: Template,
    /// (string) The category WORD used in the prompt, e.g. `musics` (see [`category_word`]).
    pub category: String,
    /// (int) The number of `<|Thought|>` tokens after the prompt: 0 for BIGRec, 1 for LatentR³ `[CODE]`; the paper's
    /// reasoning-length study uses more. Default: 1.
    #[serde(default = "default_n_thought")]
    pub n_thought: usize,
    /// (int) The longest sequence (prompt + thoughts + target) in tokens; longer ones lose tokens from the start
    /// of the prompt `[CODE: cutoff_len 512, left truncation]`. Default: 512.
    #[serde(default = "default_cutoff")]
    pub cutoff: usize,
    /// (bool) Whether to put the tokenizer's BOS first when it defines one (see the module docs). Default: true
    /// `[CODE]`.
    #[serde(default = "default_bos")]
    pub bos: bool,
}

fn default_template() -> Template {
    Template::Paper
}
fn default_n_thought() -> usize {
    1
}
fn default_cutoff() -> usize {
    512
}
fn default_bos() -> bool {
    true
}

impl EncoderConfig {
    /// The defaults (paper template, one thought token, cutoff 512, BOS when defined) for the category word
    /// `category`.
    pub fn new(category: impl Into<String>) -> Self {
        EncoderConfig {
            template: default_template(),
            category: category.into(),
            n_thought: default_n_thought(),
            cutoff: default_cutoff(),
            bos: default_bos(),
        }
    }

    /// The defaults for a dataset stem or category such as `CDs_and_Vinyl_5_2015-10-2018-11` (word from
    /// [`category_word`]).
    pub fn for_dataset(stem: &str) -> Result<Self> {
        Ok(Self::new(category_word(stem)?))
    }

    /// Sets [`EncoderConfig::template`].
    pub fn with_template(mut self, template: Template) -> Self {
        self.template = template;
        self
    }

    /// Sets [`EncoderConfig::n_thought`].
    pub fn with_n_thought(mut self, n_thought: usize) -> Self {
        self.n_thought = n_thought;
        self
    }

    /// Sets [`EncoderConfig::cutoff`].
    pub fn with_cutoff(mut self, cutoff: usize) -> Self {
        self.cutoff = cutoff;
        self
    }

    /// Sets [`EncoderConfig::bos`].
    pub fn with_bos(mut self, bos: bool) -> Self {
        self.bos = bos;
        self
    }

    /// Checks the settings: a non-empty category word and a cutoff that leaves room for a prompt token and the
    /// thought tokens.
    pub fn check(&self) -> Result<()> {
        if self.category.trim().is_empty() {
            return Err(Error::Setting {
                key: "category".into(),
                message: "the category word is empty: give the word the prompt uses, e.g. `musics` for CDs (see \
                          r3_data::encode::CATEGORY_WORDS)"
                    .into(),
            });
        }
        if self.cutoff <= self.n_thought + 1 {
            return Err(Error::Setting {
                key: "cutoff".into(),
                message: format!(
                    "cutoff {} leaves no room for a prompt token, {} thought token(s) and a target token: use the \
                     official 512",
                    self.cutoff, self.n_thought
                ),
            });
        }
        Ok(())
    }
}

/// Turns interactions into ids: the only place where prompt and target text become tokens.
#[derive(Clone, Debug)]
pub struct Encoder {
    tokenizer: Tokenizer,
    config: EncoderConfig,
    thought: Option<u32>,
    bos: Option<u32>,
    eos: u32,
    pad: u32,
    instruction_ids: Vec<u32>,
}

impl Encoder {
    /// Builds the encoder: checks the config, adds `<|Thought|>` to the tokenizer copy when `n_thought > 0` (id =
    /// the old vocabulary size: 49152 for SmolLM2), and encodes the instruction once (it does not depend on the
    /// sample).
    ///
    /// Errors: a bad config ([`EncoderConfig::check`]); a tokenizer without EOS (the targets end with it).
    pub fn new(mut tokenizer: Tokenizer, config: EncoderConfig) -> Result<Self> {
        config.check()?;
        let eos = tokenizer.eos_id().ok_or_else(|| Error::Tokenizer {
            path: None,
            message: "the tokenizer has no EOS id, which every LatentR³ target ends with: use the model's tokenizer \
                      (GGUF `tokenizer.ggml.eos_token_id`, or `eos_token` in tokenizer_config.json)"
                .into(),
            source: None,
        })?;
        let thought = (config.n_thought > 0).then(|| tokenizer.add_special_token(THOUGHT_TOKEN));
        let bos = tokenizer.bos_id().filter(|_| config.bos);
        let pad = tokenizer.pad_id().unwrap_or(eos);
        let instruction_ids = tokenizer.try_encode(&config.template.instruction(&config.category))?;
        Ok(Encoder { tokenizer, config, thought, bos, eos, pad, instruction_ids })
    }

    /// The settings.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The tokenizer, with `<|Thought|>` when `n_thought > 0`; its [`Tokenizer::vocab_size`] is the number of
    /// embedding rows the model needs.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The id of `<|Thought|>`, when `n_thought > 0`: the vocabulary size before it was added, so the model's
    /// embedding gains one row at the end.
    pub fn thought_id(&self) -> Option<u32> {
        self.thought
    }

    /// The number of thought tokens per sample.
    pub fn n_thought(&self) -> usize {
        self.config.n_thought
    }

    /// The BOS put first in every prompt, if any (see the module docs for the rule).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The EOS that ends every target.
    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// The padding id of batches: the tokenizer's pad id, else EOS.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// The target ids of a title: `encode('"' + title + '"\n') + [eos]` (docs/method.md §2). The SFT labels, the reward
    /// targets and the decoding trie all call this one function.
    pub fn encode_target(&self, title: &str) -> Vec<u32> {
        let mut ids = self.tokenizer.encode(&format!("\"{title}\"\n"));
        ids.push(self.eos);
        ids
    }

    /// The prompt ids before truncation: `[bos] ++ encode(instruction) ++ encode(user input)`.
    pub fn encode_prompt(&self, history_titles: &[String]) -> Vec<u32> {
        let input = self.config.template.user_input(&self.config.category, history_titles);
        let input_ids = self.tokenizer.encode(&input);
        let mut ids = Vec::with_capacity(1 + self.instruction_ids.len() + input_ids.len());
        ids.extend(self.bos);
        ids.extend_from_slice(&self.instruction_ids);
        ids.extend(input_ids);
        ids
    }

    /// Encodes one sample: the prompt from `row.history_titles` (oldest first, as in the CSV), `n_thought` thought
    /// tokens, and with `with_target` the target from `row.item_title`.
    ///
    /// Truncation (`[CODE]` `input_ids[-cutoff_len:]` in the SFT dataset): with the target, when prompt + thoughts +
    /// target exceed the cutoff, tokens are dropped from the START of the prompt (BOS first), so the end of the
    /// sequence is kept. Without the target nothing is truncated. NOTE: this follows the official code, whose
    /// evaluation prompts are tokenized whole; on Industrial some prompts exceed 512 tokens (up to about 600 with
    /// SmolLM2), so decoding batches can be longer than the cutoff.
    ///
    /// Errors: [`Error::SampleTooLong`] (naming the title) when the target and the thoughts leave no room for a
    /// single prompt token within the cutoff.
    pub fn encode_sample(&self, row: &Interaction, with_target: bool) -> Result<EncodedSample> {
        let mut prompt_ids = self.encode_prompt(&row.history_titles);
        let n_thought = self.config.n_thought;
        if !with_target {
            return Ok(EncodedSample { prompt_ids, n_thought, target_ids: Vec::new() });
        }
        let target_ids = self.encode_target(&row.item_title);
        let cutoff = self.config.cutoff;
        let fixed = n_thought + target_ids.len();
        if fixed >= cutoff {
            return Err(Error::SampleTooLong {
                user_id: row.user_id.clone(),
                title: row.item_title.clone(),
                target_tokens: target_ids.len(),
                n_thought,
                cutoff,
            });
        }
        let total = prompt_ids.len() + fixed;
        if total > cutoff {
            let drop = total - cutoff;
            tracing::debug!(user = %row.user_id, total, cutoff, drop, "left-truncating a prompt to the cutoff");
            prompt_ids.drain(..drop);
        }
        Ok(EncodedSample { prompt_ids, n_thought, target_ids })
    }

    /// Lays samples out as a batch with this encoder's thought count, thought id and padding id (see
    /// [`SftBatch::new`]).
    ///
    /// # Panics
    /// As [`SftBatch::new`].
    pub fn batch(&self, samples: &[EncodedSample]) -> SftBatch {
        SftBatch::new(samples, self.config.n_thought, self.thought.unwrap_or(self.pad), self.pad)
    }
}

/// One encoded sample: `prompt_ids ++ [thought_id; n_thought] ++ target_ids` is the training sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedSample {
    /// The prompt (BOS when the tokenizer has one, instruction, user input), without the thought tokens.
    pub prompt_ids: Vec<u32>,
    /// The number of `<|Thought|>` tokens after the prompt (0 for BIGRec).
    pub n_thought: usize,
    /// The target `encode('"' + title + '"\n') + [eos]`; empty when the sample was encoded without its target.
    pub target_ids: Vec<u32>,
}

impl EncodedSample {
    /// The length of the whole sequence: prompt + thoughts + target.
    pub fn len(&self) -> usize {
        self.prompt_ids.len() + self.n_thought + self.target_ids.len()
    }

    /// Whether the sequence has no token at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole sequence with `thought_id` in the thought positions.
    pub fn sequence(&self, thought_id: u32) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.len());
        ids.extend_from_slice(&self.prompt_ids);
        ids.extend(std::iter::repeat_n(thought_id, self.n_thought));
        ids.extend_from_slice(&self.target_ids);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_words_match_stems_and_categories() {
        assert_eq!(category_word("CDs_and_Vinyl_5_2015-10-2018-11").unwrap(), "musics");
        assert_eq!(category_word("Industrial_and_Scientific").unwrap(), "industrial and scientific items");
        assert!(category_word("CDs_and_Vinylx").is_err());
    }
}
