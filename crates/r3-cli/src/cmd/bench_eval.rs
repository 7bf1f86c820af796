//! `latentr3 bench eval`: evaluation speed (users/s and per-user latency) on the first `--users` CDs test users.
//!
//! The users are decoded exactly as `latentr3 eval` decodes them ([`r3_decode::Recommender::recommend_stream`],
//! BIGRec beam search by default: 10 beams, 10 returned, length penalty 1, at most 128 new tokens): streamed
//! through a batch of `--batch` users, a user whose search has ended leaving it and the next joining; with
//! `--fixed`, in fixed batches of `--batch` users that run until their slowest user ends (the decoding before
//! streaming). Timed from the prompts to the ranked titles (prefill, latent tokens, beam search), stopping after
//! [`burn::tensor::Device::sync`]; `--warmup` untimed runs of the first batch come first. Reported: the median
//! over groups of `--batch` users (in the order they finish) of users/s, the overall users/s (users / total
//! time), the per-user latency (group time / group size: median and p90), the generated positions per user and
//! the share of the batch's rows (`--batch × 10` beams) that were live over the steps. The prompt prefix that every
//! user's prompt shares is computed once ([`r3_decode::Recommender::with_shared_prefix`]; `--unshared` runs every
//! prompt in full), outside the timed part, as `latentr3 eval` computes it once per run.
//!
//! With `--model M --n-latent N` the model is the pretrained backbone with the `<|Thought|>` row and a seeded
//! random LatentRATT (N latent tokens): the cost of LatentR³'s latent tokens without a trained checkpoint.
//! `bench/eval_vs_hf.py` runs HF `generate` on the same users (`--dump F` writes the prompts, the catalogue
//! trie sequences and our results).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use r3_data::{Catalogue, Encoder, EncoderConfig, Split, read_split};
use r3_decode::{CatalogueTrie, Recommended, Recommender, RecommenderInput, StreamStats};
use r3_latent::{LatentModelConfig, LatentRattConfig};
use serde_json::json;

use super::bench::{CommonArgs, threads, timed};
use super::eval::{Decoding, EvalModel, Latency, ModelArgs, decoding_parser, load_model, percentile};
use crate::model_source;

/// The dataset whose test users are decoded.
const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

/// Arguments of `latentr3 bench eval`.
#[derive(Debug, clap::Args)]
pub struct EvalBenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The number of CDs test users (the first ones of the split, in file order).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Users decoded together: the width of the streaming batch (or the size of the fixed batches).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Fixed batches that run until their slowest user ends, instead of streaming.
    #[arg(long)]
    pub fixed: bool,
    /// Run every prompt in full instead of computing the prefix that all prompts share once.
    #[arg(long)]
    pub unshared: bool,
    /// With --model: give the backbone N latent tokens (the <|Thought|> row and a seeded random LatentRATT) to
    /// measure LatentR³'s decoding cost; 0 is the Base / BIGRec prompt.
    #[arg(long, default_value_t = 0, conflicts_with = "checkpoint")]
    pub n_latent: usize,
    /// The seed of the random LatentRATT.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The decoding: `bigrec` (length penalty 1) or `d3` (length penalty 0).
    #[arg(long, default_value = "bigrec", value_parser = decoding_parser())]
    pub decoding: Decoding,
    /// Also write the prompts, the catalogue's trie sequences and our recommendations (tokens and scores) as
    /// JSON to this file, for `bench/eval_vs_hf.py`.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `latentr3 bench eval`.
