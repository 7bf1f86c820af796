//! The baseline models behind one type, and their experiment files.
//!
//! An experiment file (`experiments/baselines/*.toml`) is a [`BaselineExperiment`]: the model kind, the model's
//! hyper-parameters (each defaulting to its paper's value) and the training settings. It resolves, with the
//! catalogue size, to a burn config that [`BaselineExperiment::init`] turns into a [`BaselineModel`].

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use r3_data::ItemId;
use serde::{Deserialize, Serialize};

use crate::caser::{Caser, CaserConfig};
use crate::data::Sequences;
use crate::error::{Error, Result};
use crate::gru4rec::{Gru4Rec, Gru4RecConfig};
use crate::sasrec::{SasRec, SasRecConfig};
use crate::train::TrainSettings;

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// [`SasRec`].
    Sasrec,
    /// [`Gru4Rec`].
    Gru4rec,
    /// [`Caser`].
    Caser,
}

impl ModelKind {
    /// All kinds.
    pub const ALL: [ModelKind; 3] = [ModelKind::Sasrec, ModelKind::Gru4rec, ModelKind::Caser];

    /// The lower-case name (`sasrec`, `gru4rec`, `caser`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Sasrec => "sasrec",
            ModelKind::Gru4rec => "gru4rec",
            ModelKind::Caser => "caser",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown baseline `{s}`: use sasrec, gru4rec or caser"))
    }
}

/// SASRec's hyper-parameters in an experiment file (see [`SasRecConfig`] for the sources of the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SasRecSettings {
    /// (int) Hidden size. 64.
    pub hidden: usize,
    /// (int) Self-attention blocks. 2.
    pub n_blocks: usize,
    /// (int) Attention heads. 1.
    pub n_heads: usize,
    /// (int) Feed-forward width. 256.
    pub inner_size: usize,
    /// (float) Dropout of embeddings and block outputs. 0.5.
    pub hidden_dropout: f64,
    /// (float) Dropout of the attention weights. 0.2.
    pub attn_dropout: f64,
    /// (int) Longest input sequence. 50.
    pub max_len: usize,
}

impl Default for SasRecSettings {
    fn default() -> Self {
        let c = SasRecConfig::new(1);
        SasRecSettings {
            hidden: c.hidden,
            n_blocks: c.n_blocks,
            n_heads: c.n_heads,
            inner_size: c.inner_size,
            hidden_dropout: c.hidden_dropout,
            attn_dropout: c.attn_dropout,
            max_len: c.max_len,
        }
    }
}

/// GRU4Rec's hyper-parameters in an experiment file (see [`Gru4RecConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gru4RecSettings {
    /// (int) Item embedding size. 64.
    pub embedding_size: usize,
    /// (int) GRU hidden size. 128.
    pub hidden: usize,
    /// (float) Embedding dropout. 0.3.
    pub dropout: f64,
    /// (int) Longest input sequence. 50.
    pub max_len: usize,
}

impl Default for Gru4RecSettings {
    fn default() -> Self {
        let c = Gru4RecConfig::new(1);
        Gru4RecSettings { embedding_size: c.embedding_size, hidden: c.hidden, dropout: c.dropout, max_len: c.max_len }
    }
}

/// Caser's hyper-parameters in an experiment file (see [`CaserConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaserSettings {
    /// (int) Embedding size d. 50.
    pub embedding_size: usize,
    /// (int) Window L. 5.
    pub window: usize,
    /// (int) Horizontal filters per height. 16.
    pub n_h: usize,
    /// (int) Vertical filters. 4.
    pub n_v: usize,
    /// (float) Dropout. 0.5.
    pub dropout: f64,
}

impl Default for CaserSettings {
    fn default() -> Self {
        let c = CaserConfig::new(1);
        CaserSettings { embedding_size: c.embedding_size, window: c.window, n_h: c.n_h, n_v: c.n_v, dropout: c.dropout }
    }
}

/// Where an experiment's number appears in the paper (documentation only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperRef {
    /// (str) The table, e.g. `table1`.
    pub table: String,
    /// (str) The row, e.g. `SASRec`.
    pub row: String,
    /// (str) The column (dataset).
    pub column: String,
    /// (str) Where the hyper-parameters come from.
    pub source: String,
    /// (str) Anything else a reader should know.
    pub note: String,
}

