//! Helpers shared by the integration tests.

use std::path::PathBuf;

use r3_metrics::{Output, PredictionRecord};

/// The shared data folder (`../shared/datasets/amazon18` beside the repository root).
///
/// # Panics
/// When the folder is missing: the real-data tests must not pass without the real files.
pub fn data_root() -> PathBuf {
    r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18 beside the repository")
}

/// The CDs stem (the paper's own data).
pub const CDS: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

/// A record as the official inference script writes it: target `"title"\n`, predictions `"title"\n`.
pub fn record(target: &str, predict: &[&str]) -> PredictionRecord {
    let predict = predict.iter().map(|p| format!("\"{p}\"\n")).collect();
    PredictionRecord::new("prompt", Output::Text(format!("\"{target}\"\n")), predict)
}
