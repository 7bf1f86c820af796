//! Runs that stop: a NaN loss (error naming the step, last good checkpoint kept) and early stopping (best
//! checkpoint restored).

use r3_train::checkpoint;
use r3_train::{Error, SftTrainer, epoch_order};

use crate::{POISON, TinyLm, ad_device, config, data, loss_of, max_diff, samples, weights};

#[test]
fn a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint() -> anyhow::Result<()> {
    let device = ad_device();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("nan");
    let mut train = samples(16, 0);
    // Poison the first sample of the 3rd global batch of epoch 0 (batch 4): steps 1 and 2 are good.
    let order = epoch_order(train.len(), 0, 0);
    train[order[8]].target_ids.insert(0, POISON);
    let cfg = config(&dir, &["train.batch=4", "train.micro_batch=2", "train.checkpoint_every=1", "train.warmup=0"]);
    let err =
        SftTrainer::new(cfg, TinyLm::new(&device, 1), data(train, samples(4, 1)), device.clone())?.run().unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, Error::NonFinite { step: 3, what: "loss", .. }), "{msg}");
    assert!(msg.contains("step 3") && msg.contains("step-00000002"), "{msg}");
    let latest = checkpoint::latest(&dir)?.expect("the last good checkpoint");
    assert!(latest.ends_with("step-00000002"));
    assert_eq!(checkpoint::load_state(&latest)?.step, 2);
    let w = weights(&checkpoint::load_model(&latest, TinyLm::new(&device, 2))?);
    assert!(w.iter().flatten().all(|x| x.is_finite()), "the kept checkpoint is finite");
    Ok(())
}

#[test]
fn early_stopping_restores_the_best_checkpoint() -> anyhow::Result<()> {
    let device = ad_device();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("early");
    // Validation asks for other targets (offset 4) than training teaches: the validation loss rises once the
    // model fits the training targets, so patience 1 stops after the second evaluation.
    let (train, valid) = (samples(16, 0), samples(16, 4));
    let cfg =
        config(&dir, &["train.batch=8", "train.micro_batch=4", "train.epochs=20", "train.warmup=0", "train.lr=2e-2"]);
    let out = SftTrainer::new(cfg, TinyLm::new(&device, 1), data(train, valid.clone()), device.clone())?.run()?;
    let s = &out.summary;
    println!("{s:?}");
    assert!(s.stopped_early && s.finished, "{s:?}");
    assert!(s.steps < 40, "stopped before the 20 epochs ({} steps)", s.steps);
    let best = s.best_step.expect("best step");
    assert!(best < s.steps, "the best checkpoint is an earlier one");
    let best_loss = s.best_val_loss.expect("best loss");
    assert!(s.last_val_loss.expect("last loss") > best_loss);
    // The returned weights are the best checkpoint's, and give its validation loss.
    let stored = checkpoint::load_model(&checkpoint::step_dir(&dir, best), TinyLm::new(&device, 2))?;
    assert_eq!(max_diff(&weights(&out.model), &weights(&stored)), 0.0);
    let again = loss_of(&out.model, &valid);
    assert!((again - best_loss).abs() < 1e-6, "validation loss {again} vs best {best_loss}");
    Ok(())
}
