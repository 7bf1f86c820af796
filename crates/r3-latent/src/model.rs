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
mod tests {
    use super::*;
    use crate::test_device;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::{Distribution, Gradients};
    use r3_backbone::{Arch, BackboneConfig};

    const VOCAB: usize = 61;
    const D: usize = 32;

    /// A tiny random Qwen2-style backbone (tied head) or Llama-style one (untied), seeded.
    fn backbone(tied: bool, device: &Device) -> Backbone {
        device.seed(17);
        let arch = if tied { Arch::Qwen2 } else { Arch::Llama };
        BackboneConfig::new(arch, VOCAB, D, 2, 4, 2, 8, 40, 10_000.0, 1e-6, tied, tied, 128).init(device)
    }

    /// A model with a LatentRATT whose weights are large enough for the latent to matter.
    fn model(n_latent: usize, with_ratt: bool, tied: bool, device: &Device) -> LatentModel {
        let ratt = with_ratt.then(|| LatentRattConfig::new(D).with_init_std(0.3));
        let mut m =
            LatentModelConfig::new().with_ratt(ratt).with_n_latent(n_latent).init(backbone(tied, device), device);
        if let Some(r) = m.ratt.as_mut() {
            r.k.bias = Some(Param::from_tensor(Tensor::random([D], Distribution::Normal(0.0, 0.5), device)));
        }
        m
    }

    /// A batch of the given prompts and targets (left-padded prompts, right-padded targets, padding id 0).
    fn batch(prompts: &[&[u32]], targets: &[&[u32]], n_thought: usize) -> SftBatch {
        let p = prompts.iter().map(|x| x.len()).max().unwrap_or(0);
        let t = targets.iter().map(|x| x.len()).max().unwrap_or(0);
        let mut b = SftBatch {
            rows: prompts.len(),
            prompt_len: p,
            prompt_ids: Vec::new(),
            prompt_real: Vec::new(),
            n_thought,
            thought_id: VOCAB as u32,
            target_len: t,
            target_ids: Vec::new(),
            target_real: Vec::new(),
            pad_id: 0,
        };
        for (prompt, target) in prompts.iter().zip(targets) {
            b.prompt_ids.extend(std::iter::repeat_n(0, p - prompt.len()).chain(prompt.iter().copied()));
            b.prompt_real.extend((0..p).map(|i| i >= p - prompt.len()));
            b.target_ids.extend(target.iter().copied().chain(std::iter::repeat_n(0, t - target.len())));
            b.target_real.extend((0..t).map(|i| i < target.len()));
        }
        b
    }

    /// Three rows of different prompt and target lengths (padding on both sides).
    fn three_rows(n_thought: usize) -> SftBatch {
        batch(
            &[&[3, 14, 15, 9, 26], &[5, 35, 8], &[1, 2, 3, 4, 5, 6, 7]],
            &[&[10, 20, 30], &[40], &[11, 12, 13, 60]],
            n_thought,
        )
    }

    fn host<const N: usize>(t: Tensor<N>) -> Vec<f32> {
        t.into_data().try_to_vec().expect("f32 tensor")
    }

    fn maxdiff<const N: usize>(a: Tensor<N>, b: Tensor<N>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// Collects the gradient of every float parameter, in visiting order.
    struct CollectGrads<'a> {
        grads: &'a Gradients,
        out: Vec<Option<Vec<f32>>>,
    }

