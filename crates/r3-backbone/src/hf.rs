//! Hugging Face model folders: `config.json` plus one or several `*.safetensors` files in PyTorch naming, read
//! into a [`Backbone`](crate::Backbone) ([`load_hf_dir`]) and written from one ([`export_hf_dir`]).
//!
//! The module tree of [`Backbone`](crate::Backbone) uses the Hugging Face names on purpose, so the mapping is
//! the PyTorch name without its `model.` prefix, with burn's RMSNorm gain `gamma` for `weight`:
//!
//! | safetensors (PyTorch) | module | layout |
//! |---|---|---|
//! | `model.embed_tokens.weight` | `embed_tokens.weight` | `[V, d]` both |
//! | `model.layers.N.self_attn.{q,k,v,o}_proj.weight` | `layers.N.self_attn.{q,k,v,o}_proj.weight` | `[out, in]` → `[in, out]` |
//! | `model.layers.N.self_attn.{q,k,v}_proj.bias` (Qwen2) | `layers.N.self_attn.{q,k,v}_proj.bias` | `[out]` |
//! | `model.layers.N.mlp.{gate,up,down}_proj.weight` | `layers.N.mlp.{gate,up,down}_proj.weight` | `[out, in]` → `[in, out]` |
//! | `model.layers.N.{input,post_attention}_layernorm.weight` | `layers.N.{input,post_attention}_layernorm.gamma` | `[d]` |
//! | `model.norm.weight` | `norm.gamma` | `[d]` |
//! | `lm_head.weight` (absent when tied) | `lm_head.weight` | `[V, d]` → `[d, V]` |
//!
//! burn-store does the work: a [`KeyRemapper`] drops (or, when saving, adds) the `model.` prefix, and
//! [`PyTorchToBurnAdapter`] / [`BurnToPyTorchAdapter`] transpose every `Linear` weight into a contiguous
//! tensor and rename the norm gains. Hugging Face checkpoints already use the rotate-half RoPE layout of
//! [`crate::rope`], so q and k need no permutation (only llama.cpp's GGUF files do, see [`crate::import`]).
//!
//! f16 and bf16 files are cast to the parameter dtype (the device's default float type unless
//! [`LoadOptions::dtype`] says otherwise) tensor by tensor as they are read, so the peak memory is the model in
//! its dtype plus the copies of the one tensor being converted (and the pages of the memory-mapped file).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::store::{
    ApplyError, BurnToPyTorchAdapter, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore, SafetensorsStoreError,
};
use burn::tensor::{DType, Device};

use crate::config::BackboneConfig;
use crate::error::{Error, Result};
use crate::import::{LoadOptions, LoadedBackbone};

/// The file name of the configuration in a Hugging Face folder.
pub const CONFIG_FILE: &str = "config.json";
/// The file name [`export_hf_dir`] gives the weights (the single-file name `transformers` writes).
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The file name of the tokenizer in a Hugging Face folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The file name of the tokenizer's special-token configuration in a Hugging Face folder.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// Loads a Llama or Qwen2 checkpoint from a Hugging Face folder onto `device` in the device's default float type.
///
/// The folder holds `config.json` (`model_type` `llama` or `qwen2`, see [`BackboneConfig::from_hf_json`]) and
/// the weights in one or several `*.safetensors` files (f32, f16 or bf16; sharded checkpoints are read file by
/// file, whatever their index says). Tensors the decoder does not use (a tied `lm_head.weight`, rotary
/// buffers of old checkpoints) are ignored.
///
/// # Errors
/// [`Error::Metadata`] naming `config.json` and the offending key, [`Error::Tensor`] naming the file and the
/// PyTorch name of a tensor that is missing, mis-shaped or not a float, [`Error::Io`] when a file cannot be read.
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<LoadedBackbone> {
    load_hf_dir_with(dir, device, &LoadOptions::default())
}

