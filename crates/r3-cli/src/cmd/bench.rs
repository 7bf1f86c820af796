//! `latentr3 bench prefill|decode`: the speed of the decoder on real text, for comparisons with PyTorch
//! (`bench/prefill_vs_torch.py`) and across backends.
//!
//! The token ids are deterministic real text: the item titles of the CDs test split (`test/CDs_and_Vinyl_5_...csv`,
//! one per row, in file order) joined with ", ", tokenised without special tokens, and cut into `batch`
//! consecutive windows of `tokens` ids (`tokens + 1` for `decode`, whose last id is the decoded token).
//!
//! - `prefill` times one [`r3_backbone::Backbone::hidden`] pass over `batch × tokens` ids plus the logits of the
//!   last position of each row (what a prompt costs before decoding).
//! - `decode` runs one prefill of `tokens` ids per row (not timed), then times one cached step of one token per
//!   row: embedding, the layers against the cache, and the logits.
//!
//! Each timer stops after [`Device::sync`], so queued work is counted on asynchronous backends. The median over
//! `runs` timed runs (after `warmup` untimed ones) is reported.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};
use r3_backbone::{Backbone, BackboneConfig, HiddenInput, KvCache};
use r3_data::Tokenizer;

use crate::{device, model_source};

/// The split file whose titles make the benchmark text.
pub const TITLES_SPLIT: &str = "test/CDs_and_Vinyl_5_2015-10-2018-11.csv";

/// `latentr3 bench ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// One forward pass over batch × tokens ids plus the logits of each row's last position.
    Prefill(BenchArgs),
    /// One cached decoding step of one token per row, after a (not timed) prefill of `--tokens` ids.
    Decode(BenchArgs),
    /// One LatentR³ SFT optimizer step (two-pass forward, backward, AdamW) on real CDs samples.
    Sft(super::bench_sft::SftBenchArgs),
    /// Evaluation speed: users/s and per-user latency of constrained beam search on the first CDs test users.
    Eval(super::bench_eval::EvalBenchArgs),
    /// One GRPO micro-step (2 prompts × K samples: forward, rewards, loss, backward, AdamW on LatentRATT).
    Grpo(super::bench_grpo::GrpoBenchArgs),
}

/// Arguments of `latentr3 bench prefill|decode`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A model id (see `latentr3 model list`), a .gguf file, or a Hugging Face folder.
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// Rows processed together.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Tokens per row (the prompt length; for `decode`, the cached length before the step).
    #[arg(long, default_value_t = 128)]
    pub tokens: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also write the token windows as JSON (`{"windows": [[ids]]}`) to this file, so that another
    /// implementation can run on exactly the same ids.
    #[arg(long)]
    pub dump_ids: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The flags that every `latentr3 bench ...` shares: untimed warm-up runs, JSON output, the data folder and the
/// backend.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Untimed runs (steps, micro-steps, runs of the first batch) before the timed ones. Default: 1; 2 for
    /// `bench sft`, whose second step still grows the heap (the optimizer's moments now live beside the
    /// activations), so that the timed steps are the steady state of a training run.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Print one JSON line instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// The data folder with the CDs splits. Default: $LATENTR3_DATA, else ../shared/datasets/amazon18 beside
    /// the repository.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

impl CommonArgs {
    /// The device of `--device` (see [`device::select`]).
    pub fn device(&self) -> anyhow::Result<Device> {
        device::select(self.device)
    }

    /// The data folder of `--data` (see [`super::data_dir`]).
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        super::data_dir(self.data.as_ref())
    }
}

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prefill,
    Decode,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Prefill => "prefill",
            Kind::Decode => "decode",
        }
    }
}

/// Runs `latentr3 bench ...`.
pub fn run(cmd: &BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Prefill(a) => bench(a, Kind::Prefill),
        BenchCommand::Decode(a) => bench(a, Kind::Decode),
        BenchCommand::Sft(a) => super::bench_sft::run(a),
        BenchCommand::Eval(a) => super::bench_eval::run(a),
        BenchCommand::Grpo(a) => super::bench_grpo::run(a),
    }
}

