//! Checkpoints: `checkpoints/step-NNNNNNNN/` with the model weights (`model.bpk`), the optimizer state
//! (`optimizer.bpk`) and the [`TrainerState`] (`state.json`), plus the pointer `checkpoints/latest.json`.
//!
//! A checkpoint folder is written under a temporary name in the same parent and renamed into place, then the
//! pointer is replaced atomically ([`r3_data::write_atomic`]): a killed run leaves either the previous or the new
//! checkpoint as the latest, never a half-written one. Old step folders are pruned, except the best one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::run::{read_json, write_json};

/// The folder of the checkpoints inside a run folder.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The pointer to the latest complete checkpoint.
pub const LATEST_FILE: &str = "latest.json";
/// The model weights inside a checkpoint (burnpack).
pub const MODEL_FILE: &str = "model.bpk";
/// The optimizer state inside a checkpoint (burnpack).
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// The trainer state inside a checkpoint.
pub const STATE_FILE: &str = "state.json";

/// Where the trainer stands: everything besides the weights and the optimizer state that a resumed run needs
/// to continue exactly as an uninterrupted one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken (also the schedule position: the next step uses `lr(step)`).
    pub step: u64,
    /// The optimizer steps of the whole run.
    pub total_steps: u64,
    /// The 0-based epoch in progress (or the next one when `batch_in_epoch` is 0).
    pub epoch: usize,
    /// Global batches of `epoch` already trained (the position within the epoch's seeded shuffle).
    pub batch_in_epoch: usize,
    /// The best validation loss so far.
    pub best_val_loss: Option<f64>,
    /// The step of the best validation loss (its checkpoint is kept).
    pub best_step: Option<u64>,
    /// Evaluations since the last improvement (early stopping's patience counter).
    pub patience_counter: usize,
    /// Real target tokens trained on so far.
    pub tokens_seen: u64,
    /// Seconds of training so far, over all sessions.
    pub elapsed_s: f64,
    /// Whether the run has ended (all epochs, `max_steps`, or early stopping).
    pub finished: bool,
    /// Whether it ended by early stopping.
    pub stopped_early: bool,
}

/// What a trainer stores in `state.json`: its position, numbered by the optimizer steps taken (which name the
/// checkpoint folder). [`TrainerState`] is the SFT trainer's; r3-grpo's `GrpoState` is another.
pub trait CheckpointState: Serialize {
    /// Optimizer steps taken.
    fn step(&self) -> u64;
}

impl TrainerState {
    /// The state before the first step of a run of `total_steps` optimizer steps.
    pub fn fresh(total_steps: u64) -> Self {
        TrainerState {
            step: 0,
            total_steps,
            epoch: 0,
            batch_in_epoch: 0,
            best_val_loss: None,
            best_step: None,
            patience_counter: 0,
            tokens_seen: 0,
            elapsed_s: 0.0,
            finished: false,
            stopped_early: false,
        }
    }
}

impl CheckpointState for TrainerState {
    fn step(&self) -> u64 {
        self.step
    }
}

#[derive(Serialize, Deserialize)]
struct Latest {
    dir: String,
    step: u64,
}

/// The folder name of the checkpoint after `step` optimizer steps.
pub fn step_dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

fn record_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Record { path: path.into(), message: e.to_string() }
}

/// Writes a checkpoint of `model`, `optimizer` and `state` into `run_dir/checkpoints/step-N` (N = `state.step()`)
/// and points `latest.json` at it; keeps the `keep` newest step folders plus `keep_also` (the best one). Returns
/// the folder.
///
/// # Errors
/// [`Error::Io`] or [`Error::Record`] naming the file that failed; the previous latest checkpoint stays valid.
pub fn save<M: Module, S: CheckpointState>(
    run_dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    state: &S,
    keep: usize,
    keep_also: Option<u64>,
) -> Result<PathBuf> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, "create folder", e))?;
    let step = state.step();
    let name = step_dir_name(step);
    let dir = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, "remove stale temporary folder", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, "create folder", e))?;
    let model_path = tmp.join(MODEL_FILE);
    model.clone().save_file(&model_path).map_err(|e| record_err(&model_path, e))?;
    let optim_path = tmp.join(OPTIMIZER_FILE);
    optimizer.save(&optim_path).map_err(|e| record_err(&optim_path, e))?;
    write_json(&tmp.join(STATE_FILE), state)?;
    sync_dir(&tmp);
    if dir.exists() {
        // Only a checkpoint of the same step, never the latest one (the step count grows before each save).
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, "replace checkpoint folder", e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, "rename checkpoint folder into place", e))?;
    sync_dir(&root);
    write_json(&root.join(LATEST_FILE), &Latest { dir: name, step })?;
    prune(&root, keep, keep_also)?;
    Ok(dir)
}

/// Makes renames in `dir` durable where the platform allows (best effort: a failure only weakens durability).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir)
        && let Err(e) = f.sync_all()
    {
        tracing::debug!(dir = %dir.display(), error = %e, "folder sync not supported");
    }
}

fn prune(root: &Path, keep: usize, keep_also: Option<u64>) -> Result<()> {
    let mut steps: Vec<(u64, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok()) {
            steps.push((step, entry.path()));
        }
    }
    steps.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    for (i, (step, path)) in steps.into_iter().enumerate() {
        if i >= keep && Some(step) != keep_also {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, "prune old checkpoint", e))?;
        }
    }
    Ok(())
}

/// The latest complete checkpoint folder of a run, if any.
///
/// # Errors
/// [`Error::Json`] for a corrupt pointer, [`Error::Checkpoint`] when it points at a missing folder.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    let pointer = root.join(LATEST_FILE);
    if !pointer.exists() {
        return Ok(None);
    }
    let latest: Latest = read_json(&pointer)?;
    let dir = root.join(&latest.dir);
    if !dir.join(STATE_FILE).exists() {
        return Err(Error::Checkpoint {
            path: dir,
            message: format!(
                "{} points at a checkpoint without {STATE_FILE}; restore the folder or delete the pointer to restart",
                pointer.display()
            ),
        });
    }
    Ok(Some(dir))
}

/// The folder of the checkpoint after `step` steps.
pub fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join(CHECKPOINTS_DIR).join(step_dir_name(step))
}

/// Reads the trainer state of a checkpoint folder.
///
/// # Errors
/// [`Error::Io`] or [`Error::Json`] naming the file.
pub fn load_state(dir: &Path) -> Result<TrainerState> {
    read_json(&dir.join(STATE_FILE))
}

/// Loads the weights of a checkpoint folder into `model` (a model of the same structure; the parameter ids of
/// the record are restored, so a loaded optimizer state matches them).
///
/// # Errors
/// [`Error::Record`] naming `model.bpk` when it is missing or does not fit the model.
pub fn load_model<M: Module>(dir: &Path, model: M) -> Result<M> {
    let path = dir.join(MODEL_FILE);
    let record = ModuleRecord::load(&path).map_err(|e| record_err(&path, e))?;
    model.try_load_record(record).map_err(|e| record_err(&path, e))
}

/// Loads the optimizer state of a checkpoint folder into `optimizer`.
///
/// # Errors
/// [`Error::Record`] naming `optimizer.bpk`.
pub fn load_optimizer(dir: &Path, optimizer: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let path = dir.join(OPTIMIZER_FILE);
    optimizer.load(&path).map_err(|e| record_err(&path, e))
}