pub fn run(args: &EvalBenchArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.batch == 0 {
        bail!("--users and --batch must be at least 1");
    }
    let dev = args.common.device()?;
    let data = args.common.data_dir()?;
    let csv = Split::Test.path(&data, STEM);
    let mut rows = read_split(&csv).with_context(|| format!("reading the CDs test users {}", csv.display()))?;
    if rows.len() < args.users {
        bail!("--users {} is more than the {} rows of {}", args.users, rows.len(), csv.display());
    }
    rows.truncate(args.users);
    let info = data.join("info").join(format!("{STEM}.txt"));
    let catalogue = Catalogue::read(&info).with_context(|| format!("reading the catalogue {}", info.display()))?;

    let m = bench_model(args, &dev)?;
    let items = CatalogueTrie::new(&m.encoder, &catalogue)?;
    let search = args.decoding.search(m.encoder.eos_id());
    let rec =
        Recommender::new(RecommenderInput { model: &m.model, encoder: &m.encoder, items: &items, search: &search })?;
    let samples: Vec<_> = rows.iter().map(|r| rec.encode(&r.history_titles)).collect();
    let (rec, shared) = if args.unshared {
        (rec, 0)
    } else {
        let t = Instant::now();
        let rec = rec.with_shared_prefix(&samples, super::eval::SHARED_PREFIX_MIN);
        let n = rec.shared_prefix().map_or(0, |p| p.ids().len());
        tracing::info!(tokens = n, secs = t.elapsed().as_secs_f64(), "shared prompt prefix");
        (rec, n)
    };

    let first = &samples[..args.batch.min(samples.len())];
    for _ in 0..args.common.warmup.unwrap_or(1) {
        timed(&dev, || Ok(rec.recommend_stream(first, args.batch, &mut |_, _| {})))?;
    }
    let run = timed(&dev, || Ok(decode_timed(&rec, &samples, args.batch, args.fixed)))?.0;
    let Timed { results, group_secs, stats, total } = run;
    let mut batch_rates: Vec<f64> = group_secs.iter().map(|&(n, s)| n as f64 / s).collect();
    let latencies: Vec<f64> = group_secs.iter().flat_map(|&(n, s)| std::iter::repeat_n(s / n as f64, n)).collect();
    batch_rates.sort_by(f64::total_cmp);
    let median_rate = percentile(&batch_rates, 0.5);
    let latency = Latency::of(&latencies).context("no users were decoded")?;
    let prompt_tokens: usize = samples.iter().map(|s| s.prompt_ids.len()).sum();

    if let Some(path) = &args.dump {
        let input = DumpInput { m: &m, rows: &rows, samples: &samples, catalogue: &catalogue, search: &search };
        write_dump(path, input, &results)?;
    }
    let threads = threads();
    let name = args.model.name();
    if args.common.json {
        let line = json!({
            "kind": "eval", "model": name, "n_latent": m.model.n_latent, "users": rows.len(), "batch": args.batch,
            "decoding": args.decoding, "median_users_per_s": median_rate, "users_per_s": rows.len() as f64 / total,
            "latency_median_s": latency.median_s, "latency_p90_s": latency.p90_s, "total_s": total,
            "fixed": args.fixed, "shared_prefix_tokens": shared, "steps": stats.steps, "steps_per_user": stats.steps_per_user(),
            "live_share": stats.live_share(), "prompt_tokens_mean":
            prompt_tokens as f64 / rows.len() as f64, "device": format!("{dev:?}"), "threads": threads,
        });
        println!("{line}");
    } else {
        println!(
            "{name} (n_latent {}): {} CDs test users, {} batches of {}: median {:.3} users/s over groups, {:.3} \
             users/s overall, per-user latency median {:.3} s, p90 {:.3} s, {:.1} steps per user, {:.0} % of the \
             rows live, {} steps, shared prefix {shared} tokens ({dev:?}, {threads} threads)",
            m.model.n_latent,
            rows.len(),
            if args.fixed { "fixed" } else { "streaming" },
            args.batch,
            median_rate,
            rows.len() as f64 / total,
            latency.median_s,
            latency.p90_s,
            stats.steps_per_user(),
            100.0 * stats.live_share(),
            stats.steps,
        );
    }
    Ok(())
}

/// What `--dump` writes besides the results.
struct DumpInput<'a> {
    m: &'a EvalModel,
    rows: &'a [r3_data::Interaction],
    samples: &'a [r3_data::EncodedSample],
    catalogue: &'a Catalogue,
    search: &'a r3_decode::BeamSearchConfig,
}

