//! Helpers shared by the integration tests: where the shared folder and the fetched models are.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).ancestors().find(|p| p.join("crates").is_dir()).unwrap().to_path_buf()
}

/// The shared golden folder.
pub fn golden_dir() -> PathBuf {
    let dir = repo_root().join("..").join("shared").join("golden");
    assert!(dir.is_dir(), "the shared golden folder {} is missing", dir.display());
    dir
}

/// The fetched GGUF file of model `id` (`$LATENTR3_CACHE/{id}.gguf`, default `~/.cache/latentr3/models`).
///
/// # Panics
/// When the model has not been fetched: CI fetches it before the tests (`cargo xtask ci`); by hand, run
/// `cargo run -p r3-cli -- model fetch {id}`.
pub fn model_path(id: &str) -> PathBuf {
    let cache = std::env::var_os("LATENTR3_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache").join("latentr3").join("models")
    });
    let p = cache.join(format!("{id}.gguf"));
    assert!(
        p.is_file(),
        "model `{id}` is not fetched ({} missing): run `cargo run -p r3-cli -- model fetch {id}`",
        p.display()
    );
    p
}
