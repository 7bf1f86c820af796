//! Helpers shared by the integration tests: the device, the golden folder, the fetched models.

use std::path::PathBuf;

use burn::tensor::Device;

/// The device of the integration tests: the flex CPU backend in f32.
pub fn test_device() -> Device {
    Device::flex()
}

/// The shared golden folder.
pub fn golden_dir() -> PathBuf {
    let dir = r3_data::repo_root().expect("the repository root").join("..").join("shared").join("golden");
    assert!(dir.is_dir(), "the shared golden folder {} is missing", dir.display());
    dir
}

/// The fetched GGUF file of model `id`.
///
/// # Panics
/// When the model has not been fetched: run `cargo run -p r3-cli -- model fetch {id}`.
pub fn model_path(id: &str) -> PathBuf {
    let p = r3_backbone::fetch::cached_path(id);
    assert!(
        p.is_file(),
        "model `{id}` is not fetched ({} missing): run `cargo run -p r3-cli -- model fetch {id}`",
        p.display()
    );
    p
}
