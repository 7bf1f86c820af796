//! Slow check on the real CDs data (`R3_SLOW=1`): three epochs of SASRec on the recovered train subset beat the
//! chance level of full-catalogue ranking on 1000 validation rows by a wide margin.

use r3_baselines::{BaselineExperiment, Error, Evaluator, FitInput, ModelKind, Sequences, fit, seed_device};
use r3_data::Dataset;
use r3_metrics::Cutoffs;

use crate::common::test_device;

#[test]
fn sasrec_learns_on_cds() {
    if std::env::var("R3_SLOW").as_deref() != Ok("1") {
        eprintln!("skipped: set R3_SLOW=1 to train SASRec for 3 epochs on the CDs data");
        return;
    }
    let dir = r3_data::shared_data_dir().expect("the shared data folder");
    let ds = Dataset::load(&dir, "CDs_and_Vinyl_5_2015-10-2018-11").unwrap();
    let n = ds.catalogue.len();
    let seqs = Sequences::from_train(&ds.train, n);
    let valid: Vec<_> = ds.valid.iter().take(1000).collect();
    let eval = Evaluator::new(&ds.catalogue, valid, Cutoffs::new(vec![10]).unwrap(), 500).unwrap();
    let mut exp = BaselineExperiment::defaults(ModelKind::Sasrec);
    exp.train.epochs = 3;
    let device = test_device().autodiff();
    seed_device(&device, exp.train.seed);
    let run = tempfile::tempdir().unwrap();
    let input = FitInput {
        seqs: &seqs,
        max_len: exp.max_len(),
        valid: &eval,
        settings: &exp.train,
        run_dir: run.path(),
        resume: false,
        stop_after_steps: None,
    };
    let out = fit(input, exp.init(n, &device), &mut |_| Ok::<(), Error>(())).unwrap();
    let chance = 10.0 / n as f64;
    let hr = out.history.iter().map(|r| r.valid_hr10).fold(0.0, f64::max);
    eprintln!("SASRec, 3 epochs on CDs: valid HR@10 {hr:.4} (chance {chance:.4})");
    assert!(hr > 5.0 * chance, "HR@10 {hr} is not well above chance {chance}");
}
