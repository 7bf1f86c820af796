//! SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018), with the cross-entropy loss over
//! all items of RecBole's `SASRec`.
//!
//! Items and learned absolute positions are embedded, layer-normalised and dropped out, then `n_blocks`
//! transformer blocks with causal self-attention run over the right-padded sequence; the output at position `t`
//! scores every catalogue item by a dot product with the (shared) item embeddings, `r = F_t · Mᵀ`.
//!
//! NOTE: we follow RecBole (the reference implementation most papers, D3 included, train): post-LayerNorm blocks
//! (`LN(x + Dropout(Attn(x)))`, `LN(h + Dropout(FFN(h)))`), a GELU feed-forward of width `inner_size`, normal(0,
//! 0.02) initialisation and a softmax cross-entropy over the full catalogue instead of the paper's binary loss with
//! one sampled negative.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use r3_data::ItemId;

use crate::data::{NextItems, RightPadded, cross_entropy};

/// A score for masked attention logits: large and finite, so that a fully masked row cannot give NaN.
const MASKED: f32 = -1.0e9;

/// Configuration of [`SasRec`].
#[derive(Config, Debug)]
pub struct SasRecConfig {
    /// Catalogue size (item ids `0..n_items`).
    pub n_items: usize,
    /// Hidden size `d`. `[PAPER]` 50, RecBole 64; we use 64.
    #[config(default = 64)]
    pub hidden: usize,
    /// Number of self-attention blocks. `[PAPER]` 2.
    #[config(default = 2)]
    pub n_blocks: usize,
    /// Attention heads. `[PAPER]` 1.
    #[config(default = 1)]
    pub n_heads: usize,
    /// Width of the feed-forward layer. RecBole 256.
    #[config(default = 256)]
    pub inner_size: usize,
    /// Dropout of embeddings and block outputs. `[PAPER]` 0.5 on the sparse Amazon data.
    #[config(default = 0.5)]
    pub hidden_dropout: f64,
    /// Dropout of the attention weights. `[PAPER]` 0.2 (its value on the dense MovieLens data, and our brief's).
    #[config(default = 0.2)]
    pub attn_dropout: f64,
    /// The longest input sequence `n` (the last `max_len` items are used). `[PAPER]` 50 on Amazon.
    #[config(default = 50)]
    pub max_len: usize,
    /// LayerNorm epsilon. RecBole 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

/// One transformer block.
#[derive(Module, Debug)]
pub struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    attn_drop: Dropout,
    drop1: Dropout,
    ln1: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    drop2: Dropout,
    ln2: LayerNorm,
    n_heads: usize,
}

/// SASRec (see the module docs).
#[derive(Module, Debug)]
pub struct SasRec {
    item_emb: Embedding,
    pos_emb: Embedding,
    ln: LayerNorm,
    drop: Dropout,
    blocks: Vec<Block>,
    n_items: usize,
    max_len: usize,
}

impl SasRecConfig {
    /// Initialises the model on `device` (normal(0, 0.02) weights, zero biases).
    ///
    /// # Panics
    /// When `hidden` is not divisible by `n_heads` or a size is 0 (validated by the experiment file first).
    pub fn init(&self, device: &Device) -> SasRec {
        assert!(self.n_heads > 0 && self.hidden.is_multiple_of(self.n_heads), "hidden must be divisible by n_heads");
        let init = Initializer::Normal { mean: 0.0, std: 0.02 };
        let d = self.hidden;
        let lin = |i, o| LinearConfig::new(i, o).with_initializer(init.clone()).init(device);
        let ln = || LayerNormConfig::new(d).with_epsilon(self.layer_norm_eps).init(device);
        let blocks = (0..self.n_blocks)
            .map(|_| Block {
                q: lin(d, d),
                k: lin(d, d),
                v: lin(d, d),
                o: lin(d, d),
                attn_drop: DropoutConfig::new(self.attn_dropout).init(),
                drop1: DropoutConfig::new(self.hidden_dropout).init(),
                ln1: ln(),
                ff1: lin(d, self.inner_size),
                ff2: lin(self.inner_size, d),
                drop2: DropoutConfig::new(self.hidden_dropout).init(),
                ln2: ln(),
                n_heads: self.n_heads,
            })
            .collect();
        SasRec {
            item_emb: EmbeddingConfig::new(self.n_items + 1, d).with_initializer(init.clone()).init(device),
            pos_emb: EmbeddingConfig::new(self.max_len, d).with_initializer(init).init(device),
            ln: ln(),
            drop: DropoutConfig::new(self.hidden_dropout).init(),
            blocks,
            n_items: self.n_items,
            max_len: self.max_len,
        }
    }
}

