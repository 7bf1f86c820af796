//! Run configuration: plain serde structs read from TOML, with `--set key.sub=value` overrides.
//!
//! Every field has an explicit default whose doc gives its source (\[CODE\] = the official R3 code,
//! `src/latent/latent_attention_train.py` and the HF `TrainingArguments` it sets; \[PAPER\] = the paper; \[OURS\] =
//! a choice of this reproduction). Unknown keys are errors that name the key and list the valid ones; values of
//! the wrong type are errors that name the key. Overrides are applied to the TOML value tree before it is
//! deserialised, so they go through exactly the same checks as the file.
//!
//! These structs are never burn `Config`s (docs/conventions.md §4): burn's `#[config(default)]` values are not applied by
//! serde and burn configs ignore unknown keys.

use std::path::Path;

use burn::optim::ModuleOptimizer;
use r3_data::Template;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::FusedAdamW;

mod schema;
pub use schema::{parse_toml_with_schema, to_toml_string};

/// The whole configuration of an SFT run (BIGRec, or the LatentR³ warm-up stage, docs/method.md §4 stage 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// The backbone and how it is adapted.
    pub model: ModelConfig,
    /// The dataset and the prompt.
    pub data: DataConfig,
    /// The LatentRATT layer.
    pub latent: LatentConfig,
    /// The optimisation.
    pub train: TrainConfig,
    /// Where the run writes its folder.
    pub run: RunConfig,
    /// The paper cell this run reproduces (experiment files carry it; optional elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper: Option<PaperCell>,
}

/// `[model]`: the backbone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A model id of `r3_backbone::fetch::MODELS`, a `.gguf` file or a Hugging Face folder. \[OURS\]
    /// `qwen2.5-coder-1.5b` (the paper uses Qwen2.5-1.5B; the Coder variant is the cached one of the same size).
    pub id: String,
    /// The compute dtype. \[CODE\] bf16 on GPU; `auto` = bf16 on a GPU device, f32 on CPU (flex emulates bf16).
    pub dtype: Dtype,
    /// LoRA adapters instead of full fine-tuning (off by default: \[CODE\] trains all parameters).
    pub lora: LoraConfig,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { id: "qwen2.5-coder-1.5b".into(), dtype: Dtype::Auto, lora: LoraConfig::default() }
    }
}

/// The compute dtype of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    /// bf16 on GPU devices, f32 on the CPU.
    Auto,
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
}

/// `[model.lora]`: LoRA adapters through burn's `Module::apply_lora` (see [`crate::lora`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// Whether to train LoRA adapters (and LatentRATT) instead of all parameters. \[OURS\] `false`.
    pub enabled: bool,
    /// The adapter rank r. \[OURS\] 16.
    pub rank: usize,
    /// The scale numerator α (the update is `α / r · A·B`). \[OURS\] 32.
    pub alpha: f64,
    /// Regular expressions over burn module paths of the 2-D weights that get adapters; parameters matching none
    /// stay trainable (LatentRATT, norms, biases are then trained in full unless `freeze_others`). \[OURS\] the
    /// attention and MLP projections of the decoder layers.
    pub targets: Vec<String>,
    /// Whether the parameters that match no target are frozen too (classic LoRA). \[OURS\] `true`.
    pub freeze_others: bool,
    /// Regular expressions of parameters that stay trainable even with `freeze_others` (LatentRATT must learn).
    /// \[OURS\] `latent`, matching the LatentRATT module of the latent model.
    pub trainable: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            enabled: false,
            rank: 16,
            alpha: 32.0,
            targets: vec![r"layers\.[0-9]+\.(attention|self_attn|attn|mlp)\..*weight$".into()],
            freeze_others: true,
            trainable: vec![r"latent".into()],
        }
    }
}

