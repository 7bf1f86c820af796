//! LatentRATT weights in safetensors files with PyTorch names and layout, so that checkpoints move between this
//! crate and PyTorch code (the golden reference, the official implementation after a rename).
//!
//! | module path | file name (prefix `latentratt.`) | file layout |
//! |---|---|---|
//! | `q.weight` `[in, out]` | `latentratt.q.weight` | `[out, in]` |
//! | `q.bias` | `latentratt.q.bias` | `[out]` |
//! | `k.*`, `v.*`, `out.*` | `latentratt.k.*`, … | as `q` |
//!
//! The official code names the same tensors `attention.query`, `attention.key` and `attention.value`; the
//! prefix is a parameter, the inner names are ours.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;

use burn::store::{
    ApplyError, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, SafetensorsStore,
    SafetensorsStoreError, bridge,
};
use burn::tensor::DType;

use crate::error::{Error, Result};
use crate::ratt::LatentRatt;

/// The prefix of LatentRATT's tensors in our checkpoints and in the golden reference.
pub const DEFAULT_PREFIX: &str = "latentratt.";

impl LatentRatt {
    /// Reads the layer's tensors named `{prefix}q.weight`, … (PyTorch `[out, in]` layout) from a safetensors
    /// file; other tensors of the file are ignored.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read or parsed, [`Error::Tensor`] for a missing or mis-shaped tensor
    /// or an output projection that the file and the configuration disagree on.
    pub fn load_safetensors(&mut self, path: &Path, prefix: &str) -> Result<()> {
        let mut store = SafetensorsStore::from_file(path)
            .remap(prefix_remapper(&format!("^{}", escape(prefix)), ""))
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false);
        let result = self.load_from(&mut store).map_err(|e| store_error(path, "read LatentRATT weights from", e))?;
        if let Some(e) = result.errors.first() {
            return Err(apply_error(path, prefix, e));
        }
        if let Some((missing, _)) = result.missing.first() {
            let hint = if missing.starts_with("out.") {
                "the configuration has an output projection (`out_proj: true`) but the checkpoint has none"
            } else {
                "missing; check the prefix (our checkpoints use `latentratt.`)"
            };
            return Err(Error::Tensor {
                path: path.to_path_buf(),
                tensor: format!("{prefix}{missing}"),
                message: hint.into(),
            });
        }
        if let Some(extra) = result.unused.iter().find(|name| name.starts_with("out.")) {
            return Err(Error::Tensor {
                path: path.to_path_buf(),
                tensor: format!("{prefix}{extra}"),
                message:
                    "the checkpoint has an output projection; set `out_proj: true` in the LatentRATT configuration"
                        .into(),
            });
        }
        tracing::debug!(path = %path.display(), applied = result.applied.len(), "read LatentRATT weights");
        Ok(())
    }

    /// Writes the layer's tensors as `{prefix}q.weight`, … in PyTorch layout (f32 or the parameters' dtype) to a
    /// new safetensors file (metadata `format: pt`, which `transformers` requires).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save_safetensors(&self, path: &Path, prefix: &str) -> Result<()> {
        let mut store = SafetensorsStore::from_file(path)
            .remap(prefix_remapper(r"^", &escape_replacement(prefix)))
            .with_to_adapter(BurnToPyTorchAdapter)
            .metadata("format", "pt");
        self.save_into(&mut store).map_err(|e| store_error(path, "write LatentRATT weights to", e))
    }
}

/// One f32 tensor of a safetensors file, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The shape (PyTorch order).
    pub shape: Vec<usize>,
    /// The values in row-major order.
    pub data: Vec<f32>,
}

/// Reads every tensor of a safetensors file as host f32 values, by name, as stored (PyTorch names and layout);
/// the golden tests compare them with ours.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read or parsed, [`Error::Tensor`] naming a tensor that is not F32 or
/// whose data cannot be read.
pub fn read_f32_tensors(path: &Path) -> Result<HashMap<String, HostTensor>> {
    let mut store = SafetensorsStore::from_file(path);
    let tensors = store.get_all_tensors().map_err(|e| store_error(path, "read tensors from", e))?;
    let mut out = HashMap::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let bad = |message: String| Error::Tensor { path: path.to_path_buf(), tensor: name.clone(), message };
        if tensor.dtype != DType::F32 {
            return Err(bad(format!("is {:?}, expected F32", tensor.dtype)));
        }
        let data = bridge::to_data(tensor).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let data = data.try_to_vec::<f32>().map_err(|e| bad(format!("cannot be read as f32: {e:?}")))?;
        out.insert(name.clone(), HostTensor { shape: tensor.shape.to_vec(), data });
    }
    Ok(out)
}

