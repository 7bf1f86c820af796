//! The error type of `r3-train`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, running, checkpointing or resuming a training run.
///
/// Every variant names the file, the config key or the optimizer step concerned, and says how to fix the problem.
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
    /// A config file that is not valid TOML.
    #[error("{origin}: not valid TOML: {message}")]
    Toml {
        /// The file (or `<string>`).
        origin: String,
        /// The parser's message (it gives the line and column).
        message: String,
    },
    /// A key the config does not know (a typo, or a key of another section).
    #[error("{origin}: unknown config key `{key}`: valid keys here are {valid}")]
    UnknownKey {
        /// The file, `<string>` or `--set`.
        origin: String,
        /// The full dotted key, e.g. `train.lrr`.
        key: String,
        /// The keys that are valid at that place.
        valid: String,
    },
    /// A config value of the wrong type or out of range.
    #[error("{origin}: config key `{key}`: {message}")]
    BadValue {
        /// The file, `<string>` or `--set`.
        origin: String,
        /// The dotted key (or the section when the parser did not name the field).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A `--set key=value` override that cannot be applied.
    #[error("--set `{arg}`: {message}")]
    Override {
        /// The argument as given.
        arg: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A loss or gradient norm that is NaN or infinite: the run stops and keeps its last good checkpoint.
    #[error(
        "optimizer step {step}: the {what} is {value}; the run stopped without saving this step. The last good \
         checkpoint is {checkpoint}; lower `train.lr`, keep `train.clip` > 0, or check the data and the dtype, then \
         resume from the run folder"
    )]
    NonFinite {
        /// The 1-based optimizer step that produced the value.
        step: u64,
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The value (NaN or ±inf).
        value: f64,
        /// The last good checkpoint folder (or a note that none was written yet).
        checkpoint: String,
    },
    /// A checkpoint or run folder that is missing a file, or whose files disagree.
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
    /// A JSON file of the run folder that does not parse.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (it gives the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The data given to the trainer cannot be trained on.
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
    /// An error of the backbone crate (loading or exporting weights).
    #[error(transparent)]
    Backbone(#[from] r3_backbone::Error),
    /// An error of the latent crate (LatentRATT settings or weights).
    #[error(transparent)]
    Latent(#[from] r3_latent::Error),
}

impl Error {
    /// An [`Error::Io`] on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action, source }
    }
}

impl From<r3_trainer::Error> for Error {
    /// The generic loop's errors, variant by variant.
    fn from(e: r3_trainer::Error) -> Self {
        use r3_trainer::Error as E;
        match e {
            E::Io { path, action, source } => Error::Io { path, action, source },
            E::Checkpoint { path, message } => Error::Checkpoint { path, message },
            E::Record { path, message } => Error::Record { path, message },
            E::Json { path, source } => Error::Json { path, source },
            E::Data { message } => Error::Data { message },
            E::Parallel { message } => Error::Parallel { message },
            E::R3Data(e) => Error::R3Data(e),
            other => Error::Data { message: other.to_string() },
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
