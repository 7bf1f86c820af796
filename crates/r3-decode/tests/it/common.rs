//! Helpers shared by the integration tests: the device, the golden folder, the fetched models.

use std::path::PathBuf;

use burn::tensor::Device;
use proptest::prelude::*;
use r3_backbone::{Arch, Backbone, BackboneConfig};

/// The vocabulary of the tiny random decoders of the property tests.
pub const V: usize = 24;
/// Their padding id.
pub const PAD: u32 = 0;
/// Their end-of-sequence id.
pub const EOS: u32 = 2;

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

/// A tiny random Qwen2 decoder over [`V`] tokens (seeded).
pub fn tiny_model(device: &Device, seed: u64) -> Backbone {
    device.seed(seed);
    BackboneConfig::new(Arch::Qwen2, V, 16, 2, 4, 2, 4, 32, 10_000.0, 1e-6, true, true, 256).init(device)
}

/// A random catalogue: 1..=`max_paths` titles of 1..5 tokens in `lowest..V`, each followed by [`EOS`] (duplicates
/// allowed).
pub fn titles(max_paths: usize, lowest: u32) -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(lowest..V as u32, 1..5), 1..=max_paths).prop_map(|v| {
        v.into_iter()
            .map(|mut t| {
                t.push(EOS);
                t
            })
            .collect()
    })
}

/// A random prompt of 1..9 tokens.
pub fn prompt() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(1u32..V as u32, 1..9)
}
