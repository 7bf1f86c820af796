//! The error type of `r3-latent`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring LatentRATT or reading and writing its weights.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A tensor of a weight file that is missing, mis-shaped or not a float tensor.
    #[error("{path}: tensor `{tensor}`: {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the file (PyTorch naming).
        tensor: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A configuration value that cannot work.
    #[error("latent configuration `{key}`: {message}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