/// `[data]`: the dataset, the prompt and the sample selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The dataset root (holding `train/`, `valid/`, `test/`, `info/`); empty = `r3_data::shared_data_dir()`.
    /// \[OURS\] empty.
    pub dir: String,
    /// The file stem of the split files, e.g. `CDs_and_Vinyl_5_2015-10-2018-11`. \[OURS\] empty (must be set).
    pub stem: String,
    /// The category word of the prompt (docs/method.md §2); empty = derived from the stem's category. \[CODE\]
    /// `category_dict`.
    pub category: String,
    /// The prompt wording. \[CODE\] `paper` (the official text with its typos).
    pub template: Template,
    /// The number of latent `<|Thought|>` tokens N. \[CODE\] 1 (the paper's length study varies it).
    pub n_thought: usize,
    /// Train without latent tokens (BIGRec, the "w/o reasoning" ablation); overrides `n_thought`. \[OURS\] false.
    pub no_latent: bool,
    /// The maximum sequence length in tokens; longer prompts are left-truncated. \[CODE\] `cutoff_len = 512`.
    pub cutoff: usize,
    /// Train on a seeded random subset of N training samples; 0 = all of them. \[CODE\] `--sample -1` (all) in
    /// `scripts/latent_train.sh`. The subset is [`seeded_subset`] with `train.seed`.
    pub sample: usize,
    /// Validate on a seeded random subset of N validation samples; 0 = all of them. \[CODE\] all (the
    /// official trainer evaluates the whole validation split each epoch); a CPU run needs fewer (a forward pass
    /// over 6,156 CDs prompts takes tens of minutes on 2 cores). The subset is [`seeded_subset`] with
    /// `train.seed`.
    pub valid_sample: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: String::new(),
            stem: String::new(),
            category: String::new(),
            template: Template::Paper,
            n_thought: 1,
            no_latent: false,
            cutoff: 512,
            sample: 0,
            valid_sample: 0,
        }
    }
}

/// `[latent]`: the LatentRATT layer (docs/method.md §3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatentConfig {
    /// Whether the latent comes from LatentRATT; `false` is the "w/o LatentRATT" ablation (the last prompt
    /// position's final hidden state is the latent, Coconut-style). \[CODE\] true.
    pub ratt: bool,
    /// The number of LatentRATT heads. \[CODE\] 1 (one head over the full width).
    pub n_heads: usize,
    /// Whether a d × d output projection follows LatentRATT's attention. \[CODE\] false.
    pub out_proj: bool,
    /// The RoPE base of LatentRATT. \[CODE\] 1000 (not the backbone's).
    pub rope_base: f64,
    /// The standard deviation of the initial W_q, W_k, W_v (biases start at 0). \[CODE\] 0.02.
    pub init_std: f64,
}

impl Default for LatentConfig {
    fn default() -> Self {
        LatentConfig { ratt: true, n_heads: 1, out_proj: false, rope_base: 1000.0, init_std: 0.02 }
    }
}

/// `[paper]`: the paper cell an experiment file reproduces (docs/conventions.md §4). Not used by training; carried into
/// the resolved config so that results can be put beside the paper's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaperCell {
    /// The table or figure, e.g. `table1`, `ablation`.
    pub table: String,
    /// The row (method), e.g. `BIGRec+LatentR3`.
    pub row: String,
    /// The column (dataset and metric), e.g. `CDs H@5`.
    pub column: String,
    /// The paper's value; absent when the paper does not give it.
    pub expected: Option<f64>,
    /// Where the value comes from (e.g. `docs/method.md §6, Table 1`).
    pub source: String,
    /// What differs from the paper's setting (scale, data subset).
    pub note: String,
}

/// `[train]`: the optimisation (docs/method.md §4 stage 1, \[CODE\] hyper-parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The peak learning rate. \[CODE\] `lr = 3e-4`.
    pub lr: f64,
    /// The global batch: samples per optimizer step. \[CODE\] `batch_size = 128`.
    pub batch: usize,
    /// Samples per forward/backward pass; `batch / micro_batch` micro-batches are accumulated per step. \[CODE\]
    /// `micro_batch_size = 4`.
    pub micro_batch: usize,
    /// The maximum number of epochs. \[CODE\] `num_epochs = 3`.
    pub epochs: usize,
    /// Linear warm-up steps from 0 to `lr`, then linear decay to 0 at the last step. \[CODE\] `warmup_steps = 20`.
    pub warmup: u64,
    /// AdamW's decoupled weight decay. \[CODE\] 0 (`TrainingArguments` default).
    pub weight_decay: f64,
    /// The maximum global L2 norm of all gradients together (HF `max_grad_norm`); 0 = no clipping. \[CODE\] 1.0.
    pub clip: f64,
    /// Early stopping: stop after this many evaluations without improvement of the validation loss; 0 = never.
    /// \[CODE\] `EarlyStoppingCallback(early_stopping_patience=1)`.
    pub patience: usize,
    /// The seed of the epoch shuffles and of the training subset. \[CODE\] `seed = 0`.
    pub seed: u64,
    /// Stop after this many optimizer steps (and decay the schedule over them); 0 = no limit. \[OURS\] 0.
    pub max_steps: u64,
    /// Also evaluate (and checkpoint) every this many steps; 0 = only at epoch ends. \[CODE\] 0
    /// (`eval_strategy = "epoch"`).
    pub eval_every: u64,
    /// Write a resumable checkpoint every this many steps (besides every evaluation); 0 = only at evaluations.
    /// \[OURS\] 50.
    pub checkpoint_every: u64,
    /// AdamW β₁. \[CODE\] 0.9 (`adamw_torch` default).
    pub beta1: f64,
    /// AdamW β₂. \[CODE\] 0.999 (`adamw_torch` default).
    pub beta2: f64,
    /// AdamW ε. \[CODE\] 1e-8 (`adamw_torch` default; burn's own default is 1e-5).
    pub eps: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: 3e-4,
            batch: 128,
            micro_batch: 4,
            epochs: 3,
            warmup: 20,
            weight_decay: 0.0,
            clip: 1.0,
            patience: 1,
            seed: 0,
            max_steps: 0,
            eval_every: 0,
            checkpoint_every: 50,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl TrainConfig {
    /// The optimizer's settings of this section.
    pub fn optimizer(&self) -> OptimizerSettings {
        let t = self;
        OptimizerSettings {
            lr: t.lr,
            weight_decay: t.weight_decay,
            clip: t.clip,
            beta1: t.beta1,
            beta2: t.beta2,
            eps: t.eps,
        }
    }
}

