//! GRU4Rec: session-based recommendations with recurrent neural networks (Hidasi et al., ICLR 2016), in the
//! form of RecBole's `GRU4Rec`: embedded items (dropout) → GRU → a linear map back to the embedding size, scored
//! against the item embeddings with a softmax cross-entropy over all items.
//!
//! NOTE: we follow RecBole rather than the paper's session-parallel mini-batches with a ranking loss: whole
//! right-padded sequences, the cross-entropy at every position, and the shared item embeddings as output layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::nn::{Gru, GruConfig};
use burn::tensor::{Device, Tensor};
use r3_data::ItemId;

use crate::data::{NextItems, RightPadded, cross_entropy};

/// Configuration of [`Gru4Rec`].
#[derive(Config, Debug)]
pub struct Gru4RecConfig {
    /// Catalogue size (item ids `0..n_items`).
    pub n_items: usize,
    /// Item embedding size. RecBole 64.
    #[config(default = 64)]
    pub embedding_size: usize,
    /// GRU hidden size. RecBole 128.
    #[config(default = 128)]
    pub hidden: usize,
    /// Dropout on the item embeddings. RecBole 0.3.
    #[config(default = 0.3)]
    pub dropout: f64,
    /// The longest input sequence (the last `max_len` items are used). RecBole 50.
    #[config(default = 50)]
    pub max_len: usize,
}

/// GRU4Rec (see the module docs).
#[derive(Module, Debug)]
pub struct Gru4Rec {
    item_emb: Embedding,
    drop: Dropout,
    gru: Gru,
    dense: Linear,
    n_items: usize,
    max_len: usize,
}

impl Gru4RecConfig {
    /// Initialises the model on `device` (xavier-normal embedding and output layer as RecBole, burn's GRU
    /// initialisation).
    pub fn init(&self, device: &Device) -> Gru4Rec {
        let xavier = Initializer::XavierNormal { gain: 1.0 };
        // Xavier normal of the `[N + 1, e]` table (PyTorch's fans: in = e, out = N + 1), written out because
        // burn's embedding initialiser passes no fans.
        let std = (2.0 / (self.embedding_size + self.n_items + 1) as f64).sqrt();
        Gru4Rec {
            item_emb: EmbeddingConfig::new(self.n_items + 1, self.embedding_size)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device),
            drop: DropoutConfig::new(self.dropout).init(),
            gru: GruConfig::new(self.embedding_size, self.hidden, true).init(device),
            dense: LinearConfig::new(self.hidden, self.embedding_size).with_initializer(xavier).init(device),
            n_items: self.n_items,
            max_len: self.max_len,
        }
    }
}

impl Gru4Rec {
    /// The catalogue size.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    fn device(&self) -> Device {
        self.item_emb.weight.device()
    }

    fn item_matrix(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items) // [N, e]
    }

    /// The sequence representation of every position.
    ///
    /// # Shapes
    /// - input: `B` sequences of `L` positions
    /// - output: `[B, L, e]`
    pub fn forward(&self, input: &RightPadded) -> Tensor<3> {
        let x = self.drop.forward(self.item_emb.forward(input.rows.clone())); // [B, L, e]
        let h = self.gru.forward(x, None); // [B, L, H]
        self.dense.forward(h) // [B, L, e]
    }

    /// Mean cross-entropy of predicting every next item of `seqs` (each at least two items).
    pub fn loss(&self, seqs: &[&[ItemId]]) -> Tensor<1> {
        let batch = NextItems::new(seqs, self.max_len, &self.device());
        let f = self.forward(&batch.input); // [B, L, e]
        let [b, l, e] = f.dims();
        let logits = f.reshape([b * l, e]).matmul(self.item_matrix().transpose()); // [B·L, N]
        cross_entropy(logits, &batch.targets)
    }

    /// The scores of every catalogue item after each history.
    ///
    /// # Shapes
    /// - output: `[B, N]`
    pub fn scores(&self, histories: &[&[ItemId]]) -> Tensor<2> {
        let device = self.device();
        let input = RightPadded::new(histories, self.max_len, &device);
        let f = self.forward(&input); // [B, L, e]
        let [b, _, e] = f.dims();
        let last = f.gather(1, input.last_index(e, &device)).reshape([b, e]); // [B, e]
        last.matmul(self.item_matrix().transpose()) // [B, N]
    }
}
