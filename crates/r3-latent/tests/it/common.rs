//! Helpers shared by the integration tests: the device, the golden folder, the fetched models, the golden
//! safetensors tensors and their comparison. The integration tests of r3-grpo include this file too (`#[path]`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::Device;
pub use r3_latent::store::HostTensor;

/// The device of the integration tests, f32 with autodiff (gradients are checked): burn's default device, which
/// is the flex CPU backend unless the tests are built with a GPU backend (`--features burn/vulkan` or
/// `burn/wgpu`; GPUs come first, `BURN_DEVICE` overrides). CI runs the golden tests both ways (`cargo xtask ci`).
pub fn test_device() -> Device {
    Device::default().autodiff()
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

/// Reads every F32 tensor of a safetensors file ([`r3_latent::store::read_f32_tensors`]).
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, HostTensor>> {
    Ok(r3_latent::store::read_f32_tensors(path)?)
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
