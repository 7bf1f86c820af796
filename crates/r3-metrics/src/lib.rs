//! Ranking metrics for LatentR³: HR@K and NDCG@K exactly as the official evaluation computes them.
//!
//! - [`read_predictions`] / [`write_predictions`] read and write prediction files in the official format (a JSON
//!   array of [`PredictionRecord`]s with `input`, `output` and `predict`, or JSON lines); other keys survive a
//!   round trip.
//! - [`strip_prediction`], [`strip_target`] and [`strip_catalogue_title`] copy the official string normalisation.
//! - [`evaluate_by_title`] ranks each target among its predictions as the official script does (the last matching
//!   beam wins) and counts the predictions outside the catalogue; [`evaluate_by_id`] matches by item id through a
//!   [`TitleIndex`] instead. Both return [`Ranks`], from which [`PerSample`] values and [`Metrics`] means follow.
//! - [`metrics_by_bucket`] splits the metrics by a label per sample (popular / unpopular targets);
//!   [`relative_gains`] compares two prediction sets with a paired-bootstrap interval ([`BootstrapConfig`]).
//! - [`Report`] gathers all of it, serialises with serde and prints as a table ([`Report::to_table`]).
//!
//! Implements the metrics of LatentR³ (arXiv 2505.19092) as its official `evaluate.py` computes them:
//! HR@K = mean(rank < K) and NDCG@K = mean(\[rank < K\] / log2(rank + 2)) over every test sample, with no negative
//! sampling.
//!
//! ```
//! use r3_metrics::{Cutoffs, Output, PredictionRecord, TitleIndex, evaluate_by_title};
//! let index = TitleIndex::from_titles(&["Abbey Road", "Help!", "Revolver"]);
//! let rec = |target: &str, predict: &[&str]| {
//!     let predict = predict.iter().map(|p| format!("\"{p}\"\n")).collect();
//!     PredictionRecord::new("prompt", Output::Text(format!("\"{target}\"\n")), predict)
//! };
//! // Sample 0 hits at rank 0, sample 1 at rank 1, sample 2 misses (and predicts one unknown title).
//! let records = [
//!     rec("Help!", &["Help!", "Revolver"]),
//!     rec("Revolver", &["Help!", "Revolver"]),
//!     rec("Abbey Road", &["Help!", "Let It Be"]),
//! ];
//! let ranks = evaluate_by_title(&records, &index)?;
//! assert_eq!(ranks.ranks, [Some(0), Some(1), None]);
//! assert_eq!(ranks.outside, 1);
//! let m = ranks.metrics(&Cutoffs::new(vec![1, 5])?);
//! // HR@1 = 1/3; HR@5 = 2/3; NDCG@5 = (1/log2(2) + 1/log2(3)) / 3.
//! assert_eq!(m.hr, [1.0 / 3.0, 2.0 / 3.0]);
//! assert!((m.ndcg[1] - (1.0 + 1.0 / 3f64.log2()) / 3.0).abs() < 1e-15);
//! # Ok::<(), r3_metrics::Error>(())
//! ```
#![deny(missing_docs)]

mod bootstrap;
mod bucket;
mod error;
mod eval;
mod record;
mod report;
mod strip;

pub use bootstrap::{BootstrapConfig, Gain, relative_gains};
pub use bucket::{BucketGains, BucketMetrics, bucket_indices, gains_by_bucket, metrics_by_bucket};
pub use error::{Error, Result};
pub use eval::{
    Cutoffs, Metrics, PerSample, Ranks, TitleIndex, count_outside, evaluate_by_id, evaluate_by_title, id_rank,
    title_rank,
};
pub use record::{Format, Output, PredictionRecord, parse_predictions, read_predictions, write_predictions};
pub use report::{Baseline, Comparison, Outside, Report, ReportInput, gains_table, metrics_table};
pub use strip::{strip_catalogue_title, strip_prediction, strip_target, strip_target_list_item, strip_target_text};
