//! `latentr3 eval`: ranked recommendations for the users of a split and their HR@K / NDCG@K (docs/method.md §5), into a
//! run folder, resumable.
//!
//! The model is a folder written by `latentr3 train sft` (`--checkpoint RUN_DIR/model`: LatentR³, BIGRec or an
//! ablation, with the prompt encoder it was trained with) or an untuned pretrained model (`--model M`: the "Base"
//! row of Table 1, prompts without a thought token). The prompt prefix that every user shares runs once (models
//! without latent tokens, [`r3_decode::Recommender::with_shared_prefix`]). Users stream through a batch of `--batch` users
//! ([`r3_decode::EvalRun::evaluate_stream`]: a user whose beam search has ended leaves the batch and the next
//! user's prompt joins it); chain-of-thought and guided decoding run fixed batches. The run folder is an
//! [`r3_decode::EvalRun`]; this command parses the flags, computes the metrics table and prints.
//!
//! The run folder (default `runs/eval/<name>-<timestamp>`) holds
//! - `eval.json`: the settings (model, data, stem, split, subset, decoding, D3's assistant and guidance scale);
//! - `predictions.jsonl`: one official prediction record per user (`input`, `output`, `predict`, plus `row`,
//!   `user_id`, `item_id`, `scores`, `item_ids`, `latency_s`, `batch_s`, `batch_size`), appended and fsynced after
//!   every group of `--batch` finished users. A killed evaluation rerun with the same `--out` skips the users
//!   already in it (a partly written last line is cut off) and refuses other settings, naming the setting;
//! - `predictions.json`: the same records as one JSON array in the official layout, in user order, written at
//!   the end;
//! - `metrics.json`: HR@K and NDCG@K by title (the official evaluation) and by item id, per popularity bucket of
//!   the target item, the predictions outside the catalogue, the per-user latency (median, p90), and the
//!   streaming evaluator's steps per user and share of live rows, also printed as a table.
//!
//! Per-user latency is the wall time of a group of users written together (prefill, latent tokens, the
//! chain-of-thought reasoning with `--cot-tokens N`, and beam search) divided by its size; with `--batch 1` it is
//! the latency of one request.
//!
//! `--cot-tokens N` (the "CoT" row of Table 1, [`r3_decode::cot`]): each prompt gets a reasoning cue, up to `N`
//! greedy reasoning tokens, an answer cue, then the same constrained beam search; each record gets the key
//! `reasoning` (the generated text).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use r3_data::{Encoder, EncoderConfig, Split};
use r3_decode::{
    BeamSearchInput, CatalogueTrie, ChainOfThought, CotSummary, EvalMetrics, EvalRun, EvalSettings, Guidance,
    GuidanceSummary, PopularitySummary, Recommended, Recommender, RecommenderInput, StreamSummary,
};
pub use r3_decode::{Decoding, Latency, percentile};
use r3_latent::LatentModel;
use r3_metrics::BootstrapConfig;

use super::DatasetArgs;
use super::metrics::TableArgs;
use crate::device;
use crate::model_source;

/// The shortest prompt prefix worth computing once for every user ([`Recommender::with_shared_prefix`]).
pub const SHARED_PREFIX_MIN: usize = 16;

/// The `--decoding` flag: the names of [`Decoding`].
pub fn decoding_parser() -> impl clap::builder::TypedValueParser<Value = Decoding> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Decoding::NAMES).map(|s| s.parse::<Decoding>().expect("a listed name"))
}

/// Where the model comes from: `--checkpoint DIR` or `--model M`.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ModelArgs {
    /// A model folder written by `latentr3 train sft` (`RUN_DIR/model`, or the run folder itself).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// An untuned pretrained model ("Base": prompts without a thought token): a model id (see `latentr3 model
    /// list`), a .gguf file, or a Hugging Face folder.
    #[arg(long)]
    pub model: Option<String>,
}

impl ModelArgs {
    /// A short name for run folders: the model id or file stem, or the checkpoint's run folder name.
    pub fn name(&self) -> String {
        let stem = |p: &Path| p.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        match (&self.checkpoint, &self.model) {
            (Some(dir), _) => {
                let dir = checkpoint_dir(dir);
                let base = if dir.file_name().is_some_and(|n| n == "model") { dir.parent() } else { Some(&*dir) };
                base.map_or_else(|| "checkpoint".into(), stem)
            }
            (None, Some(m)) => stem(Path::new(m)),
            (None, None) => "model".into(),
        }
    }
}