fn bench(args: &BenchArgs, kind: Kind) -> anyhow::Result<()> {
    for (name, v) in [("--batch", args.batch), ("--tokens", args.tokens), ("--runs", args.runs)] {
        if v == 0 {
            bail!("{name} must be at least 1");
        }
    }
    let dev = args.common.device()?;
    let source = model_source::resolve(&args.model)?;
    let data = args.common.data_dir()?;
    let width = args.tokens + usize::from(kind == Kind::Decode);
    // Tokenise first and drop the tokenizer before the weights arrive: the peak memory is then the model's.
    let windows = token_windows(&model_source::load_tokenizer(&source)?, &data, args.batch, width)?;
    let loaded = model_source::load_backbone(&source, &dev)?;
    let (config, model) = (&loaded.config, &loaded.model);
    if let Some(path) = &args.dump_ids {
        let json = serde_json::json!({ "model": args.model, "kind": kind.name(), "windows": windows });
        std::fs::write(path, json.to_string()).with_context(|| format!("writing {}", path.display()))?;
    }
    let ids: Vec<i64> = windows.iter().flatten().map(|&t| i64::from(t)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [args.batch, width]), &dev); // [B, width]

    let warmup = args.common.warmup.unwrap_or(1);
    let times = match kind {
        Kind::Prefill => time_runs(&dev, warmup, args.runs, |_| (), |_, ()| Ok(prefill(model, ids.clone()).1))?,
        Kind::Decode => {
            let (cache, _) = prefill(model, ids.clone().narrow(1, 0, args.tokens));
            sync(&dev)?;
            let step = ids.narrow(1, args.tokens, 1); // [B, 1]
            time_runs(&dev, warmup, args.runs, |_| (), |_, ()| Ok(decode_step(model, step.clone(), cache.clone())))?
        }
    };
    let median = median(&times);
    let (new, past) = match kind {
        Kind::Prefill => (args.tokens, 0),
        Kind::Decode => (1, args.tokens),
    };
    let tokens_per_s = (args.batch * new) as f64 / median;
    // What a full forward pass computes (PyTorch's work, for the side-by-side script), and what ours did.
    let full = forward_flops(config, args.batch, new, past);
    let work = match kind {
        Kind::Prefill => prefill_flops(config, args.batch, new),
        Kind::Decode => full,
    };
    let gflops = work / median / 1e9;
    let threads = threads();
    if args.common.json {
        let line = serde_json::json!({
            "model": args.model,
            "kind": kind.name(),
            "batch": args.batch,
            "tokens": args.tokens,
            "runs": args.runs,
            "median_s": median,
            "min_s": times[0],
            "tokens_per_s": tokens_per_s,
            "gflops": gflops,
            "full_pass_gflop": full / 1e9,
            "device": format!("{dev:?}"),
            "threads": threads,
        });
        println!("{line}");
    } else {
        let what = match kind {
            Kind::Prefill => format!("prefill of {} × {} tokens", args.batch, args.tokens),
            Kind::Decode => format!("decode step of {} rows after {} cached tokens", args.batch, args.tokens),
        };
        println!(
            "{}: {what}: median {:.2} ms over {} runs, {tokens_per_s:.1} tokens/s, {gflops:.1} GFLOP/s ({dev:?}, {threads} threads)",
            args.model,
            median * 1e3,
            args.runs
        );
    }
    Ok(())
}

/// The benchmark text's ids cut into `batch` consecutive windows of `width` ids (see the module docs).
fn token_windows(tok: &Tokenizer, data: &Path, batch: usize, width: usize) -> anyhow::Result<Vec<Vec<u32>>> {
    let path = data.join(TITLES_SPLIT);
    let rows =
        r3_data::read_split(&path).with_context(|| format!("reading the benchmark titles {}", path.display()))?;
    let text = rows.iter().map(|r| r.item_title.as_str()).collect::<Vec<_>>().join(", ");
    let ids = tok.try_encode(&text)?;
    if ids.len() < batch * width {
        bail!(
            "the benchmark text has {} tokens but {batch} rows of {width} need {}: lower --batch or --tokens",
            ids.len(),
            batch * width
        );
    }
    Ok(ids.chunks_exact(width).take(batch).map(<[u32]>::to_vec).collect())
}

/// One forward pass over `ids` (`[B, L]`) and the logits of the last position: the cache and the logits. The
/// last layer computes its output at the last position only (`HiddenInput::last_only`), as a prefill before
/// decoding does.
fn prefill(model: &Backbone, ids: Tensor<2, Int>) -> (KvCache, Tensor<3>) {
    let out = model.hidden(HiddenInput::new(model.embed(ids)).last_only());
    let logits = model.logits(out.hidden); // [B, 1, V]
    (out.cache, logits)
}

/// One cached step: `step` (`[B, 1]`) after the tokens of `cache`; returns the logits `[B, 1, V]`.
fn decode_step(model: &Backbone, step: Tensor<2, Int>, cache: KvCache) -> Tensor<3> {
    let out = model.hidden(HiddenInput::new(model.embed(step)).with_cache(Some(cache)));
    model.logits(out.hidden)
}

fn sync(dev: &Device) -> anyhow::Result<()> {
    dev.sync().map_err(|e| anyhow!("the device failed: {e:?}"))
}

