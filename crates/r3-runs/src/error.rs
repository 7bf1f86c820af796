//! The error type of `r3-runs`.

use std::path::PathBuf;

/// Everything that can go wrong while reading a run file or parsing a `--set` override. Each message names the
/// file (and line of a JSON-lines file) or the override, and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`read`, `write`, ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file or line that is not the run file it should be: malformed, a missing field, an unknown field, a
    /// value of the wrong type.
    #[error("{path}{line}: not {what}: {source}; {hint}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// `:N` for line N of a JSON-lines file, empty for a whole file.
        line: String,
        /// The run file it should be (`the metrics.json of latentr3 eval`).
        what: &'static str,
        /// The parser's error (it names the field and the column).
        #[source]
        source: serde_json::Error,
        /// How to fix it.
        hint: &'static str,
    },
    /// A TOML file that is not the run file it should be.
    #[error("{path}: not {what}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The run file it should be.
        what: &'static str,
        /// The parser's message (it names the key, line and column).
        message: String,
    },
    /// A malformed `--set key=value` override, or one that does not fit the tree it is applied to.
    #[error("override `{arg}`: {message}")]
    Override {
        /// The override as given.
        arg: String,
        /// What is wrong and how to write it.
        message: String,
    },
    /// An error from `r3-data` (writing a file atomically).
    #[error(transparent)]
    Data(#[from] r3_data::Error),
}

/// The result type of `r3-runs`.
pub type Result<T> = std::result::Result<T, Error>;
