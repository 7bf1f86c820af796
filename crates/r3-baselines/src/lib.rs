//! Traditional sequential recommenders for Table 1 of LatentR³ (arXiv 2505.19092), trained and evaluated in burn
//! on exactly the splits and metrics of the LLM models, and D3's assistant-model guidance.
//!
//! - [`Sequences`] rebuilds every user's train sequence from the train split (item ids = catalogue ids of
//!   `info/{stem}.txt`).
//! - [`SasRec`], [`Gru4Rec`], [`Caser`] and [`AlphaRec`] (each `XConfig` → `init` → module; AlphaRec from the
//!   items' language representations and the train graph), behind [`BaselineModel`]; an
//!   experiment file ([`BaselineExperiment`], `experiments/baselines/*.toml`) holds their paper defaults.
//! - [`fit`] trains with Adam on seeded mini-batches through the generic loop of `r3-trainer` (a run folder with
//!   checkpoints, `metrics.jsonl` of [`BaselineRecord`]s and resume), validates NDCG@10 after every epoch and
//!   restores the best epoch (early stopping).
//! - [`Evaluator`] ranks the full catalogue after each row's history, maps the ranked ids to titles and scores the
//!   resulting prediction records through `r3-metrics`, overall and per popularity bucket.
//! - [`Assistant`] turns a trained model into D3's guidance ([`AssistantWeights`] implements
//!   [`r3_decode::ItemScorer`]).
//! - [`store`] writes and reads model folders atomically.
//!
//! ```
//! use burn::tensor::Device;
//! use r3_baselines::{BaselineExperiment, ModelKind};
//! let device = Device::flex();
//! let model = BaselineExperiment::defaults(ModelKind::Sasrec).init(5, &device);
//! let scores = model.scores(&[&[0, 3], &[]]); // two histories, the second empty
//! assert_eq!(scores.dims(), [2, 5]);
//! ```
#![deny(missing_docs)]

pub mod alpharec;
mod assistant;
pub mod caser;
pub mod data;
mod error;
mod eval;
pub mod gru4rec;
mod model;
pub mod sasrec;
pub mod store;
mod train;

pub use alpharec::{AlphaRec, AlphaRecConfig};
pub use assistant::{Assistant, AssistantWeights};
pub use caser::{Caser, CaserConfig};
pub use data::Sequences;
pub use error::{Error, Result};
pub use eval::{Evaluator, Ranked, top_titles};
pub use gru4rec::{Gru4Rec, Gru4RecConfig};
pub use model::{
    AlphaRecSettings, BaselineExperiment, BaselineModel, CaserSettings, Gru4RecSettings, ModelKind, PaperRef,
    SasRecSettings, alpharec_train_settings,
};
pub use sasrec::{SasRec, SasRecConfig};
pub use train::{
    BaselineRecord, EpochReport, Event, FitInput, FitOutput, RunConfig, RunSummary, TrainSettings, fit, seed_device,
};