/// A model ready for decoding: the latent model and the prompt encoder it expects.
pub struct EvalModel {
    /// The model (`n_latent = 0` for a Base model).
    pub model: LatentModel,
    /// The prompt encoder.
    pub encoder: Encoder,
}

/// `--checkpoint DIR` may name the run folder of `latentr3 train sft` or its `model/` folder.
fn checkpoint_dir(dir: &Path) -> PathBuf {
    if !r3_train::latent::is_model_dir(dir) && r3_train::latent::is_model_dir(&dir.join("model")) {
        dir.join("model")
    } else {
        dir.to_path_buf()
    }
}

/// Loads `--checkpoint` (a model folder, with its own encoder) or `--model` (an untuned Base model whose prompts
/// use the category word of `stem` and no thought token) onto `device`.
pub fn load_model(args: &ModelArgs, stem: &str, device: &Device) -> anyhow::Result<EvalModel> {
    match (&args.checkpoint, &args.model) {
        (Some(dir), _) => {
            if !dir.exists() {
                bail!(
                    "--checkpoint {}: no such folder (pass the model folder `RUN_DIR/model` that `latentr3 train sft` \
                     writes)",
                    dir.display()
                );
            }
            let dir = checkpoint_dir(dir);
            let spinner = crate::progress::spinner("load");
            spinner.set_message(dir.display().to_string());
            let setup = r3_train::load_model_dir(&dir, device)
                .with_context(|| format!("loading the model folder {}", dir.display()))?;
            spinner.finish_and_clear();
            let want = r3_data::category_word(stem).ok();
            if want.is_some_and(|w| w != setup.encoder.config().category) {
                tracing::warn!(
                    model = setup.encoder.config().category,
                    stem,
                    "the checkpoint was trained with another category word than this dataset's"
                );
            }
            Ok(EvalModel { model: setup.model, encoder: setup.encoder })
        }
        (None, Some(m)) => {
            let config = EncoderConfig::for_dataset(stem)
                .with_context(|| format!("the prompt's category word for --stem {stem}"))?
                .with_n_thought(0);
            let source = model_source::resolve(m)?;
            let loaded = model_source::load(&source, device)?;
            let encoder = Encoder::new(loaded.tokenizer, config)?;
            let vocab = loaded.backbone.model.vocab_size();
            Ok(EvalModel { model: LatentModel::new(loaded.backbone.model, None, vocab, 0), encoder })
        }
        (None, None) => bail!("pass --checkpoint DIR or --model M"),
    }
}

/// Arguments of `latentr3 eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The split whose users are evaluated.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Evaluate a seeded subset of this many users (Python's `random.seed(seed); random.shuffle`); default all.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The seed of the --limit subset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The decoding: `bigrec` (length penalty 1) or `d3` (length penalty 0, optionally guided by `--assistant`).
    #[arg(long, default_value = "bigrec", value_parser = decoding_parser())]
    pub decoding: Decoding,
    /// D3's assistant: a model folder of `latentr3 baseline train` (`RUN_DIR/model`; SASRec in D3) whose item
    /// probabilities after each user's history guide the beam search. Needs `--decoding d3`.
    #[arg(long)]
    pub assistant: Option<PathBuf>,
    /// D3's guidance scale: each allowed token's log-prob becomes `scale · (log p − cf) + cf`, with `cf` the
    /// assistant's log-share of the token's subtree; 1 = the LLM alone, 0 = the assistant alone.
    #[arg(long, default_value_t = 1.0)]
    pub guidance_scale: f32,
    /// Chain-of-thought decoding (the "CoT" baseline of Table 1): before the constrained item decoding, each user
    /// gets a reasoning cue and up to this many greedily generated reasoning tokens (stopping at EOS or an empty
    /// line), then an answer cue. 0 = the plain decoding. The reasoning goes into the predictions' `reasoning`.
    #[arg(long, default_value_t = 0)]
    pub cot_tokens: usize,
    /// Users decoded together: the width of the streaming batch (a user whose search has ended leaves it and
    /// the next one joins); the batch size of chain-of-thought and guided decoding.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// The run folder. Default: runs/eval/<name>-<timestamp>. Rerunning with the same folder resumes.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

