//! The error type of `r3-grpo`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, running, checkpointing or resuming a GRPO run.
///
/// Every variant names the config key, the file or the optimizer step concerned, and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the training infrastructure (`r3-train`): a config value that does not parse or is out of range
    /// (`BadValue` naming the key), an I/O error on a named file, a checkpoint or model folder that cannot be read.
    #[error(transparent)]
    Train(#[from] r3_train::Error),
    /// A reward that could not be built or returned an invalid score (`r3-rewards`).
    #[error(transparent)]
    Reward(#[from] r3_rewards::Error),
    /// A decoding error (rollouts, validation beam search; `r3-decode`).
    #[error(transparent)]
    Decode(#[from] r3_decode::Error),
    /// A metric error (`r3-metrics`).
    #[error(transparent)]
    Metrics(#[from] r3_metrics::Error),
    /// A checkpoint that cannot be read or does not fit this run.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A loss, reward or gradient norm that is NaN or infinite: the run stops, keeping its last good checkpoint.
    #[error(
        "optimizer step {step}: the {what} is {value}; the run stopped without applying this step. The last good \
         checkpoint is {checkpoint}. Lower `train.lr` or `grpo.noise_std`, or check the model folder for NaN \
         weights, then resume"
    )]
    NonFinite {
        /// The optimizer step (1-based) that produced the value.
        step: u64,
        /// "loss", "reward" or "gradient norm".
        what: &'static str,
        /// The offending value.
        value: f64,
        /// The last checkpoint written (or "none").
        checkpoint: String,
    },
    /// Training data that cannot be used (empty splits, a model without LatentRATT, ...).
    #[error("data: {message}")]
    Data {
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl Error {
    /// An I/O error on `path` ([`r3_train::Error::Io`]).
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Train(r3_train::Error::Io { path: path.into(), action, source })
    }
}

impl From<r3_trainer::Error> for Error {
    /// The generic loop's errors: a checkpoint that does not fit the run as [`Error::Checkpoint`], the others as
    /// [`Error::Train`].
    fn from(e: r3_trainer::Error) -> Self {
        match e {
            r3_trainer::Error::Checkpoint { path, message } => Error::Checkpoint { path, message },
            other => Error::Train(r3_train::Error::from(other)),
        }
    }
}

/// The result type of `r3-grpo`.
pub type Result<T> = std::result::Result<T, Error>;
