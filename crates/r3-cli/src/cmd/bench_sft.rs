//! `latentr3 bench sft`: the time of one LatentR³ SFT optimizer step on real CDs samples.
//!
//! The batch is the first `--batch` rows of the CDs train split, encoded with the paper template and one
//! `<|Thought|>` token (`--no-latent` for BIGRec). One step is exactly the trainer's
//! ([`r3_train::SftTrainer::train_step`]): the prompt prefix computed once and reused by pass 2 (docs/method.md §3),
//! LatentRATT, the cross-entropy over the target tokens, backward through everything, global grad-norm clipping
//! and AdamW. The median over `--runs` timed steps after `--warmup` untimed ones (default 2) is reported, with the peak
//! resident memory of the process. `bench/sft_vs_torch.py` runs the official two-full-pass step in PyTorch on
//! the same batch (`--dump-batch`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use r3_data::{Dataset, Split};
use r3_train::{NoProgress, SftConfig, SftData, SftTrainer, build_latent};

use super::bench::{CommonArgs, median, time_runs};
use crate::model_source;

/// The dataset whose train rows make the benchmark batch.
const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

/// The default untimed steps. The first step allocates the optimizer's moments after the activations are freed;
/// the second then needs fresh memory for its activations beside them (Qwen2.5-Coder-0.5B: 1.6 M page faults,
/// resident 9.0 → 13.9 GB), and only from the third on does a step reuse the heap as every later step of a
/// training run does.
const STEADY_WARMUP: usize = 2;

/// Arguments of `latentr3 bench sft`.
#[derive(Debug, clap::Args)]
pub struct SftBenchArgs {
    /// A model id (see `latentr3 model list`), a .gguf file, or a Hugging Face folder.
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// Samples per step (one micro-batch unless --micro-batch is smaller).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Samples per micro-batch (default: the whole batch).
    #[arg(long)]
    pub micro_batch: Option<usize>,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// BIGRec: no latent token.
    #[arg(long)]
    pub no_latent: bool,
    /// Also write the batch (prompt and target ids, thought id) as JSON to this file.
    #[arg(long)]
    pub dump_batch: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `latentr3 bench sft`.
pub fn run(args: &SftBenchArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.runs == 0 {
        bail!("--batch and --runs must be at least 1");
    }
    let micro = args.micro_batch.unwrap_or(args.batch);
    let dev = args.common.device()?;
    let autodiff = dev.clone().autodiff();
    let data_dir = args.common.data_dir()?;
    // The trainer writes its run files here; the folder is removed when `scratch` drops, errors included.
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let overrides = [
        format!("model.id={:?}", args.model),
        format!("data.stem={STEM:?}"),
        format!("data.no_latent={}", args.no_latent),
        format!("train.batch={}", args.batch),
        format!("train.micro_batch={micro}"),
        format!("run.output_dir={:?}", scratch.path().display().to_string()),
    ];
    let config = SftConfig::from_toml_str("", "bench sft", &overrides)?;
    config.validate("bench sft")?;

    let source = model_source::resolve(&args.model)?;
    let loaded = model_source::load(&source, &autodiff)?;
    let setup = build_latent(loaded.backbone, loaded.tokenizer, &config)?;
    let dataset =
        Dataset::load(&data_dir, STEM).with_context(|| format!("loading {STEM} from {}", data_dir.display()))?;
    let rows = dataset.split(Split::Train);
    if rows.len() < args.batch {
        bail!("--batch {} is larger than the {} train rows", args.batch, rows.len());
    }
    let samples =
        rows[..args.batch].iter().map(|r| setup.encoder.encode_sample(r, true)).collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.dump_batch {
        let json = serde_json::json!({
            "model": args.model,
            "thought_id": setup.encoder.thought_id(),
            "samples": samples.iter().map(|s| serde_json::json!({
                "prompt_ids": s.prompt_ids, "target_ids": s.target_ids,
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, json.to_string()).with_context(|| format!("writing {}", path.display()))?;
    }
    let tokens: usize = samples.iter().map(|s| s.prompt_ids.len() + s.n_thought + s.target_ids.len()).sum();
    let target_tokens: usize = samples.iter().map(|s| s.target_ids.len()).sum();
    // The trainer wants validation samples (for early stopping); the benchmark never validates.
    let valid = samples[..1].to_vec();
    let data = SftData { train: samples, valid, collate: super::train::collate(&setup.encoder) };
    let mut trainer = SftTrainer::new(config, setup.model, data, autodiff.clone())?.with_progress(Box::new(NoProgress));
    let idx: Vec<usize> = (0..args.batch).collect();
    let mut last_loss = f64::NAN;
    let warmup = args.common.warmup.unwrap_or(STEADY_WARMUP);
    let times = time_runs(
        &dev,
        warmup,
        args.runs,
        |_| (),
        |_, ()| {
            last_loss = trainer.train_step(&idx, 1e-5)?.0;
            Ok(())
        },
    )?;
    drop(trainer);
    let median = median(&times);
    let peak_kb = peak_rss_kb();
    if args.common.json {
        let line = serde_json::json!({
            "kind": "sft", "model": args.model, "batch": args.batch, "micro_batch": micro,
            "latent": !args.no_latent, "median_s": median, "tokens": tokens, "target_tokens": target_tokens,
            "tokens_per_s": tokens as f64 / median, "loss": last_loss, "runs": args.runs,
            "warmup": warmup, "times_s_sorted": times, "peak_rss_mb": peak_kb.map(|kb| kb as f64 / 1024.0),
        });
        println!("{line}");
    } else {
        println!(
            "{}: one SFT step of {} samples ({} tokens, {} target tokens): median {:.2} s over {} runs after {} warm-up steps, \
             {:.0} tokens/s, peak RSS {}",
            args.model,
            args.batch,
            tokens,
            target_tokens,
            median,
            args.runs,
            warmup,
            tokens as f64 / median,
            peak_kb.map_or("unknown".into(), |kb| format!("{:.0} MB", kb as f64 / 1024.0))
        );
    }
    Ok(())
}

/// The peak resident set size of this process (`VmHWM` of /proc/self/status), in KiB; `None` off Linux.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
