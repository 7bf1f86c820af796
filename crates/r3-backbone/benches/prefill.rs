//! Prefill and cached decoding of the real checkpoints on the flex CPU backend (f32).
//!
//! - `prefill/b{B}x200`: the decoder over `B` prompts of 200 tokens (the last layer at the last position only,
//!   `HiddenInput::last_only`) plus the logits of the last position (what generation and beam search do first);
//!   throughput in prompt tokens per second.
//! - `decode/b10`: one cached step for 10 rows (beams) after a 200-token prefix: 10 new tokens, their logits.
//!
//! Models that are not fetched are skipped with a message (`cargo run -p r3-cli -- model fetch <id>`).
//! Rough arithmetic: a prefill costs about `2 · (non-embedding parameters) · tokens` FLOP plus attention.

use std::hint::black_box;

use burn::tensor::{Device, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use r3_backbone::{Backbone, HiddenInput, fetch, load_gguf};

const PROMPT_LEN: usize = 200;
const DECODE_ROWS: usize = 10;

fn ids(rows: usize, len: usize, device: &Device) -> Tensor<2, Int> {
    // Arbitrary but fixed ids in the shared part of both vocabularies.
    let v: Vec<i64> = (0..rows * len).map(|i| ((i * 7919) % 40_000) as i64 + 100).collect();
    Tensor::from_data(TensorData::new(v, [rows, len]), device)
}

fn prefill(m: &Backbone, ids: Tensor<2, Int>) -> Tensor<3> {
    let out = m.hidden(HiddenInput::new(m.embed(ids)).last_only()); // the last layer at the last position only
    m.logits(out.hidden) // [B, 1, V]
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    for id in ["smollm2-135m", "qwen2.5-coder-0.5b"] {
        let path = fetch::cached_path(id);
        if !path.is_file() {
            println!("skipping {id}: not fetched ({}); run `cargo run -p r3-cli -- model fetch {id}`", path.display());
            continue;
        }
        let loaded = load_gguf(&path, &device).expect("load");
        let m = loaded.model;
        let mut group = c.benchmark_group(id);
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_secs(1));
        group.measurement_time(std::time::Duration::from_secs(5));

        for b in [1, 8] {
            let input = ids(b, PROMPT_LEN, &device);
            group.throughput(Throughput::Elements((b * PROMPT_LEN) as u64));
            group.bench_function(BenchmarkId::new("prefill", format!("b{b}x{PROMPT_LEN}")), |bench| {
                bench.iter(|| {
                    let logits = prefill(&m, input.clone());
                    device.sync().expect("sync");
                    black_box(logits)
                })
            });
        }

        // One cached decode step for 10 rows that share a 200-token prefix (computed once, expanded).
        let prefix = m.hidden(HiddenInput::new(m.embed(ids(1, PROMPT_LEN, &device)))).cache.expand(DECODE_ROWS);
        let step = ids(DECODE_ROWS, 1, &device);
        group.throughput(Throughput::Elements(DECODE_ROWS as u64));
        group.bench_function(BenchmarkId::new("decode", format!("b{DECODE_ROWS}")), |bench| {
            bench.iter(|| {
                let out = m.hidden(HiddenInput::new(m.embed(step.clone())).with_cache(Some(prefix.clone())));
                let logits = m.logits(out.hidden); // [10, 1, V]
                device.sync().expect("sync");
                black_box((logits, out.cache))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