/// The AdamW settings that every `[train]` section has (SFT's [`TrainConfig`], r3-grpo's `GrpoTrainConfig`), with
/// their checks and the optimizer they build.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerSettings {
    /// `train.lr`: the peak learning rate (the schedule gives each step's).
    pub lr: f64,
    /// `train.weight_decay`: AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// `train.clip`: the maximum global gradient norm; 0 = no clipping (the trainer clips).
    pub clip: f64,
    /// `train.beta1`: AdamW β₁.
    pub beta1: f64,
    /// `train.beta2`: AdamW β₂.
    pub beta2: f64,
    /// `train.eps`: AdamW ε.
    pub eps: f64,
}

impl OptimizerSettings {
    /// Checks the ranges (a positive finite `lr` and `eps`, `weight_decay` and `clip` ≥ 0, β in [0, 1)).
    ///
    /// # Errors
    /// [`Error::BadValue`] naming the first offending `train.*` key.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |key: &str, message: String| Err(Error::BadValue { origin: origin.into(), key: key.into(), message });
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("train.lr", format!("must be a positive number, got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("train.weight_decay", format!("must be ≥ 0, got {}", self.weight_decay));
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return bad("train.clip", format!("must be ≥ 0 (0 = no clipping), got {}", self.clip));
        }
        for (key, v) in [("train.beta1", self.beta1), ("train.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(key, format!("must be in [0, 1), got {v}"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("train.eps", format!("must be a positive number, got {}", self.eps));
        }
        Ok(())
    }

    /// AdamW with these β, ε and weight decay (the learning rate is given at each step): [`FusedAdamW`], burn's
    /// AdamW in one pass per parameter on flex (same update and checkpoint format, `crate::optim`).
    pub fn adamw(&self) -> ModuleOptimizer {
        // NOTE: burn's AdamW applies the decay as `w · (1 − lr·λ)` like torch's AdamW; clipping is done globally by
        // the trainer, so no per-tensor gradient clipping is configured here.
        ModuleOptimizer::from(FusedAdamW::new(
            self.beta1 as f32,
            self.beta2 as f32,
            self.eps as f32,
            self.weight_decay as f32,
        ))
    }
}

/// `[run]`: the run folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The folder of the run, or its parent when `timestamped`. \[OURS\] `runs/sft` (docs/conventions.md §9).
    pub output_dir: String,
    /// Whether the run folder is `output_dir/<UTC timestamp>` (`YYYYMMDD-HHMMSS`) rather than `output_dir`
    /// itself. \[OURS\] true.
    pub timestamped: bool,
    /// How many step checkpoints to keep besides the best one. \[OURS\] 2 (HF `save_total_limit = 2`).
    pub keep_checkpoints: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { output_dir: "runs/sft".into(), timestamped: true, keep_checkpoints: 2 }
    }
}

