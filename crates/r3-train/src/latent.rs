//! The LatentR³ model behind the SFT trainer: built from a run configuration ([`build_latent`]), trained through
//! [`SftModel`], and saved as a self-contained model folder ([`save_model_dir`] / [`load_model_dir`]) that
//! evaluation, LR-GRPO and `latentr3 recommend` load.
//!
//! A model folder holds
//! - `backbone/`: a Hugging Face folder (`config.json` whose `vocab_size` includes the `<|Thought|>` row,
//!   `model.safetensors` in PyTorch names, `tokenizer.json` with `<|Thought|>` as a special token), readable by
//!   `transformers` and by [`r3_backbone::load_hf_dir`];
//! - `latentratt.safetensors`: LatentRATT's `q`, `k`, `v` (and `out`) in PyTorch naming (absent for BIGRec and
//!   the "w/o LatentRATT" ablation);
//! - `latent.json`: the number of latent tokens, the thought id, LatentRATT's settings and the prompt encoder's
//!   settings (template, category word, cutoff, BOS), so that decoding encodes prompts exactly as training did.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use r3_backbone::{BackboneConfig, LoadedBackbone};
use r3_data::{Encoder, EncoderConfig, SftBatch, Tokenizer, category_word};
use r3_latent::{LatentModel, LatentModelConfig, LatentRattConfig};
use serde::{Deserialize, Serialize};

use crate::config::SftConfig;
use crate::error::{Error, Result};
use crate::model::{Nll, SftModel};

/// The file that describes a model folder.
pub const LATENT_FILE: &str = "latent.json";
/// LatentRATT's weights in a model folder.
pub const RATT_FILE: &str = "latentratt.safetensors";
/// The Hugging Face folder of the backbone in a model folder.
pub const BACKBONE_DIR: &str = "backbone";

impl SftModel for LatentModel {
    /// The two-pass forward with the prompt prefix computed once (docs/method.md §3; `r3_latent::LatentModel::sft_loss`).
    fn nll(&self, batch: &SftBatch) -> Nll {
        let loss = self.sft_loss(batch);
        Nll { sum: loss.sum, tokens: loss.n_tokens }
    }
}

/// LatentRATT's settings as stored in `latent.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RattSettings {
    /// The number of heads.
    pub n_heads: usize,
    /// Whether an output projection follows the attention.
    pub out_proj: bool,
    /// The RoPE base.
    pub rope_base: f64,
}

/// The contents of `latent.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentMeta {
    /// The folder format version (1).
    pub format: u32,
    /// The number of latent tokens N (0 = BIGRec).
    pub n_latent: usize,
    /// The id of `<|Thought|>` (the last vocabulary row when `n_latent > 0`).
    pub thought_id: usize,
    /// LatentRATT's settings; `None` without LatentRATT (BIGRec, or the "w/o LatentRATT" ablation).
    pub ratt: Option<RattSettings>,
    /// How prompts are encoded.
    pub encoder: EncoderConfig,
}

/// A LatentR³ model with everything needed to use it.
#[derive(Debug)]
pub struct LatentSetup {
    /// The model.
    pub model: LatentModel,
    /// The prompt encoder (its tokenizer knows `<|Thought|>` when the model uses latent tokens).
    pub encoder: Encoder,
    /// The backbone's configuration, its `vocab_size` including the thought row.
    pub backbone_config: BackboneConfig,
}

impl LatentSetup {
    /// The description written to `latent.json`.
    pub fn meta(&self) -> LatentMeta {
        LatentMeta {
            format: 1,
            n_latent: self.model.n_latent,
            thought_id: self.model.thought_id,
            ratt: self.model.ratt.as_ref().map(|r| RattSettings {
                n_heads: r.n_heads,
                out_proj: r.out.is_some(),
                rope_base: r.rope.theta,
            }),
            encoder: self.encoder.config().clone(),
        }
    }
}

