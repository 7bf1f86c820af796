//! Errors of the baselines: each names the file, key or setting at fault and how to fix it.

use std::path::PathBuf;

/// An error of `r3-baselines`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range.
    #[error("baseline setting `{key}` = {value}: {hint}")]
    Config {
        /// The key of the setting (as in the experiment file).
        key: &'static str,
        /// The offending value.
        value: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// An experiment file could not be parsed.
    #[error("{path}: {message} (keys are those of `BaselineExperiment`; unknown keys are refused)")]
    Experiment {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The data do not allow training or evaluation.
    #[error("baseline data: {message}")]
    Data {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was attempted.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A model file does not fit the model it is loaded into.
    #[error("{path}: {message} (the model folder must come from `latentr3 baseline train` with the same catalogue)")]
    Record {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// A JSON file could not be parsed.
    #[error("{path}: {source} (rewrite it with `latentr3 baseline train`)")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The metrics failed.
    #[error(transparent)]
    Metrics(#[from] r3_metrics::Error),
    /// An error of the training loop (`r3-trainer`): the run folder, its checkpoints and metrics.
    #[error(transparent)]
    Trainer(#[from] r3_trainer::Error),
    /// The dataset failed.
    #[error(transparent)]
    Dataset(#[from] r3_data::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action, source }
    }
}

/// The result type of `r3-baselines`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
