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

/// The environment variable that names the shared folder when it is not `../shared` beside the repository (a
/// machine that receives only the working tree, such as a lent GPU machine): it holds `datasets/amazon18/` and
/// `golden/`.
pub const SHARED_DIR_ENV: &str = "LATENTR3_SHARED";

/// The shared folder: `$LATENTR3_SHARED` when set, else `../shared` beside the repository root.
fn shared_dir() -> Option<PathBuf> {
    match std::env::var_os(SHARED_DIR_ENV) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(repo_root()?.join("..").join("shared")),
    }
}

/// The shared data folder `datasets/amazon18` of the shared folder (`../shared` beside the repository root, or
/// `$LATENTR3_SHARED`), when it exists. `$LATENTR3_DATA` is not consulted: tests of the real files use this.
pub fn shared_data_dir() -> Option<PathBuf> {
    let dir = shared_dir()?.join("datasets").join("amazon18");
    dir.is_dir().then_some(dir)
}

/// The golden folder `golden` of the shared folder (`../shared` beside the repository root, or
/// `$LATENTR3_SHARED`): reference outputs of PyTorch / HF transformers, see its `README.md`; when it exists.
pub fn shared_golden_dir() -> Option<PathBuf> {
    let dir = shared_dir()?.join("golden");
    dir.is_dir().then_some(dir)
}