impl Block {
    /// # Shapes
    /// - x: `[B, L, d]`; mask: `[B, 1, L, L]`, true where attention is forbidden
    /// - output: `[B, L, d]`
    fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let h = self.n_heads;
        let dh = d / h;
        let split = |t: Tensor<3>| t.reshape([b, l, h, dh]).swap_dims(1, 2); // [B, h, L, dh]
        let q = split(self.q.forward(x.clone()));
        let k = split(self.k.forward(x.clone()));
        let v = split(self.v.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt(); // [B, h, L, L]
        let scores = scores.mask_fill(mask, MASKED);
        let att = self.attn_drop.forward(softmax(scores, 3));
        let ctx = att.matmul(v).swap_dims(1, 2).reshape([b, l, d]); // [B, L, d]
        let x = self.ln1.forward(self.drop1.forward(self.o.forward(ctx)) + x);
        let f = self.ff2.forward(gelu(self.ff1.forward(x.clone())));
        self.ln2.forward(self.drop2.forward(f) + x)
    }
}

impl SasRec {
    /// The catalogue size.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// The longest input sequence.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn device(&self) -> Device {
        self.item_emb.weight.device()
    }

    /// The output item embeddings (catalogue items, without the padding row).
    ///
    /// # Shapes
    /// - output: `[N, d]`
    fn item_matrix(&self) -> Tensor<2> {
        let n = self.n_items;
        self.item_emb.weight.val().narrow(0, 1, n) // [N, d]
    }

    /// The sequence representations `F` of every position.
    ///
    /// # Shapes
    /// - input: `B` sequences of `L` positions
    /// - output: `[B, L, d]`
    pub fn forward(&self, input: &RightPadded) -> Tensor<3> {
        let device = self.device();
        let [b, l] = input.rows.dims();
        let pos = Tensor::<1, Int>::arange(0..l as i64, &device).reshape([1, l]).expand([b, l]); // [B, L]
        let x = self.item_emb.forward(input.rows.clone()) + self.pos_emb.forward(pos); // [B, L, d]
        let x = self.drop.forward(self.ln.forward(x));
        // Forbidden: a later key, or a padding key (except the query itself, so that no row is fully masked).
        let mut mask = vec![false; b * l * l];
        for (r, &len) in input.lens.iter().enumerate() {
            for i in 0..l {
                for j in 0..l {
                    mask[(r * l + i) * l + j] = j > i || (j >= len && j != i);
                }
            }
        }
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(mask, [b, 1, l, l]), &device);
        self.blocks.iter().fold(x, |x, blk| blk.forward(x, mask.clone()))
    }

    /// Mean cross-entropy of predicting every next item of `seqs` (each at least two items).
    pub fn loss(&self, seqs: &[&[ItemId]]) -> Tensor<1> {
        let batch = NextItems::new(seqs, self.max_len, &self.device());
        let f = self.forward(&batch.input); // [B, L, d]
        let [b, l, d] = f.dims();
        let logits = f.reshape([b * l, d]).matmul(self.item_matrix().transpose()); // [B·L, N]
        cross_entropy(logits, &batch.targets)
    }

    /// The scores of every catalogue item after each history (the representation of the last position).
    ///
    /// # Shapes
    /// - output: `[B, N]`
    pub fn scores(&self, histories: &[&[ItemId]]) -> Tensor<2> {
        let device = self.device();
        let input = RightPadded::new(histories, self.max_len, &device);
        let f = self.forward(&input); // [B, L, d]
        let [b, _, d] = f.dims();
        let last = f.gather(1, input.last_index(d, &device)).reshape([b, d]); // [B, d]
        last.matmul(self.item_matrix().transpose()) // [B, N]
    }
}
