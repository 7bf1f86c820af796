//! Helpers shared by the integration tests: the device and tiny synthetic datasets.

use burn::module::Module;
use burn::tensor::Device;
use r3_baselines::{BaselineModel, Error, Evaluator, Event, FitInput, FitOutput, Sequences, TrainSettings, fit};
use r3_data::{Catalogue, Interaction, ItemId, SplitMix64};
use r3_metrics::Metrics;

/// The device of the tests (the flex CPU backend).
pub fn test_device() -> Device {
    Device::flex()
}

/// A catalogue of `n` distinct titles `item 0`, `item 1`, ...
pub fn catalogue(n: usize) -> Catalogue {
    Catalogue::from_titles((0..n).map(|i| format!("item {i}")).collect())
}

/// A split row of `user` with history `history` and target `item` (titles from [`catalogue`]).
pub fn row(user: &str, history: &[ItemId], item: ItemId, ts: i64) -> Interaction {
    let n = history.len();
    Interaction {
        user_id: user.into(),
        history_asins: vec!["a".into(); n],
        item_asin: "a".into(),
        history_item_ids: history.to_vec(),
        item_id: item,
        history_titles: history.iter().map(|i| format!("item {i}")).collect(),
        item_title: format!("item {item}"),
        history_ratings: vec![5.0; n],
        rating: 5.0,
        history_timestamps: (0..n as i64).collect(),
        timestamp: ts,
    }
}

/// Train rows of `users` users whose sequences walk the cycle `i → (i + 1) mod n` from a seeded start, `len`
/// items each, as prefix rows (history ≤ 10).
pub fn cycle_rows(users: usize, n: usize, len: usize, seed: u64) -> Vec<Interaction> {
    let mut rng = SplitMix64::new(seed);
    let mut rows = Vec::new();
    for u in 0..users {
        let start = rng.below(n);
        let seq: Vec<ItemId> = (0..len).map(|i| ((start + i) % n) as ItemId).collect();
        for t in 1..len {
            let h = &seq[t.saturating_sub(10)..t];
            rows.push(row(&format!("u{u:03}"), h, seq[t], t as i64));
        }
    }
    rows
}

/// `m` rows with random histories (1..=10 items) and random targets over `n` items.
pub fn random_rows(m: usize, n: usize, seed: u64) -> Vec<Interaction> {
    let mut rng = SplitMix64::new(seed);
    (0..m)
        .map(|i| {
            let len = 1 + rng.below(10);
            let h: Vec<ItemId> = (0..len).map(|_| rng.below(n) as ItemId).collect();
            row(&format!("r{i}"), &h, rng.below(n) as ItemId, 100)
        })
        .collect()
}

/// What [`fit_and_measure`] saw: the validation metrics before and after training, the loss of every epoch and
/// the fit's output.
pub struct Measured {
    /// Validation metrics of the untrained model.
    pub before: Metrics,
    /// Validation metrics of the best epoch's model.
    pub after: Metrics,
    /// The training loss of every epoch.
    pub losses: Vec<f64>,
    /// What `fit` returned.
    pub out: FitOutput,
}

/// Trains `model` with `fit` on `seqs` (validation on `eval`), recording the loss of every epoch.
pub fn fit_and_measure(
    model: BaselineModel,
    seqs: &Sequences,
    max_len: usize,
    eval: &Evaluator<'_>,
    settings: &TrainSettings,
) -> Measured {
    let before = eval.metrics(&model.valid()).unwrap();
    let mut losses = Vec::new();
    let mut on_event = |e: Event<'_>| {
        if let Event::Epoch { report, .. } = e {
            losses.push(report.loss);
        }
        Ok::<(), Error>(())
    };
    let run = tempfile::tempdir().unwrap();
    let input =
        FitInput { seqs, max_len, valid: eval, settings, run_dir: run.path(), resume: false, stop_after_steps: None };
    let out = fit(input, model, &mut on_event).unwrap();
    let after = eval.metrics(&out.model).unwrap();
    Measured { before, after, losses, out }
}
