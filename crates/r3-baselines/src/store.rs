//! Model folders: `config.json` (the resolved experiment, the catalogue size and the stem) and `model.bpk` (the
//! weights). A folder is written beside its final place and renamed into it, so a reader never sees half of one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{BaselineExperiment, BaselineModel};

/// The settings file of a model folder.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file of a model folder.
pub const WEIGHTS_FILE: &str = "model.bpk";

/// The contents of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// The resolved experiment.
    pub experiment: BaselineExperiment,
    /// The catalogue size the model scores.
    pub n_items: usize,
    /// The dataset stem it was trained on.
    pub stem: String,
    /// The epoch whose weights these are.
    pub epoch: usize,
    /// Its validation NDCG@10.
    pub valid_ndcg10: f64,
}

/// Whether `dir` is a model folder.
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file() && dir.join(WEIGHTS_FILE).is_file()
}

/// Writes a model folder atomically: into `.<name>.tmp-<pid>` beside `dir`, then renamed over `dir`.
///
/// # Errors
/// [`Error::Io`] or [`Error::Record`] naming the file.
pub fn save(dir: &Path, model: &BaselineModel, meta: &ModelMeta) -> Result<()> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create folder", e))?;
    let name = dir.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, "remove stale temporary folder", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, "create folder", e))?;
    let weights = tmp.join(WEIGHTS_FILE);
    model.valid().save_file(&weights).map_err(|e| Error::Record { path: weights.clone(), message: e.to_string() })?;
    let text =
        serde_json::to_string_pretty(meta).map_err(|e| Error::Json { path: tmp.join(CONFIG_FILE), source: e })?;
    r3_data::write_atomic(&tmp.join(CONFIG_FILE), |w| w.write_all(format!("{text}\n").as_bytes()))?;
    if dir.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, "move the previous model folder aside", e))?;
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, "rename the model folder into place", e))?;
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, "remove the previous model folder", e))?;
    } else {
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, "rename the model folder into place", e))?;
    }
    Ok(())
}

/// Reads the `config.json` of a model folder.
///
/// # Errors
/// [`Error::Io`] or [`Error::Json`] naming the file.
pub fn read_meta(dir: &Path) -> Result<ModelMeta> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, "read", e))?;
    serde_json::from_str(&text).map_err(|e| Error::Json { path, source: e })
}

/// Loads a model folder onto `device`, in validation mode.
///
/// # Errors
/// As [`read_meta`], and [`Error::Record`] when `model.bpk` is missing or does not fit the configuration.
pub fn load(dir: &Path, device: &Device) -> Result<(BaselineModel, ModelMeta)> {
    let meta = read_meta(dir)?;
    let path: PathBuf = dir.join(WEIGHTS_FILE);
    let record = ModuleRecord::load(&path).map_err(|e| Error::Record { path: path.clone(), message: e.to_string() })?;
    let model = meta
        .experiment
        .init(meta.n_items, device)
        .try_load_record(record)
        .map_err(|e| Error::Record { path, message: e.to_string() })?;
    Ok((model.valid(), meta))
}
