//! The two-pass latent model of LatentR³ (docs/method.md §3; arXiv 2505.19092 §3.2, Eq. (2)–(4)).
//!
//! Pass 1 runs the backbone over the prompt `x` and LatentRATT turns its final hidden states `H` into the latent
//! `r`; pass 2 feeds `r` in place of the `<|Thought|>` embedding and scores the target `y`:
//! `log P(y | x, r) = Σ_i log π(y_i | x, r, y_<i)`.
//!
//! Attention is causal, so pass 2's positions before the thought token equal pass 1's: [`LatentModel::prefix`]
//! runs the prompt once and keeps its [`KvCache`], and [`LatentModel::target_logp`] runs only
//! `[r_1..r_N, y_0..y_{T−2}]` over that cache, with logits only where they predict target tokens. The official
//! code instead runs the whole sequence twice; [`LatentModel::naive_forward`] does exactly that and serves as the
//! reference of the tests.
//!
//! NOTE: positions. The official code pads training batches on the right and decoding batches on the left, and
//! its pass 1 calls the backbone without `position_ids`, so a left-padded row there sees RoPE positions shifted
//! by its padding length (in the backbone and in LatentRATT alike). Here every row's positions count from its
//! first real token, as `transformers`' `generate` derives them. RoPE attention depends only on differences of
//! positions, so both give the same function up to rounding; ours makes a left-padded row exactly its
//! unpadded self (tested), and matches the golden, which ran unpadded sequences, on a left-padded batch.
//!
//! The same API covers the baselines: `n_latent = 0` is BIGRec (prompt + target, no thought token), and a model
//! without LatentRATT uses the last position's final hidden state as the latent (the "w/o LatentRATT" ablation,
//! Coconut-style).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};
use r3_backbone::{Backbone, HiddenInput, KvCache, Rows};
use r3_data::SftBatch;

use crate::ratt::{LatentRatt, LatentRattConfig};
use crate::thought::append_thought_rows;

/// Configuration of [`LatentModel`].
#[derive(Config, Debug)]
pub struct LatentModelConfig {
    /// The number of latent tokens N. `[CODE]` 1 (the official code implements only N = 1); `[PAPER]` the
    /// reasoning-length study varies it; 0 is BIGRec (no thought token).
    #[config(default = 1)]
    pub n_latent: usize,
    /// LatentRATT's settings (its `d_model` must be the backbone's hidden size); `None` is the "w/o LatentRATT"
    /// ablation: the last position's final hidden state is the latent.
    pub ratt: Option<LatentRattConfig>,
}

impl LatentModelConfig {
    /// Wraps a pretrained backbone: appends one `<|Thought|>` row to its vocabulary (when `n_latent > 0`, see
    /// [`append_thought_rows`]) and creates a randomly initialised LatentRATT on `device`.
    ///
    /// To resume from a checkpoint whose backbone already has the thought row, use [`LatentModel::new`].
    ///
    /// # Panics
    /// When LatentRATT's width differs from the backbone's or its configuration is invalid.
    pub fn init(&self, backbone: Backbone, device: &Device) -> LatentModel {
        let (backbone, thought_id) = if self.n_latent > 0 {
            append_thought_rows(backbone, 1)
        } else {
            let vocab = backbone.vocab_size();
            (backbone, vocab)
        };
        let ratt = self.ratt.as_ref().map(|c| {
            assert_eq!(c.d_model, backbone.hidden_size(), "LatentRATT d_model must be the backbone's hidden size");
            c.init(device)
        });
        LatentModel::new(backbone, ratt, thought_id, self.n_latent)
    }
}

/// The backbone, LatentRATT, the thought token's id and the number of latent tokens.
#[derive(Module, Debug)]
pub struct LatentModel {
    /// The decoder (its vocabulary includes the `<|Thought|>` row when `n_latent > 0`).
    pub backbone: Backbone,
    /// LatentRATT; `None` for the "w/o LatentRATT" ablation.
    pub ratt: Option<LatentRatt>,
    /// The id of `<|Thought|>` (the last vocabulary row; unused when `n_latent = 0`).
    pub thought_id: usize,
    /// The number of latent tokens N.
    pub n_latent: usize,
}

