//! `latentr3 recommend`: the top-k catalogue items for one user history, with their beam scores and item ids.
//!
//! The history titles (oldest first) form the prompt exactly as in evaluation; a title that is not in the
//! catalogue is still used, as free text in the prompt, with a warning. The search is the evaluation's
//! constrained beam search over the catalogue trie (`max(k, 10)` beams, `k` returned).

use std::path::PathBuf;

use anyhow::{Context, bail};
use r3_data::Catalogue;
use r3_decode::{CatalogueTrie, ChainOfThought, Recommender, RecommenderInput};
use serde_json::json;

use super::eval::{Decoding, ModelArgs, decoding_parser, load_model};
use crate::device;

/// Arguments of `latentr3 recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The user's history, oldest first: one title per value (`--history "A" "B"` or repeated `--history`).
    #[arg(long, num_args = 1.., required = true)]
    pub history: Vec<String>,
    /// How many items to recommend.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// The data folder with the catalogue `info/{stem}.txt`. Default: $LATENTR3_DATA, else
    /// ../shared/datasets/amazon18 beside the repository.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The dataset whose catalogue is searched (and, for --model, whose category word the prompt uses).
    #[arg(long, default_value = "CDs_and_Vinyl_5_2015-10-2018-11")]
    pub stem: String,
    /// The decoding: `bigrec` (length penalty 1) or `d3` (length penalty 0, without the assistant guidance).
    #[arg(long, default_value = "bigrec", value_parser = decoding_parser())]
    pub decoding: Decoding,
    /// Chain-of-thought decoding: up to this many greedy reasoning tokens after a reasoning cue, then an answer
    /// cue, before the constrained item decoding (as `latentr3 eval --cot-tokens`); 0 = plain decoding.
    #[arg(long, default_value_t = 0)]
    pub cot_tokens: usize,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

/// Runs `latentr3 recommend`.
pub fn run(args: &RecommendArgs) -> anyhow::Result<()> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let data = super::data_dir(args.data.as_ref())?;
    let path = data.join("info").join(format!("{}.txt", args.stem));
    let catalogue = Catalogue::read(&path).with_context(|| format!("reading the catalogue of `{}`", args.stem))?;
    for title in &args.history {
        if catalogue.ids_of(title).is_empty() {
            tracing::warn!(title = %title, catalogue = %path.display(), "not a catalogue title: used as free text");
        }
    }
    let dev = device::select(args.device)?;
    let m = load_model(&args.model, &args.stem, &dev)?;
    let items = CatalogueTrie::new(&m.encoder, &catalogue)?;
    let search =
        args.decoding.search(m.encoder.eos_id()).with_num_beams(args.k.max(10)).with_num_return_sequences(args.k);
    let rec =
        Recommender::new(RecommenderInput { model: &m.model, encoder: &m.encoder, items: &items, search: &search })?;
    let cot = ChainOfThought::new(&m.encoder, args.cot_tokens);
    let (recs, reasoning) = rec.recommend_cot(&[args.history.as_slice()], &cot)?.into_iter().next().unwrap_or_default();
    let reasoning = (!cot.is_plain()).then_some(reasoning);
    if args.json {
        let items: Vec<_> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| json!({ "rank": i + 1, "title": r.title, "score": r.score, "item_ids": r.item_ids }))
            .collect();
        let mut line = json!({ "history": args.history, "recommendations": items });
        if let Some(text) = &reasoning {
            line["reasoning"] = json!(text);
        }
        println!("{line}");
    } else {
        if let Some(text) = &reasoning {
            println!("reasoning: {}", text.trim());
        }
        println!("rank  score     item ids  title");
        for (i, r) in recs.iter().enumerate() {
            let ids = r.item_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            println!("{:>4}  {:>8.4}  {:>8}  {}", i + 1, r.score, ids, r.title);
        }
    }
    if recs.len() < args.k {
        tracing::warn!(found = recs.len(), k = args.k, "fewer catalogue paths could be completed than requested");
    }
    Ok(())
}
