//! The baseline models behind one type, and their experiment files.
//!
//! An experiment file (`experiments/baselines/*.toml`) is a [`BaselineExperiment`]: the model kind, the model's
//! hyper-parameters (each defaulting to its paper's value) and the training settings. It resolves, with the
//! catalogue size, to a burn config that [`BaselineExperiment::init`] turns into a [`BaselineModel`].

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use r3_data::{ItemId, SplitMix64};
use serde::{Deserialize, Serialize};

use crate::alpharec::{AlphaRec, AlphaRecConfig, Graph, Prepared};
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
    /// [`AlphaRec`].
    Alpharec,
}

impl ModelKind {
    /// All kinds.
    pub const ALL: [ModelKind; 4] = [ModelKind::Sasrec, ModelKind::Gru4rec, ModelKind::Caser, ModelKind::Alpharec];

    /// The sequential models over item ids (initialised from the catalogue size alone by
    /// [`BaselineExperiment::init`]).
    pub const SEQUENTIAL: [ModelKind; 3] = [ModelKind::Sasrec, ModelKind::Gru4rec, ModelKind::Caser];

    /// The lower-case name (`sasrec`, `gru4rec`, `caser`, `alpharec`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Sasrec => "sasrec",
            ModelKind::Gru4rec => "gru4rec",
            ModelKind::Caser => "caser",
            ModelKind::Alpharec => "alpharec",
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
            .ok_or_else(|| format!("unknown baseline `{s}`: use sasrec, gru4rec, caser or alpharec"))
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

/// AlphaRec's hyper-parameters in an experiment file (see [`AlphaRecConfig`] for the sources of the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlphaRecSettings {
    /// (int) Size of the behaviour space. Official `--hidden_size` 64.
    pub hidden: usize,
    /// (int) Width of the MLP's hidden layer; 0 = the official rule (4,718,592 / d_lm first-layer weights:
    /// 8192 for SmolLM2-135M).
    pub mlp_hidden: usize,
    /// (int) LightGCN layers. Official README 2.
    pub n_layers: usize,
    /// (float) InfoNCE temperature. Official README 0.15.
    pub tau: f64,
    /// (int) Sampled negatives per positive. Official README 256.
    pub n_negatives: usize,
    /// (bool) Rank a row's history items last, as the official evaluator masks a user's train items. true.
    pub mask_history: bool,
    /// (str) The backbone whose title representations are the item language representations (a model id, a
    /// `.gguf` file or a Hugging Face folder; `latentr3 baseline train --backbone` overrides it).
    pub backbone: String,
    /// (int) Titles encoded at once by the backbone.
    pub embed_batch: usize,
}

impl Default for AlphaRecSettings {
    fn default() -> Self {
        let c = AlphaRecConfig::new(1, 1);
        AlphaRecSettings {
            hidden: c.hidden,
            mlp_hidden: c.mlp_hidden,
            n_layers: c.n_layers,
            tau: c.tau,
            n_negatives: c.n_negatives,
            mask_history: c.mask_history,
            backbone: "smollm2-135m".into(),
            embed_batch: 32,
        }
    }
}

impl AlphaRecSettings {
    /// The burn config for a catalogue of `n_items` items with language representations of width `d_lm`.
    pub fn config(&self, n_items: usize, d_lm: usize) -> AlphaRecConfig {
        AlphaRecConfig::new(n_items, d_lm)
            .with_hidden(self.hidden)
            .with_mlp_hidden(self.mlp_hidden)
            .with_n_layers(self.n_layers)
            .with_tau(self.tau)
            .with_n_negatives(self.n_negatives)
            .with_mask_history(self.mask_history)
    }
}

