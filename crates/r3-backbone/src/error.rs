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
    /// A file whose sha256 no longer matches the checksum recorded beside it.
    #[error("{path}: the file is damaged: its sha256 is {got}, but {expected} was recorded when it was fetched; {fix}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Its sha256 now.
        got: String,
        /// The recorded sha256.
        expected: String,
        /// What to do.
        fix: String,
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
    /// A decoder configuration that is inconsistent or unsupported.
    #[error("backbone config `{key}`: {message}")]
    Config {
        /// The offending field (HF or GGUF name).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A Hugging Face `config.json` that is not valid JSON or lacks a required field.
    #[error("config.json: {source}")]
    ConfigJson {
        /// The parse error (it names the missing field or the position).
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint tensor that is missing or has the wrong shape for the configuration.
    #[error("{path}: tensor `{tensor}`: {message}")]
    Tensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name in the checkpoint.
        tensor: String,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
