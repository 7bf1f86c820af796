//! The GRPO run configuration: plain serde structs read from TOML with `--set key=value` overrides
//! ([`r3_train::parse_toml_with_schema`]: unknown keys are errors naming the key and the valid ones).
//!
//! Defaults are the official code's (\[CODE\], the R3 repository's LR-GRPO trainer and the TRL `GRPOConfig` it
//! sets) or the paper's (\[PAPER\], docs/method.md §4 stage 2); \[OURS\] marks choices of this reproduction.

use std::path::Path;

use r3_rewards::RewardSpec;
use r3_train::{OptimizerSettings, PaperCell};
use serde::{Deserialize, Serialize};

use crate::advantage::AdvantageMode;
use crate::error::{Error, Result};

/// A whole GRPO run: `[model]`, `[data]`, `[grpo]`, `[train]`, `[eval]`, `[run]` and the optional `[paper]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    /// The starting model.
    pub model: GrpoModelConfig,
    /// The training and validation data.
    pub data: GrpoDataConfig,
    /// The algorithm (LR-GRPO or the original GRPO) and its settings.
    pub grpo: GrpoSettings,
    /// The optimizer and the loop.
    pub train: GrpoTrainConfig,
    /// Periodic validation (HR/NDCG by constrained beam search).
    pub eval: GrpoEvalConfig,
    /// The run folder.
    pub run: GrpoRunConfig,
    /// The paper cell this experiment reproduces (documentation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper: Option<PaperCell>,
}

/// `[model]`: where training starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoModelConfig {
    /// (str) The model folder written by `latentr3 train sft` (`RUN_DIR/model`: backbone, LatentRATT,
    /// `latent.json`). \[PAPER\] LR-GRPO starts from the SFT warm-up.
    pub checkpoint: String,
}

/// `[data]`: the dataset split files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoDataConfig {
    /// (str) The data folder; empty: `$LATENTR3_DATA`, else the shared data folder.
    pub dir: String,
    /// (str) The dataset stem, e.g. `CDs_and_Vinyl_5_2015-10-2018-11`.
    pub stem: String,
    /// (int) Train prompts used (a seeded subset); 0 = all. \[CODE\] all, 1 epoch.
    pub sample: usize,
}

/// Which algorithm trains LatentRATT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// LR-GRPO (docs/method.md §4 stage 2): K noisy latents per prompt, reward from the target's log-probs, no decoding.
    LrGrpo,
    /// The original GRPO of the comparison figure: K constrained rollouts per prompt from the noisy latents,
    /// reward on the decoded items (default `exact_match`), group-normalised advantages.
    Grpo,
}

/// `[grpo]`: the algorithm's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoSettings {
    /// (str) `lr_grpo` or `grpo` (the original GRPO of the cost/quality comparison).
    pub algorithm: Algorithm,
    /// (float) σ of the latent noise `ε ~ N(0, σ²I)`. \[CODE\] 1.5.
    pub noise_std: f64,
    /// (int) K, samples per prompt. \[CODE\] 8 (TRL `num_generations`).
    pub group_size: usize,
    /// (int) G, groups (prompts) in one advantage pool = one micro-step. \[CODE\] 2: the groups gathered across the
    /// authors' 2 GPUs; here a setting, never derived from the device count.
    pub advantage_groups: usize,
    /// (str) `batch` (`(s − s̄)/‖s − s̄‖₂`, s̄ = mean un-noised reward of the pool; \[CODE\] LR-GRPO), `group`
    /// (`(s − mean_g)/(std_g + 1e-4)`, the original GRPO and the "w/o batch advantage" ablation) or `none`
    /// (raw rewards). Empty: `batch` for LR-GRPO, `group` for GRPO.
    pub advantage: Option<AdvantageMode>,
    /// (bool) Sample 1 of each group is un-noised (ε₁ = 0). \[CODE\] true; the batch advantage's baseline needs it.
    pub unnoised_first: bool,
    /// (float) ε_low of the clipped surrogate. \[CODE\] 0.2.
    pub epsilon_low: f64,
    /// (float) ε_high of the clipped surrogate. \[CODE\] 0.28.
    pub epsilon_high: f64,
    /// (float) β of the KL penalty against the frozen starting LatentRATT. \[CODE\] 0.
    pub beta: f64,
    /// (int) Optimizer steps per generated batch (reusing its stored old log-probs). \[CODE\] 1.
    pub num_iterations: usize,
    /// (list) The rewards, `[[grpo.rewards]] name = "neg_ppl"` (r3-rewards registry names, with `weight` and
    /// `params`). Empty: `neg_ppl` for LR-GRPO, `exact_match` for GRPO.
    pub rewards: Vec<RewardSpec>,
    /// (float) Sampling temperature of the original GRPO's rollouts. \[CODE\] 1.0.
    pub temperature: f64,
    /// (int) The most tokens per rollout, EOS included. \[CODE\] 128.
    pub max_new_tokens: usize,
}

