//! D3's assistant model: a trained baseline (SASRec in D3) whose item probabilities guide the constrained beam
//! search of the LLM (`r3_decode::Guidance`).
//!
//! For a batch of users, [`Assistant::weights`] runs the model over each user's history item ids and keeps the
//! softmax over the full catalogue; [`AssistantWeights`] hands row `u` to the beam search as the item weights of
//! user `u` ([`r3_decode::ItemScorer`]). The beam search turns them into token scores per trie prefix and mixes
//! them with the LLM's log-probs at the guidance scale (scale 1 = the LLM alone, scale 0 = the assistant alone).

use std::path::Path;

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use r3_data::ItemId;
use r3_decode::ItemScorer;

use crate::error::Result;
use crate::model::BaselineModel;
use crate::store::{self, ModelMeta};

/// A trained baseline used as D3's assistant.
#[derive(Debug)]
pub struct Assistant {
    model: BaselineModel,
}

/// The assistant's item probabilities for a batch of users, in batch order.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantWeights {
    rows: Vec<Vec<f32>>,
}

impl Assistant {
    /// Wraps a trained model (it is put into validation mode).
    pub fn new(model: &BaselineModel) -> Self {
        Assistant { model: burn::module::Module::valid(model) }
    }

    /// Loads a model folder of `latentr3 baseline train` onto `device`.
    ///
    /// # Errors
    /// As [`store::load`].
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, ModelMeta)> {
        let (model, meta) = store::load(dir, device)?;
        Ok((Assistant { model }, meta))
    }

    /// The catalogue size the assistant scores.
    pub fn n_items(&self) -> usize {
        self.model.n_items()
    }

    /// The softmax over all items of the assistant's scores after each history (item ids, oldest first).
    ///
    /// # Panics
    /// When `histories` is empty.
    pub fn weights(&self, histories: &[&[ItemId]]) -> AssistantWeights {
        let s = softmax(self.model.scores(histories), 1); // [B, N]
        let [_, n] = s.dims();
        let v: Vec<f32> = s.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 probabilities");
        AssistantWeights { rows: v.chunks(n).map(<[f32]>::to_vec).collect() }
    }
}

impl AssistantWeights {
    /// The weights of user `u`.
    pub fn row(&self, u: usize) -> &[f32] {
        &self.rows[u]
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl ItemScorer for AssistantWeights {
    fn item_weights(&self, user: usize) -> Vec<f32> {
        self.rows[user].clone()
    }
}
