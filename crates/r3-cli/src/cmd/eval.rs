//! `latentr3 eval`: ranked recommendations for the users of a split and their HR@K / NDCG@K (PAPER.md §5), into a
//! run folder, resumable.
//!
//! The model is a folder written by `latentr3 train sft` (`--checkpoint RUN_DIR/model`: LatentR³, BIGRec or an
//! ablation, with the prompt encoder it was trained with) or an untuned pretrained model (`--model M`: the "Base"
//! row of Table 1, prompts without a thought token). Users are decoded in batches ([`r3_decode::Recommender`]:
//! the prompt prefix once, the latent tokens before decoding, constrained beam search over the catalogue trie).
//!
//! The run folder (default `runs/eval/<name>-<timestamp>`) holds
//! - `eval.json`: the settings (model, data, stem, split, subset, decoding, D3's assistant and guidance scale);
//! - `predictions.jsonl`: one official prediction record per user (`input`, `output`, `predict`, plus `row`,
//!   `user_id`, `item_id`, `scores`, `item_ids`, `latency_s`, `batch_s`, `batch_size`), appended and fsynced after
//!   every batch. A killed evaluation rerun with the same `--out` skips the users already in it (a partly
//!   written last line is cut off) and refuses other settings;
//! - `predictions.json`: the same records as one JSON array in the official layout, in user order, written at
//!   the end;
//! - `metrics.json`: HR@K and NDCG@K by title (the official evaluation) and by item id, per popularity bucket of
//!   the target item, the predictions outside the catalogue, and the per-user latency (median, p90), also printed
//!   as a table.
//!
//! Per-user latency is the wall time of the user's batch (prefill, latent tokens, the chain-of-thought reasoning
//! with `--cot-tokens N`, and beam search) divided by the batch's size; with `--batch 1` it is the latency of one
//! request.
//!
//! `--cot-tokens N` (the "CoT" row of Table 1, [`r3_decode::cot`]): each prompt gets a reasoning cue, up to `N`
//! greedy reasoning tokens, an answer cue, then the same constrained beam search; each record gets the key
//! `reasoning` (the generated text).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use r3_data::{EncodedSample, Encoder, EncoderConfig, Interaction, Split};
use r3_decode::{
    BeamSearchConfig, BeamSearchInput, CatalogueTrie, ChainOfThought, Guidance, Recommended, Recommender,
    RecommenderInput,
};
use r3_latent::LatentModel;
use r3_metrics::{BootstrapConfig, Format, Output, PredictionRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::DatasetArgs;
use super::metrics::TableArgs;
use crate::device;
use crate::model_source;

/// The settings file of a run folder.
pub const SETTINGS_FILE: &str = "eval.json";
/// The per-user records, appended batch by batch.
pub const JSONL_FILE: &str = "predictions.jsonl";
/// The predictions in the official layout (one JSON array).
pub const JSON_FILE: &str = "predictions.json";
/// The metrics and latencies.
pub const METRICS_FILE: &str = "metrics.json";

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

/// The decoding of the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// BIGRec: 10 beams, 10 returned, length penalty 1.0, at most 128 new tokens `[CODE]`.
    Bigrec,
    /// D3: the same search with length penalty 0 (plain sums of log-probs), guided by an assistant model's item
    /// scores when `--assistant` names one.
    D3,
}

