//! The error type of `r3-metrics`.

use std::path::PathBuf;

/// Everything that can go wrong while reading prediction files or evaluating them.
///
/// File errors name the file and the record (0-based index in the file) and, where known, the 1-based line; every
/// variant carries a `hint` or a message that says how to fix the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("open", "read", ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error from `r3-data` (for example while writing a file atomically).
    #[error(transparent)]
    Data(#[from] r3_data::Error),
    /// The file is not valid JSON / JSON lines (truncated, a stray comma, not UTF-8, ...).
    #[error("{path}:{line}:{column}: record {record}: malformed JSON: {source}; {hint}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 0-based index of the record being read when the error occurred.
        record: usize,
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based column of the error.
        column: usize,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
        /// How to fix it.
        hint: &'static str,
    },
    /// A record that is valid JSON but lacks a required field or has a field of the wrong type.
    #[error("{path}: record {record}{}: field `{field}`: {message}; {hint}", fmt_line(*.line))]
    Record {
        /// The file.
        path: PathBuf,
        /// The 0-based index of the record in the file.
        record: usize,
        /// The 1-based line of the record (JSON lines files only; `None` inside a JSON array).
        line: Option<usize>,
        /// The offending field (`input`, `output`, `predict`, or `(record)` for the record itself).
        field: &'static str,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// A file that is not UTF-8 text.
    #[error("{path}:{line}:{column}: byte 0x{byte:02x} is not UTF-8: save the file as UTF-8")]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the first invalid byte.
        line: usize,
        /// The 1-based column (in bytes) of the first invalid byte.
        column: usize,
        /// The byte.
        byte: u8,
    },
    /// A file that is valid JSON but not laid out as a prediction file.
    #[error("{path}: {message}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// What the file is and what is expected.
        message: String,
    },
    /// A file with no content at all.
    #[error("{path}: empty file: {hint}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// How to fix it.
        hint: &'static str,
    },
    /// A sample that cannot be evaluated (for example an `output` list with no element).
    #[error("sample {sample}: {message}")]
    Sample {
        /// The 0-based index of the sample.
        sample: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Two inputs that must have one length do not (predictions vs. target ids, ours vs. baseline, ...).
    #[error("{what}: expected {expected}, got {got}; {hint}")]
    Mismatch {
        /// What was counted.
        what: &'static str,
        /// The expected count.
        expected: usize,
        /// The count found.
        got: usize,
        /// How to fix it.
        hint: &'static str,
    },
    /// A bad setting (cut-off list, number of bootstrap resamples).
    #[error("invalid setting `{key}`: {message}")]
    Setting {
        /// The setting's name (CLI flag or field).
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn fmt_line(line: Option<usize>) -> String {
    line.map_or_else(String::new, |l| format!(" (line {l})"))
}