/// A remapper with one rule (the pattern is built from escaped text, so it always compiles).
fn prefix_remapper(pattern: &str, replacement: &str) -> KeyRemapper {
    KeyRemapper::from_patterns(vec![(pattern, replacement)]).expect("an escaped literal is a valid regex")
}

/// `text` with the regex metacharacters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` with `$` escaped for use as a regex replacement.
fn escape_replacement(text: &str) -> String {
    text.replace('$', "$$")
}

fn store_error(path: &Path, action: &'static str, e: SafetensorsStoreError) -> Error {
    let source = match e {
        SafetensorsStoreError::Io(e) => e,
        other => std::io::Error::new(ErrorKind::InvalidData, other.to_string()),
    };
    Error::Io { path: path.to_path_buf(), action, source }
}

fn apply_error(file: &Path, prefix: &str, e: &ApplyError) -> Error {
    let (name, message) = match e {
        ApplyError::ShapeMismatch { path, expected, found } => (
            path,
            format!(
                "shape {:?} (after transposing the PyTorch `[out, in]` matrix) does not match the layer's {:?}; is \
                 `d_model` the backbone's hidden size?",
                found.as_slice(),
                expected.as_slice()
            ),
        ),
        ApplyError::DTypeMismatch { path, found, .. } => {
            (path, format!("dtype {found:?} is not a float type (expected f32, f16 or bf16)"))
        }
        ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => (path, message.clone()),
    };
    Error::Tensor { path: file.to_path_buf(), tensor: format!("{prefix}{name}"), message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratt::LatentRattConfig;
    use crate::test_device;

    fn flat(ratt: &LatentRatt) -> Vec<f32> {
        let mut out = Vec::new();
        for l in [&ratt.q, &ratt.k, &ratt.v] {
            out.extend(l.weight.val().into_data().try_to_vec::<f32>().expect("f32"));
            out.extend(l.bias.as_ref().expect("bias").val().into_data().try_to_vec::<f32>().expect("f32"));
        }
        out
    }

    /// Save then load restores the values; the file holds PyTorch `[out, in]` matrices under the prefix.
    #[test]
    fn round_trip_in_pytorch_layout() {
        let device = test_device();
        device.seed(1);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ratt.safetensors");
        let a = LatentRattConfig::new(6).init(&device);
        a.save_safetensors(&path, "latentratt.").expect("save");

        // The file: 8-byte header length, JSON header, little-endian data; q.weight is W_qᵀ ([out, in]).
        let bytes = std::fs::read(&path).expect("read back");
        let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).expect("JSON header");
        assert!(header.get("latentratt.v.bias").is_some(), "{header}");
        let entry = &header["latentratt.q.weight"];
        assert_eq!(entry["shape"], serde_json::json!([6, 6]));
        let start = 8 + header_len + entry["data_offsets"][0].as_u64().expect("offset") as usize;
        let stored: Vec<f32> =
            bytes[start..start + 144].chunks(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let want: Vec<f32> = a.q.weight.val().transpose().into_data().try_to_vec().expect("f32");
        assert_eq!(stored, want);
        // The host reader gives the same tensors by their stored names.
        let host = read_f32_tensors(&path).expect("read as host tensors");
        assert_eq!(host.len(), 6, "{:?}", host.keys().collect::<Vec<_>>());
        assert_eq!(host["latentratt.q.weight"], HostTensor { shape: vec![6, 6], data: want });

        let mut b = LatentRattConfig::new(6).init(&device);
        assert_ne!(flat(&a), flat(&b));
        b.load_safetensors(&path, "latentratt.").expect("load");
        assert_eq!(flat(&a), flat(&b));

        let mut wrong = LatentRattConfig::new(8).init(&device);
        let e = wrong.load_safetensors(&path, "latentratt.").expect_err("shape mismatch");
        assert!(e.to_string().contains("latentratt.") && e.to_string().contains("d_model"), "{e}");
        let mut other = LatentRattConfig::new(6).init(&device);
        let e = other.load_safetensors(&path, "attention.").expect_err("wrong prefix");
        assert!(e.to_string().contains("tensor `attention.") && e.to_string().contains("missing"), "{e}");
    }
}
