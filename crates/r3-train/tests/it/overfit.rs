//! Training works: a tiny model overfits a tiny set.

use std::cell::RefCell;
use std::rc::Rc;

use r3_train::run::{MetricRecord, read_metrics};
use r3_train::{EvalInfo, SftSummary, SftTrainer, StartInfo, StepInfo, TrainProgress};

use crate::{TinyLm, ad_device, config, data, loss_of, samples};

#[test]
fn a_tiny_model_overfits_a_tiny_set() -> anyhow::Result<()> {
    let device = ad_device();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("overfit");
    let set = samples(16, 0);
    let cfg = config(
        &dir,
        &[
            "train.batch=8",
            "train.micro_batch=4",
            "train.epochs=60",
            "train.warmup=5",
            "train.lr=1e-2",
            "train.patience=0",
        ],
    );
    let model = TinyLm::new(&device, 1);
    let start = loss_of(&model, &set);
    let seen = Rc::new(RefCell::new(Seen::default()));
    let out = SftTrainer::new(cfg, model, data(set.clone(), set.clone()), device)?
        .with_progress(Box::new(Recorder(seen.clone())))
        .run()?;
    let end = loss_of(&out.model, &set);
    let steps: Vec<f64> = read_metrics(&dir)?
        .into_iter()
        .filter_map(|r| if let MetricRecord::Step { loss, .. } = r { Some(loss) } else { None })
        .collect();
    println!("loss {start:.4} → {end:.4}; steps {}; last step losses {:?}", steps.len(), &steps[steps.len() - 3..]);
    assert_eq!(out.summary.steps, 120);
    assert!(end < 0.1, "the loss only fell from {start} to {end}");
    // The progress callbacks saw the whole run: 2 steps per epoch, one validation per epoch.
    let seen = seen.borrow();
    assert_eq!((seen.starts, seen.steps.len(), seen.evals, seen.ends), (1, 120, 60, 1));
    assert!(seen.steps.iter().enumerate().all(|(i, s)| s.step == i as u64 + 1 && s.total_steps == 120));
    assert_eq!(seen.steps.last().map(|s| s.eta_s), Some(0.0));
    assert!(seen.steps.iter().all(|s| s.tokens_per_s > 0.0 && s.loss.is_finite()));
    Ok(())
}

#[derive(Default)]
struct Seen {
    starts: usize,
    steps: Vec<StepInfo>,
    evals: usize,
    ends: usize,
}

struct Recorder(Rc<RefCell<Seen>>);

impl TrainProgress for Recorder {
    fn on_start(&mut self, info: &StartInfo<'_>) {
        assert_eq!((info.start_step, info.total_steps, info.train_samples), (0, 120, 16));
        self.0.borrow_mut().starts += 1;
    }
    fn on_step(&mut self, info: &StepInfo) {
        self.0.borrow_mut().steps.push(info.clone());
    }
    fn on_eval(&mut self, info: &EvalInfo) {
        assert!(info.val_loss >= info.best_val_loss);
        self.0.borrow_mut().evals += 1;
    }
    fn on_end(&mut self, summary: &SftSummary) {
        assert!(summary.finished);
        self.0.borrow_mut().ends += 1;
    }
}
