//! Each baseline overfits a tiny set; an untrained model ranks at chance; model folders round-trip.

use r3_baselines::{BaselineExperiment, Evaluator, ModelKind, Sequences, TrainSettings, seed_device, store};
use r3_metrics::Cutoffs;

use crate::common::{Measured, catalogue, cycle_rows, fit_and_measure, random_rows, test_device};

/// The experiment of `kind` without dropout, for memorising a tiny set.
fn no_dropout(kind: ModelKind) -> BaselineExperiment {
    let mut e = BaselineExperiment::defaults(kind);
    e.sasrec.hidden_dropout = 0.0;
    e.sasrec.attn_dropout = 0.0;
    e.gru4rec.dropout = 0.0;
    e.caser.dropout = 0.0;
    e.train = TrainSettings { epochs: 40, batch_size: 16, lr: 1e-2, patience: 40, seed: 7, ..TrainSettings::default() };
    e
}

/// 40 users walking a cycle over 30 items: the next item is a function of the last one. Trained without dropout,
/// each model must rank the right next item first on (almost) every training row.
#[test]
fn each_model_overfits_a_tiny_set() {
    let n = 30;
    let cat = catalogue(n);
    let train = cycle_rows(40, n, 8, 1);
    let seqs = Sequences::from_train(&train, n);
    assert_eq!(seqs.seqs.len(), 40);
    let rows: Vec<_> = train.iter().collect();
    let eval = Evaluator::new(&cat, rows, Cutoffs::new(vec![1, 10]).unwrap(), 64).unwrap();
    for kind in ModelKind::SEQUENTIAL {
        let exp = no_dropout(kind);
        let device = test_device().autodiff();
        seed_device(&device, exp.train.seed);
        let model = exp.init(n, &device);
        let Measured { before, after, losses, out } = fit_and_measure(model, &seqs, exp.max_len(), &eval, &exp.train);
        println!(
            "{kind}: HR@1 {:.3} → {:.3}, loss {:.3} → {:.3}, best epoch {}",
            before.hr[0],
            after.hr[0],
            losses[0],
            losses[losses.len() - 1],
            out.best_epoch
        );
        assert!(after.hr[0] >= 0.95, "{kind} did not memorise the cycle: HR@1 = {}", after.hr[0]);
        assert!(
            losses[losses.len() - 1] < 0.2 * losses[0],
            "{kind}: the loss fell only from {} to {:?}",
            losses[0],
            losses.last()
        );
        assert!((out.best_ndcg10 - after.ndcg[1]).abs() < 1e-12, "{kind}: the returned model is the best epoch's");
    }
}

/// Untrained models score items independently of random targets: HR@10 ≈ 10 / |items| (3σ band).
#[test]
fn untrained_hr10_is_chance() {
    let n = 200;
    let m = 3000;
    let cat = catalogue(n);
    let rows = random_rows(m, n, 11);
    let eval = Evaluator::new(&cat, rows.iter().collect(), Cutoffs::new(vec![10]).unwrap(), 500).unwrap();
    let p = 10.0 / n as f64;
    let sigma = (p * (1.0 - p) / m as f64).sqrt();
    for kind in ModelKind::SEQUENTIAL {
        let device = test_device();
        seed_device(&device, 3);
        let model = BaselineExperiment::defaults(kind).init(n, &device);
        let hr = eval.metrics(&model).unwrap().hr[0];
        println!("{kind}: untrained HR@10 = {hr:.4} (chance {p:.4} ± {sigma:.4})");
        assert!((hr - p).abs() < 4.0 * sigma, "{kind}: HR@10 {hr} is not near chance {p}");
    }
}

/// A saved model folder loads back to the same scores; a folder of another catalogue size is refused.
#[test]
fn model_folder_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let device = test_device();
    for kind in ModelKind::SEQUENTIAL {
        seed_device(&device, 5);
        let exp = BaselineExperiment::defaults(kind);
        let model = exp.init(17, &device);
        let meta = store::ModelMeta {
            experiment: exp.clone(),
            n_items: 17,
            stem: "tiny".into(),
            epoch: 1,
            valid_ndcg10: 0.5,
            alpharec: None,
        };
        let path = dir.path().join(kind.name());
        store::save(&path, &model, &meta).unwrap();
        store::save(&path, &model, &meta).unwrap(); // replacing an existing folder
        let (loaded, meta2) = store::load(&path, &device).unwrap();
        assert_eq!(meta2, meta);
        let h: &[&[u32]] = &[&[1, 2, 3], &[16]];
        let a: Vec<f32> = model.scores(h).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let b: Vec<f32> = loaded.scores(h).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert_eq!(a, b, "{kind}");
        // The same weights under a config of another catalogue size do not load.
        let mut bad = meta.clone();
        bad.n_items = 18;
        let text = serde_json::to_string(&bad).unwrap();
        std::fs::write(path.join(store::CONFIG_FILE), text).unwrap();
        let e = store::load(&path, &device).unwrap_err().to_string();
        assert!(e.contains("model.bpk"), "{e}");
    }
}

/// Experiment files: defaults fill missing keys, unknown keys and bad values are refused with their name.
#[test]
fn experiment_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("e.toml");
    std::fs::write(&p, "model = \"sasrec\"\n[sasrec]\nhidden = 32\n[train]\nlr = 0.01\n").unwrap();
    let e = BaselineExperiment::read(&p).unwrap();
    assert_eq!((e.sasrec.hidden, e.sasrec.n_blocks, e.train.lr, e.train.batch_size), (32, 2, 0.01, 128));
    std::fs::write(&p, "model = \"sasrec\"\n[sasrec]\nhiden = 32\n").unwrap();
    let msg = BaselineExperiment::read(&p).unwrap_err().to_string();
    assert!(msg.contains("hiden"), "{msg}");
    std::fs::write(&p, "model = \"caser\"\n[caser]\ndropout = 1.5\n").unwrap();
    let msg = BaselineExperiment::read(&p).unwrap_err().to_string();
    assert!(msg.contains("caser.dropout"), "{msg}");
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/baselines")).unwrap() {
        let f = f.unwrap().path();
        BaselineExperiment::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}
