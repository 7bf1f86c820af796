//! Benchmarks of the evaluation: 10,000 samples × 10 predictions against a 5,841-title catalogue (the size of the
//! CDs catalogue), matched by title and by id, and one paired bootstrap of 1,000 resamples.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use r3_metrics::{
    BootstrapConfig, Cutoffs, Output, PredictionRecord, TitleIndex, evaluate_by_id, evaluate_by_title, relative_gains,
};

const ITEMS: usize = 5_841;
const SAMPLES: usize = 10_000;
const BEAMS: usize = 10;

/// A synthetic title of realistic length, unique per id.
fn title(id: usize) -> String {
    format!("Synthetic Artist {} - Greatest Recordings Vol. {id}", id % 97)
}

/// Sample i targets item (7i mod N) and predicts 10 titles (as `"title"\n`); the target sits at rank i % 12, so
/// ranks 10 and 11 are misses, and every 50th prediction is a title outside the catalogue.
fn fixture() -> (TitleIndex, Vec<PredictionRecord>, Vec<u32>) {
    let titles: Vec<String> = (0..ITEMS).map(title).collect();
    let index = TitleIndex::from_titles(&titles);
    let mut ids = Vec::with_capacity(SAMPLES);
    let records = (0..SAMPLES)
        .map(|i| {
            let target = (7 * i) % ITEMS;
            ids.push(target as u32);
            let predict = (0..BEAMS)
                .map(|j| match j {
                    _ if j == i % 12 => format!("\"{}\"\n", titles[target]),
                    _ if (i * BEAMS + j).is_multiple_of(50) => format!("\"Not A Catalogue Title {j}\"\n"),
                    _ => format!("\"{}\"\n", titles[(target + 1 + j) % ITEMS]),
                })
                .collect();
            PredictionRecord::new("prompt", Output::Text(format!("\"{}\"\n", titles[target])), predict)
        })
        .collect();
    (index, records, ids)
}

fn bench_evaluate(c: &mut Criterion) {
    let (index, records, ids) = fixture();
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(SAMPLES as u64));
    g.bench_function("by_title/10000x10", |b| b.iter(|| evaluate_by_title(black_box(&records), &index)));
    g.bench_function("by_id/10000x10", |b| b.iter(|| evaluate_by_id(black_box(&records), &ids, &index)));
    let cutoffs = Cutoffs::default();
    let ranks = evaluate_by_title(&records, &index).expect("the fixture evaluates");
    g.bench_function("metrics/10000", |b| b.iter(|| black_box(&ranks).metrics(&cutoffs)));
    g.finish();

    // The baseline: the same predictions shifted one rank later (misses stay misses).
    let base_ranks: Vec<_> = ranks.ranks.iter().map(|r| r.map(|r| r + 1)).collect();
    let ours = ranks.per_sample(&cutoffs);
    let base = r3_metrics::PerSample::from_ranks(&base_ranks, &cutoffs);
    let config = BootstrapConfig::default();
    let mut g = c.benchmark_group("bootstrap");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SAMPLES as u64));
    g.bench_function("gains/10000/B1000", |b| b.iter(|| relative_gains(black_box(&ours), &base, &config)));
    g.finish();
}

criterion_group!(benches, bench_evaluate);
criterion_main!(benches);
