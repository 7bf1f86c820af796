//! Prompts, targets and batches of LatentR³ (PAPER.md §2): one [`Interaction`](crate::Interaction) becomes an
//! [`EncodedSample`] (prompt ids, thought tokens, target ids), and samples become an [`SftBatch`].
//!
//! Only this module turns prompt text into ids; the decoding trie and the SFT labels share
//! [`Encoder::encode_target`].

/// The wording of the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// The official text, typos included ("recetenly", "palyed", "{cat}s") [CODE].
    Paper,
    /// The same prompt with the typos corrected.
    Corrected,
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

/// A batch laid out for the two-pass forward with a shared prefix: the prompts are left-padded to one width `P`
/// (so every row's thought tokens sit at the same columns `P..P+N`), the targets are right-padded to `T`.
///
/// Row `b` of the full sequence is `[pad.., prompt, thought × N, target, pad..]`; position `P + N + j` holds
/// target token `j`, which the model predicts from position `P + N + j − 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftBatch {
    /// The number of rows `B`.
    pub rows: usize,
    /// The prompt width `P` (the longest prompt of the batch).
    pub prompt_len: usize,
    /// `[B, P]` row-major, left-padded with the padding id.
    pub prompt_ids: Vec<u32>,
    /// `[B, P]`, `true` for real prompt tokens.
    pub prompt_real: Vec<bool>,
    /// The number of thought tokens `N` of every row.
    pub n_thought: usize,
    /// The id of `<|Thought|>` (meaningful when `n_thought > 0`).
    pub thought_id: u32,
    /// The target width `T` (the longest target of the batch).
    pub target_len: usize,
    /// `[B, T]` row-major, right-padded with the padding id.
    pub target_ids: Vec<u32>,
    /// `[B, T]`, `true` for real target tokens (the tokens the loss counts).
    pub target_real: Vec<bool>,
}
