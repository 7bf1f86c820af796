//! Helpers shared by the integration tests: the device, where the shared folder and the fetched models are.

use std::path::PathBuf;

use burn::tensor::Device;
use r3_backbone::{LoadedBackbone, load_gguf};

/// The device of the integration tests: the flex CPU backend in f32.
pub fn test_device() -> Device {
    Device::flex()
}

/// Loads the fetched GGUF model `id` on [`test_device`].
pub fn load(id: &str) -> LoadedBackbone {
    load_gguf(&model_path(id), &test_device()).unwrap_or_else(|e| panic!("loading {id}: {e}"))
}

/// The shared golden folder.
pub fn golden_dir() -> PathBuf {
    let dir = r3_data::repo_root().expect("the repository root").join("..").join("shared").join("golden");
    assert!(dir.is_dir(), "the shared golden folder {} is missing", dir.display());
    dir
}

/// The fetched GGUF file of model `id` (`$LATENTR3_CACHE/{id}.gguf`, default `~/.cache/latentr3/models`).
///
/// # Panics
/// When the model has not been fetched: CI fetches it before the tests (`cargo xtask ci`); by hand, run
/// `cargo run -p r3-cli -- model fetch {id}`.
pub fn model_path(id: &str) -> PathBuf {
    let p = r3_backbone::fetch::cached_path(id);
    assert!(
        p.is_file(),
        "model `{id}` is not fetched ({} missing): run `cargo run -p r3-cli -- model fetch {id}`",
        p.display()
    );
    p
}
