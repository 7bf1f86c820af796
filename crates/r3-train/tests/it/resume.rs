//! Checkpoints and resume: a run killed mid-epoch and resumed ends bit-identical to an uninterrupted one.

use std::path::Path;

use r3_train::checkpoint::{self, CHECKPOINTS_DIR};
use r3_train::run::{CONFIG_FILE, ENV_FILE, MetricRecord, read_metrics};
use r3_train::{SftConfig, SftTrainer};

use crate::{TinyLm, ad_device, config, data, max_diff, samples, weights};

// 24 samples, batch 4 (2 micro-batches of 2) → 6 steps per epoch, 2 epochs = 12 steps; warm-up 3 steps and
// clipping at 1.0 so that the schedule and the clipping matter; checkpoints every 2 steps; no early stopping.
const SETTINGS: [&str; 9] = [
    "train.batch=4",
    "train.micro_batch=2",
    "train.epochs=2",
    "train.warmup=3",
    "train.lr=3e-3",
    "train.clip=1.0",
    "train.checkpoint_every=2",
    "train.patience=0",
    "train.seed=7",
];

fn losses(dir: &Path) -> anyhow::Result<Vec<(u64, f64)>> {
    Ok(read_metrics(dir)?
        .into_iter()
        .map(|r| match r {
            MetricRecord::Step { step, loss, .. } => (step, loss),
            MetricRecord::Eval { step, val_loss, .. } => (step + 1_000_000, val_loss),
        })
        .collect())
}

#[test]
fn killed_mid_epoch_and_resumed_equals_uninterrupted() -> anyhow::Result<()> {
    let device = ad_device();
    let model = TinyLm::new(&device, 1);
    let tmp = tempfile::tempdir()?;
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let train = || data(samples(24, 0), samples(6, 1));

    let a = SftTrainer::new(config(&dir_a, &SETTINGS), model.clone(), train(), device.clone())?.run()?;
    assert_eq!(a.summary.steps, 12);
    assert!(a.summary.finished && !a.summary.interrupted);

    // Killed after step 9 (the 3rd batch of epoch 1): the last checkpoint is step 8; step 9 is lost.
    let b = SftTrainer::new(config(&dir_b, &SETTINGS), model.clone(), train(), device.clone())?
        .stop_after_steps(9)
        .run()?;
    assert!(b.summary.interrupted && !b.summary.finished);
    assert_eq!(b.summary.steps, 9);
    let latest = checkpoint::latest(&dir_b)?.expect("a checkpoint");
    assert!(latest.ends_with("step-00000008"), "{}", latest.display());
    let state = checkpoint::load_state(&latest)?;
    assert_eq!((state.step, state.epoch, state.batch_in_epoch), (8, 1, 2));

    // A fresh, differently initialised model: everything must come from the checkpoint.
    let other = TinyLm::new(&device, 2);
    assert!(max_diff(&weights(&other), &weights(&model)) > 1e-3);
    let resumed = SftTrainer::resume(&dir_b, other, train(), device.clone())?;
    assert_eq!(resumed.state().step, 8);
    let c = resumed.run()?;
    assert_eq!(c.summary.steps, 12);
    assert!(c.summary.finished);

    let diff = max_diff(&weights(&a.model), &weights(&c.model));
    assert_eq!(diff, 0.0, "the returned (best) weights differ by {diff:e}");
    for step in [10, 12] {
        let wa = weights(&checkpoint::load_model(&checkpoint::step_dir(&dir_a, step), TinyLm::new(&device, 3))?);
        let wb = weights(&checkpoint::load_model(&checkpoint::step_dir(&dir_b, step), TinyLm::new(&device, 4))?);
        assert_eq!(max_diff(&wa, &wb), 0.0, "checkpoint of step {step} differs");
    }
    assert_eq!(a.summary.best_val_loss, c.summary.best_val_loss);
    assert_eq!(a.summary.best_step, c.summary.best_step);
    // The resumed metrics replay step 9 once: the log equals the uninterrupted run's, line for line.
    assert_eq!(losses(&dir_a)?, losses(&dir_b)?);
    Ok(())
}

#[test]
fn run_folder_and_checkpoints_are_complete_and_pruned() -> anyhow::Result<()> {
    let device = ad_device();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("run");
    let cfg = config(&dir, &SETTINGS);
    let out =
        SftTrainer::new(cfg.clone(), TinyLm::new(&device, 1), data(samples(24, 0), samples(6, 1)), device.clone())?
            .run()?;
    assert_eq!(SftConfig::from_file(&dir.join(CONFIG_FILE), &[])?, cfg, "config.resolved.toml round-trips");
    let env: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(ENV_FILE))?)?;
    for key in ["git_commit", "burn_version", "device", "dtype", "hostname", "unix_time", "time_utc"] {
        assert!(env.get(key).is_some(), "env.json lacks `{key}`: {env}");
    }
    let metrics = read_metrics(&dir)?;
    let steps = metrics.iter().filter(|r| matches!(r, MetricRecord::Step { .. })).count();
    let evals = metrics.iter().filter(|r| matches!(r, MetricRecord::Eval { .. })).count();
    assert_eq!((steps, evals), (12, 2), "one line per step and per epoch-end validation");
    if let Some(MetricRecord::Step { step, epoch, lr, grad_norm, tokens, tokens_per_s, elapsed_s, .. }) =
        metrics.first()
    {
        assert_eq!((*step, *epoch, *lr), (1, 0, 0.0));
        assert!(*grad_norm > 0.0 && *tokens > 0 && *tokens_per_s > 0.0 && *elapsed_s > 0.0);
    }
    // keep_checkpoints = 2 newest (steps 10, 12) plus the best one; no temporary folder is left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.join(CHECKPOINTS_DIR))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let best = out.summary.best_step.expect("a best step");
    let mut expected = vec!["latest.json".to_string(), "step-00000010".into(), "step-00000012".into()];
    if best != 10 && best != 12 {
        expected.push(checkpoint::step_dir_name(best));
        expected.sort();
    }
    assert_eq!(names, expected);
    for file in [checkpoint::MODEL_FILE, checkpoint::OPTIMIZER_FILE, checkpoint::STATE_FILE] {
        assert!(checkpoint::step_dir(&dir, 12).join(file).is_file(), "{file} missing");
    }
    assert!(dir.join("summary.json").is_file());
    // A finished run cannot be started again in the same folder, and resuming it returns at once.
    let again = SftTrainer::new(cfg, TinyLm::new(&device, 1), data(samples(24, 0), samples(6, 1)), device.clone());
    assert!(matches!(again, Err(r3_train::Error::Checkpoint { .. })));
    let done = SftTrainer::resume(&dir, TinyLm::new(&device, 5), data(samples(24, 0), samples(6, 1)), device)?.run()?;
    assert_eq!(done.summary.steps, 12);
    assert_eq!(max_diff(&weights(&done.model), &weights(&out.model)), 0.0);
    Ok(())
}