impl Decoding {
    /// The beam search settings for an encoder's EOS.
    pub fn search(self, eos_id: u32) -> BeamSearchConfig {
        match self {
            Decoding::Bigrec => BeamSearchConfig::new(eos_id),
            Decoding::D3 => BeamSearchConfig::d3(eos_id),
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
    #[arg(long, value_enum, default_value = "bigrec")]
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
    /// Users decoded together (one prefill and one batched beam search per batch).
    #[arg(long, default_value_t = 4)]
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

/// The contents of `eval.json`: what a resumed run must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    checkpoint: Option<String>,
    model: Option<String>,
    data: String,
    stem: String,
    split: Split,
    limit: Option<usize>,
    seed: u64,
    decoding: Decoding,
    users: usize,
    /// D3's assistant model folder (absent in folders written before the guidance existed).
    #[serde(default)]
    assistant: Option<String>,
    /// D3's guidance scale (1 = none).
    #[serde(default = "unit_scale")]
    guidance_scale: f32,
    /// The chain-of-thought budget (0 = plain decoding; absent in folders written before it existed).
    #[serde(default)]
    cot_tokens: usize,
}

/// The guidance scale of a run without guidance.
fn unit_scale() -> f32 {
    1.0
}

/// The per-user latency summary.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// The number of users.
    pub users: usize,
    /// The median per-user latency in seconds.
    pub median_s: f64,
    /// The 90th percentile (nearest rank).
    pub p90_s: f64,
    /// The mean.
    pub mean_s: f64,
    /// Users per second of decoding: users / Σ per-user latency.
    pub users_per_s: f64,
}

impl Latency {
    /// Summarises per-user latencies (seconds); `None` when empty.
    pub fn of(latencies: &[f64]) -> Option<Latency> {
        if latencies.is_empty() {
            return None;
        }
        let mut v = latencies.to_vec();
        v.sort_by(f64::total_cmp);
        let total: f64 = v.iter().sum();
        Some(Latency {
            users: v.len(),
            median_s: percentile(&v, 0.5),
            p90_s: percentile(&v, 0.9),
            mean_s: total / v.len() as f64,
            users_per_s: v.len() as f64 / total,
        })
    }
}

/// The `q` quantile of sorted values: the median averages the two middle values; others take the nearest rank
/// `ceil(q·n)`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if q == 0.5 {
        return if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// The `input` of an official record: the user-input text of the prompt (`The user has palyed ...: "a", "b"`).
pub fn input_text(encoder: &Encoder, history: &[String]) -> String {
    let c = encoder.config();
    let block = c.template.user_input(&c.category, history);
    let inner = block.strip_prefix("### User Input: \n").unwrap_or(&block);
    inner.strip_suffix("\n\n### Response: \n").unwrap_or(inner).to_string()
}

/// The wall time of a batch and its number of users.
#[derive(Clone, Copy, Debug)]
struct BatchTiming {
    secs: f64,
    users: usize,
}

/// The prediction record of one user (split row `row_index`) as one JSON line; `reasoning` is the user's
/// chain-of-thought text (the key `reasoning`, only with `--cot-tokens`).
fn record(
    encoder: &Encoder,
    row_index: usize,
    row: &Interaction,
    recs: &[Recommended],
    reasoning: Option<&str>,
    timing: BatchTiming,
) -> String {
    let mut r = PredictionRecord::new(
        input_text(encoder, &row.history_titles),
        Output::Text(format!("\"{}\"\n", row.item_title)),
        recs.iter().map(Recommended::predict_text).collect(),
    );
    let BatchTiming { secs, users } = timing;
    for (k, v) in [
        ("row", json!(row_index)),
        ("user_id", json!(row.user_id)),
        ("item_id", json!(row.item_id)),
        ("scores", json!(recs.iter().map(|x| x.score).collect::<Vec<_>>())),
        ("item_ids", json!(recs.iter().map(|x| x.item_ids.clone()).collect::<Vec<_>>())),
        ("latency_s", json!(secs / users as f64)),
        ("batch_s", json!(secs)),
        ("batch_size", json!(users)),
    ] {
        r.extra.insert(k.into(), v);
    }
    if let Some(text) = reasoning {
        r.extra.insert("reasoning".into(), json!(text));
    }
    serde_json::to_string(&r).expect("a prediction record serialises")
}

/// Reads the finished records of a run's JSONL file, keyed by split row. A last line without its newline (a
/// write cut by a kill) is removed from the file. Every record must belong to the row it names.
fn read_done(path: &Path, rows: &[Interaction]) -> anyhow::Result<HashMap<usize, PredictionRecord>> {
    let mut done = HashMap::new();
    if !path.exists() {
        return Ok(done);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        tracing::warn!(file = %path.display(), bytes = text.len() - complete, "cutting off a partly written last line");
        let f = OpenOptions::new().write(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        f.set_len(complete as u64).with_context(|| format!("truncating {}", path.display()))?;
        f.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    }
    for (i, line) in text[..complete].lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let lineno = i + 1;
        let rec: PredictionRecord = serde_json::from_str(line).with_context(|| {
            format!("{}:{lineno}: not a prediction record; delete the file to start over", path.display())
        })?;
        let row = rec.extra.get("row").and_then(serde_json::Value::as_u64).map(|r| r as usize);
        let Some(row) = row.filter(|&r| r < rows.len()) else {
            bail!("{}:{lineno}: the key `row` is missing or outside the split's {} rows", path.display(), rows.len());
        };
        let user = rec.extra.get("user_id").and_then(serde_json::Value::as_str);
        if user != Some(rows[row].user_id.as_str()) {
            bail!(
                "{}:{lineno}: `user_id` {user:?} is not row {row}'s user {:?}: the folder belongs to another dataset; \
                 pass another --out",
                path.display(),
                rows[row].user_id
            );
        }
        done.insert(row, rec);
    }
    Ok(done)
}

/// Writes `eval.json`, or checks that an existing one has the same settings.
fn check_settings(dir: &Path, settings: &Settings) -> anyhow::Result<()> {
    let path = dir.join(SETTINGS_FILE);
    if path.is_file() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let old: Settings = serde_json::from_str(&text)
            .with_context(|| format!("{}: not the settings of `latentr3 eval`", path.display()))?;
        let (a, b) = (serde_json::to_value(&old)?, serde_json::to_value(settings)?);
        for (key, value) in a.as_object().into_iter().flatten() {
            if b.get(key) != Some(value) {
                bail!(
                    "{}: the run folder was made with `{key}` = {value}, this run has {}: resume with the same \
                     settings, or pass another --out",
                    path.display(),
                    b.get(key).unwrap_or(&serde_json::Value::Null)
                );
            }
        }
        return Ok(());
    }
    let text = serde_json::to_string_pretty(settings)? + "\n";
    r3_data::write_atomic(&path, |w| w.write_all(text.as_bytes()))?;
    Ok(())
}