/// The prompt's pass-1 results, shared by every continuation of the same rows.
#[derive(Clone, Debug)]
pub struct Prefix {
    /// The KV cache of the prompt columns only (`B` rows of `P` positions, left padding marked).
    pub cache: KvCache,
    /// `[B, P]`, `true` for real prompt tokens; `None` when no row is padded.
    pub padding: Option<Tensor<2, Bool>>,
    /// The final hidden states `H`: `[B, P + N − 1, d]`, the prompt's followed by those of `r_1..r_{N−1}` (for
    /// N = 0, `[B, P, d]`).
    pub hidden: Tensor<3>,
    /// The latents `r_1..r_N`, `[B, N, d]`; `None` when N = 0. Replace them (e.g. by noisy ones for LR-GRPO) with
    /// [`Prefix::with_latents`].
    pub latents: Option<Tensor<3>>,
}

impl Prefix {
    /// The number of rows `B`.
    pub fn rows(&self) -> usize {
        self.hidden.dims()[0]
    }

    /// Repeats every row `k` times consecutively (row `i` becomes rows `i·k .. i·k + k`), to evaluate `k`
    /// latents per prompt (LR-GRPO's samples) after a single pass 1.
    pub fn expand(&self, k: usize) -> Prefix {
        let b = self.rows();
        let indices: Vec<i64> = (0..b as i64).flat_map(|i| std::iter::repeat_n(i, k)).collect();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [b * k]), &self.hidden.device());
        let padding = self.padding.clone().map(|p| select_bool(p, indices.clone()));
        let mut cache = self.cache.select(indices.clone());
        cache.padding = padding.clone();
        Prefix {
            cache,
            padding,
            hidden: self.hidden.clone().select(0, indices.clone()),
            latents: self.latents.clone().map(|l| l.select(0, indices)),
        }
    }

    /// The same prefix with other latents (same shape `[B, N, d]`), e.g. `r + ε`.
    pub fn with_latents(mut self, latents: Tensor<3>) -> Prefix {
        let old = self.latents.as_ref().map(|l| l.dims());
        assert_eq!(old, Some(latents.dims()), "latents {:?} replace latents {old:?}", latents.dims());
        self.latents = Some(latents);
        self
    }
}

/// Rows `indices` of a bool tensor, as a bool tensor.
///
/// NOTE: on flex (burn 0.22.1), `select` on a bool tensor returns a tensor stored as `U8`, which a later `cat`
/// with a native bool tensor rejects (`cat: dtype mismatch: expected U8, got Bool(Native)`); this is what
/// happens to a padded `KvCache::expand`/`select` when the backbone then appends the new tokens' mask. Selecting
/// through an int tensor avoids it.
///
/// # Shapes
/// - mask: `[B, L]`; indices: `[B']`
/// - output: `[B', L]`
fn select_bool(mask: Tensor<2, Bool>, indices: Tensor<1, Int>) -> Tensor<2, Bool> {
    mask.int().select(0, indices).equal_elem(1)
}

/// The target tokens of a batch on the device.
#[derive(Clone, Debug)]
pub struct Targets {
    /// `[B, T]` target ids, right-padded.
    pub ids: Tensor<2, Int>,
    /// `[B, T]`, `true` for real target tokens.
    pub real: Tensor<2, Bool>,
    /// The number of real target tokens.
    pub n_tokens: usize,
}

impl Targets {
    /// The targets of `batch` on `device`.
    pub fn from_batch(batch: &SftBatch, device: &Device) -> Targets {
        let (b, t) = (batch.rows, batch.target_len);
        assert!(t > 0, "the batch has no target columns (target_len = 0)");
        assert_eq!(
            batch.target_ids.len(),
            b * t,
            "target_ids has {} values, not B·T = {b}·{t}",
            batch.target_ids.len()
        );
        assert_eq!(batch.target_real.len(), b * t, "target_real has {} values, not B·T", batch.target_real.len());
        let ids: Vec<i64> = batch.target_ids.iter().map(|&x| i64::from(x)).collect();
        Targets {
            ids: Tensor::from_data(TensorData::new(ids, [b, t]), device),
            real: Tensor::from_data(TensorData::new(batch.target_real.clone(), [b, t]), device),
            n_tokens: batch.target_real.iter().filter(|&&x| x).count(),
        }
    }