    impl ModuleVisitor for CollectGrads<'_> {
        fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<N>>) {
            self.out.push(param.val().grad(self.grads).map(host));
        }
    }

    fn all_grads(model: &LatentModel, loss: Tensor<1>) -> Vec<Option<Vec<f32>>> {
        let grads = loss.backward();
        let mut visitor = CollectGrads { grads: &grads, out: Vec::new() };
        model.visit(&mut visitor);
        visitor.out
    }

    /// The naive loss: mean NLL of the naive forward's log-probabilities.
    fn naive_loss(model: &LatentModel, batch: &SftBatch) -> Tensor<1> {
        let n = batch.target_real.iter().filter(|&&x| x).count();
        model.naive_forward(batch).target_logp.sum().neg().div_scalar(n as f64)
    }

    /// The cached forward (prefix once, pass 2 over the cache) equals the official code's two full passes:
    /// log-probs, loss, and the gradients of every parameter, for N = 0, 1, 2, with and without LatentRATT,
    /// tied and untied heads.
    #[test]
    fn cached_forward_equals_naive_two_passes() {
        let device = test_device().autodiff();
        for (n, with_ratt, tied) in
            [(1, true, true), (1, true, false), (2, true, true), (0, false, true), (1, false, false)]
        {
            let m = model(n, with_ratt, tied, &device);
            let b = three_rows(n);
            let prefix = m.prefix(&b);
            let naive = m.naive_forward(&b);
            if n > 0 {
                let d = maxdiff(prefix.latents.clone().expect("latents"), naive.latents.clone().expect("latents"));
                assert!(d < 1e-5, "N={n} ratt={with_ratt}: latents maxdiff {d}");
            }
            let logp = m.target_logp(&prefix, &m.targets(&b));
            let d = maxdiff(logp.clone(), naive.target_logp.clone());
            assert!(d < 1e-5, "N={n} ratt={with_ratt} tied={tied}: target_logp maxdiff {d}");
            let padded: Vec<f32> =
                host(logp).into_iter().zip(&b.target_real).filter(|(_, real)| !**real).map(|(x, _)| x).collect();
            assert!(padded.iter().all(|&x| x == 0.0), "log-probs at padding: {padded:?}");

            let loss = m.sft_loss(&b);
            let naive = naive_loss(&m, &b);
            let (a, c) = (loss.mean.clone().into_scalar::<f32>(), naive.clone().into_scalar::<f32>());
            assert!((a - c).abs() < 1e-5, "N={n}: loss {a} vs naive {c}");
            assert_eq!(loss.n_tokens, 8);
            let sum = loss.sum.clone().into_scalar::<f32>();
            assert!((sum / 8.0 - a).abs() < 1e-6, "sum / tokens {} vs mean {a}", sum / 8.0);

            let cached = all_grads(&m, loss.mean);
            let reference = all_grads(&m, naive);
            assert_eq!(cached.len(), reference.len());
            let mut checked = 0;
            for (i, (g1, g2)) in cached.iter().zip(&reference).enumerate() {
                match (g1, g2) {
                    (Some(g1), Some(g2)) => {
                        let d = g1.iter().zip(g2).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
                        assert!(d < 1e-5, "N={n} ratt={with_ratt} tied={tied}: parameter {i} gradient maxdiff {d}");
                        checked += 1;
                    }
                    (None, None) => {}
                    _ => panic!("N={n}: parameter {i} has a gradient in one forward only"),
                }
            }
            // Every parameter gets a gradient (2 layers, embedding, norm, the untied head, LatentRATT).
            let per_layer = if tied { 12 } else { 9 }; // the tied models here are Qwen2 (q, k, v biases)
            let want = 2 * per_layer + 2 + usize::from(!tied) + if with_ratt { 6 } else { 0 };
            assert_eq!(checked, want, "N={n} ratt={with_ratt} tied={tied}");
        }
    }

    /// A row gives the same latents and log-probs alone and left-padded in a batch with longer prompts.
    #[test]
    fn left_padding_is_invisible() {
        let device = test_device();
        for n in [0, 1, 2] {
            let m = model(n, true, true, &device);
            let both = three_rows(n);
            let alone = batch(&[&[5, 35, 8]], &[&[40, 41]], n);
            let (pb, pa) = (m.prefix(&both), m.prefix(&alone));
            if n > 0 {
                let d =
                    maxdiff(pb.latents.clone().expect("latents").narrow(0, 1, 1), pa.latents.clone().expect("latents"));
                assert!(d < 1e-5, "N={n}: latents maxdiff {d}");
            }
            let lb = m.target_logp(&pb, &m.targets(&both)).narrow(0, 1, 1).narrow(1, 0, 1);
            let la = m.target_logp(&pa, &m.targets(&alone)).narrow(1, 0, 1);
            let d = maxdiff(lb, la);
            assert!(d < 1e-5, "N={n}: target_logp maxdiff {d}");
        }
    }

    /// The final hidden states before the thought token do not depend on what stands at the thought position
    /// (the thought embedding, or any latent), and the prefix's hidden states are exactly those; the positions
    /// after it do depend on it.
    #[test]
    fn positions_before_the_thought_ignore_it() {
        let device = test_device();
        let m = model(1, true, true, &device);
        let b = three_rows(1);
        let (rows, p) = (b.rows, b.prompt_len);
        let ids: Vec<i64> = b.prompt_ids.iter().map(|&x| i64::from(x)).chain([m.thought_id as i64; 3]).collect();
        // [B, P] prompts then one thought column: put the thought column last per row.
        let mut seq = Vec::new();
        for r in 0..rows {
            seq.extend_from_slice(&ids[r * p..(r + 1) * p]);
            seq.push(m.thought_id as i64);
        }
        let _ = ids;
        let emb = m.backbone.embed(Tensor::from_data(TensorData::new(seq, [rows, p + 1]), &device)); // [B, P + 1, d]
        let real: Vec<bool> =
            (0..rows).flat_map(|r| b.prompt_real[r * p..(r + 1) * p].iter().copied().chain([true])).collect();
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(real, [rows, p + 1]), &device);
        let run = |x: Tensor<3>| m.backbone.hidden(HiddenInput::new(x).with_padding(padding.clone())).hidden;
        let other = Tensor::<3>::random([rows, 1, D], Distribution::Normal(0.0, 5.0), &device);
        let h1 = run(emb.clone());
        let h2 = run(Tensor::cat(vec![emb.narrow(1, 0, p), other], 1));
        let before = maxdiff(h1.clone().narrow(1, 0, p), h2.clone().narrow(1, 0, p));
        assert_eq!(before, 0.0, "positions before the thought changed");
        let after = maxdiff(h1.clone().narrow(1, p, 1), h2.narrow(1, p, 1));
        assert!(after > 1e-3, "the thought position ignored its input ({after})");
        // The prefix's hidden states are those of the real prompt positions (padding rows are meaningless).
        let prefix = m.prefix(&b);
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(b.prompt_real.clone(), [rows, p]), &device)
            .reshape([rows, p, 1])
            .expand([rows, p, D]);
        let d = maxdiff(
            prefix.hidden.mask_fill(mask.clone().bool_not(), 0.0),
            h1.narrow(1, 0, p).mask_fill(mask.bool_not(), 0.0),
        );
        assert!(d < 1e-6, "prefix hidden maxdiff {d}");
    }

    /// N = 2: the second latent attends over the first one's hidden state, so it differs from the first and from
    /// N = 1's; the prefix holds P + 1 hidden states.
    #[test]
    fn two_latent_tokens() {
        let device = test_device();
        let m2 = model(2, true, true, &device);
        let b2 = three_rows(2);
        let prefix = m2.prefix(&b2);
        let latents = prefix.latents.clone().expect("latents");
        assert_eq!(latents.dims(), [3, 2, D]);
        assert_eq!(prefix.hidden.dims(), [3, b2.prompt_len + 1, D]);
        assert_eq!(prefix.cache.len(), b2.prompt_len);
        let d = maxdiff(latents.clone().narrow(1, 0, 1), latents.clone().narrow(1, 1, 1));
        assert!(d > 1e-4, "r_2 equals r_1");
        // r_1 is the same as with N = 1 (same weights, same seed).
        let m1 = LatentModel::new(m2.backbone.clone(), m2.ratt.clone(), m2.thought_id, 1);
        let r1 = m1.prefix(&three_rows(1)).latents.expect("latents");
        assert!(maxdiff(r1, latents.narrow(1, 0, 1)) < 1e-6);
        let logp = m2.target_logp(&prefix, &m2.targets(&b2));
        assert_eq!(logp.dims(), [3, 4]);
    }

    /// Without LatentRATT the latent is the last prompt position's final hidden state.
    #[test]
    fn without_latent_ratt_the_latent_is_the_last_hidden_state() {
        let device = test_device();
        let m = model(1, false, true, &device);
        assert!(m.ratt.is_none());
        let b = three_rows(1);
        let prefix = m.prefix(&b);
        let p = b.prompt_len;
        let last = prefix.hidden.clone().narrow(1, p - 1, 1); // [B, 1, d]
        assert_eq!(maxdiff(prefix.latents.clone().expect("latents"), last), 0.0);
        // The ablation has exactly the backbone's parameters (plus the thought row).
        let base = backbone(true, &device).num_params();
        assert_eq!(m.num_params(), base + D);
    }

    /// LatentRATT adds 3·(d² + d) parameters to the backbone (plus d for the thought row).
    #[test]
    fn parameter_count() {
        let device = test_device();
        let base = backbone(true, &device).num_params();
        assert_eq!(model(1, true, true, &device).num_params(), base + D + 3 * (D * D + D));
        // BIGRec: no thought row.
        let bigrec = LatentModelConfig::new().with_n_latent(0).init(backbone(true, &device), &device);
        assert_eq!(bigrec.num_params(), base);
        assert_eq!(bigrec.thought_id, VOCAB);
    }

    /// K noisy latents per prompt through an expanded prefix equal K separate computations.
    #[test]
    fn expanded_prefix_equals_separate_computations() {
        let device = test_device();
        let m = model(1, true, true, &device);
        let b = three_rows(1);
        let k = 4;
        let prefix = m.prefix(&b);
        let targets = m.targets(&b);
        let r = prefix.latents.clone().expect("latents"); // [B, 1, d]
        // Sample 1 is un-noised, as in LR-GRPO.
        let noise = Tensor::<3>::random([3 * k, 1, D], Distribution::Normal(0.0, 1.5), &device);
        let keep = Tensor::<3>::from_data(
            TensorData::new((0..3 * k).map(|i| if i % k == 0 { 0.0f32 } else { 1.0 }).collect(), [3 * k, 1, 1]),
            &device,
        );
        let noise = noise * keep;
        let expanded = prefix.expand(k);
        assert_eq!(expanded.rows(), 3 * k);
        let noisy = expanded.latents.clone().expect("latents") + noise.clone();
        let logp = m.target_logp(&expanded.with_latents(noisy), &targets.expand(k)); // [B·K, T]
        for row in 0..3 {
            for s in 0..k {
                let i = row * k + s;
                let one = prefix.clone().with_latents(r.clone() + noise.clone().narrow(0, i, 1).expand([3, 1, D]));
                let want = m.target_logp(&one, &targets).narrow(0, row, 1);
                let d = maxdiff(logp.clone().narrow(0, i, 1), want);
                assert!(d < 1e-5, "row {row} sample {s}: maxdiff {d}");
            }
        }
        // The un-noised sample reproduces the plain forward.
        let plain = m.target_logp(&prefix, &targets);
        let first = logp.clone().reshape([3, k, 4]).narrow(1, 0, 1).reshape([3, 4]);
        assert!(maxdiff(plain, first) < 1e-6);
        // Noise changes the log-probs.
        let second = logp.reshape([3, k, 4]).narrow(1, 1, 1).reshape([3, 4]);
        assert!(maxdiff(m.target_logp(&prefix, &targets), second) > 1e-4);
    }

    /// BIGRec (N = 0): the prefix has no latents and the log-probs are those of a plain forward over
    /// `[prompt, target]`.
    #[test]
    fn no_latent_is_a_plain_forward() {
        let device = test_device();
        let m = LatentModelConfig::new().with_n_latent(0).init(backbone(true, &device), &device);
        let b = batch(&[&[3, 14, 15, 9]], &[&[26, 5, 35]], 0);
        let prefix = m.prefix(&b);
        assert!(prefix.latents.is_none());
        let logp = host(m.target_logp(&prefix, &m.targets(&b)));
        let ids = Tensor::<2, Int>::from_data([[3, 14, 15, 9, 26, 5]], &device);
        let h = m.backbone.hidden(HiddenInput::new(m.backbone.embed(ids))).hidden.narrow(1, 3, 3); // [1, 3, d]
        let logits = host(log_softmax(m.backbone.logits(h), 2)); // [1, 3, V]
        let v = m.backbone.vocab_size();
        let want = [logits[26], logits[v + 5], logits[2 * v + 35]];
        for (a, b) in logp.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{logp:?} vs {want:?}");
        }
        // A one-token target needs no pass 2.
        let one = batch(&[&[3, 14, 15, 9]], &[&[26]], 0);
        let lp = host(m.target_logp(&m.prefix(&one), &m.targets(&one)));
        assert!((lp[0] - logp[0]).abs() < 1e-6);
    }

    /// Decoding from [`LatentModel::decode_start`] one token at a time gives the target log-probs of pass 2.
    #[test]
    fn decode_start_continues_like_pass_two() {
        let device = test_device();
        for n in [0, 1, 2] {
            let m = model(n, true, true, &device);
            let b = batch(&[&[3, 14, 15, 9, 26], &[5, 35, 8]], &[&[10, 20, 30], &[40, 41, 42]], n);
            let prefix = m.prefix(&b);
            let want = m.target_logp(&prefix, &m.targets(&b)); // [2, 3]
            let start = m.decode_start(&prefix);
            assert_eq!(start.cache.len(), b.prompt_len + n);
            let mut cache = start.cache;
            let mut hidden = start.last_hidden; // [2, d]
            for j in 0..3 {
                let logp = log_softmax(m.backbone.logits(hidden.clone()), 1); // [2, V]
                let ids: Vec<i64> = (0..2).map(|r| i64::from(b.target_ids[r * 3 + j])).collect();
                let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 1]), &device);
                let got = logp.gather(1, ids.clone()); // [2, 1]
                let d = maxdiff(got, want.clone().narrow(1, j, 1));
                assert!(d < 1e-5, "N={n} token {j}: maxdiff {d}");
                let out = m.backbone.hidden(HiddenInput::new(m.backbone.embed(ids)).with_cache(Some(cache)));
                cache = out.cache;
                hidden = out.hidden.reshape([2, D]);
            }
        }
    }
}