/// The encoder settings of a run: the `[data]` section, with the category word derived from the stem when empty.
///
/// # Errors
/// An unknown category (the message lists the known ones and how to set `data.category`).
pub fn encoder_config(config: &SftConfig) -> Result<EncoderConfig> {
    let d = &config.data;
    let word = if d.category.is_empty() {
        category_word(&d.stem)
            .map_err(|e| Error::BadValue {
                origin: "config".into(),
                key: "data.category".into(),
                message: format!("{e}; or set `data.category` to the word the prompt should use"),
            })?
            .to_string()
    } else {
        d.category.clone()
    };
    Ok(EncoderConfig::new(word).with_template(d.template).with_n_thought(config.n_thought()).with_cutoff(d.cutoff))
}

/// Builds the model of a run from a pretrained backbone: the encoder (adding `<|Thought|>` to the tokenizer when
/// the run uses latent tokens), the thought row appended to the vocabulary (the mean embedding), and a fresh
/// LatentRATT (or none: `data.no_latent`, or `latent.ratt = false` for the ablation) on the backbone's device.
///
/// # Errors
/// A bad category or LatentRATT setting, or a tokenizer whose new thought id is not the backbone's next row (a
/// Hugging Face tokenizer with fewer ids than the embedding, e.g. Qwen2.5's: use the GGUF's tokenizer or export
/// the model with `latentr3 model export` first).
pub fn build_latent(loaded: LoadedBackbone, tokenizer: Tokenizer, config: &SftConfig) -> Result<LatentSetup> {
    let encoder = Encoder::new(tokenizer, encoder_config(config)?)?;
    let LoadedBackbone { config: mut backbone_config, model: backbone } = loaded;
    let device = backbone.embed_tokens.weight.val().device();
    let n_latent = config.n_thought();
    if let Some(thought) = encoder.thought_id() {
        let rows = backbone.vocab_size();
        if thought as usize != rows {
            return Err(Error::Data {
                message: format!(
                    "the tokenizer gives <|Thought|> the id {thought}, but the model's vocabulary has {rows} rows: \
                     the thought token must be the row appended after the last one. The tokenizer has fewer ids \
                     than the embedding (a Hugging Face tokenizer.json without the padding rows); use the GGUF \
                     checkpoint, or a folder written by `latentr3 model export`"
                ),
            });
        }
    }
    let ratt = (n_latent > 0 && config.latent.ratt)
        .then(|| -> Result<LatentRattConfig> {
            let c = LatentRattConfig::new(backbone.hidden_size())
                .with_n_heads(config.latent.n_heads)
                .with_out_proj(config.latent.out_proj)
                .with_rope_base(config.latent.rope_base)
                .with_init_std(config.latent.init_std);
            c.validate()?;
            Ok(c)
        })
        .transpose()?;
    // LatentRATT starts from random weights: seed the device with the run's seed first, so that two runs of the
    // same configuration start (and, on a deterministic backend, end) identically.
    device.seed(config.train.seed);
    let model = LatentModelConfig::new().with_n_latent(n_latent).with_ratt(ratt).init(backbone, &device);
    backbone_config.vocab_size = model.backbone.vocab_size();
    Ok(LatentSetup { model, encoder, backbone_config })
}

/// Writes `setup` as a model folder (see the module docs). The folder is assembled under a temporary name beside
/// `dir` and renamed into place, so `dir` either holds a whole model or does not exist; an existing `dir` is
/// replaced only after the new one is complete.
///
/// # Errors
/// I/O errors naming the file.
pub fn save_model_dir(setup: &LatentSetup, dir: &Path) -> Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, "create the parent folder", e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, "remove a stale temporary folder", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, "create", e))?;
    let written = (|| -> Result<()> {
        let model = setup.model.clone().valid();
        let loaded = LoadedBackbone { config: setup.backbone_config.clone(), model: model.backbone };
        r3_backbone::export_hf_dir(&loaded, setup.encoder.tokenizer(), &tmp.join(BACKBONE_DIR))?;
        if let Some(ratt) = &model.ratt {
            ratt.save_safetensors(&tmp.join(RATT_FILE), r3_latent::store::DEFAULT_PREFIX)?;
        }
        let meta = serde_json::to_string_pretty(&setup.meta()).expect("latent.json serialises");
        let path = tmp.join(LATENT_FILE);
        std::fs::write(&path, meta + "\n").map_err(|e| Error::io(&path, "write", e))
    })();
    if let Err(e) = written {
        // The error is the one worth reporting; a leftover temporary folder is harmless.
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, "move the previous model aside", e))?;
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, "move the new model into place", e))?;
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, "remove the previous model", e))?;
    } else {
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, "move the new model into place", e))?;
    }
    Ok(())
}

