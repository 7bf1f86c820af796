//! The error type of `r3-trainer`.

use std::path::PathBuf;

/// Everything the generic loop can fail at: the run folder, its checkpoints and metrics, the data-parallel peers.
///
/// Every variant names the file or the optimizer step concerned and says how to fix the problem. A stage's own
/// error type converts from it (`Stage::Error: From<Error>`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file or folder.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done ("create", "read", "rename", ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint or run folder that is missing a file, or whose files disagree with the run.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The checkpoint or run folder.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// burn failed to write or read a weights or optimizer record.
    #[error("{path}: burn record: {message}")]
    Record {
        /// The `.bpk` file.
        path: PathBuf,
        /// burn's message.
        message: String,
    },
    /// A JSON file (or a JSONL line) of the run folder that does not parse or cannot be written.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (it gives the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The data given to the loop cannot be trained on.
    #[error("{message}")]
    Data {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Data parallelism: a bad launch setting (`R3_RANK`, `R3_WORLD_SIZE`, `R3_COORDINATOR`), a peer that failed,
    /// hangs or cannot be reached.
    #[error("data parallelism: {message}")]
    Parallel {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An error of the data crate (atomic writes).
    #[error(transparent)]
    R3Data(#[from] r3_data::Error),
}

impl Error {
    /// An [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action, source }
    }

    /// An [`Error::Record`] on `path`.
    pub fn record(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Record { path: path.into(), message: message.to_string() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
