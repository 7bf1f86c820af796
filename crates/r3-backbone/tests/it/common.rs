//! Helpers shared by the integration tests: the device, where the shared folder and the fetched models are.

use std::path::PathBuf;

use burn::tensor::Device;
use r3_backbone::{LoadedBackbone, load_gguf};

/// The device of the integration tests, f32: burn's default device, which is the flex CPU backend unless the
/// tests are built with a GPU backend (`--features burn/vulkan` or `burn/wgpu`; GPUs come first, `BURN_DEVICE`
/// overrides). CI runs the golden tests both ways (`cargo xtask ci`).
pub fn test_device() -> Device {
    Device::default()
}

/// Loads the fetched GGUF model `id` on [`test_device`].
pub fn load(id: &str) -> LoadedBackbone {
    load_gguf(&model_path(id), &test_device()).unwrap_or_else(|e| panic!("loading {id}: {e}"))
}

/// The shared golden folder ([`r3_data::shared_golden_dir`]).
pub fn golden_dir() -> PathBuf {
    r3_data::shared_golden_dir().expect("the shared golden folder ../shared/golden beside the repository root")
}

/// The fetched GGUF file of model `id` ([`r3_backbone::fetch::fetched_path`]); panics with its error (which says
/// how to fetch the model) when it is not fetched (CI fetches the models before the tests: `cargo xtask ci`).
pub fn model_path(id: &str) -> PathBuf {
    r3_backbone::fetch::fetched_path(id).unwrap_or_else(|e| panic!("{e}"))
}

/// An SFT example of `smollm2/latent_golden.json`.
#[derive(serde::Deserialize)]
pub struct LatentExample {
    /// The paper-template prompt, BOS first, ending with the thought id.
    pub prompt_ids: Vec<u32>,
    /// `encode('"' + title + '"\n') + [eos]`.
    pub target_ids: Vec<u32>,
    /// The target title.
    pub title: String,
}

/// A beam-search prompt of `smollm2/latent_golden.json`.
#[derive(serde::Deserialize)]
pub struct LatentBeam {
    /// The prompt (no thought token).
    pub prompt_ids: Vec<u32>,
    /// The user's true next title.
    pub target_title: String,
}

/// The ids of `smollm2/latent_golden.json` (the fields the id tests read).
#[derive(serde::Deserialize)]
pub struct LatentGolden {
    /// The id of `<|Thought|>` (49152).
    pub thought_id: u32,
    /// The EOS id.
    pub eos_id: u32,
    /// The BOS id.
    pub bos_id: u32,
    /// The SFT examples.
    pub examples: Vec<LatentExample>,
    /// The beam-search prompts.
    pub beam: Vec<LatentBeam>,
}
