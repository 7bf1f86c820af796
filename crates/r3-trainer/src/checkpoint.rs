//! Checkpoints: `checkpoints/step-NNNNNNNN/` with what the stage saves (for the LatentR³ stages `model.bpk` and
//! `optimizer.bpk`) and the loop's [`LoopState`] (`state.json`), plus the pointer `checkpoints/latest.json`.
//!
//! A checkpoint folder is written under a temporary name (`.tmp-step-N-PID`) in the same parent and renamed into
//! place, then the pointer is replaced atomically ([`r3_data::write_atomic`]): a killed run leaves either the
//! previous or the new checkpoint as the latest, never a half-written one. Old step folders are pruned, except
//! the best one. Resuming removes the temporary folders a killed run left ([`remove_stale`]), and a missing
//! pointer falls back to the newest complete step folder ([`latest`]).

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Tensor;
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
/// The loop state inside a checkpoint.
pub const STATE_FILE: &str = "state.json";
/// The prefix of a checkpoint folder being written.
const TMP_PREFIX: &str = ".tmp-step-";

/// Where the loop stands: everything besides the stage's own files that a resumed run needs to continue exactly
/// as an uninterrupted one, and what it checks the run against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Optimizer steps taken (also the schedule position: the next step uses `lr(step)`).
    pub step: u64,
    /// The optimizer steps of the whole run.
    pub total_steps: u64,
    /// The 0-based epoch in progress (or the next one when `batch_in_epoch` is 0).
    pub epoch: usize,
    /// Batches of `epoch` already trained (the position within the epoch's seeded order).
    pub batch_in_epoch: usize,
    /// The best validation metric so far (the SFT validation loss, the GRPO NDCG@k, ...).
    #[serde(alias = "best_val_loss")]
    pub best_metric: Option<f64>,
    /// The step of the best validation (its checkpoint is kept).
    pub best_step: Option<u64>,
    /// Evaluations since the last improvement (early stopping's patience counter).
    #[serde(default)]
    pub patience_counter: usize,
    /// What the stage counts as trained on so far (SFT: target tokens; GRPO: samples).
    #[serde(alias = "tokens_seen", alias = "samples_seen")]
    pub seen: u64,
    /// Seconds of training so far, over all sessions.
    pub elapsed_s: f64,
    /// Whether the run has ended (all epochs, `max_steps`, or early stopping).
    pub finished: bool,
    /// Whether it ended by early stopping.
    #[serde(default)]
    pub stopped_early: bool,
    /// The run this state belongs to (checked on resume; absent in checkpoints of older versions).
    #[serde(default)]
    pub run: Option<RunKey>,
}

/// What a checkpoint's state must agree with to be resumed: the training set, the sample order and the config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// The number of training items (samples, prompts, examples).
    pub train_len: usize,
    /// The seed of the epochs' sample order.
    pub seed: u64,
    /// The SHA-256 of `config.resolved.toml` ([`crate::run::config_hash`]).
    pub config_hash: String,
}

impl LoopState {
    /// The state before the first step of a run of `total_steps` optimizer steps.
    pub fn fresh(total_steps: u64, run: Option<RunKey>) -> Self {
        LoopState {
            step: 0,
            total_steps,
            epoch: 0,
            batch_in_epoch: 0,
            best_metric: None,
            best_step: None,
            patience_counter: 0,
            seen: 0,
            elapsed_s: 0.0,
            finished: false,
            stopped_early: false,
            run,
        }
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

/// The folder of the checkpoint after `step` steps.
pub fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join(CHECKPOINTS_DIR).join(step_dir_name(step))
}

/// Writes a checkpoint into `run_dir/checkpoints/step-N` (N = `state.step`): `write` puts the stage's files into
/// the (temporary) folder it is given, then the state is added, the folder renamed into place and `latest.json`
/// pointed at it; keeps the `keep` newest step folders plus the best one. Returns the folder.
///
/// # Errors
/// [`Error::Io`] or `write`'s error naming the file that failed; the previous latest checkpoint stays valid.
pub fn save<E: From<Error>>(
    run_dir: &Path,
    state: &LoopState,
    keep: usize,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<PathBuf, E> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, "create folder", e))?;
    let name = step_dir_name(state.step);
    let dir = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, "remove stale temporary folder", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, "create folder", e))?;
    write(&tmp)?;
    write_json(&tmp.join(STATE_FILE), state)?;
    sync_dir(&tmp);
    if dir.exists() {
        // Only a checkpoint of the same step, never the latest one (the step count grows before each save).
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, "replace checkpoint folder", e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, "rename checkpoint folder into place", e))?;
    sync_dir(&root);
    write_json(&root.join(LATEST_FILE), &Latest { dir: name, step: state.step })?;
    prune(&root, keep, state.best_step)?;
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

