//! Throughput of the split reader (Python-literal list columns) and of a whole dataset load with validation, on
//! the real CDs files of the shared data folder.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use r3_data::{Dataset, Split, read_split};

const CDS: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

fn bench(c: &mut Criterion) {
    let dir = r3_data::default_data_dir().expect("the shared data folder (or LATENTR3_DATA) for the real CDs files");
    let train = Split::Train.path(&dir, CDS);
    let rows = read_split(&train).expect("CDs train split").len() as u64;
    let bytes = std::fs::metadata(&train).expect("CDs train split").len();

    let mut g = c.benchmark_group("csv_reader");
    g.throughput(Throughput::Elements(rows));
    g.bench_function("read_split/cds_train_rows", |b| b.iter(|| black_box(read_split(&train).unwrap())));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("read_split/cds_train_bytes", |b| b.iter(|| black_box(read_split(&train).unwrap())));
    g.finish();

    let ds = Dataset::load(&dir, CDS).expect("CDs dataset");
    let total = (ds.train.len() + ds.valid.len() + ds.test.len()) as u64;
    let mut g = c.benchmark_group("dataset_load");
    g.throughput(Throughput::Elements(total));
    g.bench_function("load_and_validate/cds", |b| b.iter(|| black_box(Dataset::load(&dir, CDS).unwrap())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