/// Runs `work` and returns its result with the seconds it took, including the device work it queued: the timer
/// stops after [`Device::sync`], so queued work is counted on asynchronous backends.
pub fn timed<T>(dev: &Device, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64)> {
    let start = Instant::now();
    let result = work()?;
    sync(dev)?;
    Ok((result, start.elapsed().as_secs_f64()))
}

/// The seconds of `runs` timed calls of `work(run, input)` after `warmup` untimed ones, sorted ascending (see
/// [`timed`]). `prepare(run)` makes each call's input outside the timer; each result is dropped after its timer
/// stops.
pub fn time_runs<S, T>(
    dev: &Device,
    warmup: usize,
    runs: usize,
    mut prepare: impl FnMut(usize) -> S,
    mut work: impl FnMut(usize, S) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(runs);
    for run in 0..warmup + runs {
        let input = prepare(run);
        let (result, secs) = timed(dev, || work(run, input))?;
        drop(result);
        if run >= warmup {
            times.push(secs);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The median of ascending `sorted` times (the mean of the two middle ones for an even count; NaN when empty).
pub fn median(sorted: &[f64]) -> f64 {
    super::eval::percentile(sorted, 0.5)
}

/// The CPU threads of the flex backend (rayon): `RAYON_NUM_THREADS`, else the available parallelism.
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The floating-point operations of our prefill of `new` tokens per row (`HiddenInput::last_only`): a full
/// forward ([`forward_flops`]) but for the last layer's first `new − 1` tokens, which compute their keys and values
/// (`2·2·d·K·h` each) and nothing else, their queries' attention included.
pub fn prefill_flops(c: &BackboneConfig, batch: usize, new: usize) -> f64 {
    if new < 2 {
        return forward_flops(c, batch, new, 0);
    }
    let l = LayerFlops::of(c);
    let skipped = (new - 1) as f64 * (l.per_token - l.keys_values) + l.per_pair * ((new - 1) * new) as f64;
    forward_flops(c, batch, new, 0) - batch as f64 * skipped
}

/// The floating-point operations of one forward of `new` tokens per row after `past` cached ones, for `batch`
/// rows, with the logits of one position per row: `2 · multiply-adds` of every matmul that runs.
///
/// Per token and layer, the projections and the MLP: `2·(d·H·h + 2·d·K·h + H·h·d + 3·d·f)` (the usual
/// `2 · parameters`, counting only the layers' matrices: the embedding is a lookup, and the LM head runs once per
/// row, `2·d·V`). Attention adds `2·2·H·h` per (query, key) pair, and the whole `new × (past + new)` block is
/// computed (masked scores too). Norms, RoPE, softmax and SiLU are not counted.
pub fn forward_flops(c: &BackboneConfig, batch: usize, new: usize, past: usize) -> f64 {
    let l = LayerFlops::of(c);
    let attention = l.per_pair * (new * (past + new)) as f64;
    let per_row =
        c.n_layers as f64 * (new as f64 * l.per_token + attention) + 2.0 * (c.hidden_size * c.vocab_size) as f64;
    batch as f64 * per_row
}

/// The FLOPs of one decoder layer ([`forward_flops`] counts them).
struct LayerFlops {
    /// The projections and the MLP for one token: `2·(d·H·h + 2·d·K·h + H·h·d + 3·d·f)`.
    per_token: f64,
    /// The key and value projections of one token, part of `per_token`: `2·2·d·K·h`.
    keys_values: f64,
    /// Attention for one (query, key) pair: `2·2·H·h`.
    per_pair: f64,
}

impl LayerFlops {
    fn of(c: &BackboneConfig) -> Self {
        let (d, f) = (c.hidden_size as f64, c.intermediate_size as f64);
        let (q, kv) = ((c.n_heads * c.head_dim) as f64, (c.n_kv_heads * c.head_dim) as f64);
        LayerFlops {
            per_token: 2.0 * (2.0 * d * q + 2.0 * d * kv + 3.0 * d * f),
            keys_values: 4.0 * d * kv,
            per_pair: 4.0 * q,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use r3_backbone::Arch;

    /// SmolLM2-135M's shapes at 8 × 200 tokens, against the counts worked out by hand: the full pass, and the
    /// last layer's 199 skipped positions (their projections and MLP but the keys and values, and their queries'
    /// attention), 3.1 % of it.
    #[test]
    fn prefill_skips_the_last_layers_other_positions() {
        let c = BackboneConfig::new(Arch::Llama, 49_152, 576, 30, 9, 3, 64, 1536, 1e5, 1e-5, false, true, 8192);
        assert_eq!(forward_flops(&c, 8, 200, 0), 362_310_008_832.0);
        assert_eq!(forward_flops(&c, 8, 200, 0) - prefill_flops(&c, 8, 200), 11_297_341_440.0);
        assert_eq!(prefill_flops(&c, 8, 1), forward_flops(&c, 8, 1, 0));
    }
}