impl Default for GrpoSettings {
    fn default() -> Self {
        GrpoSettings {
            algorithm: Algorithm::LrGrpo,
            noise_std: 1.5,
            group_size: 8,
            advantage_groups: 2,
            advantage: None,
            unnoised_first: true,
            epsilon_low: 0.2,
            epsilon_high: 0.28,
            beta: 0.0,
            num_iterations: 1,
            rewards: Vec::new(),
            temperature: 1.0,
            max_new_tokens: 128,
        }
    }
}

impl GrpoSettings {
    /// The advantage mode in effect (the algorithm's default when unset).
    pub fn advantage_mode(&self) -> AdvantageMode {
        self.advantage.unwrap_or(match self.algorithm {
            Algorithm::LrGrpo => AdvantageMode::Batch,
            Algorithm::Grpo => AdvantageMode::Group,
        })
    }

    /// The rewards in effect (the algorithm's default when the list is empty).
    pub fn reward_specs(&self) -> Vec<RewardSpec> {
        if !self.rewards.is_empty() {
            return self.rewards.clone();
        }
        match self.algorithm {
            Algorithm::LrGrpo => r3_rewards::lr_grpo_rewards(),
            Algorithm::Grpo => r3_rewards::grpo_rewards(),
        }
    }
}

/// `[train]`: the optimizer and the loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoTrainConfig {
    /// (float) Peak learning rate of AdamW. \[CODE\] swept over {1e-5, 5e-5, 1e-4, 5e-4}; default 1e-4.
    pub lr: f64,
    /// (int) Prompts per optimizer step (each with K samples). \[CODE\] 32 (× 8 samples = 256).
    pub batch: usize,
    /// (int) Epochs over the train prompts. \[CODE\] 1.
    pub epochs: usize,
    /// (int) Linear warm-up steps before the cosine decay. \[CODE\] 200.
    pub warmup: u64,
    /// (float) AdamW weight decay. \[CODE\] 0 (TRL default).
    pub weight_decay: f64,
    /// (float) Global gradient-norm clip; 0 = none. \[CODE\] 1.0 (HF `max_grad_norm`).
    pub clip: f64,
    /// (int) Seed of the data order and of the latent noise.
    pub seed: u64,
    /// (int) Stop after this many optimizer steps; 0 = run all epochs.
    pub max_steps: u64,
    /// (int) Write a checkpoint every this many optimizer steps (and at the end).
    pub checkpoint_every: u64,
    /// (float) AdamW β₁. \[CODE\] 0.9.
    pub beta1: f64,
    /// (float) AdamW β₂. \[CODE\] 0.999.
    pub beta2: f64,
    /// (float) AdamW ε. \[CODE\] 1e-8.
    pub eps: f64,
}

