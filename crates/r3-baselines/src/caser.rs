//! Caser: personalized top-N sequential recommendation via convolutional sequence embedding (Tang & Wang, WSDM
//! 2018).
//!
//! The last `L` items form an `L × d` image `E`. Horizontal filters of every height `h = 1..L` (`n_h` each, full
//! width) slide over `E` with ReLU and are max-pooled over time; `n_v` vertical filters `L × 1` take weighted sums
//! of the rows. Both are concatenated, dropped out and mapped by a fully connected layer with ReLU to `z ∈ R^d`;
//! the item scores are `z · W'ᵀ + b'` with separate output item vectors.
//!
//! NOTE: two departures, both as in common re-implementations of sequence-only evaluation: no user embedding
//! `P_u` (our evaluation users are rows of a split with their own histories, as the LLM models see them, and may
//! be absent from train), and RecBole's softmax cross-entropy over all items instead of the paper's binary loss
//! with sampled negatives (so `T = 1`: each training example predicts the next item).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use r3_data::ItemId;

use crate::data::{Windows, cross_entropy};

/// Configuration of [`Caser`].
#[derive(Config, Debug)]
pub struct CaserConfig {
    /// Catalogue size (item ids `0..n_items`).
    pub n_items: usize,
    /// Embedding size `d`. `[PAPER]` 50.
    #[config(default = 50)]
    pub embedding_size: usize,
    /// The window `L` of previous items. `[PAPER]` 5.
    #[config(default = 5)]
    pub window: usize,
    /// Horizontal filters per height `n_h`. `[PAPER]` 16.
    #[config(default = 16)]
    pub n_h: usize,
    /// Vertical filters `n_v`. `[PAPER]` 4.
    #[config(default = 4)]
    pub n_v: usize,
    /// Dropout before the fully connected layer. `[PAPER]` 0.5.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// Caser (see the module docs).
#[derive(Module, Debug)]
pub struct Caser {
    item_emb: Embedding,
    /// The vertical filters `[n_v, L]`.
    vertical: Param<Tensor<2>>,
    /// One full-width horizontal convolution per height `h = 1..L`, as a linear map of the `h · d` window.
    horizontal: Vec<Linear>,
    drop: Dropout,
    fc: Linear,
    out: Linear,
    n_items: usize,
    window: usize,
}

impl CaserConfig {
    /// Initialises the model on `device`: embeddings normal(0, 1/d) as the official code, others xavier.
    pub fn init(&self, device: &Device) -> Caser {
        let (d, l) = (self.embedding_size, self.window);
        let xavier = Initializer::XavierNormal { gain: 1.0 };
        let emb_init = Initializer::Normal { mean: 0.0, std: 1.0 / d as f64 };
        let vertical = xavier.init_with([self.n_v, l], Some(l), Some(self.n_v), device);
        Caser {
            item_emb: EmbeddingConfig::new(self.n_items + 1, d).with_initializer(emb_init.clone()).init(device),
            vertical,
            horizontal: (1..=l)
                .map(|h| LinearConfig::new(h * d, self.n_h).with_initializer(xavier.clone()).init(device))
                .collect(),
            drop: DropoutConfig::new(self.dropout).init(),
            fc: LinearConfig::new(self.n_v * d + self.n_h * l, d).with_initializer(xavier).init(device),
            out: LinearConfig::new(d, self.n_items).with_initializer(emb_init).init(device),
            n_items: self.n_items,
            window: l,
        }
    }
}

impl Caser {
    /// The catalogue size.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    fn device(&self) -> Device {
        self.item_emb.weight.device()
    }

    /// The item scores after each window.
    ///
    /// # Shapes
    /// - input: `B` windows of `L` positions
    /// - output: `[B, N]`
    pub fn forward(&self, input: &Windows) -> Tensor<2> {
        let [b, l] = input.rows.dims();
        let e = self.item_emb.forward(input.rows.clone()) * input.real.clone().unsqueeze_dim::<3>(2); // [B, L, d]
        let d = e.dims()[2];
        // Vertical: weighted sums of the rows.
        let v = self.vertical.val().unsqueeze_dim::<3>(0).expand([b, self.vertical.val().dims()[0], l]); // [B, n_v, L]
        let n_v = self.vertical.val().dims()[0];
        let v = v.matmul(e.clone()).reshape([b, n_v * d]); // [B, n_v·d]
        // Horizontal: height h, windows at positions 0..=L-h, max-pooled over positions.
        let mut feats = vec![v];
        for (i, conv) in self.horizontal.iter().enumerate() {
            let h = i + 1;
            let n = l - h + 1;
            let win = Tensor::cat((0..h).map(|j| e.clone().narrow(1, j, n)).collect(), 2); // [B, n, h·d]
            let c = relu(conv.forward(win)); // [B, n, n_h]
            let n_h = c.dims()[2];
            feats.push(c.max_dim(1).reshape([b, n_h])); // [B, n_h]
        }
        let z = relu(self.fc.forward(self.drop.forward(Tensor::cat(feats, 1)))); // [B, d]
        self.out.forward(z) // [B, N]
    }

    /// Mean cross-entropy of predicting the last item of each example from the `L` items before it.
    pub fn loss(&self, examples: &[&[ItemId]]) -> Tensor<1> {
        let inputs: Vec<&[ItemId]> = examples.iter().map(|s| &s[..s.len().saturating_sub(1)]).collect();
        let targets: Vec<i64> = examples.iter().map(|s| s.last().map_or(-1, |&t| i64::from(t))).collect();
        let logits = self.forward(&Windows::new(&inputs, self.window, &self.device()));
        cross_entropy(logits, &targets)
    }

    /// The scores of every catalogue item after each history (its last `L` items).
    ///
    /// # Shapes
    /// - output: `[B, N]`
    pub fn scores(&self, histories: &[&[ItemId]]) -> Tensor<2> {
        self.forward(&Windows::new(histories, self.window, &self.device()))
    }

    /// The window `L`.
    pub fn window(&self) -> usize {
        self.window
    }
}