    /// Repeats every row `k` times consecutively, matching [`Prefix::expand`].
    pub fn expand(&self, k: usize) -> Targets {
        let b = self.ids.dims()[0];
        let indices: Vec<i64> = (0..b as i64).flat_map(|i| std::iter::repeat_n(i, k)).collect();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [b * k]), &self.ids.device());
        Targets {
            ids: self.ids.clone().select(0, indices.clone()),
            real: select_bool(self.real.clone(), indices),
            n_tokens: self.n_tokens * k,
        }
    }
}

/// The SFT loss of a batch (docs/method.md §4, stage 1: `L = −Σ log P(y_i | x, r, y_<i)`).
#[derive(Clone, Debug)]
pub struct SftLoss {
    /// The mean cross-entropy over the batch's real target tokens, `[1]` (what `transformers` reports).
    pub mean: Tensor<1>,
    /// The summed negative log-likelihood, `[1]`: accumulate micro-batches as Σ NLL / total tokens.
    pub sum: Tensor<1>,
    /// The number of real target tokens.
    pub n_tokens: usize,
}

/// Where decoding continues after the latents: see [`LatentModel::decode_start`].
#[derive(Clone, Debug)]
pub struct DecodeStart {
    /// The cache of the prompt and the latent positions (`B` rows of `P + N` positions).
    pub cache: KvCache,
    /// The final hidden state of the last position (the last latent's, or the prompt's for N = 0), `[B, d]`:
    /// [`Backbone::logits`] of it scores the first generated token.
    pub last_hidden: Tensor<2>,
}

/// The outputs of [`LatentModel::naive_forward`].
#[derive(Clone, Debug)]
pub struct NaiveOutput {
    /// The latents `[B, N, d]`; `None` when N = 0.
    pub latents: Option<Tensor<3>>,
    /// The per-token log-probabilities of the targets `[B, T]` (0 at padding).
    pub target_logp: Tensor<2>,
}

impl LatentModel {
    /// Assembles a model from its parts (e.g. a checkpoint whose vocabulary already has the thought row).
    ///
    /// # Panics
    /// When `n_latent > 0` and `thought_id` is not the last vocabulary row, or LatentRATT's width is not the
    /// backbone's.
    pub fn new(backbone: Backbone, ratt: Option<LatentRatt>, thought_id: usize, n_latent: usize) -> LatentModel {
        if n_latent > 0 {
            assert_eq!(
                thought_id + 1,
                backbone.vocab_size(),
                "the thought id must be the last vocabulary row (append it with append_thought_rows)"
            );
        }
        if let Some(r) = &ratt {
            assert_eq!(r.d_model, backbone.hidden_size(), "LatentRATT width vs the backbone's hidden size");
        }
        LatentModel { backbone, ratt, thought_id, n_latent }
    }

    /// The device of the parameters.
    pub fn device(&self) -> Device {
        self.backbone.embed_tokens.weight.val().device()
    }