/// [`load_hf_dir`] with options (the parameter dtype).
///
/// # Errors
/// As [`load_hf_dir`].
pub fn load_hf_dir_with(dir: &Path, device: &Device, options: &LoadOptions) -> Result<LoadedBackbone> {
    let start = Instant::now();
    let config = read_config(dir)?;
    let files = safetensors_files(dir)?;
    let dtype = options.dtype.unwrap_or_else(|| device.settings().float_dtype.into());
    // Lazily initialised: burn-store reads each parameter's shape and device without materialising the random
    // initial values, then replaces them.
    let mut model = config.init(device);
    let mut applied = HashSet::new();
    let mut missing = Vec::new();
    let mut unused: Vec<(PathBuf, String)> = Vec::new();
    for file in &files {
        crate::fetch::check_marked(file)?;
        let mut store = SafetensorsStore::from_file(file)
            .remap(from_pytorch_names())
            .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(dtype)))
            .allow_partial(true)
            .validate(false);
        let result = model.load_from(&mut store).map_err(|e| store_error(file, "read", e))?;
        if let Some(e) = result.errors.first() {
            return Err(apply_error(file, e, result.errors.len()));
        }
        tracing::debug!(file = %file.display(), applied = result.applied.len(), unused = ?result.unused, "read safetensors");
        unused.extend(result.unused.iter().map(|u| (file.clone(), u.clone())));
        applied.extend(result.applied);
        missing = result.missing.into_iter().map(|(path, _)| path).collect();
    }
    missing.retain(|path| !applied.contains(path));
    if let Some(first) = missing.first() {
        let (path, place) = match files.as_slice() {
            [one] => (one.clone(), "the file".to_string()),
            _ => (dir.to_path_buf(), format!("all {} safetensors files of the folder", files.len())),
        };
        /// The number of further missing names listed after the first.
        const LISTED: usize = 4;
        let more = match missing.len() {
            1 => String::new(),
            n => format!(
                " (and {} more: {}{})",
                n - 1,
                missing[1..].iter().take(LISTED).map(|p| pytorch_name(p)).collect::<Vec<_>>().join(", "),
                if n - 1 > LISTED { ", ..." } else { "" }
            ),
        };
        return Err(Error::Tensor {
            path,
            tensor: pytorch_name(first),
            message: format!(
                "missing from {place}{more}; the `{}` configuration of config.json needs it{}",
                config.arch.name(),
                if first == "lm_head.weight" { " (set `tie_word_embeddings: true` if the head is tied)" } else { "" }
            ),
        });
    }
    check_all_used(dir, &config, &unused)?;
    check_finite_params(dir, &model)?;
    tracing::info!(
        dir = %dir.display(),
        arch = config.arch.name(),
        files = files.len(),
        params = model.num_params(),
        seconds = start.elapsed().as_secs_f64(),
        "loaded Hugging Face backbone"
    );
    Ok(LoadedBackbone { config, model })
}

/// Checks that every tensor of the folder's files was used: a `num_hidden_layers` smaller than the checkpoint's
/// would otherwise drop its last layers without a word. A tied `lm_head.weight` (some exports keep it) and the
/// rotary buffers of old checkpoints (`rotary_emb.inv_freq`), derived from the configuration, may stay unused.
fn check_all_used(dir: &Path, config: &BackboneConfig, unused: &[(PathBuf, String)]) -> Result<()> {
    let ignorable =
        |path: &str| path.ends_with("rotary_emb.inv_freq") || (config.tie_word_embeddings && path == "lm_head.weight");
    let unused: Vec<&(PathBuf, String)> = unused.iter().filter(|(_, p)| !ignorable(p)).collect();
    let Some((file, first)) = unused.first() else { return Ok(()) };
    let names: Vec<String> = unused.iter().take(5).map(|(_, p)| pytorch_name(p)).collect();
    let layers = unused.iter().any(|(_, p)| p.starts_with("layers."));
    Err(Error::Tensor {
        path: file.clone(),
        tensor: pytorch_name(first),
        message: format!(
            "not used by the configuration of {} ({} unused tensors: {}{}){}",
            dir.join(CONFIG_FILE).display(),
            unused.len(),
            names.join(", "),
            if unused.len() > 5 { ", ..." } else { "" },
            if layers {
                format!(": config.json says `num_hidden_layers` = {}: is it right?", config.n_layers)
            } else {
                ": is config.json the one of these weights?".to_string()
            }
        ),
    })
}

