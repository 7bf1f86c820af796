//! Model folders: `config.json` (the resolved experiment, the catalogue size and the stem) and `model.bpk` (the
//! weights; AlphaRec's also hold its frozen language representations and train graph). A folder is written beside its final place and renamed into it, so a reader never sees half of one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{BaselineExperiment, BaselineModel, ModelKind};

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
    /// AlphaRec's tensor shapes (absent for the other models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpharec: Option<AlphaRecShape>,
}

/// The shapes of an AlphaRec model beyond its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlphaRecShape {
    /// The number of graph users (train users).
    pub n_users: usize,
    /// The width of the language representations.
    pub d_lm: usize,
    /// The backbone that computed them.
    pub backbone: String,
}

impl AlphaRecShape {
    /// The shape of `model` (`None` unless it is an AlphaRec), with the name of its backbone.
    pub fn of(model: &BaselineModel, backbone: &str) -> Option<Self> {
        match model {
            BaselineModel::AlphaRec(m) => {
                Some(AlphaRecShape { n_users: m.n_users(), d_lm: m.d_lm(), backbone: backbone.into() })
            }
            _ => None,
        }
    }
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
    let shell = match (meta.experiment.model, &meta.alpharec) {
        (ModelKind::Alpharec, Some(s)) => {
            BaselineModel::AlphaRec(meta.experiment.alpharec.config(meta.n_items, s.d_lm).init_shell(s.n_users, device))
        }
        (ModelKind::Alpharec, None) => {
            return Err(Error::Record {
                path: dir.join(CONFIG_FILE),
                message: "an AlphaRec model without its `alpharec` shapes".into(),
            });
        }
        _ => meta.experiment.init(meta.n_items, device),
    };
    let model = shell.try_load_record(record).map_err(|e| Error::Record { path, message: e.to_string() })?;
    Ok((model.valid(), meta))
}

/// The file of AlphaRec's item language representations in a run folder.
pub const TEXT_EMBEDDINGS_FILE: &str = "text_embeddings.safetensors";

/// Item language representations: `n_titles` rows of `d` values, computed by `backbone` from the catalogue
/// titles whose [`titles_hash`] is `titles_hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEmbeddings {
    /// The backbone (as named on the command line or in the experiment file).
    pub backbone: String,
    /// [`titles_hash`] of the titles, in catalogue order.
    pub titles_hash: String,
    /// The width of a representation.
    pub d: usize,
    /// `n_titles · d` values, row-major.
    pub values: Vec<f32>,
}

impl TextEmbeddings {
    /// The number of rows.
    pub fn n_titles(&self) -> usize {
        self.values.len() / self.d.max(1)
    }
}

/// A hex FNV-1a 64 hash of titles (each followed by a newline), to recognise a catalogue on reuse.
pub fn titles_hash<S: AsRef<str>>(titles: &[S]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in titles {
        for &b in t.as_ref().as_bytes().iter().chain(b"\n") {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Writes text embeddings as a safetensors file (one F32 tensor `text_embeddings` `[n_titles, d]`; the backbone,
/// title count and titles hash in `__metadata__`), atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_text_embeddings(path: &Path, e: &TextEmbeddings) -> Result<()> {
    let n = e.n_titles();
    let header = serde_json::json!({
        "__metadata__": {
            "backbone": e.backbone,
            "n_titles": n.to_string(),
            "titles_hash": e.titles_hash,
        },
        "text_embeddings": { "dtype": "F32", "shape": [n, e.d], "data_offsets": [0, n * e.d * 4] },
    });
    let mut header = header.to_string().into_bytes();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    r3_data::write_atomic(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        let bytes: Vec<u8> = e.values.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_all(&bytes)
    })?;
    Ok(())
}

/// Reads a file of [`write_text_embeddings`].
///
/// # Errors
/// [`Error::Io`], or [`Error::Record`] when the file is not such a safetensors file.
pub fn read_text_embeddings(path: &Path) -> Result<TextEmbeddings> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let bad = |message: &str| Error::Record {
        path: path.to_path_buf(),
        message: format!("{message} (delete it to recompute the text embeddings)"),
    };
    let len = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
    let len = len.filter(|&l| 8 + l <= bytes.len()).ok_or_else(|| bad("not a safetensors file"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + len]).map_err(|e| bad(&format!("safetensors header: {e}")))?;
    let meta = &header["__metadata__"];
    let t = &header["text_embeddings"];
    if t["dtype"] != "F32" {
        return Err(bad("the tensor `text_embeddings` is missing or not F32"));
    }
    let shape: Vec<usize> =
        t["shape"].as_array().into_iter().flatten().filter_map(|x| x.as_u64()).map(|x| x as usize).collect();
    let offs: Vec<usize> =
        t["data_offsets"].as_array().into_iter().flatten().filter_map(|x| x.as_u64()).map(|x| x as usize).collect();
    let data = &bytes[8 + len..];
    let (&[n, d], &[a, b]) = (shape.as_slice(), offs.as_slice()) else {
        return Err(bad("`text_embeddings` needs a 2-d shape and two data offsets"));
    };
    if b - a != n * d * 4 || b > data.len() || a > b || d == 0 {
        return Err(bad("the data offsets do not fit the shape"));
    }
    let values = data[a..b].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let text = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
    if text("n_titles") != n.to_string() {
        return Err(bad("the title count of the metadata is not the tensor's"));
    }
    Ok(TextEmbeddings { backbone: text("backbone"), titles_hash: text("titles_hash"), d, values })
}