    /// Pass 1: the prompt's cache and final hidden states, and the latents `r_1..r_N` with
    /// `r_i = LatentRATT(LLM_{−1}(x, r_1..r_{i−1}))` (docs/method.md §3; N = 1 is the official code).
    ///
    /// The prompt's left padding is masked and positions count from each row's first real token, so a padded
    /// row gives what it gives alone.
    ///
    /// # Shapes
    /// - batch: `B` rows, prompts of width `P`, `N = n_latent` thought columns
    /// - output: cache of `P` positions; hidden `[B, P + N − 1, d]` (`[B, P, d]` for N = 0); latents `[B, N, d]`
    pub fn prefix(&self, batch: &SftBatch) -> Prefix {
        self.check_batch(batch);
        let device = self.device();
        let (b, p) = (batch.rows, batch.prompt_len);
        let ids: Vec<i64> = batch.prompt_ids.iter().map(|&x| i64::from(x)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, p]), &device);
        let padding = batch
            .prompt_real
            .iter()
            .any(|&real| !real)
            .then(|| Tensor::<2, Bool>::from_data(TensorData::new(batch.prompt_real.clone(), [b, p]), &device));
        let mut input = HiddenInput::new(self.backbone.embed(ids));
        input.padding = padding.clone();
        let out = self.backbone.hidden(input);
        let cache = out.cache;
        let mut hidden = out.hidden; // [B, P, d]
        if self.n_latent == 0 {
            return Prefix { cache, padding, hidden, latents: None };
        }
        let d = self.backbone.hidden_size();
        let mut latents = vec![self.latent(hidden.clone(), padding.clone())];
        let mut running = cache.clone();
        let mut running_padding = padding.clone();
        for _ in 1..self.n_latent {
            let last = latents.last().expect("one latent").clone().reshape([b, 1, d]); // [B, 1, d]
            let out = self.backbone.hidden(HiddenInput::new(last).with_cache(Some(running)));
            running = out.cache;
            hidden = Tensor::cat(vec![hidden, out.hidden], 1); // [B, P + i, d]
            running_padding =
                running_padding.map(|p| Tensor::cat(vec![p, Tensor::<2, Bool>::ones([b, 1], &device)], 1)); // [B, P + i]
            latents.push(self.latent(hidden.clone(), running_padding.clone()));
        }
        Prefix { cache, padding, hidden, latents: Some(Tensor::stack(latents, 1)) } // latents [B, N, d]
    }

    /// The targets of `batch` on the model's device.
    pub fn targets(&self, batch: &SftBatch) -> Targets {
        Targets::from_batch(batch, &self.device())
    }

    /// Pass 2: the per-token log-probabilities `log π(y_j | x, r, y_<j)` of the targets, log-softmax over the full
    /// vocabulary (the thought row included), 0 at padding. Runs `[r_1..r_N, y_0..y_{T−2}]` over the prompt's
    /// cache (nothing of the prompt is recomputed) and computes logits only at the `T` positions that predict
    /// target tokens. `prefix` may be expanded ([`Prefix::expand`]) and carry other latents
    /// ([`Prefix::with_latents`]); `targets` must have the same rows.
    ///
    /// # Shapes
    /// - prefix: `B` rows; targets: `[B, T]`
    /// - output: `[B, T]`
    pub fn target_logp(&self, prefix: &Prefix, targets: &Targets) -> Tensor<2> {
        let [b, t] = targets.ids.dims();
        assert_eq!(prefix.rows(), b, "the prefix has {} rows but the targets {b}", prefix.rows());
        let n = self.n_latent;
        assert_eq!(prefix.latents.as_ref().map_or(0, |l| l.dims()[1]), n, "the prefix's latents are not N = {n}");
        let mut inputs = Vec::new();
        if let Some(latents) = &prefix.latents {
            inputs.push(latents.clone()); // [B, N, d]
        }
        if t > 1 {
            // The last target token predicts nothing we score.
            inputs.push(self.backbone.embed(targets.ids.clone().narrow(1, 0, t - 1))); // [B, T − 1, d]
        }
        let p = prefix.cache.len();
        let last_prompt = || prefix.hidden.clone().narrow(1, p - 1, 1); // [B, 1, d]
        let hidden = if inputs.is_empty() {
            last_prompt() // N = 0, T = 1: the prompt's last position predicts the only target token.
        } else {
            let x = Tensor::cat(inputs, 1); // [B, N + T − 1, d]
            // Input y_j is only needed when y_{j+1} is real: mark the rest as (right) padding, which the backbone
            // leaves out of its position-wise layers and which no real position attends to (causal).
            let mut real = vec![targets.real.clone().narrow(1, 1, t - 1)];
            if n > 0 {
                real.insert(0, Tensor::<2, Bool>::ones([b, n], &x.device()));
            }
            let padding = Tensor::cat(real, 1); // [B, N + T − 1]
            let input = HiddenInput::new(x).with_cache(Some(prefix.cache.clone())).with_padding(padding);
            let out = self.backbone.hidden(input);
            if n == 0 {
                Tensor::cat(vec![last_prompt(), out.hidden], 1) // [B, T, d]
            } else {
                out.hidden.narrow(1, n - 1, t) // [B, T, d]
            }
        };
        self.logp_at(hidden, targets)
    }

    /// The start of decoding (beam search, greedy): runs the latents `r_1..r_N` over the prompt's cache and
    /// returns the extended cache with the last final hidden state. Each further token is one
    /// [`Backbone::hidden`] step with this cache, as in plain decoding; `prefix` may be expanded for beams.
    ///
    /// # Shapes
    /// - prefix: `B` rows, cache of `P` positions
    /// - output: cache of `P + N` positions; last_hidden `[B, d]`
    pub fn decode_start(&self, prefix: &Prefix) -> DecodeStart {
        let [b, _, d] = prefix.hidden.dims();
        match &prefix.latents {
            None => {
                let p = prefix.cache.len();
                DecodeStart {
                    cache: prefix.cache.clone(),
                    last_hidden: prefix.hidden.clone().narrow(1, p - 1, 1).reshape([b, d]), // [B, d]
                }
            }
            Some(latents) => {
                let n = latents.dims()[1];
                let out =
                    self.backbone.hidden(HiddenInput::new(latents.clone()).with_cache(Some(prefix.cache.clone())));
                DecodeStart { cache: out.cache, last_hidden: out.hidden.narrow(1, n - 1, 1).reshape([b, d]) } // [B, d]
            }
        }
    }

    /// The SFT loss of `batch`: pass 1, pass 2, and the cross-entropy over all real target tokens.
    ///
    /// # Panics
    /// When the batch has no real target token.
    pub fn sft_loss(&self, batch: &SftBatch) -> SftLoss {
        let prefix = self.prefix(batch);
        let targets = self.targets(batch);
        assert!(targets.n_tokens > 0, "the batch has no real target token");
        let logp = self.target_logp(&prefix, &targets);
        let sum = logp.sum().neg(); // [1]
        let mean = sum.clone().div_scalar(targets.n_tokens as f64);
        SftLoss { mean, sum, n_tokens: targets.n_tokens }
    }

    /// The reference forward, exactly as the official code computes it (for tests): `N + 1` full passes over the
    /// whole sequence `[prompt, thought × N, target]` without a cache; pass `i` replaces the embeddings of the
    /// first `i − 1` thought tokens by `r_1..r_{i−1}` and reads `r_i` from the final hidden states before thought
    /// token `i`; the last pass replaces all `N` and scores the targets.
    ///
    /// # Shapes
    /// - output: latents `[B, N, d]`; target_logp `[B, T]`
    pub fn naive_forward(&self, batch: &SftBatch) -> NaiveOutput {
        self.check_batch(batch);
        let device = self.device();
        let (b, p, n, t) = (batch.rows, batch.prompt_len, self.n_latent, batch.target_len);
        let l = p + n + t;
        let mut ids = Vec::with_capacity(b * l);
        let mut real = Vec::with_capacity(b * l);
        for row in 0..b {
            ids.extend(batch.prompt_ids[row * p..(row + 1) * p].iter().map(|&x| i64::from(x)));
            ids.extend(std::iter::repeat_n(self.thought_id as i64, n));
            ids.extend(batch.target_ids[row * t..(row + 1) * t].iter().map(|&x| i64::from(x)));
            real.extend_from_slice(&batch.prompt_real[row * p..(row + 1) * p]);
            real.extend(std::iter::repeat_n(true, n));
            real.extend_from_slice(&batch.target_real[row * t..(row + 1) * t]);
        }
        let padding =
            real.iter().any(|&x| !x).then(|| Tensor::<2, Bool>::from_data(TensorData::new(real, [b, l]), &device));
        let embeddings = self.backbone.embed(Tensor::from_data(TensorData::new(ids, [b, l]), &device)); // [B, L, d]
        let d = self.backbone.hidden_size();
        let run = |latents: &[Tensor<2>]| {
            // Replace the first latents.len() thought embeddings.
            let mut parts = vec![embeddings.clone().narrow(1, 0, p)];
            parts.extend(latents.iter().map(|r| r.clone().reshape([b, 1, d])));
            parts.push(embeddings.clone().narrow(1, p + latents.len(), l - p - latents.len()));
            let mut input = HiddenInput::new(Tensor::cat(parts, 1)); // [B, L, d]
            input.padding = padding.clone();
            self.backbone.hidden(input).hidden // [B, L, d]
        };
        let mut latents = Vec::with_capacity(n);
        for i in 0..n {
            let hidden = run(&latents).narrow(1, 0, p + i); // [B, P + i, d]
            latents.push(self.latent(hidden, padding.clone().map(|m| m.narrow(1, 0, p + i))));
        }
        let hidden = run(&latents).narrow(1, p + n - 1, t); // [B, T, d]
        let targets = self.targets(batch);
        NaiveOutput { latents: (n > 0).then(|| Tensor::stack(latents, 1)), target_logp: self.logp_at(hidden, &targets) }
    }

    /// The latent from final hidden states whose last position is the query: LatentRATT, or the last hidden
    /// state itself without it.
    ///
    /// # Shapes
    /// - hidden: `[B, L, d]`; padding `[B, L]`
    /// - output: `[B, d]`
    fn latent(&self, hidden: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<2> {
        match &self.ratt {
            Some(ratt) => ratt.forward(hidden, padding),
            None => {
                let [b, l, d] = hidden.dims();
                hidden.narrow(1, l - 1, 1).reshape([b, d]) // [B, d]
            }
        }
    }

    /// The log-probabilities of `targets` from the hidden states that predict them.
    ///
    /// # Shapes
    /// - hidden: `[B, T, d]`
    /// - output: `[B, T]`
    fn logp_at(&self, hidden: Tensor<3>, targets: &Targets) -> Tensor<2> {
        let [b, t, _] = hidden.dims();
        // Logits only at real target positions: the vocabulary-wide matmul is the largest one of pass 2.
        let rows = Rows::from_padding(&targets.real);
        let logits = self.backbone.logits(rows.pack(hidden)); // [rows, V]
        let logits = if logits.dtype() == DType::F32 { logits } else { logits.cast(DType::F32) };
        let n = rows.count();
        let logp = log_softmax(logits, 1).gather(1, rows.pack_ids(targets.ids.clone()).reshape([n, 1])); // [rows, 1]
        rows.unpack(logp).reshape([b, t]).mask_fill(targets.real.clone().bool_not(), 0.0) // [B, T]
    }

    /// Checks the batch's layout against the model (a mismatch is a bug in the caller).
    fn check_batch(&self, batch: &SftBatch) {
        let (b, p) = (batch.rows, batch.prompt_len);
        assert!(b > 0 && p > 0, "empty batch: {b} rows, prompt width {p}");
        assert_eq!(
            batch.prompt_ids.len(),
            b * p,
            "prompt_ids has {} values, not B·P = {b}·{p}",
            batch.prompt_ids.len()
        );
        assert_eq!(batch.prompt_real.len(), b * p, "prompt_real has {} values, not B·P", batch.prompt_real.len());
        assert_eq!(
            batch.n_thought, self.n_latent,
            "the batch has {} thought tokens, the model N = {}",
            batch.n_thought, self.n_latent
        );
        if self.n_latent > 0 {
            assert_eq!(batch.thought_id as usize, self.thought_id, "the batch's thought id is not the model's");
        }
        for row in batch.prompt_real.chunks(p) {
            let first = row.iter().position(|&x| x).expect("every prompt has at least one real token");
            assert!(row[first..].iter().all(|&x| x), "prompts must be left-padded: {row:?}");
        }
    }
}

#[cfg(test)]
mod tests;