/// Writes the prompts, the catalogue's trie sequences and our results as JSON for `bench/eval_vs_hf.py`.
fn write_dump(path: &std::path::Path, input: DumpInput<'_>, results: &[Vec<Recommended>]) -> anyhow::Result<()> {
    let DumpInput { m, rows, samples, catalogue, search } = input;
    let catalogue_ids: Vec<Vec<u32>> = catalogue.titles().iter().map(|t| m.encoder.encode_target(t)).collect();
    let dump = json!({
        "stem": STEM,
        "users": rows.iter().map(|r| &r.user_id).collect::<Vec<_>>(),
        "eos_id": m.encoder.eos_id(),
        "pad_id": m.encoder.pad_id(),
        "n_latent": m.model.n_latent,
        "prompts": samples.iter().map(|s| &s.prompt_ids).collect::<Vec<_>>(),
        "catalogue": catalogue.titles(),
        "catalogue_ids": catalogue_ids,
        "search": {
            "num_beams": search.num_beams, "num_return_sequences": search.num_return_sequences,
            "length_penalty": search.length_penalty, "max_new_tokens": search.max_new_tokens,
        },
        "results": results.iter().map(|user| user.iter().map(|r| json!({
            "tokens": r.tokens, "score": r.score, "title": r.title,
        })).collect::<Vec<_>>()).collect::<Vec<_>>(),
    });
    std::fs::write(path, dump.to_string()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The model: `--checkpoint`, `--model`, or `--model` with `--n-latent N` latent tokens and a seeded random
/// LatentRATT.
fn bench_model(args: &EvalBenchArgs, dev: &burn::tensor::Device) -> anyhow::Result<EvalModel> {
    Ok(match (&args.model.model, args.n_latent) {
        (Some(id), n) if n > 0 => {
            let source = model_source::resolve(id)?;
            let loaded = model_source::load(&source, dev)?;
            let encoder = Encoder::new(loaded.tokenizer, EncoderConfig::for_dataset(STEM)?.with_n_thought(n))?;
            dev.seed(args.seed);
            let d = loaded.backbone.model.hidden_size();
            let model = LatentModelConfig::new()
                .with_n_latent(n)
                .with_ratt(Some(LatentRattConfig::new(d)))
                .init(loaded.backbone.model, dev);
            if encoder.thought_id().map(|t| t as usize) != Some(model.thought_id) {
                bail!(
                    "the tokenizer of {id} gives <|Thought|> the id {:?} but the model's new row is {}: use the GGUF \
                     checkpoint",
                    encoder.thought_id(),
                    model.thought_id
                );
            }
            EvalModel { model, encoder }
        }
        _ => load_model(&args.model, STEM, dev)?,
    })
}

/// The timed decoding of every user.
struct Timed {
    /// Per user (in input order), the recommendations.
    results: Vec<Vec<Recommended>>,
    /// Groups of users in the order they finished: (users, seconds since the previous group).
    group_secs: Vec<(usize, f64)>,
    /// The search statistics, summed over batches.
    stats: StreamStats,
    /// The total wall time.
    total: f64,
}

/// Decodes every sample: streamed through a batch of `batch` users, or in fixed batches of `batch`.
fn decode_timed(rec: &Recommender<'_>, samples: &[r3_data::EncodedSample], batch: usize, fixed: bool) -> Timed {
    let start = Instant::now();
    let mut results = vec![Vec::new(); samples.len()];
    let mut group_secs = Vec::new();
    let mut stats = StreamStats::default();
    let mut since = Instant::now();
    let mut pending = 0;
    let chunks: Vec<&[r3_data::EncodedSample]> = if fixed { samples.chunks(batch).collect() } else { vec![samples] };
    let mut offset = 0;
    for chunk in chunks {
        let width = batch.min(chunk.len());
        let mut done = |u: usize, recs: Vec<Recommended>| {
            results[offset + u] = recs;
            pending += 1;
            if pending == batch {
                group_secs.push((pending, since.elapsed().as_secs_f64()));
                since = Instant::now();
                pending = 0;
            }
        };
        stats.add(&rec.recommend_stream(chunk, width, &mut done));
        offset += chunk.len();
    }
    if pending > 0 {
        group_secs.push((pending, since.elapsed().as_secs_f64()));
    }
    Timed { results, group_secs, stats, total: start.elapsed().as_secs_f64() }
}
