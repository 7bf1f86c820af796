//! The marker `xtask-run.json` that `cargo xtask reproduce` writes into a run folder once the run's commands
//! succeeded ([`RunMarker`]).

use serde::{Deserialize, Serialize};

use crate::io::RunFile;
use crate::provenance::Provenance;

/// The marker a finished run gets.
pub const MARKER_FILE: &str = "xtask-run.json";

/// `xtask-run.json`: which experiment ran the run, what its key hashes, the commands, the wall time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMarker {
    /// The experiment that ran it (`table1/cds-bigrec`).
    pub experiment: String,
    /// The run's id in the manifest.
    pub id: String,
    /// `sft`, `grpo`, `eval` or `baseline`.
    pub kind: String,
    /// The run key (its folder name).
    pub key: String,
    /// What the key hashes: kind, configuration, upstream key, device.
    pub resolved: serde_json::Value,
    /// The `latentr3` arguments of a fresh start.
    pub commands: Vec<Vec<String>>,
    /// Wall seconds of the session that finished it.
    pub wall_s: f64,
    /// When it finished (UTC, RFC 3339).
    pub finished: String,
    /// The machine.
    pub hardware: String,
    /// The code of the `latentr3` binary that finished it, when the driver built it from its own tree (absent in
    /// markers written before it was recorded, and for a binary passed with `--bin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Provenance>,
}

impl RunFile for RunMarker {
    const WHAT: &'static str = "the xtask-run.json marker of cargo xtask reproduce";
}
