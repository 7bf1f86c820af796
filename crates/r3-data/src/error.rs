//! The error type of `r3-data`.

use std::path::PathBuf;

/// Everything that can go wrong while reading, validating, preparing or writing a dataset.
///
/// Every variant names the file (and, where there is one, the line and column) so that a user can open the file
/// at the offending place; the `hint` fields say how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("open", "read", "write", "rename", ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed record in a CSV, TXT or JSON-lines file.
    #[error("{path}:{line}: column `{column}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number (physical line where the record starts).
        line: u64,
        /// The column (CSV header name, JSON field or "tab-separated field" description).
        column: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
    /// A record that parses but breaks an invariant of the layout (lengths, ids, time order).
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// The broken invariant.
        message: String,
    },
    /// An input file that reads correctly but cannot give a result (no record at all, or nothing in it that
    /// matches the other input), with the reason.
    #[error("{path}: {message}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content and how to fix it.
        message: String,
    },
    /// A required file of the layout is missing.
    #[error("{path}: missing: {hint}")]
    Missing {
        /// The expected file.
        path: PathBuf,
        /// How to fix it.
        hint: String,
    },
    /// A bad setting (unknown category, malformed date, out-of-range number).
    #[error("invalid setting `{key}`: {message}")]
    Setting {
        /// The setting's name as the user wrote it (CLI flag or config key).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A tokenizer that cannot be built, read, written or used; `path` is the file concerned, when there is one.
    #[error("tokenizer{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Tokenizer {
        /// The `tokenizer.json` (or neighbouring config file), if a file is concerned.
        path: Option<PathBuf>,
        /// What is wrong and, where possible, how to fix it.
        message: String,
        /// The error of the `tokenizers` library or of the JSON reader, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A malformed entry of a tokenizer vocabulary: `{field}[{index}]` names the array and the 0-based entry.
    #[error("tokenizer vocabulary `{field}[{index}]`: {message}")]
    VocabEntry {
        /// The array: `tokens`, `token_types` or `merges` (as in the GGUF keys `tokenizer.ggml.*`).
        field: &'static str,
        /// The 0-based index of the entry.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A pre-tokenizer name (GGUF `tokenizer.ggml.pre`) that this crate does not implement.
    #[error("unknown pre-tokenizer `{name}`: {hint}")]
    UnknownPreTokenizer {
        /// The name as found in the file.
        name: String,
        /// The supported names and what to do.
        hint: String,
    },
    /// A sample whose target and thought tokens leave no room for a prompt token within the cutoff.
    #[error(
        "the sample of user `{user_id}` with target `{title}` does not fit the cutoff: {target_tokens} target and \
         {n_thought} thought token(s) leave no room for the prompt in {cutoff} tokens; raise `cutoff` (official: 512) \
         or drop the sample"
    )]
    SampleTooLong {
        /// The user of the sample.
        user_id: String,
        /// The target title.
        title: String,
        /// The number of target tokens (EOS included).
        target_tokens: usize,
        /// The number of thought tokens.
        n_thought: usize,
        /// The cutoff.
        cutoff: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action, source }
    }

    /// A parse error at `path:line`, column `column`.
    pub fn parse(path: impl Into<PathBuf>, line: u64, column: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Parse { path: path.into(), line, column: column.into(), message: message.into() }
    }

    /// An invariant violation at `path:line`.
    pub fn invalid(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Error::Invalid { path: path.into(), line, message: message.into() }
    }
}
