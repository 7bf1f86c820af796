//! `latentr3 train grpo`: LatentR³'s second stage (docs/method.md §4 stage 2), LR-GRPO or the original GRPO, starting
//! from the model folder of an SFT run (`model.checkpoint = "RUN_DIR/model"`).
//!
//! Reads a TOML run configuration (`experiments/grpo/*.toml`, keys in `r3_grpo::GrpoConfig`) with `--set`
//! overrides, loads the SFT model folder on an autodiff device (the backbone is frozen, only LatentRATT trains),
//! encodes the train prompts and a fixed validation subset, trains with a progress line (loss, reward mean/std,
//! equal-reward groups, advantage norm, clip ratio, KL, grad norm, lr, samples/s), and writes the best model as a
//! self-contained folder `RUN_DIR/model`. `--resume RUN_DIR` continues a killed run from its last checkpoint.
//! `--devices cuda:0,cuda:1` trains data-parallel (whole advantage pools per device, so `grpo.advantage_groups`
//! does not depend on the device count; several machines through `R3_RANK`, `R3_WORLD_SIZE`, `R3_COORDINATOR`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::ProgressBar;
use r3_data::Split;
use r3_decode::CatalogueTrie;
use r3_grpo::{
    Algorithm, GrpoConfig, GrpoData, GrpoProgress, GrpoStepInfo, GrpoSummary, GrpoTrainer, validation_subset,
};
use r3_train::{LatentSetup, load_model_dir};

use super::train::{
    RunEnd, RunPaths, collate, encode_subset, load_dataset, rank_output_dir, save_finished, train_devices,
};
use crate::device;
use crate::progress;

/// Arguments of `latentr3 train grpo`.
#[derive(Debug, clap::Args)]
pub struct GrpoArgs {
    /// The run configuration (TOML; see experiments/grpo/ and `r3_grpo::GrpoConfig` for every key).
    #[arg(long, required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Override a key, e.g. `--set train.lr=5e-5 --set grpo.algorithm=grpo` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run in this folder from its latest checkpoint (its `config.resolved.toml` is used).
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
    /// Data parallelism over several devices of this machine, comma-separated: `cuda:0,cuda:1`, or `flex,flex`
    /// (threads on the CPU); the first one holds the run's model. Each device takes whole advantage pools.
    /// Several machines: also set `R3_RANK`, `R3_WORLD_SIZE` and `R3_COORDINATOR=host:port` (docs/scaling.md).
    #[arg(long, value_delimiter = ',', value_name = "DEVICE,DEVICE", conflicts_with = "device")]
    pub devices: Vec<device::DeviceSpec>,
}

/// Runs `latentr3 train grpo`.
pub fn run(args: &GrpoArgs) -> anyhow::Result<()> {
    let paths = RunPaths { config: args.config.as_deref(), resume: args.resume.as_deref() };
    let mut config = paths.load(r3_grpo::CONFIG_FILE, "latentr3 train grpo", &args.set, GrpoConfig::from_file)?;
    let (device, parallel) = train_devices(args.device, &args.devices)?;
    config.run.output_dir = rank_output_dir(&config.run.output_dir, parallel.as_ref());
    let autodiff = device.clone().autodiff();
    let setup = load_model_dir(Path::new(&config.model.checkpoint), &autodiff)
        .with_context(|| format!("loading the SFT model folder `model.checkpoint` = {}", config.model.checkpoint))?;
    let LatentSetup { model, encoder, backbone_config } = setup;

    let dataset = load_dataset(&config.data.dir, &config.data.stem)?;
    let train = encode_subset(&encoder, &dataset, Split::Train, config.data.sample, config.train.seed)?;
    let needs_trie = config.grpo.algorithm == Algorithm::Grpo || config.eval.every > 0;
    let items = needs_trie.then(|| CatalogueTrie::new(&encoder, &dataset.catalogue)).transpose()?;
    let valid = (config.eval.every > 0)
        .then(|| validation_subset(&encoder, dataset.split(Split::Valid), config.eval.sample, config.train.seed))
        .transpose()?;
    let data = GrpoData { train, collate: collate(&encoder), items, eos_id: encoder.eos_id(), valid };
    tracing::info!(
        train = data.train.len(),
        valid = data.valid.as_ref().map(|v| v.samples.len()),
        algorithm = ?config.grpo.algorithm,
        "prompts encoded"
    );
    let trainer = match &args.resume {
        None => GrpoTrainer::new(config, model, data, autodiff.clone())?,
        Some(dir) => GrpoTrainer::resume(dir, model, data, autodiff.clone())?,
    };
    let trainer = match &parallel {
        Some(p) => trainer.with_parallel(p)?,
        None => trainer,
    };
    let run_dir = trainer.run_dir().to_path_buf();
    let outcome = trainer.with_progress(Box::new(Bar::new())).run()?;
    print_summary(&outcome.summary);
    save_finished(outcome.summary.finished, &run_dir, &LatentSetup { model: outcome.model, encoder, backbone_config })
}

fn print_summary(s: &GrpoSummary) {
    RunEnd {
        state: if s.finished { "finished" } else { "interrupted" },
        steps: s.steps,
        total_steps: s.total_steps,
        metric: "NDCG",
        best: s.best_metric,
        best_step: s.best_step,
        elapsed_s: s.elapsed_s,
        run_dir: &s.run_dir,
    }
    .print();
}

/// The progress line: step, loss, rewards, advantage norm, clip ratio, KL, grad norm, lr, samples/s.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        Bar { bar: progress::step_bar("{prefix:>6} [{bar:25}] {pos}/{len} {msg} eta {eta}", "grpo") }
    }
}

impl GrpoProgress for Bar {
    fn on_start(&mut self, run_dir: &Path, start_step: u64, total_steps: u64) {
        progress::start_steps(&self.bar, start_step, total_steps);
        tracing::info!(run = %run_dir.display(), steps = total_steps, from = start_step, "training");
    }

    fn on_step(&mut self, i: &GrpoStepInfo) {
        self.bar.set_position(i.step);
        self.bar.set_message(format!(
            "loss {:.4} r {:.3}±{:.3} eq {:.2} |A| {:.2} clip {:.3} kl {} |g| {:.2} lr {:.2e} {:.1} smp/s",
            i.loss,
            i.reward_mean,
            i.reward_std,
            i.equal_reward_groups,
            i.advantage_norm,
            i.clip_ratio,
            i.kl.map_or("-".into(), |k| format!("{k:.4}")),
            i.grad_norm,
            i.lr,
            i.samples_per_s
        ));
    }

    fn on_eval(&mut self, step: u64, hr: f64, ndcg: f64, improved: bool) {
        // The library logs the validation itself; the bar shows the latest one.
        let best = if improved { " (best)" } else { "" };
        self.bar.set_prefix(format!("@{step} hr {hr:.3} ndcg {ndcg:.3}{best} grpo"));
    }
}
