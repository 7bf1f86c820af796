//! Where the data lives: the shared data folder beside the repository, or a folder the user names.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the default data folder.
pub const DATA_DIR_ENV: &str = "LATENTR3_DATA";

/// The repository root: the nearest folder above the current directory, or above this crate's sources, that
/// holds the workspace `Cargo.toml` and a `crates/` folder.
pub fn repo_root() -> Option<PathBuf> {
    let is_root = |p: &Path| p.join("Cargo.toml").is_file() && p.join("crates").is_dir();
    let from_cwd =
        std::env::current_dir().ok().and_then(|cwd| cwd.ancestors().find(|p| is_root(p)).map(Path::to_path_buf));
    from_cwd.or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().find(|p| is_root(p)).map(Path::to_path_buf))
}

/// The default data folder: `$LATENTR3_DATA` when set, else `../shared/datasets/amazon18` relative to the
/// repository root when that folder exists, else `None` (the user must pass `--data`).
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    shared_data_dir()
}

/// The shared data folder `../shared/datasets/amazon18` beside the repository root, when it exists (the
/// environment variable is not consulted: tests of the real files use this).
pub fn shared_data_dir() -> Option<PathBuf> {
    let dir = repo_root()?.join("..").join("shared").join("datasets").join("amazon18");
    dir.is_dir().then_some(dir)
}

/// The shared golden folder `../shared/golden` beside the repository root (reference outputs of PyTorch / HF
/// transformers, see its `README.md`), when it exists.
pub fn shared_golden_dir() -> Option<PathBuf> {
    let dir = repo_root()?.join("..").join("shared").join("golden");
    dir.is_dir().then_some(dir)
}
