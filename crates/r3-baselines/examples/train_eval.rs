//! Trains one baseline and evaluates it on the test split with the library alone (the same calls as
//! `latentr3 baseline train`, without the progress bar): for environments where the CLI cannot be built.
//!
//! ```text
//! cargo run --release -p r3-baselines --example train_eval -- sasrec CDs_and_Vinyl_5_2015-10-2018-11 OUT_DIR
//! ```

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use r3_baselines::{BaselineExperiment, Evaluator, Event, FitInput, ModelKind, Sequences, fit, seed_device, store};
use r3_data::{Dataset, Popularity, PopularityConfig};
use r3_metrics::{Cutoffs, Format};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, stem, out] = args.as_slice() else {
        anyhow::bail!("usage: train_eval MODEL STEM OUT_DIR");
    };
    let kind: ModelKind = model.parse().map_err(anyhow::Error::msg)?;
    if kind == ModelKind::Alpharec {
        anyhow::bail!("AlphaRec needs its title representations from a backbone: use `latentr3 baseline train`");
    }
    let exp_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/baselines");
    let short = if stem.starts_with("CDs") { "cds" } else { "industrial" };
    let mut exp = BaselineExperiment::read(&exp_path.join(format!("{short}-{kind}.toml")))?;
    exp.stem = Some(stem.clone());
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let data = r3_data::shared_data_dir().ok_or_else(|| anyhow::anyhow!("no shared data folder"))?;
    let ds = Dataset::load(&data, stem)?;
    let n = ds.catalogue.len();
    let seqs = Sequences::from_train(&ds.train, n);
    let valid =
        Evaluator::new(&ds.catalogue, ds.valid.iter().collect(), Cutoffs::new(vec![5, 10])?, exp.train.eval_batch)?;
    let device = Device::flex().autodiff();
    seed_device(&device, exp.train.seed);
    // `fit` writes the run folder (metrics.jsonl, checkpoints); the events print the epochs and keep the best model.
    let mut on_event = |e: Event<'_>| -> r3_baselines::Result<()> {
        if let Event::Epoch { report, model } = e {
            eprintln!("{}", serde_json::to_string(report).unwrap_or_default());
            if report.best {
                let meta = store::ModelMeta {
                    experiment: exp.clone(),
                    n_items: n,
                    stem: stem.clone(),
                    epoch: report.epoch,
                    valid_ndcg10: report.valid_ndcg10,
                    alpharec: None,
                };
                store::save(&out.join("model"), model, &meta)?;
            }
        }
        Ok(())
    };
    let t = Instant::now();
    let (max_len, settings) = (exp.max_len(), &exp.train);
    let input = FitInput {
        seqs: &seqs,
        max_len,
        valid: &valid,
        settings,
        run_dir: &out,
        resume: false,
        stop_after_steps: None,
    };
    let fitted = fit(input, exp.init(n, &device), &mut on_event)?;
    let total_s = t.elapsed().as_secs_f64();
    let epochs = fitted.history.len();
    let train_s: f64 = fitted.history.iter().map(|r| r.train_s).sum();
    let test = Evaluator::new(&ds.catalogue, ds.test.iter().collect(), Cutoffs::default(), exp.train.eval_batch)?;
    let records = test.records(&test.rank(&fitted.model.valid()));
    let pred = out.join("test").join("predictions.json");
    std::fs::create_dir_all(out.join("test"))?;
    r3_metrics::write_predictions(&pred, &records, Format::Json)?;
    let popularity = Popularity::from_train(&ds.train, n, PopularityConfig::default());
    let report = test.report(&pred.display().to_string(), &records, &popularity)?;
    let summary = serde_json::json!({
        "model": kind, "stem": stem, "best_epoch": fitted.best_epoch, "epochs": epochs,
        "valid_ndcg10": fitted.best_ndcg10, "train_s_per_epoch": train_s / epochs as f64, "total_s": total_s,
        "test": report,
    });
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    print!("{}", report.to_table());
    println!(
        "{kind} {stem}: best epoch {} of {epochs}, {:.2} s/epoch training",
        fitted.best_epoch,
        train_s / epochs as f64
    );
    Ok(())
}