/// An experiment file of `latentr3 baseline train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineExperiment {
    /// (str) `sasrec`, `gru4rec` or `caser`.
    pub model: ModelKind,
    /// (str) The dataset stem; the command line's `--stem` overrides it.
    #[serde(default)]
    pub stem: Option<String>,
    /// The paper cell the run reproduces.
    #[serde(default)]
    pub paper: PaperRef,
    /// SASRec's hyper-parameters (used when `model = "sasrec"`).
    #[serde(default)]
    pub sasrec: SasRecSettings,
    /// GRU4Rec's hyper-parameters.
    #[serde(default)]
    pub gru4rec: Gru4RecSettings,
    /// Caser's hyper-parameters.
    #[serde(default)]
    pub caser: CaserSettings,
    /// The training loop.
    #[serde(default)]
    pub train: TrainSettings,
}

impl BaselineExperiment {
    /// The paper defaults of `model`.
    pub fn defaults(model: ModelKind) -> Self {
        BaselineExperiment {
            model,
            stem: None,
            paper: PaperRef::default(),
            sasrec: SasRecSettings::default(),
            gru4rec: Gru4RecSettings::default(),
            caser: CaserSettings::default(),
            train: TrainSettings::default(),
        }
    }

    /// Reads an experiment file (TOML).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Experiment`] with the parser's line and column (unknown keys included).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let exp: BaselineExperiment = toml::from_str(&text)
            .map_err(|e| Error::Experiment { path: path.to_path_buf(), message: e.to_string() })?;
        exp.validate()?;
        Ok(exp)
    }

    /// Checks the settings of the chosen model and of training.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and how to fix it.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, value: String, hint| Err(Error::Config { key, value, hint });
        let prob = |p: f64| (0.0..1.0).contains(&p);
        match self.model {
            ModelKind::Sasrec => {
                let s = &self.sasrec;
                if s.hidden == 0 || s.n_heads == 0 || !s.hidden.is_multiple_of(s.n_heads) {
                    return bad("sasrec.hidden", s.hidden.to_string(), "use a positive multiple of sasrec.n_heads");
                }
                if s.max_len == 0 || s.n_blocks == 0 || s.inner_size == 0 {
                    return bad(
                        "sasrec.max_len",
                        s.max_len.to_string(),
                        "max_len, n_blocks and inner_size must be ≥ 1",
                    );
                }
                if !prob(s.hidden_dropout) || !prob(s.attn_dropout) {
                    return bad("sasrec.hidden_dropout", s.hidden_dropout.to_string(), "dropouts lie in [0, 1)");
                }
            }
            ModelKind::Gru4rec => {
                let s = &self.gru4rec;
                if s.embedding_size == 0 || s.hidden == 0 || s.max_len == 0 {
                    return bad("gru4rec.hidden", s.hidden.to_string(), "sizes and max_len must be ≥ 1");
                }
                if !prob(s.dropout) {
                    return bad("gru4rec.dropout", s.dropout.to_string(), "dropout lies in [0, 1)");
                }
            }
            ModelKind::Caser => {
                let s = &self.caser;
                if s.embedding_size == 0 || s.window == 0 || s.n_h == 0 || s.n_v == 0 {
                    return bad("caser.window", s.window.to_string(), "sizes, window, n_h and n_v must be ≥ 1");
                }
                if !prob(s.dropout) {
                    return bad("caser.dropout", s.dropout.to_string(), "dropout lies in [0, 1)");
                }
            }
        }
        self.train.validate()
    }

    /// The longest history the model reads.
    pub fn max_len(&self) -> usize {
        match self.model {
            ModelKind::Sasrec => self.sasrec.max_len,
            ModelKind::Gru4rec => self.gru4rec.max_len,
            ModelKind::Caser => self.caser.window,
        }
    }

    /// A freshly initialised model for a catalogue of `n_items` items on `device` (seed the device first for
    /// reproducible weights).
    pub fn init(&self, n_items: usize, device: &Device) -> BaselineModel {
        match self.model {
            ModelKind::Sasrec => {
                let s = &self.sasrec;
                BaselineModel::SasRec(
                    SasRecConfig::new(n_items)
                        .with_hidden(s.hidden)
                        .with_n_blocks(s.n_blocks)
                        .with_n_heads(s.n_heads)
                        .with_inner_size(s.inner_size)
                        .with_hidden_dropout(s.hidden_dropout)
                        .with_attn_dropout(s.attn_dropout)
                        .with_max_len(s.max_len)
                        .init(device),
                )
            }
            ModelKind::Gru4rec => {
                let s = &self.gru4rec;
                BaselineModel::Gru4Rec(
                    Gru4RecConfig::new(n_items)
                        .with_embedding_size(s.embedding_size)
                        .with_hidden(s.hidden)
                        .with_dropout(s.dropout)
                        .with_max_len(s.max_len)
                        .init(device),
                )
            }
            ModelKind::Caser => {
                let s = &self.caser;
                BaselineModel::Caser(
                    CaserConfig::new(n_items)
                        .with_embedding_size(s.embedding_size)
                        .with_window(s.window)
                        .with_n_h(s.n_h)
                        .with_n_v(s.n_v)
                        .with_dropout(s.dropout)
                        .init(device),
                )
            }
        }
    }
}

