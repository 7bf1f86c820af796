//! Helpers shared by the integration tests: the device, the golden folder, the fetched models, and a reader of
//! the golden safetensors tensors (8-byte header length, JSON header, raw little-endian f32 data).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;

/// The device of the integration tests: the flex CPU backend in f32, with autodiff (gradients are checked).
pub fn test_device() -> Device {
    Device::flex().autodiff()
}

/// The shared golden folder ([`r3_data::shared_golden_dir`]).
pub fn golden_dir() -> PathBuf {
    r3_data::shared_golden_dir().expect("the shared golden folder ../shared/golden beside the repository root")
}

/// The fetched GGUF file of model `id` ([`r3_backbone::fetch::fetched_path`]); panics with its error (which says
/// how to fetch the model) when it is not fetched.
pub fn model_path(id: &str) -> PathBuf {
    r3_backbone::fetch::fetched_path(id).unwrap_or_else(|e| panic!("{e}"))
}

/// One f32 tensor of a safetensors file.
#[derive(Clone, Debug)]
pub struct HostTensor {
    /// The shape (PyTorch order).
    pub shape: Vec<usize>,
    /// The values in row-major order.
    pub data: Vec<f32>,
}

/// Reads every F32 tensor of a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, HostTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(bytes.len() >= 8, "{}: shorter than the 8-byte header length", path.display());
    let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    ensure!(bytes.len() >= 8 + n, "{}: truncated header", path.display());
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n])?;
    let data = &bytes[8 + n..];
    let mut out = HashMap::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        if entry["dtype"] != "F32" {
            bail!("{}: tensor {name} is {}, expected F32", path.display(), entry["dtype"]);
        }
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone())?;
        let [start, end]: [usize; 2] = serde_json::from_value(entry["data_offsets"].clone())?;
        ensure!(end <= data.len() && start <= end, "{}: tensor {name} lies outside the file", path.display());
        let values = data[start..end].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.insert(name, HostTensor { shape, data: values });
    }
    Ok(out)
}

/// The largest absolute difference of two equally long slices.
pub fn maxdiff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The Euclidean norm.
pub fn norm(a: &[f32]) -> f64 {
    a.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
}