impl Default for GrpoTrainConfig {
    fn default() -> Self {
        GrpoTrainConfig {
            lr: 1e-4,
            batch: 32,
            epochs: 1,
            warmup: 200,
            weight_decay: 0.0,
            clip: 1.0,
            seed: 0,
            max_steps: 0,
            checkpoint_every: 50,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl GrpoTrainConfig {
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

/// `[eval]`: validation HR/NDCG on a fixed subset of the validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoEvalConfig {
    /// (int) Validate every this many optimizer steps (and at the end); 0 = never. \[OURS\]
    pub every: u64,
    /// (int) Validation users (a seeded, fixed subset); 0 = all. \[OURS\] 200.
    pub sample: usize,
    /// (int) Users per beam-search batch. \[OURS\]
    pub batch: usize,
    /// (int) Beams = returned sequences. \[CODE\] 10.
    pub beams: usize,
    /// (int) The cut-off K of the metric that picks the best checkpoint (NDCG@K). \[OURS\] 10.
    pub k: usize,
}

impl Default for GrpoEvalConfig {
    fn default() -> Self {
        GrpoEvalConfig { every: 0, sample: 200, batch: 8, beams: 10, k: 10 }
    }
}

/// `[run]`: the run folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoRunConfig {
    /// (str) The run folder (a timestamped subfolder when `timestamped`).
    pub output_dir: String,
    /// (bool) Put the run in `output_dir/<UTC timestamp>/`.
    pub timestamped: bool,
    /// (int) Step checkpoints kept (the best one is kept besides).
    pub keep_checkpoints: usize,
}

impl Default for GrpoRunConfig {
    fn default() -> Self {
        GrpoRunConfig { output_dir: "runs/grpo".into(), timestamped: true, keep_checkpoints: 2 }
    }
}

impl GrpoConfig {
    /// Reads a TOML file with `--set` overrides and validates it.
    ///
    /// # Errors
    /// As [`GrpoConfig::from_toml_str`], plus [`r3_train::Error::Io`] when the file cannot be read.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read config", e))?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// Parses TOML text (`origin` names it in errors), applies the overrides and validates.
    ///
    /// # Errors
    /// Unknown keys, values of the wrong type and values out of range ([`r3_train::Error`]; a value out of range is
    /// [`r3_train::Error::BadValue`] naming the key).
    pub fn from_toml_str(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let full = GrpoConfig {
            paper: Some(PaperCell { expected: Some(0.0), ..PaperCell::default() }),
            grpo: GrpoSettings { advantage: Some(AdvantageMode::Batch), ..GrpoSettings::default() },
            ..GrpoConfig::default()
        };
        let config: GrpoConfig = r3_train::parse_toml_with_schema(text, origin, overrides, &full)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// The resolved configuration as TOML (written to the run folder).
    ///
    /// # Errors
    /// [`r3_train::Error::BadValue`] when a value cannot be written (never for parsed configs).
    pub fn to_toml(&self) -> Result<String> {
        Ok(r3_train::to_toml_string(self, "<resolved config>")?)
    }

    /// Checks ranges and consistency (docs/conventions.md §4: group size ≥ 2, batch divisible by the advantage pool, the
    /// pool set explicitly).
    ///
    /// # Errors
    /// [`r3_train::Error::BadValue`] naming the first bad key and how to fix it.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(r3_train::Error::BadValue { origin: origin.into(), key: key.into(), message }.into())
        };
        let g = &self.grpo;
        if g.group_size < 2 {
            return bad("grpo.group_size", format!("is {}: a group needs at least 2 samples", g.group_size));
        }
        if g.advantage_groups == 0 {
            return bad("grpo.advantage_groups", "must be at least 1 (the official setting is 2)".into());
        }
        if !(g.noise_std.is_finite() && g.noise_std >= 0.0) {
            return bad("grpo.noise_std", format!("must be ≥ 0, got {}", g.noise_std));
        }
        if g.advantage_mode() == AdvantageMode::Batch && !g.unnoised_first {
            return bad(
                "grpo.unnoised_first",
                "is false, but the batch advantage's baseline is the mean un-noised reward: keep it true or use \
                 `grpo.advantage = \"group\"`"
                    .into(),
            );
        }
        for (key, v) in [("grpo.epsilon_low", g.epsilon_low), ("grpo.epsilon_high", g.epsilon_high)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, format!("must be ≥ 0, got {v}"));
            }
        }
        if !(g.beta.is_finite() && g.beta >= 0.0) {
            return bad("grpo.beta", format!("must be ≥ 0, got {}", g.beta));
        }
        if g.num_iterations == 0 {
            return bad("grpo.num_iterations", "must be at least 1 (the official setting is 1)".into());
        }
        if !(g.temperature.is_finite() && g.temperature > 0.0) {
            return bad("grpo.temperature", format!("must be > 0, got {}", g.temperature));
        }
        if g.max_new_tokens == 0 {
            return bad("grpo.max_new_tokens", "must be at least 1".into());
        }
        let t = &self.train;
        t.optimizer().validate(origin)?;
        if t.batch == 0 || !t.batch.is_multiple_of(g.advantage_groups) {
            return bad(
                "train.batch",
                format!(
                    "is {}: prompts per optimizer step must be a positive multiple of `grpo.advantage_groups` = {} \
                     (each micro-step is one advantage pool)",
                    t.batch, g.advantage_groups
                ),
            );
        }
        if t.epochs == 0 {
            return bad("train.epochs", "must be at least 1".into());
        }
        if t.checkpoint_every == 0 {
            return bad("train.checkpoint_every", "must be at least 1".into());
        }
        let e = &self.eval;
        if e.every > 0 && (e.batch == 0 || e.beams == 0 || e.k == 0 || e.k > e.beams) {
            return bad("eval", format!("needs batch ≥ 1 and 1 ≤ k ≤ beams, got {e:?}"));
        }
        if self.model.checkpoint.is_empty() {
            return bad(
                "model.checkpoint",
                "is empty: give the model folder of an SFT run (`RUN_DIR/model` of `latentr3 train sft`)".into(),
            );
        }
        if self.run.output_dir.is_empty() {
            return bad("run.output_dir", "is empty: give the folder of the run".into());
        }
        if self.run.keep_checkpoints == 0 {
            return bad("run.keep_checkpoints", "must be at least 1 (resuming needs the latest checkpoint)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_official_values() {
        let c = GrpoConfig::default();
        let g = &c.grpo;
        assert_eq!((g.noise_std, g.group_size, g.advantage_groups, g.beta, g.num_iterations), (1.5, 8, 2, 0.0, 1));
        assert_eq!((g.epsilon_low, g.epsilon_high), (0.2, 0.28));
        assert_eq!((c.train.batch, c.train.warmup, c.train.epochs), (32, 200, 1));
        assert_eq!(g.advantage_mode(), AdvantageMode::Batch);
        assert_eq!(g.reward_specs()[0].name, "neg_ppl");
        let grpo = GrpoSettings { algorithm: Algorithm::Grpo, ..GrpoSettings::default() };
        assert_eq!(
            (grpo.advantage_mode(), grpo.reward_specs()[0].name.as_str()),
            (AdvantageMode::Group, "exact_match")
        );
    }

    #[test]
    fn parses_overrides_and_rejects_bad_values() {
        let text = "[model]\ncheckpoint = \"m\"\n[grpo]\nadvantage = \"group\"\n[[grpo.rewards]]\nname = \"neg_ppl\"\n\
                    weight = 0.5\n";
        let c = GrpoConfig::from_toml_str(text, "<t>", &["grpo.group_size=4".into(), "train.batch=8".into()])
            .expect("valid");
        assert_eq!((c.grpo.group_size, c.train.batch), (4, 8));
        assert_eq!(c.grpo.advantage_mode(), AdvantageMode::Group);
        assert_eq!(c.grpo.rewards[0].weight, 0.5);
        let err = GrpoConfig::from_toml_str(text, "<t>", &["grpo.group_sise=4".into()]).unwrap_err();
        assert!(err.to_string().contains("grpo.group_sise"), "{err}");
        let err = GrpoConfig::from_toml_str(text, "<t>", &["grpo.group_size=1".into()]).unwrap_err();
        assert!(err.to_string().contains("grpo.group_size"), "{err}");
        let err = GrpoConfig::from_toml_str(text, "<t>", &["train.batch=3".into()]).unwrap_err();
        assert!(err.to_string().contains("train.batch"), "{err}");
        // The resolved config reads back identically.
        let again = GrpoConfig::from_toml_str(&c.to_toml().expect("toml"), "<resolved>", &[]).expect("valid");
        assert_eq!(again, c);
    }
}
