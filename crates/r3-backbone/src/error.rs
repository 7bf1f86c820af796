//! The error type of `r3-backbone`.

use std::path::PathBuf;

/// Everything that can go wrong while reading or converting a checkpoint.
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
    /// A GGUF file that is truncated or malformed.
    #[error("{path}: corrupt GGUF at byte {offset}: {message}")]
    Gguf {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// Byte offset where the problem was found.
        offset: u64,
        /// What is wrong and, where possible, what to do.
        message: String,
    },
    /// A metadata key that is missing or has the wrong type.
    #[error("{path}: metadata `{key}`: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A model id that is not in [`crate::fetch::MODELS`].
    #[error("unknown model id `{id}`: known ids are {known}; or pass a .gguf file or a Hugging Face folder")]
    UnknownModel {
        /// The id given.
        id: String,
        /// The known ids.
        known: String,
    },
    /// Fetching a model failed.
    #[error("fetching `{id}`: {message}")]
    Fetch {
        /// The model id.
        id: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// A tensor type this loader cannot dequantise.
    #[error("tensor `{tensor}`: unsupported type {ggml_type}: {hint}")]
    Unsupported {
        /// The tensor name.
        tensor: String,
        /// The GGML type (name or id).
        ggml_type: String,
        /// What to do.
        hint: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