/// Whether `dir` looks like a model folder ([`save_model_dir`]).
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join(LATENT_FILE).is_file() && dir.join(BACKBONE_DIR).is_dir()
}

/// Loads a model folder written by [`save_model_dir`] onto `device`.
///
/// # Errors
/// A missing or malformed file, naming it.
pub fn load_model_dir(dir: &Path, device: &Device) -> Result<LatentSetup> {
    let meta_path = dir.join(LATENT_FILE);
    if !dir.is_dir() {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: "no such folder: give the `model/` folder that `latentr3 train sft` writes in its run folder"
                .into(),
        });
    }
    if !meta_path.is_file() {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: format!(
                "no {LATENT_FILE}: not a LatentR³ model folder (these are written as `model/` in the run folder of \
                 `latentr3 train sft`)"
            ),
        });
    }
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, "read", e))?;
    let meta: LatentMeta =
        serde_json::from_str(&text).map_err(|source| Error::Json { path: meta_path.clone(), source })?;
    if meta.format != 1 {
        return Err(Error::Checkpoint {
            path: meta_path,
            message: format!("format {} is not known to this version (1)", meta.format),
        });
    }
    let backbone_dir = dir.join(BACKBONE_DIR);
    let loaded = r3_backbone::load_hf_dir(&backbone_dir, device)?;
    let tokenizer = Tokenizer::from_file(&backbone_dir.join("tokenizer.json"))?;
    let encoder = Encoder::new(tokenizer, meta.encoder.clone())?;
    if meta.n_latent > 0 && encoder.thought_id().map(|t| t as usize) != Some(meta.thought_id) {
        return Err(Error::Checkpoint {
            path: backbone_dir.join("tokenizer.json"),
            message: format!(
                "the tokenizer's <|Thought|> id {:?} differs from {LATENT_FILE}'s thought_id {}",
                encoder.thought_id(),
                meta.thought_id
            ),
        });
    }
    let ratt = match &meta.ratt {
        None => None,
        Some(s) => {
            let mut ratt = LatentRattConfig::new(loaded.model.hidden_size())
                .with_n_heads(s.n_heads)
                .with_out_proj(s.out_proj)
                .with_rope_base(s.rope_base)
                .init(device);
            ratt.load_safetensors(&dir.join(RATT_FILE), r3_latent::store::DEFAULT_PREFIX)?;
            Some(ratt)
        }
    };
    let LoadedBackbone { config: backbone_config, model: backbone } = loaded;
    if meta.n_latent > 0 && meta.thought_id + 1 != backbone.vocab_size() {
        return Err(Error::Checkpoint {
            path: backbone_dir,
            message: format!(
                "the backbone has {} vocabulary rows, but {LATENT_FILE} puts the thought token at {}",
                backbone.vocab_size(),
                meta.thought_id
            ),
        });
    }
    let model = LatentModel::new(backbone, ratt, meta.thought_id, meta.n_latent);
    Ok(LatentSetup { model, encoder, backbone_config })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model folder that does not exist is named as missing, not as a folder without `latent.json`.
    #[test]
    fn a_missing_model_folder_is_named_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-run").join("model");
        let Err(e) = load_model_dir(&missing, &crate::test_device()) else { panic!("loaded a missing model") };
        let msg = e.to_string();
        assert!(msg.contains("no such folder") && msg.contains("no-such-run"), "{msg}");
        std::fs::create_dir_all(&missing).unwrap();
        let Err(e) = load_model_dir(&missing, &crate::test_device()) else { panic!("loaded a missing model") };
        let msg = e.to_string();
        assert!(msg.contains("no latent.json"), "{msg}");
    }
}