/// The settings of a run from its flags.
fn settings(args: &EvalArgs, data: &Path, users: usize) -> EvalSettings {
    EvalSettings {
        checkpoint: args.model.checkpoint.as_ref().map(|p| p.display().to_string()),
        model: args.model.model.clone(),
        data: data.display().to_string(),
        stem: args.dataset.stem.clone(),
        split: args.split,
        limit: args.limit,
        seed: args.seed,
        decoding: args.decoding,
        users,
        assistant: args.assistant.as_ref().map(|p| p.display().to_string()),
        guidance_scale: args.guidance_scale,
        cot_tokens: args.cot_tokens,
    }
}

/// The checks of the flags alone, before anything is read or loaded.
fn check_flags(args: &EvalArgs) -> anyhow::Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.limit == Some(0) {
        bail!(
            "--limit 0 evaluates no user: pass at least one (--limit N, N ≥ 1), or leave --limit out to evaluate every user"
        );
    }
    super::popularity_config(args.table.coverage)?;
    if let Some(dir) = &args.model.checkpoint
        && !dir.exists()
    {
        bail!(
            "--checkpoint {}: no such folder (pass the model folder `RUN_DIR/model` that `latentr3 train sft` writes)",
            dir.display()
        );
    }
    Ok(())
}

/// Runs `latentr3 eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    check_flags(args)?;
    let data = args.dataset.dir()?;
    let ds = args.dataset.load(&data)?;
    let rows = ds.split(args.split);
    if rows.is_empty() {
        bail!("the {} split of `{}` has no rows", args.split, args.dataset.stem);
    }
    let order = r3_train::seeded_subset(rows.len(), args.limit.unwrap_or(0), args.seed);
    let out = match &args.out {
        Some(d) => d.clone(),
        None => PathBuf::from("runs/eval").join(format!(
            "{}-{}",
            args.model.name(),
            r3_train::run::utc_timestamp(unix_now(), false)
        )),
    };
    let mut run = EvalRun::open(&out, settings(args, &data, order.len()), rows)?;
    let todo = run.pending(&order);
    tracing::info!(
        run = %out.display(),
        users = order.len(),
        done = order.len() - todo.len(),
        stem = %args.dataset.stem,
        split = %args.split,
        "evaluating"
    );
    let dev = device::select(args.device)?;
    let m = load_model(&args.model, &args.dataset.stem, &dev)?;
    let items = CatalogueTrie::new(&m.encoder, &ds.catalogue)?;
    let search = args.decoding.search(m.encoder.eos_id());
    let rec =
        Recommender::new(RecommenderInput { model: &m.model, encoder: &m.encoder, items: &items, search: &search })?;
    let samples: Vec<_> = todo.iter().map(|&r| rec.encode(&rows[r].history_titles)).collect();
    let rec = rec.with_shared_prefix(&samples, SHARED_PREFIX_MIN);
    let stream = if todo.is_empty() { None } else { decode(args, &ds, &mut run, &rec, &todo, order.len())? };

    // The final predictions and metrics over every user of the run (this session's and earlier ones).
    let records = run.finish(&order)?;
    let latencies: Vec<f64> =
        records.iter().filter_map(|r| r.extra.get("latency_s").and_then(serde_json::Value::as_f64)).collect();
    let latency = Latency::of(&latencies).context("no latencies recorded")?;
    let name = out.join(r3_decode::JSON_FILE).display().to_string();
    let targets = order.iter().map(|&r| &rows[r]);
    let bootstrap = BootstrapConfig { resamples: 0, seed: 0 };
    let (report, popularity) = args.table.report(&ds, targets, &name, &records, None, bootstrap)?;
    let s = run.settings();
    run.write_metrics(&EvalMetrics {
        settings: s,
        n_latent: m.model.n_latent,
        search: (&search).into(),
        cot: CotSummary::new(args.cot_tokens),
        device: format!("{dev:?}"),
        guidance: GuidanceSummary { assistant: s.assistant.clone(), scale: s.guidance_scale },
        latency,
        stream: stream.map(|st| StreamSummary::new(args.batch, &st)),
        popularity: PopularitySummary { coverage: args.table.coverage, popular_items: popularity.n_popular() },
        report: &report,
    })?;

    println!("{}", report.to_table());
    print_speed(args.batch, &latency, stream);
    println!("run folder: {}", out.display());
    Ok(())
}

