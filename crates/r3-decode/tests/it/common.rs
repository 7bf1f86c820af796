//! Helpers shared by the integration tests: the device, the golden folder, the fetched models.

use std::path::PathBuf;

use burn::tensor::Device;

/// The device of the integration tests, f32: burn's default device, which is the flex CPU backend unless the
/// tests are built with a GPU backend (`--features burn/vulkan` or `burn/wgpu`; GPUs come first, `BURN_DEVICE`
/// overrides). CI runs the golden tests both ways (`cargo xtask ci`).
pub fn test_device() -> Device {
    Device::default()
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
