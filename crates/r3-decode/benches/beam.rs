//! Constrained beam search with SmolLM2-135M over the CDs catalogue trie on the flex CPU backend (f32).
//!
//! - `beam_step/b{B}`: one beam step for `B` users of 10 beams after a prefilled prompt: the cache rows copied to
//!   the beams, one 10-row decoder step, the logits and the trie-masked log-probs (a search with
//!   `max_new_tokens = 2`, whose first token comes from the prefill logits). Throughput in users.
//! - `search/b{B}`: one whole 10-beam search (prefill excluded) for `B` users, the golden prompts of
//!   `golden/smollm2/latent_golden.json`. Throughput in users.
//!
//! The trie is built from the titles encoded with the GGUF tokenizer by [`r3_data::Encoder::encode_target`]
//! (`encode('"' + title + '"\n') + [eos]`). Skipped with a message when the model is not fetched
//! (`latentr3 model fetch smollm2-135m`).

use std::hint::black_box;

use burn::tensor::Device;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use r3_backbone::gguf::Gguf;
use r3_backbone::vocab::bpe_vocab;
use r3_backbone::{fetch, load_gguf};
use r3_data::{Catalogue, Encoder, EncoderConfig, Tokenizer};
use r3_decode::{BeamSearchConfig, BeamSearchInput, DecodeStart, Trie};

const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

fn golden_prompts() -> Vec<Vec<u32>> {
    let path =
        r3_data::shared_golden_dir().expect("the shared golden folder").join("smollm2").join("latent_golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("golden JSON");
    v["beam"]
        .as_array()
        .expect("beam cases")
        .iter()
        .map(|c| c["prompt_ids"].as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect())
        .collect()
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let path = match fetch::fetched_path("smollm2-135m") {
        Ok(path) => path,
        Err(e) => {
            println!("skipping: {e}");
            return;
        }
    };
    let model = load_gguf(&path, &device).expect("load").model;
    let tok =
        Tokenizer::from_bpe_vocab(bpe_vocab(&Gguf::open(&path).expect("gguf")).expect("vocab")).expect("tokenizer");
    let enc = Encoder::new(tok, EncoderConfig::for_dataset(STEM).expect("category")).expect("encoder");
    let eos = enc.eos_id();
    let data = r3_data::shared_data_dir().expect("the shared data folder");
    let catalogue = Catalogue::read(&data.join("info").join(format!("{STEM}.txt"))).expect("catalogue");
    let targets: Vec<Vec<u32>> = catalogue.titles().iter().map(|t| enc.encode_target(t)).collect();
    let trie = Trie::new(&targets).expect("trie");
    let prompts = golden_prompts();

    let mut group = c.benchmark_group("smollm2-135m");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(10));
    for b in [1, 3] {
        let start = DecodeStart::from_prompts(&model, &prompts[..b], eos, &device);
        group.throughput(Throughput::Elements(b as u64));
        let step = BeamSearchConfig::new(eos).with_max_new_tokens(2).init().expect("config");
        group.bench_function(BenchmarkId::new("beam_step", format!("b{b}")), |bench| {
            bench.iter(|| {
                let out = step.search(&model, BeamSearchInput { start: start.clone(), trie: &trie, guidance: None });
                device.sync().expect("sync");
                black_box(out)
            })
        });
        let full = BeamSearchConfig::new(eos).init().expect("config");
        group.bench_function(BenchmarkId::new("search", format!("b{b}")), |bench| {
            bench.iter(|| {
                let out = full.search(&model, BeamSearchInput { start: start.clone(), trie: &trie, guidance: None });
                device.sync().expect("sync");
                black_box(out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