/// Prints the per-user latency and the streaming evaluator's use of its batch.
fn print_speed(batch: usize, latency: &Latency, stream: Option<r3_decode::StreamStats>) {
    println!("latency per user (group time / group size, --batch {batch}):");
    println!("{:>6}  {:>8}  {:>8}  {:>8}  {:>7}", "users", "median s", "p90 s", "mean s", "users/s");
    println!(
        "{:>6}  {:>8.3}  {:>8.3}  {:>8.3}  {:>7.3}",
        latency.users, latency.median_s, latency.p90_s, latency.mean_s, latency.users_per_s
    );
    if let Some(st) = stream {
        println!(
            "streaming: {:.1} steps per user, {:.0} % of the rows live",
            st.steps_per_user(),
            100.0 * st.live_share()
        );
    }
}

/// Decodes the pending users `todo` of `run` (of `total` users): streaming for plain decoding, fixed batches for
/// chain-of-thought and D3's guided decoding. Returns the streaming statistics, if it streamed.
fn decode(
    args: &EvalArgs,
    ds: &r3_data::Dataset,
    run: &mut EvalRun<'_>,
    rec: &Recommender<'_>,
    todo: &[usize],
    total: usize,
) -> anyhow::Result<Option<r3_decode::StreamStats>> {
    let rows = ds.split(args.split);
    let bar = progress_bar(total as u64, (total - todo.len()) as u64);
    let mut progress = |n: usize, secs: f64| {
        bar.inc(n as u64);
        bar.set_message(format!("{:.2} s/user", secs / n as f64));
    };
    let cot = ChainOfThought::new(rec.encoder(), args.cot_tokens);
    let stats = match &args.assistant {
        Some(dir) => {
            let dev = rec_device(rec);
            let (a, meta) = r3_baselines::Assistant::load(dir, &dev)
                .with_context(|| format!("loading the assistant {}", dir.display()))?;
            if a.n_items() != ds.catalogue.len() {
                bail!(
                    "--assistant {} scores {} items but the catalogue of `{}` has {}: train the assistant on this \
                     dataset (it was trained on `{}`)",
                    dir.display(),
                    a.n_items(),
                    args.dataset.stem,
                    ds.catalogue.len(),
                    meta.stem
                );
            }
            let guided = |chunk: &[usize], histories: &[&[String]]| -> anyhow::Result<_> {
                let ids: Vec<&[u32]> = chunk.iter().map(|&r| rows[r].history_item_ids.as_slice()).collect();
                let weights = a.weights(&ids);
                let g = Guidance { scorer: &weights, scale: args.guidance_scale };
                Ok(recommend_guided(rec, histories, g)?.into_iter().map(|u| (u, None)).collect())
            };
            run.evaluate_batches(rec.encoder(), todo, args.batch, guided, &mut progress)?;
            None
        }
        None if !cot.is_plain() => {
            let reasoned = |_: &[usize], histories: &[&[String]]| -> anyhow::Result<_> {
                Ok(rec.recommend_cot(histories, &cot)?.into_iter().map(|(u, text)| (u, Some(text))).collect())
            };
            run.evaluate_batches(rec.encoder(), todo, args.batch, reasoned, &mut progress)?;
            None
        }
        None => Some(run.evaluate_stream(rec, todo, args.batch, &mut progress)?),
    };
    bar.finish_and_clear();
    Ok(stats)
}

/// The device of a recommender's model.
fn rec_device(rec: &Recommender<'_>) -> Device {
    rec.model().device()
}

/// [`Recommender::recommend`] with D3's assistant guidance: the same prompts and start state, the beam search
/// run with `guidance` (row `u` of the batch is user `u` of the scorer), the hypotheses mapped back to titles.
fn recommend_guided(
    rec: &Recommender<'_>,
    histories: &[&[String]],
    guidance: Guidance<'_>,
) -> anyhow::Result<Vec<Vec<Recommended>>> {
    let samples: Vec<_> = histories.iter().map(|h| rec.encode(h)).collect();
    let start = rec.decode_start(&samples);
    let trie = rec.items().trie();
    let search = rec.search_config().init()?;
    let out = search.search(&rec.model().backbone, BeamSearchInput { start, trie, guidance: Some(guidance) });
    Ok(out.hypotheses.into_iter().map(|h| rec.recommended(h)).collect())
}

/// Seconds since the Unix epoch (0 when the clock is before it).
fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The users bar: done / total with ETA on stderr.
fn progress_bar(total: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} users {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("eval");
    bar.set_position(done);
    bar.reset_eta();
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}