/// Checks that every parameter is finite (a sum over each tensor's absolute values, which NaN and inf
/// propagate to): damaged weights would otherwise generate garbage without an error.
fn check_finite_params(dir: &Path, model: &crate::Backbone) -> Result<()> {
    let check = |name: String, sum: f32| -> Result<()> {
        if sum.is_finite() {
            return Ok(());
        }
        Err(Error::Tensor {
            path: dir.to_path_buf(),
            tensor: pytorch_name(&name),
            message: "holds NaN or infinite values: the weights are damaged; export or download them again".into(),
        })
    };
    macro_rules! finite {
        ($name:expr, $param:expr) => {
            check($name, $param.val().abs().sum().into_scalar::<f32>())?
        };
    }
    finite!("embed_tokens.weight".into(), model.embed_tokens.weight);
    for (n, layer) in model.layers.iter().enumerate() {
        let a = &layer.self_attn;
        for (t, l) in [("q_proj", &a.q_proj), ("k_proj", &a.k_proj), ("v_proj", &a.v_proj), ("o_proj", &a.o_proj)] {
            finite!(format!("layers.{n}.self_attn.{t}.weight"), l.weight);
            if let Some(b) = &l.bias {
                finite!(format!("layers.{n}.self_attn.{t}.bias"), b);
            }
        }
        let m = &layer.mlp;
        for (t, l) in [("gate_proj", &m.gate_proj), ("up_proj", &m.up_proj), ("down_proj", &m.down_proj)] {
            finite!(format!("layers.{n}.mlp.{t}.weight"), l.weight);
        }
        finite!(format!("layers.{n}.input_layernorm.gamma"), layer.input_layernorm.gamma);
        finite!(format!("layers.{n}.post_attention_layernorm.gamma"), layer.post_attention_layernorm.gamma);
    }
    finite!("norm.gamma".into(), model.norm.gamma);
    if let Some(head) = &model.lm_head {
        finite!("lm_head.weight".into(), head.weight);
    }
    Ok(())
}

/// Writes `loaded` and `tokenizer` as a Hugging Face folder that [`load_hf_dir`] and `transformers`
/// (`AutoModelForCausalLM.from_pretrained(dir)`, `AutoTokenizer.from_pretrained(dir)`) read back:
/// `config.json` ([`BackboneConfig::to_hf_json`]), `model.safetensors` (f32, PyTorch names and `[out, in]`
/// matrices; a tied model has no `lm_head.weight`), `tokenizer.json` and `tokenizer_config.json`.
///
/// The folder is written next to `dir` under a temporary name and renamed into place once complete, so `dir`
/// either holds the whole export or does not exist. `dir` must not exist or be an empty folder.
///
/// # Errors
/// [`Error::Io`] when `dir` is a non-empty folder or a file cannot be written.
pub fn export_hf_dir(loaded: &LoadedBackbone, tokenizer: &r3_data::Tokenizer, dir: &Path) -> Result<()> {
    let start = Instant::now();
    let io = |path: &Path, action, source| Error::Io { path: path.to_path_buf(), action, source };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(io(
                    dir,
                    "export a Hugging Face folder",
                    std::io::Error::new(
                        ErrorKind::AlreadyExists,
                        "the folder exists and is not empty: remove it or choose another output folder",
                    ),
                ));
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir, "read the output folder", e)),
    }
    let name = dir.file_name().ok_or_else(|| {
        io(dir, "export a Hugging Face folder", std::io::Error::new(ErrorKind::InvalidInput, "not a folder name"))
    })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, "create the parent folder", e))?;
    let tmp = parent.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, "remove a stale temporary folder", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, "create the temporary folder", e))?;
    if let Err(e) = write_folder(loaded, tokenizer, &tmp) {
        // The error is the one worth reporting; a leftover temporary folder is harmless.
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| io(dir, "replace the empty output folder", e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| io(dir, "move the finished export into place", e))?;
    tracing::info!(dir = %dir.display(), seconds = start.elapsed().as_secs_f64(), "exported Hugging Face folder");
    Ok(())
}

