//! `latentr3 train sft`: supervised fine-tuning of BIGRec or of the LatentR³ warm-up stage (docs/method.md §4 stage 1).
//!
//! Reads a TOML run configuration (`experiments/sft/*.toml`, keys in `r3_train::SftConfig`) with `--set`
//! overrides, loads the backbone on an autodiff device, appends the `<|Thought|>` row and a fresh LatentRATT,
//! encodes the train and validation rows, trains with a progress bar, and writes the best model as a
//! self-contained folder `RUN_DIR/model` (Hugging Face backbone + LatentRATT + `latent.json`). `--resume RUN_DIR`
//! continues a killed run from its last checkpoint. `--devices cuda:0,cuda:1` trains data-parallel over several
//! devices (and, with `R3_RANK`, `R3_WORLD_SIZE`, `R3_COORDINATOR`, over several machines; docs/scaling.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use r3_data::{Dataset, EncodedSample, Encoder, Split};
use r3_train::parallel::{Launch, ParallelConfig, Reduction};
use r3_train::progress::{EvalInfo, StartInfo, StepInfo, TrainProgress};
use r3_train::{
    Collate, LatentSetup, SftConfig, SftData, SftSummary, SftTrainer, build_latent, save_model_dir, seeded_subset,
};

use crate::device;
use crate::{model_source, progress};

/// `latentr3 train ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TrainCommand {
    /// Supervised fine-tuning: BIGRec (`--set data.no_latent=true`) or the LatentR³ warm-up.
    Sft(SftArgs),
    /// LR-GRPO (or the original GRPO) on LatentRATT, starting from an SFT model folder.
    Grpo(super::train_grpo::GrpoArgs),
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
    /// BIGRec: train without the latent token (the same as `--set data.no_latent=true`).
    #[arg(long)]
    pub no_latent: bool,
    /// Train on a seeded subset of N training samples (the same as `--set data.sample=N`).
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Continue the run in this folder from its latest checkpoint (its `config.resolved.toml` is used).
    #[arg(long, conflicts_with_all = ["config", "no_latent", "sample"])]
    pub resume: Option<PathBuf>,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
    /// Data parallelism over several devices of this machine, comma-separated: `cuda:0,cuda:1`, or `flex,flex`
    /// (threads on the CPU); the first one holds the run's model. Several machines: also set `R3_RANK`,
    /// `R3_WORLD_SIZE` and `R3_COORDINATOR=host:port` (docs/scaling.md).
    #[arg(long, value_delimiter = ',', value_name = "DEVICE,DEVICE", conflicts_with = "device")]
    pub devices: Vec<device::DeviceSpec>,
}

/// The compute devices of a training command: `--devices` (or the one `--device`) and the launch environment
/// (`R3_RANK`, `R3_WORLD_SIZE`, `R3_COORDINATOR`). Returns the device of the run's model (the first one) and the
/// data-parallel layout when there is more than one peer. Local CUDA peers of one process sum their gradients
/// with burn's collective all-reduce; every other case sums on the host (`r3_train::parallel`).
pub(crate) fn train_devices(
    device: Option<device::DeviceSpec>,
    devices: &[device::DeviceSpec],
) -> anyhow::Result<(burn::tensor::Device, Option<ParallelConfig>)> {
    let launch = Launch::from_env()?;
    let specs: Vec<Option<device::DeviceSpec>> =
        if devices.is_empty() { vec![device] } else { devices.iter().copied().map(Some).collect() };
    let backends: Vec<_> = specs.iter().flatten().map(|s| s.backend).collect();
    if backends.windows(2).any(|w| w[0] != w[1]) {
        bail!("--devices mixes backends ({backends:?}): all peers of a run use one backend, e.g. `cuda:0,cuda:1`");
    }
    let built = specs.iter().map(|s| device::select(*s)).collect::<anyhow::Result<Vec<_>>>()?;
    let first = built[0].clone();
    if built.len() == 1 && launch.world_size == 1 {
        return Ok((first, None));
    }
    let all_cuda = backends.len() == specs.len() && backends.iter().all(|b| *b == device::BackendName::Cuda);
    let reduction =
        if all_cuda && launch.world_size == 1 && built.len() > 1 { Reduction::Burn } else { Reduction::Host };
    tracing::info!(
        devices = ?specs.iter().map(|s| s.map_or("default".into(), |s| s.to_string())).collect::<Vec<_>>(),
        rank = launch.rank,
        processes = launch.world_size,
        ?reduction,
        "data-parallel training"
    );
    Ok((first, Some(ParallelConfig { devices: built, reduction, launch })))
}