/// The complete step folders of `root` (those holding a state), by step.
fn step_folders(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut steps = Vec::new();
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok()) {
            steps.push((step, entry.path()));
        }
    }
    steps.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    Ok(steps)
}

fn prune(root: &Path, keep: usize, keep_also: Option<u64>) -> Result<()> {
    for (i, (step, path)) in step_folders(root)?.into_iter().enumerate() {
        if i >= keep && Some(step) != keep_also {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, "prune old checkpoint", e))?;
        }
    }
    Ok(())
}

/// The latest complete checkpoint folder of a run, if any. Without `latest.json` (deleted, or lost with a
/// disk), the newest step folder that holds a state is taken, with a warning that says so.
///
/// # Errors
/// [`Error::Json`] for a corrupt pointer, [`Error::Checkpoint`] when it points at a missing folder.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    let pointer = root.join(LATEST_FILE);
    if !pointer.exists() {
        if !root.is_dir() {
            return Ok(None);
        }
        let newest = step_folders(&root)?.into_iter().map(|(_, p)| p).find(|p| p.join(STATE_FILE).is_file());
        if let Some(dir) = &newest {
            tracing::warn!(
                checkpoint = %dir.display(),
                "{} is missing: using the newest complete checkpoint folder",
                pointer.display()
            );
        }
        return Ok(newest);
    }
    let latest: Latest = read_json(&pointer)?;
    let dir = root.join(&latest.dir);
    if !dir.join(STATE_FILE).exists() {
        return Err(Error::Checkpoint {
            path: dir,
            message: format!(
                "{} points at a checkpoint without {STATE_FILE}; restore the folder or delete the pointer to resume \
                 from the newest complete checkpoint",
                pointer.display()
            ),
        });
    }
    Ok(Some(dir))
}

/// Removes the temporary checkpoint folders (`checkpoints/.tmp-step-*`) that a killed run or a full disk left
/// behind. Returns how many were removed.
///
/// # Errors
/// [`Error::Io`] naming the folder that cannot be removed.
pub fn remove_stale(run_dir: &Path) -> Result<usize> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    if !root.is_dir() {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(&root).map_err(|e| Error::io(&root, "list", e))? {
        let path = entry.map_err(|e| Error::io(&root, "list", e))?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX)) {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, "remove partial checkpoint", e))?;
            tracing::info!(folder = %path.display(), "removed a partial checkpoint of an interrupted session");
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads the loop state of a checkpoint folder.
///
/// # Errors
/// [`Error::Io`] or [`Error::Json`] naming the file.
pub fn load_state(dir: &Path) -> Result<LoopState> {
    read_json(&dir.join(STATE_FILE))
}

/// Saves `model`'s weights into `dir/model.bpk`.
///
/// # Errors
/// [`Error::Record`] naming the file.
pub fn save_model<M: Module>(dir: &Path, model: &M) -> Result<()> {
    let path = dir.join(MODEL_FILE);
    model.clone().save_file(&path).map_err(|e| Error::record(&path, e))
}

/// Saves `optimizer`'s state into `dir/optimizer.bpk`.
///
/// # Errors
/// [`Error::Record`] naming the file.
pub fn save_optimizer(dir: &Path, optimizer: &ModuleOptimizer) -> Result<()> {
    let path = dir.join(OPTIMIZER_FILE);
    optimizer.save(&path).map_err(|e| Error::record(&path, e))
}

/// Loads the weights of a checkpoint folder into `model` (a model of the same structure; the parameter ids of
/// the record are restored, so a loaded optimizer state matches them).
///
/// # Errors
/// [`Error::Record`] naming `model.bpk` when it is missing or does not fit the model.
pub fn load_model<M: Module>(dir: &Path, model: M) -> Result<M> {
    let path = dir.join(MODEL_FILE);
    let record = ModuleRecord::load(&path).map_err(|e| Error::record(&path, e))?;
    model.try_load_record(record).map_err(|e| Error::record(&path, e))
}

/// Loads the optimizer state of a checkpoint folder into `optimizer`.
///
/// # Errors
/// [`Error::Record`] naming `optimizer.bpk`.
pub fn load_optimizer(dir: &Path, optimizer: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let path = dir.join(OPTIMIZER_FILE);
    optimizer.load(&path).map_err(|e| Error::record(&path, e))
}

/// Every float parameter of `module` as the raw bits of its f32 values, in visiting order: what a resumed run must
/// reproduce exactly (the kill-and-resume tests compare these).
pub fn parameter_bits<M: Module>(module: &M) -> Vec<Vec<u32>> {
    struct Collect(Vec<Vec<u32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const N: usize>(&mut self, p: &Param<Tensor<N>>) {
            let v: Vec<f32> = p.val().into_data().convert::<f32>().try_to_vec().expect("f32");
            self.0.push(v.into_iter().map(f32::to_bits).collect());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}