/// Runs `latentr3 eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.assistant.is_some() && args.decoding != Decoding::D3 {
        bail!("--assistant guides D3's decoding: add --decoding d3");
    }
    if args.cot_tokens > 0 && args.assistant.is_some() {
        bail!("--cot-tokens and --assistant cannot be combined: the chain-of-thought baseline is unguided");
    }
    if !args.guidance_scale.is_finite() {
        bail!("--guidance-scale must be finite (1 = no guidance, 0 = the assistant alone)");
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
    std::fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    let settings = Settings {
        checkpoint: args.model.checkpoint.as_ref().map(|p| p.display().to_string()),
        model: args.model.model.clone(),
        data: data.display().to_string(),
        stem: args.dataset.stem.clone(),
        split: args.split,
        limit: args.limit,
        seed: args.seed,
        decoding: args.decoding,
        users: order.len(),
        assistant: args.assistant.as_ref().map(|p| p.display().to_string()),
        guidance_scale: args.guidance_scale,
        cot_tokens: args.cot_tokens,
    };
    check_settings(&out, &settings)?;
    let jsonl = out.join(JSONL_FILE);
    let mut done = read_done(&jsonl, rows)?;
    let todo: Vec<usize> = order.iter().copied().filter(|r| !done.contains_key(r)).collect();
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
    let assistant = match &args.assistant {
        Some(dir) => {
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
            Some(a)
        }
        None => None,
    };
    if !todo.is_empty() {
        let items = CatalogueTrie::new(&m.encoder, &ds.catalogue)?;
        let search = args.decoding.search(m.encoder.eos_id());
        let rec = Recommender::new(RecommenderInput {
            model: &m.model,
            encoder: &m.encoder,
            items: &items,
            search: &search,
        })?;
        let cot = ChainOfThought::new(&m.encoder, args.cot_tokens);
        let bar = progress_bar(order.len() as u64, (order.len() - todo.len()) as u64);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&jsonl)
            .with_context(|| format!("opening {}", jsonl.display()))?;
        for chunk in todo.chunks(args.batch) {
            let histories: Vec<&[String]> = chunk.iter().map(|&r| rows[r].history_titles.as_slice()).collect();
            let t = Instant::now();
            let (recs, reasoning): (Vec<Vec<Recommended>>, Vec<Option<String>>) = match &assistant {
                Some(a) => {
                    let ids: Vec<&[u32]> = chunk.iter().map(|&r| rows[r].history_item_ids.as_slice()).collect();
                    let weights = a.weights(&ids);
                    let g = Guidance { scorer: &weights, scale: args.guidance_scale };
                    (recommend_guided(&rec, &m, &histories, g)?, vec![None; chunk.len()])
                }
                None if !cot.is_plain() => {
                    rec.recommend_cot(&histories, &cot)?.into_iter().map(|(u, text)| (u, Some(text))).unzip()
                }
                None => (rec.recommend(&histories), vec![None; chunk.len()]),
            };
            dev.sync().map_err(|e| anyhow::anyhow!("the device failed: {e:?}"))?;
            let secs = t.elapsed().as_secs_f64();
            let mut lines = String::new();
            for ((&r, user_recs), text) in chunk.iter().zip(&recs).zip(&reasoning) {
                let timing = BatchTiming { secs, users: chunk.len() };
                lines.push_str(&record(&m.encoder, r, &rows[r], user_recs, text.as_deref(), timing));
                lines.push('\n');
            }
            file.write_all(lines.as_bytes()).with_context(|| format!("appending to {}", jsonl.display()))?;
            file.sync_data().with_context(|| format!("syncing {}", jsonl.display()))?;
            bar.inc(chunk.len() as u64);
            bar.set_message(format!("{:.2} s/user", secs / chunk.len() as f64));
        }
        bar.finish_and_clear();
        done = read_done(&jsonl, rows)?;
    }

    // The final predictions and metrics over every user of the run (this session's and earlier ones).
    let records: Vec<PredictionRecord> = order
        .iter()
        .map(|r| done.remove(r).with_context(|| format!("row {r} is missing from {}", jsonl.display())))
        .collect::<anyhow::Result<_>>()?;
    let json_path = out.join(JSON_FILE);
    r3_metrics::write_predictions(&json_path, &records, Format::Json)?;
    let latencies: Vec<f64> =
        records.iter().filter_map(|r| r.extra.get("latency_s").and_then(serde_json::Value::as_f64)).collect();
    let latency = Latency::of(&latencies).context("no latencies recorded")?;
    let name = json_path.display().to_string();
    let targets = order.iter().map(|&r| &rows[r]);
    let bootstrap = BootstrapConfig { resamples: 0, seed: 0 };
    let (report, popularity) = args.table.report(&ds, targets, &name, &records, None, bootstrap)?;
    let metrics = json!({
        "settings": settings,
        "n_latent": m.model.n_latent,
        "search": {
            "num_beams": search_field(args.decoding, |c| c.num_beams as f64),
            "length_penalty": search_field(args.decoding, |c| c.length_penalty),
            "max_new_tokens": search_field(args.decoding, |c| c.max_new_tokens as f64),
        },
        "cot": {
            "max_tokens": args.cot_tokens,
            "reasoning_cue": (args.cot_tokens > 0).then_some(r3_decode::REASONING_CUE),
            "answer_cue": (args.cot_tokens > 0).then_some(r3_decode::ANSWER_CUE),
        },
        "device": format!("{dev:?}"),
        "guidance": { "assistant": settings.assistant, "scale": settings.guidance_scale },
        "latency": latency,
        "popularity": { "coverage": args.table.coverage, "popular_items": popularity.n_popular() },
        "report": report,
    });
    let metrics_path = out.join(METRICS_FILE);
    let text = serde_json::to_string_pretty(&metrics)? + "\n";
    r3_data::write_atomic(&metrics_path, |w| w.write_all(text.as_bytes()))?;

    println!("{}", report.to_table());
    println!("latency per user (batch time / batch size, --batch {}):", args.batch);
    println!("{:>6}  {:>8}  {:>8}  {:>8}  {:>7}", "users", "median s", "p90 s", "mean s", "users/s");
    println!(
        "{:>6}  {:>8.3}  {:>8.3}  {:>8.3}  {:>7.3}",
        latency.users, latency.median_s, latency.p90_s, latency.mean_s, latency.users_per_s
    );
    println!("run folder: {}", out.display());
    Ok(())
}