/// Writes the four files of an export into the (new, empty) folder `dir`.
fn write_folder(loaded: &LoadedBackbone, tokenizer: &r3_data::Tokenizer, dir: &Path) -> Result<()> {
    let config_path = dir.join(CONFIG_FILE);
    std::fs::write(&config_path, loaded.config.to_hf_json()).map_err(|source| Error::Io {
        path: config_path.clone(),
        action: "write",
        source,
    })?;

    let weights = dir.join(WEIGHTS_FILE);
    // `transformers` 4.x refuses safetensors files whose metadata `format` is not `pt`, which `save_pretrained`
    // writes; burn-store's default is `safetensors`.
    let mut store = SafetensorsStore::from_file(&weights)
        .remap(to_pytorch_names())
        .with_to_adapter(BurnToPyTorchAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .metadata("format", "pt");
    loaded.model.save_into(&mut store).map_err(|e| store_error(&weights, "write", e))?;
    // burn-store writes through a private (0600) scratch file; give the weights the permissions of the other files.
    let permissions = std::fs::metadata(&config_path)
        .map_err(|source| Error::Io { path: config_path.clone(), action: "read the permissions of", source })?
        .permissions();
    std::fs::set_permissions(&weights, permissions).map_err(|source| Error::Io {
        path: weights.clone(),
        action: "set the permissions of",
        source,
    })?;
    // A checksum marker beside the weights, so that a later load notices damage (see `fetch::check_marked`).
    crate::fetch::write_marker(&weights, &crate::fetch::sha256_of(&weights)?)?;

    let tok_err = |path: PathBuf| {
        move |e: r3_data::Error| Error::Io { path, action: "write", source: std::io::Error::other(e.to_string()) }
    };
    let tok_path = dir.join(TOKENIZER_FILE);
    tokenizer.save(&tok_path).map_err(tok_err(tok_path.clone()))?;
    let tok_config = dir.join(TOKENIZER_CONFIG_FILE);
    tokenizer.save_config(&tok_config).map_err(tok_err(tok_config.clone()))?;
    Ok(())
}

/// Reads and resolves `dir/config.json`; errors name the file and the key.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Metadata`] naming the file and the key otherwise.
pub fn read_config(dir: &Path) -> Result<BackboneConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        action: "read the Hugging Face configuration",
        source,
    })?;
    BackboneConfig::from_hf_json(&text).map_err(|e| match e {
        Error::Config { key, message } => Error::Metadata { path, key, message },
        Error::ConfigJson { source } => {
            let message = source.to_string();
            // serde names a missing field as "missing field `name`"; anything else is a syntax or type error at a
            // position, which the message gives.
            let key = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .unwrap_or("(json)")
                .to_string();
            Error::Metadata { path, key, message }
        }
        other => other,
    })
}

/// The `*.safetensors` files of `dir`, sorted by name (the shard order of sharded checkpoints).
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        action: "list the Hugging Face folder",
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io { path: dir.to_path_buf(), action: "list", source })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "safetensors") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Tensor {
            path: dir.to_path_buf(),
            tensor: "*.safetensors".into(),
            message: "the folder has no safetensors file: a Hugging Face folder holds config.json and the weights \
                      in model.safetensors (or model-0000N-of-0000M.safetensors)"
                .into(),
        });
    }
    Ok(files)
}

