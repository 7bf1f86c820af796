//! The batch layout of encoded samples: [`SftBatch`] (prompts left-padded, thoughts aligned, targets
//! right-padded) and its [`FullSequences`] for a forward over the whole sequence.

use super::EncodedSample;

/// A batch laid out for the two-pass forward with a shared prefix: the prompts are left-padded to one width `P`
/// (so every row's thought tokens sit at the same columns `P..P+N`), the targets are right-padded to `T`.
///
/// Row `b` of the full sequence is `[pad.., prompt, thought × N, target, pad..]`; position `P + N + j` holds
/// target token `j`, which the model predicts from position `P + N + j − 1`.
///
/// A batch of samples without targets has `T = 0`: that is the decoding batch (prompt + thoughts, left-padded), so
/// there is no separate prompt-batch type; [`SftBatch::without_targets`] drops the targets of a training batch.
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
    /// The padding id.
    pub pad_id: u32,
}

/// The full sequences of an [`SftBatch`], `[B, L]` row-major with `L = P + N + T`, for a forward over the whole
/// sequence (no shared prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullSequences {
    /// The number of rows `B`.
    pub rows: usize,
    /// The sequence length `L = P + N + T`.
    pub len: usize,
    /// `[B, L]`: `[pad.., prompt, thought × N, target, pad..]`.
    pub ids: Vec<u32>,
    /// `[B, L]`, `true` for real tokens (prompt, thoughts, target): the attention mask.
    pub real: Vec<bool>,
    /// `[B, L]`, already shifted: `label_ids[b, p] = ids[b, p + 1]` (the padding id in the last column), the token
    /// the logits at position `p` are scored against.
    pub label_ids: Vec<u32>,
    /// `[B, L]`, `true` where `label_ids[b, p]` is a real target token: the positions the SFT loss counts (for
    /// target token `j`, position `P + N + j − 1`).
    pub label_mask: Vec<bool>,
}