/// The run folder of a process of a multi-machine run: process 0 keeps `output_dir`, process `r > 0` writes the
/// same (identical) run into `output_dir/rank-r`, so that processes sharing a file system do not collide.
pub(crate) fn rank_output_dir(output_dir: &str, parallel: Option<&ParallelConfig>) -> String {
    match parallel {
        Some(p) if p.launch.rank > 0 => {
            Path::new(output_dir).join(format!("rank-{}", p.launch.rank)).display().to_string()
        }
        _ => output_dir.to_string(),
    }
}

/// Runs `latentr3 train ...`.
pub fn run(command: &TrainCommand) -> anyhow::Result<()> {
    match command {
        TrainCommand::Sft(args) => run_sft(args),
        TrainCommand::Grpo(args) => super::train_grpo::run(args),
    }
}

/// Checks what a run needs besides the model before anything is fetched: the dataset stem, and the prompt word
/// of its category.
fn check_before_fetch(config: &SftConfig) -> anyhow::Result<()> {
    if config.data.stem.is_empty() {
        anyhow::bail!(
            "config key `data.stem` is not set: name the dataset's split files, e.g. `stem = \"CDs_and_Vinyl_5_2015-10-\
             2018-11\"` under [data] in the config file, or `--set data.stem=CDs_and_Vinyl_5_2015-10-2018-11`"
        );
    }
    r3_train::latent::encoder_config(config)?;
    Ok(())
}

fn run_sft(args: &SftArgs) -> anyhow::Result<()> {
    let mut overrides = args.set.clone();
    if args.no_latent {
        overrides.push("data.no_latent=true".into());
    }
    if let Some(n) = args.sample {
        overrides.push(format!("data.sample={n}"));
    }
    let paths = RunPaths { config: args.config.as_deref(), resume: args.resume.as_deref() };
    let mut config = paths.load("config.resolved.toml", "latentr3 train sft", &overrides, SftConfig::from_file)?;
    config.validate("config")?;
    check_before_fetch(&config)?;
    let (device, parallel) = train_devices(args.device, &args.devices)?;
    config.run.output_dir = rank_output_dir(&config.run.output_dir, parallel.as_ref());
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
    let trainer = match &parallel {
        Some(p) => trainer.with_parallel(p)?,
        None => trainer,
    };
    let run_dir = trainer.run_dir().to_path_buf();
    let outcome = trainer.with_progress(progress).run()?;
    print_summary(&outcome.summary);
    save_finished(outcome.summary.finished, &run_dir, &LatentSetup { model: outcome.model, encoder, backbone_config })
}

/// `--config FILE` or `--resume RUN_DIR` of a training command (exactly one of them must be given).
pub(crate) struct RunPaths<'a> {
    /// The run configuration to start from.
    pub config: Option<&'a Path>,
    /// The run folder to resume.
    pub resume: Option<&'a Path>,
}

impl RunPaths<'_> {
    /// The run configuration: `--config FILE` with `overrides` applied, or the resolved configuration `resolved`
    /// of the `--resume` folder (where overrides are refused); `command` names the subcommand in errors.
    pub fn load<C, E>(
        &self,
        resolved: &str,
        command: &str,
        overrides: &[String],
        from_file: impl Fn(&Path, &[String]) -> Result<C, E>,
    ) -> anyhow::Result<C>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match (self.config, self.resume) {
            (Some(path), None) => Ok(from_file(path, overrides)?),
            (None, Some(dir)) => {
                if !overrides.is_empty() {
                    bail!("--set cannot change a run that is resumed: the run continues with its resolved config");
                }
                from_file(&dir.join(resolved), &[])
                    .with_context(|| format!("{} is not a run folder of `{command}`", dir.display()))
            }
            _ => bail!("pass either --config FILE or --resume RUN_DIR"),
        }
    }
}

/// Writes the trained model as the self-contained folder `RUN_DIR/model` and prints its path, when the run
/// `finished` (an interrupted run keeps only its checkpoints).
pub(crate) fn save_finished(finished: bool, run_dir: &Path, setup: &LatentSetup) -> anyhow::Result<()> {
    if finished {
        let out = run_dir.join("model");
        save_model_dir(setup, &out)?;
        println!("model: {}", out.display());
    }
    Ok(())
}