/// The training settings of AlphaRec's official code: `--batch_size` 4096, `--lr` 5e-4, `--weight_decay` 1e-6
/// (`parse.py` defaults), `--patience` 20 and at most `--max_epoch` 500 epochs (README command).
pub fn alpharec_train_settings() -> TrainSettings {
    TrainSettings {
        epochs: 500,
        batch_size: 4096,
        lr: 5e-4,
        weight_decay: 1e-6,
        patience: 20,
        ..TrainSettings::default()
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
    /// (str) `sasrec`, `gru4rec`, `caser` or `alpharec`.
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
    /// AlphaRec's hyper-parameters.
    #[serde(default)]
    pub alpharec: AlphaRecSettings,
    /// The training loop (for AlphaRec, keys left out take [`alpharec_train_settings`]).
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
            alpharec: AlphaRecSettings::default(),
            train: match model {
                ModelKind::Alpharec => alpharec_train_settings(),
                _ => TrainSettings::default(),
            },
        }
    }

    /// Reads an experiment file (TOML).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Experiment`] with the parser's line and column (unknown keys included).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let experiment = |message: String| Error::Experiment { path: path.to_path_buf(), message };
        let mut exp: BaselineExperiment = toml::from_str(&text).map_err(|e| experiment(e.to_string()))?;
        if exp.model == ModelKind::Alpharec {
            // The [train] keys of the file over AlphaRec's own training defaults.
            let table: toml::Table = toml::from_str(&text).map_err(|e| experiment(e.to_string()))?;
            let mut train = toml::Table::try_from(alpharec_train_settings()).map_err(|e| experiment(e.to_string()))?;
            if let Some(toml::Value::Table(t)) = table.get("train") {
                train.extend(t.clone());
            }
            exp.train = toml::Value::Table(train).try_into().map_err(|e: toml::de::Error| experiment(e.to_string()))?;
        }
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
            ModelKind::Alpharec => {
                let s = &self.alpharec;
                if s.hidden == 0 || s.embed_batch == 0 {
                    return bad("alpharec.hidden", s.hidden.to_string(), "hidden and embed_batch must be ≥ 1");
                }
                if !(s.tau > 0.0 && s.tau.is_finite()) {
                    return bad("alpharec.tau", s.tau.to_string(), "use a positive temperature (official 0.15)");
                }
                if s.backbone.is_empty() {
                    return bad("alpharec.backbone", "\"\"".into(), "name a model id, a .gguf file or a folder");
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
            // AlphaRec reads the whole history (its examples are user–item pairs of the train graph).
            ModelKind::Alpharec => 0,
        }
    }

    /// A freshly initialised model for a catalogue of `n_items` items on `device` (seed the device first for
    /// reproducible weights).
    ///
    /// # Panics
    /// For AlphaRec, which needs its language representations and train graph: use
    /// [`BaselineExperiment::init_alpharec`].
    pub fn init(&self, n_items: usize, device: &Device) -> BaselineModel {
        match self.model {
            ModelKind::Alpharec => {
                panic!("AlphaRec needs language representations: use BaselineExperiment::init_alpharec")
            }
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

    /// A freshly initialised AlphaRec from the item language representations `language` (`n_items · d_lm`
    /// values, row `i` = item `i`) and the train graph of `seqs`.
    ///
    /// # Errors
    /// [`Error::Data`] when `language` does not hold `n_items · d_lm` values or the graph has no user.
    pub fn init_alpharec(
        &self,
        language: &[f32],
        d_lm: usize,
        seqs: &Sequences,
        device: &Device,
    ) -> Result<BaselineModel> {
        Ok(BaselineModel::AlphaRec(self.alpharec.config(seqs.n_items, d_lm).init(language, seqs, device)?))
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
    /// AlphaRec.
    AlphaRec(AlphaRec),
}

impl BaselineModel {
    /// The kind.
    pub fn kind(&self) -> ModelKind {
        match self {
            BaselineModel::SasRec(_) => ModelKind::Sasrec,
            BaselineModel::Gru4Rec(_) => ModelKind::Gru4rec,
            BaselineModel::Caser(_) => ModelKind::Caser,
            BaselineModel::AlphaRec(_) => ModelKind::Alpharec,
        }
    }

    /// The catalogue size.
    pub fn n_items(&self) -> usize {
        match self {
            BaselineModel::SasRec(m) => m.n_items(),
            BaselineModel::Gru4Rec(m) => m.n_items(),
            BaselineModel::Caser(m) => m.n_items(),
            BaselineModel::AlphaRec(m) => m.n_items(),
        }
    }

    /// The training examples of this model from the train sequences: whole sequences (SASRec, GRU4Rec: a loss at
    /// every position) or every prefix ending in a target (Caser: a loss at the last position), cut to the
    /// model's input length `max_len` plus the target.
    ///
    /// AlphaRec's examples are `[user, positive, negatives...]` drawn afresh every epoch
    /// ([`BaselineModel::resample`]); this gives one draw with a fixed seed.
    pub fn examples(&self, seqs: &Sequences, max_len: usize) -> Vec<Vec<ItemId>> {
        match self {
            BaselineModel::Caser(_) => seqs.prefixes(max_len),
            BaselineModel::AlphaRec(_) => self.resample(seqs, &mut SplitMix64::new(0)).unwrap_or_default(),
            _ => seqs.windows(max_len),
        }
    }

    /// A new epoch's training examples for models that sample them (AlphaRec: a positive and negatives per
    /// train edge, as the official `TrainDataset`); `None` for models whose examples are fixed.
    pub fn resample(&self, seqs: &Sequences, rng: &mut SplitMix64) -> Option<Vec<Vec<ItemId>>> {
        match self {
            BaselineModel::AlphaRec(m) => {
                Some(Graph::from_sequences(seqs).sample_examples(m.n_items(), m.n_negatives(), rng))
            }
            _ => None,
        }
    }

    /// The mean training loss of a batch of examples (from [`BaselineModel::examples`]).
    pub fn loss(&self, examples: &[&[ItemId]]) -> Tensor<1> {
        match self {
            BaselineModel::SasRec(m) => m.loss(examples),
            BaselineModel::Gru4Rec(m) => m.loss(examples),
            BaselineModel::Caser(m) => m.loss(examples),
            BaselineModel::AlphaRec(m) => m.loss(examples),
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
            BaselineModel::AlphaRec(m) => m.scores(histories),
        }
    }

    /// The scores of many histories, `batch` at a time, as rows of `N` values (AlphaRec computes its item side
    /// once for all batches).
    pub fn score_rows(&self, histories: &[&[ItemId]], batch: usize) -> Vec<Vec<f32>> {
        let prepared: Option<Prepared> = match self {
            BaselineModel::AlphaRec(m) => Some(m.prepare()),
            _ => None,
        };
        let mut out = Vec::with_capacity(histories.len());
        for chunk in histories.chunks(batch.max(1)) {
            let s = match (self, &prepared) {
                (BaselineModel::AlphaRec(m), Some(p)) => m.scores_with(p, chunk),
                _ => self.scores(chunk),
            }; // [B, N]
            let [_, n] = s.dims();
            let v: Vec<f32> = s.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 scores");
            out.extend(v.chunks(n).map(<[f32]>::to_vec));
        }
        out
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
        // AlphaRec (d_lm 4, 3 users): MLP 4·8 + 8, 8·64 + 64 (mlp_hidden 8); frozen: language 10·4, user language
        // 3·4, adjacency 3·10, item degrees 10.
        let mut e = BaselineExperiment::defaults(ModelKind::Alpharec);
        e.alpharec.mlp_hidden = 8;
        let seqs = Sequences { n_items: 10, seqs: vec![vec![0, 1], vec![2, 3], vec![1, 4]] };
        let m = e.init_alpharec(&[0.5; 40], 4, &seqs, &device).unwrap();
        assert_eq!(m.num_params(), 40 + 576 + 40 + 12 + 30 + 10);
        // SASRec: items 11·64 + positions 50·64 + LN 2·64; per block 4 (64·64 + 64) + 2 LN (2·64) + 64·256 + 256
        // + 256·64 + 64 = 49,984; two blocks.
        assert_eq!(count(ModelKind::Sasrec), 704 + 3200 + 128 + 2 * 49_984);
        // GRU4Rec: items 11·64; three gates of (64·128 + 128) + (128·128 + 128); dense 128·64 + 64.
        assert_eq!(count(ModelKind::Gru4rec), 704 + 3 * (8320 + 16_512) + 8256);
        // Caser: items 11·50; vertical 4·5; horizontal Σ_h (h·50·16 + 16); FC (4·50 + 16·5)·50 + 50; out 50·10 + 10.
        assert_eq!(count(ModelKind::Caser), 550 + 20 + (16 * 50 * 15 + 80) + (280 * 50 + 50) + 510);
    }
}
