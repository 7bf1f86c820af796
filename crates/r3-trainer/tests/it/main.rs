//! Integration tests of r3-trainer: the example stage (`examples/linear_stage.rs`) run through the generic loop,
//! kill-and-resume to bit-identical weights, and the checks of a resumed run (a damaged state, partial checkpoint
//! folders, a missing `latest.json`).

#[allow(dead_code)]
#[path = "../../examples/linear_stage.rs"]
mod linear_stage;

use std::path::Path;

use linear_stage::{LinearRecord, train};
use r3_trainer::checkpoint::{self, CHECKPOINTS_DIR, LATEST_FILE, STATE_FILE, parameter_bits};
use r3_trainer::run::read_metrics;

/// 40 points in batches of 8: 5 steps per epoch, 3 epochs = 15 steps; checkpoints every 2 steps and at each
/// epoch-end validation.
#[test]
fn the_example_stage_trains_validates_and_logs_typed_records() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (stage, summary) = train(tmp.path(), None)?;
    assert_eq!((summary.steps, summary.total_steps), (15, 15));
    assert!(summary.finished && !summary.interrupted);
    let records: Vec<LinearRecord> = read_metrics(tmp.path())?;
    let losses: Vec<f64> = records
        .iter()
        .filter_map(|r| if let LinearRecord::Step { loss, .. } = r { Some(*loss) } else { None })
        .collect();
    let evals = records.iter().filter(|r| matches!(r, LinearRecord::Eval { .. })).count();
    assert_eq!((losses.len(), evals), (15, 3));
    assert!(losses[14] < 0.5 * losses[0], "the loss falls: {losses:?}");
    assert!(tmp.path().join("summary.json").is_file() && tmp.path().join("env.json").is_file());
    assert!(!parameter_bits(stage.model()).is_empty());
    Ok(())
}

fn killed_at(dir: &Path, step: u64) -> anyhow::Result<()> {
    let (_, s) = train(dir, Some(step))?;
    assert!(s.interrupted && !s.finished && s.steps == step, "{s:?}");
    Ok(())
}

#[test]
fn kill_and_resume_gives_bit_identical_weights() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (a, _) = train(&tmp.path().join("a"), None)?;
    let b_dir = tmp.path().join("b");
    // Killed after step 7 (mid epoch 1): the latest checkpoint is step 6; step 7 is replayed.
    killed_at(&b_dir, 7)?;
    let latest = checkpoint::latest(&b_dir)?.expect("a checkpoint");
    assert!(latest.ends_with("step-00000006"), "{}", latest.display());
    let (b, summary) = train(&b_dir, None)?;
    assert!(summary.finished && summary.steps == 15);
    assert!(
        parameter_bits(a.model()) == parameter_bits(b.model()),
        "the resumed weights differ from the uninterrupted run's"
    );
    let la: Vec<LinearRecord> = read_metrics(&tmp.path().join("a"))?;
    let lb: Vec<LinearRecord> = read_metrics(&b_dir)?;
    assert_eq!(la, lb, "the resumed metrics replay step 7 once");
    Ok(())
}

/// Issue: a `state.json` edited to `"step": 99` resumed a nonsense run; it must be refused, naming the file.
#[test]
fn a_damaged_checkpoint_state_is_refused() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    killed_at(tmp.path(), 5)?;
    let state_path = checkpoint::latest(tmp.path())?.expect("a checkpoint").join(STATE_FILE);
    let text = std::fs::read_to_string(&state_path)?;
    let state: serde_json::Value = serde_json::from_str(&text)?;
    let edited = |path: &[&str], value: serde_json::Value| -> anyhow::Result<()> {
        let mut s = state.clone();
        let mut at = &mut s;
        for key in path {
            at = at.get_mut(*key).expect("a state field");
        }
        *at = value;
        std::fs::write(&state_path, serde_json::to_string_pretty(&s)?)?;
        Ok(())
    };
    let cases = [
        (&["step"][..], 99.into(), "beyond the run's 15 steps"),
        (&["step"][..], 3.into(), "does not fit epoch"),
        (&["run", "seed"][..], 12.into(), "sample order"),
        (&["run", "train_len"][..], 41.into(), "41 training items"),
    ];
    for (path, value, phrase) in cases {
        edited(path, value)?;
        let err = train(tmp.path(), None).err().expect("a damaged state must be refused").to_string();
        assert!(err.contains(phrase) && err.contains("state.json"), "{err}");
    }
    // The run's config is hashed into every checkpoint: another config is refused.
    edited(&["run", "config_hash"], "0".repeat(64).into())?;
    let err = train(tmp.path(), None).err().expect("another config must be refused").to_string();
    assert!(err.contains("config.resolved.toml changed"), "{err}");
    // The intact state resumes.
    std::fs::write(&state_path, &text)?;
    assert!(train(tmp.path(), None)?.1.finished);
    Ok(())
}

/// Issue: `checkpoints/.tmp-step-*` folders left by a kill stayed forever; resuming removes them.
#[test]
fn resuming_removes_partial_checkpoint_folders() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    killed_at(tmp.path(), 3)?;
    let stale = tmp.path().join(CHECKPOINTS_DIR).join(".tmp-step-00000004-999999");
    std::fs::create_dir_all(&stale)?;
    std::fs::write(stale.join("model.bpk"), b"half written")?;
    let (_, s) = train(tmp.path(), None)?;
    assert!(s.finished);
    assert!(!stale.exists(), "the partial folder was left behind");
    Ok(())
}

/// Issue: without `checkpoints/latest.json` a resume restarted from step 0; it continues from the newest complete
/// checkpoint folder instead.
#[test]
fn a_missing_latest_pointer_falls_back_to_the_newest_checkpoint() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (full, _) = train(&tmp.path().join("full"), None)?;
    let dir = tmp.path().join("killed");
    killed_at(&dir, 9)?;
    std::fs::remove_file(dir.join(CHECKPOINTS_DIR).join(LATEST_FILE))?;
    let latest = checkpoint::latest(&dir)?.expect("the newest complete checkpoint");
    assert!(latest.ends_with("step-00000008"), "{}", latest.display());
    let (resumed, s) = train(&dir, None)?;
    assert!(s.finished);
    let records: Vec<LinearRecord> = read_metrics(&dir)?;
    assert_eq!(records.iter().filter(|r| matches!(r, LinearRecord::Step { .. })).count(), 15, "no step trained twice");
    assert!(parameter_bits(full.model()) == parameter_bits(resumed.model()));
    Ok(())
}