/// [`Recommender::recommend`] with D3's assistant guidance: the same prompts and start state, the beam search
/// run with `guidance` (row `u` of the batch is user `u` of the scorer), the hypotheses mapped back to titles.
fn recommend_guided(
    rec: &Recommender<'_>,
    m: &EvalModel,
    histories: &[&[String]],
    guidance: Guidance<'_>,
) -> anyhow::Result<Vec<Vec<Recommended>>> {
    let samples: Vec<EncodedSample> = histories.iter().map(|h| rec.encode(h)).collect();
    let start = rec.decode_start(&samples);
    let trie = rec.items().trie();
    let search = rec.search_config().init()?;
    let out = search.search(&m.model.backbone, BeamSearchInput { start, trie, guidance: Some(guidance) });
    let eos = m.encoder.eos_id();
    Ok(out
        .hypotheses
        .into_iter()
        .map(|hyps| {
            hyps.into_iter()
                .map(|h| {
                    let item_ids = trie.walk(&h.tokens).map_or(Vec::new(), |n| trie.items_at(n).to_vec());
                    let title = match h.item.and_then(|i| rec.items().title(i)) {
                        Some(t) => t.to_string(),
                        None => m.encoder.tokenizer().decode(h.tokens.strip_suffix(&[eos]).unwrap_or(&h.tokens)),
                    };
                    Recommended { title, item_ids, score: h.score, tokens: h.tokens }
                })
                .collect()
        })
        .collect())
}

/// Seconds since the Unix epoch (0 when the clock is before it).
fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A field of the search settings of a decoding (EOS does not matter here).
fn search_field(d: Decoding, f: impl Fn(&BeamSearchConfig) -> f64) -> f64 {
    f(&d.search(0))
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