/// PyTorch names → module paths: drop the `model.` prefix of the decoder (the LM head has none).
fn from_pytorch_names() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![(r"^model\.", "")]).expect("a valid regex")
}

/// Module paths → PyTorch names: the decoder's tensors get the `model.` prefix, the LM head keeps its name.
fn to_pytorch_names() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![(r"^(embed_tokens|layers|norm)\.", "model.$1.")]).expect("a valid regex")
}

/// The PyTorch name of the module path `path` (the name the user will find in the checkpoint).
pub fn pytorch_name(path: &str) -> String {
    let path = path.strip_suffix(".gamma").map_or_else(|| path.to_string(), |p| format!("{p}.weight"));
    if path.starts_with("lm_head.") { path } else { format!("model.{path}") }
}

fn store_error(path: &Path, action: &'static str, e: SafetensorsStoreError) -> Error {
    let source = match e {
        SafetensorsStoreError::Io(e) => e,
        other => std::io::Error::new(ErrorKind::InvalidData, other.to_string()),
    };
    Error::Io { path: path.to_path_buf(), action, source }
}

fn apply_error(file: &Path, e: &ApplyError, count: usize) -> Error {
    let (path, message) = match e {
        ApplyError::ShapeMismatch { path, expected, found } => (
            path,
            format!(
                "shape {:?} (after transposing PyTorch `[out, in]` matrices) does not match the configuration's {:?}",
                found.as_slice(),
                expected.as_slice()
            ),
        ),
        ApplyError::DTypeMismatch { path, found, .. } => {
            (path, format!("dtype {found:?} is not a float type (expected f32, f16 or bf16)"))
        }
        ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => (path, message.clone()),
    };
    let more = if count > 1 { format!(" ({} more tensors failed)", count - 1) } else { String::new() };
    Error::Tensor { path: file.to_path_buf(), tensor: pytorch_name(path), message: format!("{message}{more}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;
    use crate::test_device;
    use burn::tensor::{Distribution, Int, Tensor, TensorData};
    use r3_data::{BpeVocab, PreTokenizerKind, Tokenizer};

    fn tiny_tokenizer() -> Tokenizer {
        Tokenizer::from_bpe_vocab(BpeVocab {
            tokens: ["a", "b", "ab", "<|end|>"].map(String::from).to_vec(),
            token_types: vec![1, 1, 1, 3],
            merges: vec!["a b".into()],
            pre: PreTokenizerKind::Smollm,
            bos: None,
            eos: Some(3),
            pad: None,
            add_bos: false,
        })
        .unwrap()
    }

    fn randomized(arch: Arch, tied: bool, device: &Device) -> LoadedBackbone {
        let config = BackboneConfig::new(arch, 61, 32, 2, 4, 2, 8, 40, 10_000.0, 1e-6, arch == Arch::Qwen2, tied, 128);
        device.seed(5);
        let mut model = config.init(device);
        // Non-trivial gains and biases, so that a mix-up of norms or a dropped bias would show.
        model.norm.gamma =
            burn::module::Param::from_tensor(Tensor::random([32], Distribution::Uniform(0.5, 1.5), device));
        LoadedBackbone { config, model }
    }

    #[test]
    fn module_paths_map_to_pytorch_names() {
        assert_eq!(pytorch_name("layers.3.input_layernorm.gamma"), "model.layers.3.input_layernorm.weight");
        assert_eq!(pytorch_name("layers.0.self_attn.q_proj.bias"), "model.layers.0.self_attn.q_proj.bias");
        assert_eq!(pytorch_name("norm.gamma"), "model.norm.weight");
        assert_eq!(pytorch_name("lm_head.weight"), "lm_head.weight");
    }

    /// Export then load gives bit-identical logits, for both families, tied and untied.
    #[test]
    fn export_then_load_is_exact() {
        let device = test_device();
        for (arch, tied) in [(Arch::Llama, true), (Arch::Qwen2, false)] {
            let original = randomized(arch, tied, &device);
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("out");
            export_hf_dir(&original, &tiny_tokenizer(), &dir).unwrap();
            let mut names: Vec<String> =
                std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            let marker = format!("{WEIGHTS_FILE}.sha256");
            assert_eq!(names, [CONFIG_FILE, WEIGHTS_FILE, marker.as_str(), TOKENIZER_FILE, TOKENIZER_CONFIG_FILE]);
            let back = load_hf_dir(&dir, &device).unwrap();
            assert_eq!(back.config.to_string(), original.config.to_string());
            let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 5, 9, 60, 2], [1, 5]), &device);
            let logits = |m: &crate::Backbone| m.logits(m.hidden(crate::HiddenInput::new(m.embed(ids.clone()))).hidden);
            let d = (logits(&original.model) - logits(&back.model)).abs().max().into_scalar::<f32>();
            assert_eq!(d, 0.0, "{arch:?} tied={tied}: maxdiff {d}");
            // A second export into the now non-empty folder is refused.
            let e = export_hf_dir(&original, &tiny_tokenizer(), &dir).unwrap_err().to_string();
            assert!(e.contains("not empty"), "{e}");
        }
    }

    /// config.json must agree with the tensors: a layer count one too small leaves a layer's tensors unused (an
    /// error naming them), one too large misses tensors; a NaN in the weights is an error naming the tensor.
    #[test]
    fn config_and_tensors_must_agree_and_weights_be_finite() {
        let device = test_device();
        let original = randomized(Arch::Qwen2, true, &device);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        export_hf_dir(&original, &tiny_tokenizer(), &dir).unwrap();
        let config_text = std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
        let with_layers = |n: usize| {
            let mut v: serde_json::Value = serde_json::from_str(&config_text).unwrap();
            v["num_hidden_layers"] = n.into();
            std::fs::write(dir.join(CONFIG_FILE), v.to_string()).unwrap();
            load_hf_dir(&dir, &device).map(|_| ()).unwrap_err().to_string()
        };
        let e = with_layers(1);
        assert!(
            e.contains("model.layers.1.") && e.contains("not used") && e.contains("`num_hidden_layers` = 1"),
            "{e}"
        );
        let e = with_layers(3);
        assert!(e.contains("model.layers.2.") && e.contains("missing"), "{e}");
        std::fs::write(dir.join(CONFIG_FILE), &config_text).unwrap();
        load_hf_dir(&dir, &device).unwrap();

        let mut damaged = randomized(Arch::Qwen2, true, &device);
        let w = &mut damaged.model.layers[1].mlp.up_proj.weight;
        let mut values: Vec<f32> = w.val().into_data().try_to_vec().unwrap();
        values[3] = f32::INFINITY;
        *w = burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(values, [32, 40]), &device));
        let dir = tmp.path().join("damaged");
        export_hf_dir(&damaged, &tiny_tokenizer(), &dir).unwrap();
        let e = load_hf_dir(&dir, &device).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("model.layers.1.mlp.up_proj.weight") && e.contains("NaN or infinite"), "{e}");

        // Bytes of the weights changed after the export: the checksum marker written beside them notices.
        let dir = tmp.path().join("out");
        let weights = dir.join(WEIGHTS_FILE);
        let mut bytes = std::fs::read(&weights).unwrap();
        let n = bytes.len();
        bytes[n - 100..n - 96].copy_from_slice(&1.5f32.to_le_bytes());
        std::fs::write(&weights, bytes).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        std::fs::File::options().write(true).open(&weights).unwrap().set_modified(later).unwrap();
        let e = load_hf_dir(&dir, &device).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("the file is damaged"), "{e}");
    }
}
