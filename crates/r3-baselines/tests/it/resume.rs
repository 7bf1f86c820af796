//! A baseline run killed mid-epoch and resumed from its last checkpoint ends with the weights of an
//! uninterrupted run, bit for bit (the order generator's draws of the finished epochs are replayed).
//!
//! Without dropout: burn draws dropout masks from the device's global generator, whose state a checkpoint cannot
//! hold, so a resumed run with dropout is a statistically equal run, not the same one.

use r3_baselines::{
    BaselineExperiment, BaselineRecord, Error, Evaluator, FitInput, ModelKind, Sequences, TrainSettings, fit,
    seed_device,
};
use r3_metrics::Cutoffs;
use r3_trainer::checkpoint::parameter_bits;
use r3_trainer::run::read_metrics;

use crate::common::{catalogue, cycle_rows, test_device};

#[test]
fn a_killed_baseline_run_resumes_to_bit_identical_weights() -> anyhow::Result<()> {
    let n = 30;
    let cat = catalogue(n);
    let train = cycle_rows(24, n, 8, 1);
    let seqs = Sequences::from_train(&train, n);
    let eval = Evaluator::new(&cat, train.iter().collect(), Cutoffs::new(vec![10]).unwrap(), 64)?;
    let mut exp = BaselineExperiment::defaults(ModelKind::Sasrec);
    exp.sasrec.hidden_dropout = 0.0;
    exp.sasrec.attn_dropout = 0.0;
    exp.train = TrainSettings { epochs: 4, batch_size: 16, lr: 1e-2, patience: 4, seed: 3, ..TrainSettings::default() };
    let device = test_device().autodiff();
    // One starting model for every run (burn's generator is shared by the tests' threads).
    seed_device(&device, 3);
    let start = exp.init(n, &device);
    let tmp = tempfile::tempdir()?;
    let run = |dir: &std::path::Path, resume: bool, stop: Option<u64>| {
        let input = FitInput {
            seqs: &seqs,
            max_len: exp.max_len(),
            valid: &eval,
            settings: &exp.train,
            run_dir: dir,
            resume,
            stop_after_steps: stop,
        };
        fit(input, start.clone(), &mut |_| Ok::<(), Error>(()))
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let full = run(&a, false, None)?;
    assert!(full.finished && full.history.len() == 4);
    let records: Vec<BaselineRecord> = read_metrics(&a)?;
    let per_epoch = records.iter().filter(|r| matches!(r, BaselineRecord::Step { epoch: 0, .. })).count() as u64;
    assert!(per_epoch >= 2, "{per_epoch} steps per epoch");
    // Killed one step into epoch 3: the last checkpoint is the end of epoch 2.
    let killed = run(&b, false, Some(2 * per_epoch + 1))?;
    assert!(!killed.finished && killed.history.len() == 2);
    let resumed = run(&b, true, None)?;
    assert!(resumed.finished);
    assert_eq!(resumed.history.len(), 4, "the history of the first session is kept");
    assert_eq!((resumed.best_epoch, resumed.best_ndcg10), (full.best_epoch, full.best_ndcg10));
    assert!(parameter_bits(&full.model) == parameter_bits(&resumed.model), "the resumed weights differ");
    let again: Vec<BaselineRecord> = read_metrics(&b)?;
    assert_eq!(again.len(), records.len(), "every step and epoch once");
    Ok(())
}
