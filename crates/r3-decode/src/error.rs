//! The errors of r3-decode: invalid tries and invalid decoding settings, each naming the offending key or input
//! and saying how to fix it.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// An error of this crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// [`crate::Trie::new`] got no sequence at all.
    #[error("the item trie needs at least one token sequence, got none: pass `encode_target` of every catalogue title")]
    EmptyTrie,
    /// [`crate::Trie::new`] got an empty token sequence.
    #[error(
        "token sequence {index} of the item trie is empty: every title must encode to at least one token (with \
         `encode_target` it ends with EOS), so check the title at index {index}"
    )]
    EmptySequence {
        /// The index of the empty sequence in the input.
        index: usize,
    },
    /// A decoding setting is out of range.
    #[error("invalid decoding setting `{key}` = {value}: {hint}")]
    Config {
        /// The setting's name (the config field).
        key: &'static str,
        /// The value given.
        value: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// An evaluation setting is out of range.
    #[error("invalid evaluation setting `{key}` = {value}: {hint}")]
    Setting {
        /// The setting's name (the `eval.json` key).
        key: &'static str,
        /// The value given.
        value: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// A run folder's settings file is not the settings of an evaluation.
    #[error("{}: not the settings of an evaluation run ({source}): pass another run folder", path.display())]
    SettingsFile {
        /// The settings file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A resumed run has other settings than its folder.
    #[error(
        "{}: the run folder was made with `{key}` = {old}, this run has `{key}` = {new}: resume with the same \
         settings, or pass another --out",
        path.display()
    )]
    SettingsMismatch {
        /// The settings file.
        path: PathBuf,
        /// The setting that differs.
        key: String,
        /// The folder's value.
        old: String,
        /// This run's value.
        new: String,
    },
    /// A line of a run's prediction records is not a record of this run.
    #[error("{}:{line}: {what}", path.display())]
    Record {
        /// The records file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        what: String,
    },
    /// A user of the run has no record at the end.
    #[error("{}: row {row} has no record: rerun the evaluation with the same folder to decode it", path.display())]
    MissingRecord {
        /// The records file.
        path: PathBuf,
        /// The split row.
        row: usize,
    },
    /// A file of a run folder could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the predictions failed.
    #[error(transparent)]
    Metrics(#[from] r3_metrics::Error),
    /// Writing a file of the run folder failed (the error names the file).
    #[error(transparent)]
    Data(#[from] r3_data::Error),
}

impl Error {
    /// An I/O error while `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io { action, path: path.to_path_buf(), source }
    }
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