impl SftBatch {
    /// Lays `samples` out: prompts left-padded to the longest prompt `P`, then `n_thought` columns of
    /// `thought_id`, then targets right-padded to the longest target `T` (`T = 0` when no sample has a target).
    ///
    /// # Panics
    /// On caller bugs: no samples; a sample whose `n_thought` differs from `n_thought`; an empty prompt; some
    /// samples with a target and some without.
    pub fn new(samples: &[EncodedSample], n_thought: usize, thought_id: u32, pad_id: u32) -> SftBatch {
        assert!(!samples.is_empty(), "an SftBatch needs at least one sample");
        let with_target = samples.iter().filter(|s| !s.target_ids.is_empty()).count();
        assert!(
            with_target == 0 || with_target == samples.len(),
            "{with_target} of {} samples have a target: encode all with or all without their targets",
            samples.len()
        );
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(s.n_thought, n_thought, "sample {i} has {} thought tokens, the batch {n_thought}", s.n_thought);
            assert!(!s.prompt_ids.is_empty(), "sample {i} has an empty prompt");
        }
        let rows = samples.len();
        let prompt_len = samples.iter().map(|s| s.prompt_ids.len()).max().unwrap_or(0);
        let target_len = samples.iter().map(|s| s.target_ids.len()).max().unwrap_or(0);
        let mut batch = SftBatch {
            rows,
            prompt_len,
            prompt_ids: Vec::with_capacity(rows * prompt_len),
            prompt_real: Vec::with_capacity(rows * prompt_len),
            n_thought,
            thought_id,
            target_len,
            target_ids: Vec::with_capacity(rows * target_len),
            target_real: Vec::with_capacity(rows * target_len),
            pad_id,
        };
        for s in samples {
            let pad = prompt_len - s.prompt_ids.len();
            batch.prompt_ids.extend(std::iter::repeat_n(pad_id, pad).chain(s.prompt_ids.iter().copied()));
            batch
                .prompt_real
                .extend(std::iter::repeat_n(false, pad).chain(std::iter::repeat_n(true, s.prompt_ids.len())));
            let pad = target_len - s.target_ids.len();
            batch.target_ids.extend(s.target_ids.iter().copied().chain(std::iter::repeat_n(pad_id, pad)));
            batch
                .target_real
                .extend(std::iter::repeat_n(true, s.target_ids.len()).chain(std::iter::repeat_n(false, pad)));
        }
        batch
    }

    /// The full sequence length `L = P + N + T`.
    pub fn full_len(&self) -> usize {
        self.prompt_len + self.n_thought + self.target_len
    }

    /// The column of the first thought token, `P` (the query of LatentRATT is column `P − 1`).
    pub fn thought_col(&self) -> usize {
        self.prompt_len
    }

    /// The number of real prompt tokens of each row.
    pub fn prompt_lens(&self) -> Vec<usize> {
        self.prompt_real
            .chunks(self.prompt_len.max(1))
            .take(self.rows)
            .map(|r| r.iter().filter(|&&x| x).count())
            .collect()
    }

    /// The number of real target tokens of each row (the `|y|` of the rewards).
    pub fn target_lens(&self) -> Vec<usize> {
        if self.target_len == 0 {
            return vec![0; self.rows];
        }
        self.target_real.chunks(self.target_len).map(|r| r.iter().filter(|&&x| x).count()).collect()
    }

    /// Row `b` back as a sample (real tokens only).
    ///
    /// # Panics
    /// If `b >= rows`.
    pub fn row(&self, b: usize) -> EncodedSample {
        assert!(b < self.rows, "row {b} of a batch of {} rows", self.rows);
        let (p, t) = (self.prompt_len, self.target_len);
        let real = |ids: &[u32], mask: &[bool]| ids.iter().zip(mask).filter(|(_, m)| **m).map(|(i, _)| *i).collect();
        EncodedSample {
            prompt_ids: real(&self.prompt_ids[b * p..(b + 1) * p], &self.prompt_real[b * p..(b + 1) * p]),
            n_thought: self.n_thought,
            target_ids: real(&self.target_ids[b * t..(b + 1) * t], &self.target_real[b * t..(b + 1) * t]),
        }
    }

    /// The rows `rows` (in that order, repeats allowed) as a new batch, re-padded to their own widths `P` and `T`
    /// (micro-batches).
    ///
    /// # Panics
    /// If `rows` is empty or holds an index `>= self.rows`.
    pub fn select_rows(&self, rows: &[usize]) -> SftBatch {
        let samples: Vec<EncodedSample> = rows.iter().map(|&b| self.row(b)).collect();
        SftBatch::new(&samples, self.n_thought, self.thought_id, self.pad_id)
    }

    /// Each row repeated `k` times in place (rows `b·k .. b·k + k` are copies of row `b`): the GRPO groups of `k`
    /// samples per prompt.
    ///
    /// # Panics
    /// If `k == 0`.
    pub fn repeat_rows(&self, k: usize) -> SftBatch {
        assert!(k > 0, "repeat_rows needs k >= 1");
        let rows: Vec<usize> = (0..self.rows).flat_map(|b| std::iter::repeat_n(b, k)).collect();
        self.select_rows(&rows)
    }

    /// The same prompts and thoughts with `T = 0`: the decoding batch.
    pub fn without_targets(&self) -> SftBatch {
        SftBatch { target_len: 0, target_ids: Vec::new(), target_real: Vec::new(), ..self.clone() }
    }

    /// The full sequences `[B, P + N + T]` with their attention mask and shifted labels, for a forward over the
    /// whole sequence.
    pub fn full(&self) -> FullSequences {
        let (p, n, t) = (self.prompt_len, self.n_thought, self.target_len);
        let len = p + n + t;
        let mut out = FullSequences {
            rows: self.rows,
            len,
            ids: Vec::with_capacity(self.rows * len),
            real: Vec::with_capacity(self.rows * len),
            label_ids: Vec::with_capacity(self.rows * len),
            label_mask: Vec::with_capacity(self.rows * len),
        };
        for b in 0..self.rows {
            let row_start = out.ids.len();
            out.ids.extend_from_slice(&self.prompt_ids[b * p..(b + 1) * p]); // [P]
            out.ids.extend(std::iter::repeat_n(self.thought_id, n)); // [N]
            out.ids.extend_from_slice(&self.target_ids[b * t..(b + 1) * t]); // [T]
            out.real.extend_from_slice(&self.prompt_real[b * p..(b + 1) * p]);
            out.real.extend(std::iter::repeat_n(true, n));
            out.real.extend_from_slice(&self.target_real[b * t..(b + 1) * t]);
            // Label at position q is the token at q + 1; only target tokens are labels.
            out.label_ids.extend_from_slice(&out.ids[row_start + 1..row_start + len]);
            out.label_ids.push(self.pad_id);
            // Positions 0 .. P+N-1 predict prompt and thought tokens, P+N-1+j predicts target token j, the last
            // position predicts nothing (P >= 1 because prompts are never empty).
            out.label_mask.extend(std::iter::repeat_n(false, p + n - 1));
            out.label_mask.extend_from_slice(&self.target_real[b * t..(b + 1) * t]);
            out.label_mask.push(false);
        }
        out
    }
}
