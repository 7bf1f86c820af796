//! `latentr3 train sft`: supervised fine-tuning of BIGRec or of the LatentR³ warm-up stage (PAPER.md §4 stage 1).
//!
//! Reads a TOML run configuration (`experiments/sft/*.toml`, keys in `r3_train::SftConfig`) with `--set`
//! overrides, loads the backbone on an autodiff device, appends the `<|Thought|>` row and a fresh LatentRATT,
//! encodes the train and validation rows, trains with a progress bar, and writes the best model as a
//! self-contained folder `RUN_DIR/model` (Hugging Face backbone + LatentRATT + `latent.json`). `--resume RUN_DIR`
//! continues a killed run from its last checkpoint.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use r3_data::{Dataset, EncodedSample, Encoder, Split};
use r3_train::progress::{EvalInfo, StartInfo, StepInfo, TrainProgress};
use r3_train::{LatentSetup, SftConfig, SftData, SftSummary, SftTrainer, build_latent, save_model_dir, seeded_subset};

use crate::device::{self, BackendName};
use crate::model_source;

/// `latentr3 train ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TrainCommand {
    /// Supervised fine-tuning: BIGRec (`--set data.no_latent=true`) or the LatentR³ warm-up.
    Sft(SftArgs),
}

/// Arguments of `latentr3 train sft`.
#[derive(Debug, clap::Args)]
pub struct SftArgs {
    /// The run configuration (TOML; see experiments/sft/ and `r3_train::SftConfig` for every key).
    #[arg(long, required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Override a key of the configuration, e.g. `--set train.lr=1e-4 --set data.sample=256` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run in this folder from its latest checkpoint (its `config.resolved.toml` is used).
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// The compute backend (default: the first compiled in; `BURN_DEVICE` overrides).
    #[arg(long, value_enum)]
    pub device: Option<BackendName>,
}

/// Runs `latentr3 train ...`.
pub fn run(command: &TrainCommand) -> anyhow::Result<()> {
    match command {
        TrainCommand::Sft(args) => run_sft(args),
    }
}

fn run_sft(args: &SftArgs) -> anyhow::Result<()> {
    let config = match (&args.config, &args.resume) {
        (Some(path), None) => SftConfig::from_file(path, &args.set)?,
        (None, Some(dir)) => {
            if !args.set.is_empty() {
                bail!("--set cannot change a run that is resumed: the run continues with its resolved config");
            }
            SftConfig::from_file(&dir.join("config.resolved.toml"), &[])
                .with_context(|| format!("{} is not a run folder of `latentr3 train sft`", dir.display()))?
        }
        _ => bail!("pass either --config FILE or --resume RUN_DIR"),
    };
    config.validate("config")?;
    let device = device::select(args.device)?;
    let autodiff = device.clone().autodiff();

    let source = model_source::resolve(&config.model.id)?;
    let loaded = model_source::load(&source, &autodiff)?;
    let LatentSetup { model, encoder, backbone_config } = build_latent(loaded.backbone, loaded.tokenizer, &config)?;
    let data = training_data(&config, &encoder)?;
    tracing::info!(
        train = data.train.len(),
        valid = data.valid.len(),
        n_latent = model.n_latent,
        latentratt = model.ratt.is_some(),
        params = burn::module::Module::num_params(&model),
        "samples encoded"
    );
    let model = r3_train::lora::apply_lora(model, &config.model.lora)?;
    let progress = Box::new(Bar::new());
    let trainer = match &args.resume {
        None => SftTrainer::new(config, model, data, autodiff.clone())?,
        Some(dir) => SftTrainer::resume(dir, model, data, autodiff.clone())?,
    };
    let run_dir = trainer.run_dir().to_path_buf();
    let outcome = trainer.with_progress(progress).run()?;
    print_summary(&outcome.summary);
    if outcome.summary.finished {
        let out = run_dir.join("model");
        save_model_dir(&LatentSetup { model: outcome.model, encoder, backbone_config }, &out)?;
        println!("model: {}", out.display());
    }
    Ok(())
}

/// Encodes the train rows (a seeded subset with `data.sample`) and the validation rows (`data.valid_sample`).
pub fn training_data(config: &SftConfig, encoder: &Encoder) -> anyhow::Result<SftData> {
    let dir = data_dir(config)?;
    let dataset = Dataset::load(&dir, &config.data.stem)
        .with_context(|| format!("loading the dataset `{}` from {}", config.data.stem, dir.display()))?;
    let encode = |split: Split, n: usize| -> anyhow::Result<Vec<EncodedSample>> {
        let rows = dataset.split(split);
        seeded_subset(rows.len(), n, config.train.seed)
            .into_iter()
            .map(|i| encoder.encode_sample(&rows[i], true).map_err(anyhow::Error::from))
            .collect()
    };
    let train = encode(Split::Train, config.data.sample)?;
    let valid = encode(Split::Valid, config.data.valid_sample)?;
    let (n_thought, thought, pad) = (encoder.n_thought(), encoder.thought_id().unwrap_or(0), encoder.pad_id());
    Ok(SftData { train, valid, collate: Box::new(move |s| r3_data::SftBatch::new(s, n_thought, thought, pad)) })
}

/// `data.dir`, else the default data folder.
fn data_dir(config: &SftConfig) -> anyhow::Result<PathBuf> {
    if config.data.dir.is_empty() { super::data_dir(None) } else { Ok(PathBuf::from(&config.data.dir)) }
}

fn print_summary(s: &SftSummary) {
    let state = if s.stopped_early {
        "stopped early"
    } else if s.finished {
        "finished"
    } else {
        "interrupted"
    };
    println!(
        "{state}: {} steps of {}, best validation loss {} at step {}, {:.0} s, run folder {}",
        s.steps,
        s.total_steps,
        s.best_val_loss.map_or("-".into(), |l| format!("{l:.4}")),
        s.best_step.map_or("-".into(), |x| x.to_string()),
        s.elapsed_s,
        s.run_dir.display()
    );
}

/// The training progress bar: steps, loss, learning rate, tokens/s and ETA on stderr.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("sft");
        bar.enable_steady_tick(Duration::from_millis(500));
        Bar { bar }
    }
}

impl TrainProgress for Bar {
    fn on_start(&mut self, info: &StartInfo<'_>) {
        self.bar.set_length(info.total_steps);
        self.bar.set_position(info.start_step);
        self.bar.reset_eta();
        tracing::info!(
            run = %info.run_dir.display(),
            steps = info.total_steps,
            from = info.start_step,
            train = info.train_samples,
            valid = info.valid_samples,
            "training"
        );
    }

    fn on_step(&mut self, info: &StepInfo) {
        self.bar.set_position(info.step);
        self.bar.set_message(format!(
            "epoch {} loss {:.4} lr {:.2e} |g| {:.2} {:.0} tok/s",
            info.epoch, info.loss, info.lr, info.grad_norm, info.tokens_per_s
        ));
    }

    fn on_eval(&mut self, info: &EvalInfo) {
        self.bar.suspend(|| {
            tracing::info!(
                step = info.step,
                epoch = info.epoch,
                val_loss = info.val_loss,
                best = info.best_val_loss,
                improved = info.improved,
                "validation"
            )
        });
    }

    fn on_end(&mut self, _outcome: &SftSummary) {
        self.bar.finish_and_clear();
    }
}
