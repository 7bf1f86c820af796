//! `latentr3 bench eval`: evaluation speed (users/s and per-user latency) on the first `--users` CDs test users.
//!
//! The users are decoded exactly as `latentr3 eval` decodes them ([`r3_decode::Recommender`], BIGRec beam search
//! by default: 10 beams, 10 returned, length penalty 1, at most 128 new tokens), in batches of `--batch`. Each
//! batch is timed from its prompts to its ranked titles (prefill, latent tokens, beam search), stopping after
//! [`burn::tensor::Device::sync`]; `--warmup` untimed runs of the first batch come first. Reported: the median
//! over batches of users/s, the overall users/s (users / total time), and the per-user latency (batch time /
//! batch size: median and p90).
//!
//! With `--model M --n-latent N` the model is the pretrained backbone with the `<|Thought|>` row and a seeded
//! random LatentRATT (N latent tokens): the cost of LatentR³'s latent tokens without a trained checkpoint.
//! `bench/eval_vs_hf.py` runs HF `generate` on the same users (`--dump F` writes the prompts, the catalogue
//! trie sequences and our results).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use r3_data::{Catalogue, Encoder, EncoderConfig, Split, read_split};
use r3_decode::{CatalogueTrie, Recommender, RecommenderInput};
use r3_latent::{LatentModelConfig, LatentRattConfig};
use serde_json::json;

use super::bench::{CommonArgs, threads, timed};
use super::eval::{Decoding, EvalModel, Latency, ModelArgs, load_model, percentile};
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
    /// Users decoded together.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// With --model: give the backbone N latent tokens (the <|Thought|> row and a seeded random LatentRATT) to
    /// measure LatentR³'s decoding cost; 0 is the Base / BIGRec prompt.
    #[arg(long, default_value_t = 0, conflicts_with = "checkpoint")]
    pub n_latent: usize,
    /// The seed of the random LatentRATT.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The decoding: `bigrec` (length penalty 1) or `d3` (length penalty 0).
    #[arg(long, value_enum, default_value = "bigrec")]
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

    let m = match (&args.model.model, args.n_latent) {
        (Some(id), n) if n > 0 => {
            let source = model_source::resolve(id)?;
            let loaded = model_source::load(&source, &dev)?;
            let encoder = Encoder::new(loaded.tokenizer, EncoderConfig::for_dataset(STEM)?.with_n_thought(n))?;
            dev.seed(args.seed);
            let d = loaded.backbone.model.hidden_size();
            let model = LatentModelConfig::new()
                .with_n_latent(n)
                .with_ratt(Some(LatentRattConfig::new(d)))
                .init(loaded.backbone.model, &dev);
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
        _ => load_model(&args.model, STEM, &dev)?,
    };
    let items = CatalogueTrie::new(&m.encoder, &catalogue)?;
    let search = args.decoding.search(m.encoder.eos_id());
    let rec =
        Recommender::new(RecommenderInput { model: &m.model, encoder: &m.encoder, items: &items, search: &search })?;
    let samples: Vec<_> = rows.iter().map(|r| rec.encode(&r.history_titles)).collect();

    for _ in 0..args.common.warmup.unwrap_or(1) {
        timed(&dev, || Ok(rec.recommend_encoded(&samples[..args.batch.min(samples.len())])))?;
    }
    let mut batch_rates = Vec::new();
    let mut latencies = Vec::with_capacity(samples.len());
    let mut results = Vec::with_capacity(samples.len());
    let mut steps = 0;
    let start = Instant::now();
    for chunk in samples.chunks(args.batch) {
        let (out, secs) = timed(&dev, || Ok(rec.recommend_encoded(chunk)))?;
        batch_rates.push(chunk.len() as f64 / secs);
        latencies.extend(std::iter::repeat_n(secs / chunk.len() as f64, chunk.len()));
        steps += out.steps;
        results.extend(out.users);
    }
    let total = start.elapsed().as_secs_f64();
    batch_rates.sort_by(f64::total_cmp);
    let median_rate = percentile(&batch_rates, 0.5);
    let latency = Latency::of(&latencies).context("no users were decoded")?;
    let prompt_tokens: usize = samples.iter().map(|s| s.prompt_ids.len()).sum();

    if let Some(path) = &args.dump {
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
    }
    let threads = threads();
    let name = args.model.name();
    if args.common.json {
        let line = json!({
            "kind": "eval", "model": name, "n_latent": m.model.n_latent, "users": rows.len(), "batch": args.batch,
            "decoding": args.decoding, "median_users_per_s": median_rate, "users_per_s": rows.len() as f64 / total,
            "latency_median_s": latency.median_s, "latency_p90_s": latency.p90_s, "total_s": total,
            "steps_per_batch": steps as f64 / batch_rates.len() as f64, "prompt_tokens_mean":
            prompt_tokens as f64 / rows.len() as f64, "device": format!("{dev:?}"), "threads": threads,
        });
        println!("{line}");
    } else {
        println!(
            "{name} (n_latent {}): {} CDs test users in batches of {}: median {:.3} users/s over batches, {:.3} \
             users/s overall, per-user latency median {:.3} s, p90 {:.3} s ({dev:?}, {threads} threads)",
            m.model.n_latent,
            rows.len(),
            args.batch,
            median_rate,
            rows.len() as f64 / total,
            latency.median_s,
            latency.p90_s
        );
    }
    Ok(())
}
