//! Throughput of raw Amazon 2018 ingestion (`latentr3 data prepare`) on a synthetic set of one million reviews
//! (about 320 MB of review JSON lines and 20 MB of metadata), written once into a temporary folder.
//!
//! `prepare_1m_reviews` is the whole pipeline (read both files, window and k-core, samples, write the four
//! files); `read_reviews_1m` is the parsing of the reviews file alone.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use r3_data::raw::{NoProgress, PrepareConfig, prepare, read_reviews, synth};

const N_REVIEWS: usize = 1_000_000;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (reviews, meta) = synth::write_synthetic(dir.path(), "Synthetic", N_REVIEWS, 42).expect("the synthetic set");
    let cfg = PrepareConfig { category: "Synthetic".into(), ..Default::default() };
    let out = dir.path().join("out");

    let mut g = c.benchmark_group("raw_ingest");
    g.throughput(Throughput::Elements(N_REVIEWS as u64));
    // Each run takes seconds: ten runs of one iteration each (flat sampling) rather than criterion's growing
    // iteration counts.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("prepare_1m_reviews", |b| {
        b.iter(|| black_box(prepare(&reviews, &meta, &out, &cfg, &NoProgress).expect("prepare")))
    });
    g.bench_function("read_reviews_1m", |b| b.iter(|| black_box(read_reviews(&reviews, &NoProgress).expect("read"))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