/// Loads the dataset `stem` from the folder `dir` of a run configuration (`data.dir`; empty: the default folder).
pub(crate) fn load_dataset(dir: &str, stem: &str) -> anyhow::Result<Dataset> {
    let dir = if dir.is_empty() { super::data_dir(None)? } else { PathBuf::from(dir) };
    Dataset::load(&dir, stem).with_context(|| format!("loading the dataset `{stem}` from {}", dir.display()))
}

/// Encodes (with targets) a seeded subset of `n` rows of `split` ([`seeded_subset`]; `n = 0`: all of them).
pub(crate) fn encode_subset(
    encoder: &Encoder,
    dataset: &Dataset,
    split: Split,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<EncodedSample>> {
    let rows = dataset.split(split);
    seeded_subset(rows.len(), n, seed)
        .into_iter()
        .map(|i| encoder.encode_sample(&rows[i], true).map_err(anyhow::Error::from))
        .collect()
}

/// The batching function of `encoder`'s samples: [`r3_data::SftBatch::new`] with its thought count, thought id
/// (0 without latent tokens) and pad id.
pub(crate) fn collate(encoder: &Encoder) -> Collate {
    let (n_thought, thought, pad) = (encoder.n_thought(), encoder.thought_id().unwrap_or(0), encoder.pad_id());
    Box::new(move |s| r3_data::SftBatch::new(s, n_thought, thought, pad))
}

/// Encodes the train rows (a seeded subset with `data.sample`) and the validation rows (`data.valid_sample`).
pub fn training_data(config: &SftConfig, encoder: &Encoder) -> anyhow::Result<SftData> {
    let dataset = load_dataset(&config.data.dir, &config.data.stem)?;
    let train = encode_subset(encoder, &dataset, Split::Train, config.data.sample, config.train.seed)?;
    let valid = encode_subset(encoder, &dataset, Split::Valid, config.data.valid_sample, config.train.seed)?;
    Ok(SftData { train, valid, collate: collate(encoder) })
}

fn print_summary(s: &SftSummary) {
    let state = if s.stopped_early {
        "stopped early"
    } else if s.finished {
        "finished"
    } else {
        "interrupted"
    };
    RunEnd {
        state,
        steps: s.steps,
        total_steps: s.total_steps,
        metric: "loss",
        best: s.best_val_loss,
        best_step: s.best_step,
        elapsed_s: s.elapsed_s,
        run_dir: &s.run_dir,
    }
    .print();
}

/// The closing line of a training run (printed on stdout by [`RunEnd::print`]).
pub(crate) struct RunEnd<'a> {
    /// `finished`, `interrupted`, `stopped early`.
    pub state: &'a str,
    /// Optimizer steps done.
    pub steps: u64,
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
    /// The name of the validation metric (`loss`, `NDCG`).
    pub metric: &'a str,
    /// The best validation value, if the run validated.
    pub best: Option<f64>,
    /// The step of `best`.
    pub best_step: Option<u64>,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// The run folder.
    pub run_dir: &'a Path,
}

impl RunEnd<'_> {
    /// Prints `STATE: N steps of T, best validation METRIC V at step S, E s, run folder DIR`.
    pub fn print(&self) {
        println!(
            "{}: {} steps of {}, best validation {} {} at step {}, {:.0} s, run folder {}",
            self.state,
            self.steps,
            self.total_steps,
            self.metric,
            self.best.map_or("-".into(), |l| format!("{l:.4}")),
            self.best_step.map_or("-".into(), |x| x.to_string()),
            self.elapsed_s,
            self.run_dir.display()
        );
    }
}

/// The training progress bar: steps, loss, learning rate, tokens/s and ETA on stderr.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        Bar { bar: progress::step_bar("{prefix:>9} [{bar:30}] {pos}/{len} {msg} eta {eta}", "sft") }
    }
}

impl TrainProgress for Bar {
    fn on_start(&mut self, info: &StartInfo<'_>) {
        progress::start_steps(&self.bar, info.start_step, info.total_steps);
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
        // The trainer logs the validation itself; the bar only shows the latest value.
        self.bar.set_prefix(format!("sft {:.3}", info.val_loss));
    }

    fn on_end(&mut self, _outcome: &SftSummary) {
        self.bar.finish_and_clear();
    }
}