impl SftConfig {
    /// Reads a TOML file and applies `--set key=value` overrides (see [`SftConfig::from_toml_str`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, and the errors of [`SftConfig::from_toml_str`].
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read config", e))?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// Parses TOML text (`origin` names it in errors), applies the overrides in order, deserialises and
    /// validates. An override is `dotted.key=value`; the value is parsed as a TOML literal (`3e-4`, `true`,
    /// `"x"`, `[1, 2]`) and taken as a plain string when it is not one (`template=corrected`).
    ///
    /// # Errors
    /// [`Error::Toml`] for invalid TOML, [`Error::UnknownKey`] naming an unknown key (from the file or an
    /// override) with the valid keys, [`Error::BadValue`] naming a key with a value of the wrong type or out of
    /// range, [`Error::Override`] for a malformed override.
    pub fn from_toml_str(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        // The optional `[paper]` block and its optional value are filled in so that their keys are known.
        let full = SftConfig {
            paper: Some(PaperCell { expected: Some(0.0), ..PaperCell::default() }),
            ..SftConfig::default()
        };
        let config: SftConfig = parse_toml_with_schema(text, origin, overrides, &full)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// The resolved configuration as TOML (every key, defaults included): the `config.resolved.toml` of a run.
    ///
    /// # Errors
    /// [`Error::BadValue`] if a value cannot be written as TOML (a non-finite float).
    pub fn to_toml(&self) -> Result<String> {
        to_toml_string(self, "<resolved config>")
    }

    /// The number of latent tokens actually used: 0 with `data.no_latent`, else `data.n_thought`.
    pub fn n_thought(&self) -> usize {
        if self.data.no_latent { 0 } else { self.data.n_thought }
    }

    /// Checks the values that deserialise but cannot be trained with, naming the key and the fix.
    ///
    /// # Errors
    /// [`Error::BadValue`] for the first offending key.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |key: &str, message: String| Err(Error::BadValue { origin: origin.into(), key: key.into(), message });
        let t = &self.train;
        t.optimizer().validate(origin)?;
        if t.batch == 0 || t.micro_batch == 0 {
            return bad("train.batch", "`train.batch` and `train.micro_batch` must be at least 1".into());
        }
        if !t.batch.is_multiple_of(t.micro_batch) {
            return bad(
                "train.micro_batch",
                format!(
                    "`train.batch` = {} is not a multiple of `train.micro_batch` = {}: choose a micro-batch that \
                     divides the batch (e.g. {})",
                    t.batch,
                    t.micro_batch,
                    largest_divisor_at_most(t.batch, t.micro_batch)
                ),
            );
        }
        if t.epochs == 0 {
            return bad("train.epochs", "must be at least 1".into());
        }
        let d = &self.data;
        if d.cutoff == 0 {
            return bad("data.cutoff", "must be at least 1 token".into());
        }
        if !d.no_latent && d.n_thought == 0 {
            return bad(
                "data.n_thought",
                "is 0: use at least one latent token, or set `data.no_latent = true` for BIGRec".into(),
            );
        }
        if self.model.id.is_empty() {
            return bad("model.id", "is empty: give a model id, a .gguf file or a Hugging Face folder".into());
        }
        let l = &self.model.lora;
        if l.enabled && l.rank == 0 {
            return bad("model.lora.rank", "must be at least 1".into());
        }
        if l.enabled && !(l.alpha.is_finite() && l.alpha > 0.0) {
            return bad("model.lora.alpha", format!("must be a positive number, got {}", l.alpha));
        }
        if !(self.latent.rope_base.is_finite() && self.latent.rope_base > 0.0) {
            return bad("latent.rope_base", format!("must be a positive number, got {}", self.latent.rope_base));
        }
        if self.latent.n_heads == 0 {
            return bad("latent.n_heads", "must be at least 1 (the official setting is 1)".into());
        }
        if !(self.latent.init_std.is_finite() && self.latent.init_std >= 0.0) {
            return bad("latent.init_std", format!("must be ≥ 0, got {}", self.latent.init_std));
        }
        if self.run.output_dir.is_empty() {
            return bad("run.output_dir", "is empty: give the folder of the run".into());
        }
        if self.run.keep_checkpoints == 0 {
            return bad(
                "run.keep_checkpoints",
                "must be at least 1 (the latest checkpoint is needed to resume)".into(),
            );
        }
        Ok(())
    }
}

/// `n` samples drawn without replacement from `0..len`, in draw order: `random.seed(seed)` then the first `n`
/// indices of `random.shuffle(list(range(len)))` (CPython's generator, [`r3_data::raw::PyRandom`]). `n = 0` or
/// `n ≥ len` keeps every index in order.
pub fn seeded_subset(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    if n == 0 || n >= len {
        return idx;
    }
    r3_data::raw::PyRandom::seed(seed).shuffle(&mut idx);
    idx.truncate(n);
    idx
}

fn largest_divisor_at_most(n: usize, k: usize) -> usize {
    (1..=k.min(n)).rev().find(|d| n.is_multiple_of(*d)).unwrap_or(1)
}

#[cfg(test)]
mod tests;