/// A baseline model of any kind.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one model per run: the size of the enum does not matter
pub enum BaselineModel {
    /// SASRec.
    SasRec(SasRec),
    /// GRU4Rec.
    Gru4Rec(Gru4Rec),
    /// Caser.
    Caser(Caser),
}

impl BaselineModel {
    /// The kind.
    pub fn kind(&self) -> ModelKind {
        match self {
            BaselineModel::SasRec(_) => ModelKind::Sasrec,
            BaselineModel::Gru4Rec(_) => ModelKind::Gru4rec,
            BaselineModel::Caser(_) => ModelKind::Caser,
        }
    }

    /// The catalogue size.
    pub fn n_items(&self) -> usize {
        match self {
            BaselineModel::SasRec(m) => m.n_items(),
            BaselineModel::Gru4Rec(m) => m.n_items(),
            BaselineModel::Caser(m) => m.n_items(),
        }
    }

    /// The training examples of this model from the train sequences: whole sequences (SASRec, GRU4Rec: a loss at
    /// every position) or every prefix ending in a target (Caser: a loss at the last position), cut to the
    /// model's input length `max_len` plus the target.
    pub fn examples(&self, seqs: &Sequences, max_len: usize) -> Vec<Vec<ItemId>> {
        match self {
            BaselineModel::Caser(_) => seqs.prefixes(max_len),
            _ => seqs.windows(max_len),
        }
    }

    /// The mean training loss of a batch of examples (from [`BaselineModel::examples`]).
    pub fn loss(&self, examples: &[&[ItemId]]) -> Tensor<1> {
        match self {
            BaselineModel::SasRec(m) => m.loss(examples),
            BaselineModel::Gru4Rec(m) => m.loss(examples),
            BaselineModel::Caser(m) => m.loss(examples),
        }
    }

    /// The scores of every catalogue item after each history (oldest item first; the model reads its last
    /// `max_len` items).
    ///
    /// # Shapes
    /// - output: `[B, N]`
    pub fn scores(&self, histories: &[&[ItemId]]) -> Tensor<2> {
        match self {
            BaselineModel::SasRec(m) => m.scores(histories),
            BaselineModel::Gru4Rec(m) => m.scores(histories),
            BaselineModel::Caser(m) => m.scores(histories),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameter counts by hand for a catalogue of 10 items (embedding tables hold 11 rows with the padding).
    #[test]
    fn parameter_counts_by_hand() {
        let device = Device::flex();
        let count = |k| BaselineExperiment::defaults(k).init(10, &device).num_params();
        // SASRec: items 11·64 + positions 50·64 + LN 2·64; per block 4 (64·64 + 64) + 2 LN (2·64) + 64·256 + 256
        // + 256·64 + 64 = 49,984; two blocks.
        assert_eq!(count(ModelKind::Sasrec), 704 + 3200 + 128 + 2 * 49_984);
        // GRU4Rec: items 11·64; three gates of (64·128 + 128) + (128·128 + 128); dense 128·64 + 64.
        assert_eq!(count(ModelKind::Gru4rec), 704 + 3 * (8320 + 16_512) + 8256);
        // Caser: items 11·50; vertical 4·5; horizontal Σ_h (h·50·16 + 16); FC (4·50 + 16·5)·50 + 50; out 50·10 + 10.
        assert_eq!(count(ModelKind::Caser), 550 + 20 + (16 * 50 * 15 + 80) + (280 * 50 + 50) + 510);
    }
}
