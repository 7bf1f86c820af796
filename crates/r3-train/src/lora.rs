//! LoRA for large backbones through burn's generic `Module::apply_lora` (burn-core 0.22.1 `module/lora.rs`).
//!
//! burn reparameterises matching 2-D weights as `W + α/r · A·B` without any change to the model code, so it
//! applies to any [`crate::SftModel`]. Paths are burn module paths such as
//! `backbone.layers.3.self_attn.q_proj.weight`.

use burn::module::{Lora, Module, ParamGroup};

use crate::config::LoraConfig;
use crate::error::{Error, Result};

fn group(patterns: &[String], key: &str) -> Result<ParamGroup> {
    if patterns.is_empty() {
        return Ok(ParamGroup::from_paths(Vec::<String>::new()));
    }
    ParamGroup::from_any_regexes(patterns.to_vec()).map_err(|e| Error::BadValue {
        origin: "config".into(),
        key: key.into(),
        message: format!("invalid regular expression: {e:?}"),
    })
}

/// Attaches LoRA adapters to the weights matching `config.targets` (their bases frozen); the other parameters
/// are frozen too when `freeze_others`, except those matching `config.trainable`. Returns the model unchanged
/// when LoRA is disabled.
///
/// # Errors
/// [`Error::BadValue`] naming `model.lora.targets` or `model.lora.trainable` for an invalid regex.
pub fn apply_lora<M: Module>(model: M, config: &LoraConfig) -> Result<M> {
    if !config.enabled {
        return Ok(model);
    }
    let targets = group(&config.targets, "model.lora.targets")?;
    let model = model.apply_lora(Lora::new(config.rank, config.alpha).set_param_group(targets.clone()));
    // apply_lora froze every base tensor; thaw what must still learn, never the adapted bases.
    let thaw = if config.freeze_others {
        group(&config.trainable, "model.lora.trainable")?.exclude(targets)
    } else {
        ParamGroup::all().exclude(targets)
    };
    Ok(model.set_require_grad_group(thaw, true))
}
