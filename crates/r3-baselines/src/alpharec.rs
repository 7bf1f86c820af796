//! AlphaRec: "Language Representations Can be What Recommenders Need: Findings and Potentials" (Sheng et al.,
//! ICLR 2025; official code `LehengTHU/AlphaRec`, `models/General/AlphaRec.py`).
//!
//! Every item is represented by a frozen language representation `z_i` (here the mean-pooled final hidden states
//! of its title from the backbone LLM, computed once by `latentr3 baseline train`); a user by the mean of its
//! train items' representations. A two-layer MLP with LeakyReLU maps both into the behaviour space,
//! `e⁰ = W₂ · LeakyReLU(W₁ z + b₁) + b₂`, then LightGCN propagates them over the user–item graph of the train
//! split, `E^{k+1} = Â E^k` with `Â = D^{-1/2} A D^{-1/2}`, and averages the layers `e = mean(e⁰ … e^K)`. The loss is
//! InfoNCE with cosine similarity and temperature τ against sampled negatives,
//! `−log exp(s(u, i⁺)/τ) / (exp(s(u, i⁺)/τ) + Σ_j exp(s(u, j)/τ))`, and items are ranked by the cosine `s(u, i)`.
//!
//! NOTE (the inductive rule): the official code scores only users that are nodes of the train graph. Our rows are
//! scored from their own history (the items the LLM prompt lists, as for the other baselines), so a row is folded
//! into the graph as a new user node `v` whose neighbours are its distinct history items `H`, without changing the
//! items' embeddings: `e_v⁰ = MLP(mean_{i∈H} z_i)` (the official user representation),
//! `e_v^{k+1} = Σ_{i∈H} e_i^k / √(|H| · d_i)` (the row of `Â` the node would have, with `d_i` the item's train degree,
//! at least 1), `e_v = mean(e_v⁰ … e_v^K)`. For a train user whose history is its train items this is exactly its
//! node's embedding.
//!
//! NOTE (masking): the official evaluator ranks only items the user has not interacted with (its train items are
//! masked). With `mask_history` (the default) a row's history items get the score [`MASKED`] accordingly; without
//! it every item is ranked as for the other baselines (see `eval.rs`), and a collaborative-filtering model, whose
//! user vector is built from the history, then ranks the history items themselves first.

use std::sync::OnceLock;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use r3_data::{ItemId, SplitMix64};

use crate::data::Sequences;
use crate::error::{Error, Result};

/// The first-layer weight count that the official code keeps for every language model (`multiplier_dict`:
/// 768 · 8 · 768 = 1536 · 2 · 1536 = 3072 · ½ · 3072 ≈ 4096 · 9/32 · 4096 = 4,718,592).
pub const MLP_WEIGHTS: usize = 4_718_592;

/// The score of a masked history item: below every cosine.
pub const MASKED: f32 = -1.0e9;

/// PyTorch's default LeakyReLU slope (the official `nn.LeakyReLU()`).
pub const LEAKY_SLOPE: f64 = 0.01;

/// Configuration of [`AlphaRec`].
#[derive(Config, Debug)]
pub struct AlphaRecConfig {
    /// Catalogue size (item ids `0..n_items`).
    pub n_items: usize,
    /// Width of the language representations.
    pub d_lm: usize,
    /// Size of the behaviour space. Official `--hidden_size` 64.
    #[config(default = 64)]
    pub hidden: usize,
    /// Width of the MLP's hidden layer; 0 = the official rule `MLP_WEIGHTS / d_lm` (the same first-layer
    /// parameter count for every language model: 8192 for SmolLM2-135M's 576).
    #[config(default = 0)]
    pub mlp_hidden: usize,
    /// LightGCN layers. Official README `--n_layers 2`.
    #[config(default = 2)]
    pub n_layers: usize,
    /// InfoNCE temperature τ. Official README `--tau 0.15`.
    #[config(default = 0.15)]
    pub tau: f64,
    /// Sampled negatives per positive. Official README `--neg_sample 256`.
    #[config(default = 256)]
    pub n_negatives: usize,
    /// Rank a row's history items last (the official evaluator masks the user's train items).
    #[config(default = true)]
    pub mask_history: bool,
}

impl AlphaRecConfig {
    /// The width of the MLP's hidden layer (resolving 0 to the official rule).
    pub fn resolved_mlp_hidden(&self) -> usize {
        if self.mlp_hidden > 0 { self.mlp_hidden } else { (MLP_WEIGHTS / self.d_lm.max(1)).max(1) }
    }

    /// Initialises the model from the language representations `language` (`n_items · d_lm` values, row `i` =
    /// item `i`) and the train graph of `seqs`.
    ///
    /// # Errors
    /// [`Error::Data`] when `language` has the wrong size or the train split has no user.
    pub fn init(&self, language: &[f32], seqs: &Sequences, device: &Device) -> Result<AlphaRec> {
        if language.len() != self.n_items * self.d_lm || self.d_lm == 0 {
            return Err(Error::Data {
                message: format!(
                    "AlphaRec: {} language values for {} items of width {} (recompute text_embeddings.safetensors \
                     for this catalogue)",
                    language.len(),
                    self.n_items,
                    self.d_lm
                ),
            });
        }
        let graph = Graph::from_sequences(seqs);
        if graph.n_users() == 0 {
            return Err(Error::Data { message: "AlphaRec: the train split has no user to build the graph".into() });
        }
        let u = graph.n_users();
        let n = self.n_items;
        let mut user_language = vec![0f32; u * self.d_lm];
        for (row, items) in graph.user_items.iter().enumerate() {
            let w = 1.0 / items.len() as f32;
            for &i in items {
                let z = &language[i as usize * self.d_lm..(i as usize + 1) * self.d_lm];
                for (acc, &x) in user_language[row * self.d_lm..(row + 1) * self.d_lm].iter_mut().zip(z) {
                    *acc += w * x;
                }
            }
        }
        let mut model = self.init_shell(u, device);
        let frozen = |data: Vec<f32>, shape: [usize; 2]| {
            Param::from_tensor(Tensor::<2>::from_data(TensorData::new(data, shape), device)).set_require_grad(false)
        };
        model.language = frozen(language.to_vec(), [n, self.d_lm]);
        model.user_language = frozen(user_language, [u, self.d_lm]);
        model.adjacency = frozen(graph.user_item_weights(n), [u, n]);
        model.item_degree = frozen(graph.item_degrees(n).into_iter().map(|d| d as f32).collect(), [1, n]);
        Ok(model)
    }

    /// A model of `n_users` graph users with zero language representations and an empty graph: the shape a saved
    /// record is loaded into ([`crate::store::load`]).
    pub fn init_shell(&self, n_users: usize, device: &Device) -> AlphaRec {
        let h = self.resolved_mlp_hidden();
        // PyTorch's nn.Linear initialisation (Kaiming-uniform weights, uniform biases), as the official MLP.
        let torch = Initializer::KaimingUniform { gain: 1.0 / 3f64.sqrt(), fan_out_only: false };
        let zeros = |shape: [usize; 2]| Param::from_tensor(Tensor::<2>::zeros(shape, device)).set_require_grad(false);
        AlphaRec {
            mlp_in: LinearConfig::new(self.d_lm, h).with_initializer(torch.clone()).init(device),
            mlp_out: LinearConfig::new(h, self.hidden).with_initializer(torch).init(device),
            language: zeros([self.n_items, self.d_lm]),
            user_language: zeros([n_users, self.d_lm]),
            adjacency: zeros([n_users, self.n_items]),
            item_degree: zeros([1, self.n_items]),
            n_items: self.n_items,
            n_layers: self.n_layers,
            tau: self.tau,
            n_negatives: self.n_negatives,
            mask_history: self.mask_history,
            edges: OnceLock::new(),
        }
    }
}

/// The user–item graph of the train split: users in the order of [`Sequences::seqs`] (ascending user id), each
/// with its distinct train items.
///
/// NOTE: an item a user bought twice is one edge (the official `csr_matrix` would weigh it 2; it does not occur in
/// the official 5-core data).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The distinct items of each user, ascending.
    pub user_items: Vec<Vec<ItemId>>,
}

impl Graph {
    /// The graph of the train sequences.
    pub fn from_sequences(seqs: &Sequences) -> Self {
        let user_items = seqs
            .seqs
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut v = s.clone();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        Graph { user_items }
    }

    /// The number of user nodes.
    pub fn n_users(&self) -> usize {
        self.user_items.len()
    }

    /// The number of edges (distinct user–item pairs), the official `n_observations`.
    pub fn n_edges(&self) -> usize {
        self.user_items.iter().map(Vec::len).sum()
    }

    /// The degree of each of `n_items` items.
    pub fn item_degrees(&self, n_items: usize) -> Vec<usize> {
        let mut d = vec![0; n_items];
        for items in &self.user_items {
            for &i in items {
                d[i as usize] += 1;
            }
        }
        d
    }

    /// The user–item block of LightGCN's normalised adjacency `Â = D^{-1/2} A D^{-1/2}`, dense `[U, N]` row-major:
    /// `1 / √(d_u · d_i)` on an edge, 0 elsewhere (the item–user block is its transpose; the diagonal blocks are 0).
    pub fn user_item_weights(&self, n_items: usize) -> Vec<f32> {
        let deg = self.item_degrees(n_items);
        let mut w = vec![0f32; self.n_users() * n_items];
        for (u, items) in self.user_items.iter().enumerate() {
            for &i in items {
                w[u * n_items + i as usize] = (1.0 / ((items.len() * deg[i as usize]) as f64).sqrt()) as f32;
            }
        }
        w
    }

    /// One epoch of training examples as the official `TrainDataset` draws them: `n_edges` samples, sample `k`
    /// of user `k mod U`, each `[user, positive, negatives...]` with a positive drawn uniformly from the user's
    /// items and `n_negatives` negatives drawn uniformly (with replacement) from the items the user has not.
    ///
    /// NOTE: users are encoded as `ItemId`s (the index of the user node) to share the example type of the other
    /// baselines.
    pub fn sample_examples(&self, n_items: usize, n_negatives: usize, rng: &mut SplitMix64) -> Vec<Vec<ItemId>> {
        let u = self.n_users();
        if u == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.n_edges());
        for k in 0..self.n_edges() {
            let user = k % u;
            let items = &self.user_items[user];
            let mut ex = Vec::with_capacity(2 + n_negatives);
            ex.push(user as ItemId);
            ex.push(items[rng.below(items.len())]);
            let all_owned = items.len() >= n_items;
            while ex.len() < 2 + n_negatives {
                let j = rng.below(n_items) as ItemId;
                if all_owned || items.binary_search(&j).is_err() {
                    ex.push(j);
                }
            }
            out.push(ex);
        }
        out
    }
}

/// LightGCN propagation over a bipartite graph: from the layer-0 user and item embeddings and the user–item block
/// `r` of `Â`, every layer `k = 0..=n_layers` (`users_{k+1} = r · items_k`, `items_{k+1} = rᵀ · users_k`).
///
/// # Shapes
/// - users: `[U, h]`, items: `[N, h]`, r: `[U, N]`
/// - output: `n_layers + 1` layers of (`[U, h]`, `[N, h]`)
pub fn lightgcn_layers(
    users: Tensor<2>,
    items: Tensor<2>,
    r: Tensor<2>,
    n_layers: usize,
) -> Vec<(Tensor<2>, Tensor<2>)> {
    let rt = r.clone().transpose(); // [N, U]
    let mut layers = vec![(users, items)];
    for _ in 0..n_layers {
        let (u, i) = layers[layers.len() - 1].clone();
        layers.push((r.clone().matmul(i), rt.clone().matmul(u))); // [U, h], [N, h]
    }
    layers
}

/// The mean of LightGCN's layers (the final embeddings).
///
/// # Shapes
/// - output: (`[U, h]`, `[N, h]`)
pub fn lightgcn(users: Tensor<2>, items: Tensor<2>, r: Tensor<2>, n_layers: usize) -> (Tensor<2>, Tensor<2>) {
    let layers = lightgcn_layers(users, items, r, n_layers);
    let k = layers.len() as f64;
    let (us, is): (Vec<_>, Vec<_>) = layers.into_iter().unzip();
    (mean_of(us, k), mean_of(is, k))
}

/// `LeakyReLU(x) = s·x + (1 − s)·ReLU(x)` with PyTorch's slope `s`: burn's `leaky_relu` written with ReLU, whose
/// backward is one fused pass. burn's autodiff has no LeakyReLU op of its own: it records `leaky_relu` as a
/// comparison and a `mask_where`, whose forward and backward took an eighth of an AlphaRec training step on the
/// `[U + N, 8192]` hidden layer (flex).
fn leaky_relu(x: Tensor<2>) -> Tensor<2> {
    relu(x.clone()).mul_scalar(1.0 - LEAKY_SLOPE) + x.mul_scalar(LEAKY_SLOPE)
}

fn mean_of(xs: Vec<Tensor<2>>, k: f64) -> Tensor<2> {
    xs.into_iter().reduce(|a, b| a + b).expect("at least layer 0").div_scalar(k)
}

/// Rows scaled to unit length (`F.normalize`, ε = 1e-12).
///
/// # Shapes
/// - x, output: `[M, h]`
fn normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12); // [M, 1]
    x.div(norm)
}

/// AlphaRec (see the module docs).
#[derive(Module, Debug)]
pub struct AlphaRec {
    mlp_in: Linear,
    mlp_out: Linear,
    /// Frozen `[N, d_lm]` item language representations.
    language: Param<Tensor<2>>,
    /// Frozen `[U, d_lm]` user language representations (mean of the user's train items).
    user_language: Param<Tensor<2>>,
    /// Frozen `[U, N]` user–item block of `Â`.
    adjacency: Param<Tensor<2>>,
    /// Frozen `[1, N]` train degree of each item.
    item_degree: Param<Tensor<2>>,
    n_items: usize,
    n_layers: usize,
    tau: f64,
    n_negatives: usize,
    mask_history: bool,
    /// The train edges of `adjacency` for [`AlphaRec::layer0`], read from it on first use (after `init` or after a
    /// record is loaded into a fresh [`AlphaRecConfig::init_shell`]) instead of on every training step. Not part of
    /// the record; `adjacency` is frozen, so the cache cannot go stale.
    #[module(skip)]
    edges: OnceLock<UserEdges>,
}

/// For each train edge: its user, its item, and the user's mean weight `1 / |I_u|`.
#[derive(Clone, Debug, Default)]
struct UserEdges {
    users: Vec<i64>,
    items: Vec<i64>,
    weights: Vec<f32>,
}

impl AlphaRec {
    /// The catalogue size.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// The number of graph users.
    pub fn n_users(&self) -> usize {
        self.user_language.shape().dims::<2>()[0]
    }

    /// The official user language representations `[U, d_lm]` (the mean of each user's train items), kept in the
    /// record; [`AlphaRec::layer0`] computes their MLP image through the items' first layer.
    pub fn user_language(&self) -> Tensor<2> {
        self.user_language.val()
    }

    /// The width of the language representations.
    pub fn d_lm(&self) -> usize {
        self.language.shape().dims::<2>()[1]
    }

    /// Sampled negatives per positive.
    pub fn n_negatives(&self) -> usize {
        self.n_negatives
    }

    fn device(&self) -> Device {
        self.language.val().device()
    }

    /// The MLP from the language space into the behaviour space.
    ///
    /// # Shapes
    /// - z: `[M, d_lm]`
    /// - output: `[M, h]`
    pub fn project(&self, z: Tensor<2>) -> Tensor<2> {
        self.head(self.mlp_in.forward(z)) // [M, h]
    }

    /// The MLP after its first layer: `W₂ · LeakyReLU(x) + b₂`.
    ///
    /// # Shapes
    /// - x: `[M, H]`
    /// - output: `[M, h]`
    fn head(&self, x: Tensor<2>) -> Tensor<2> {
        self.mlp_out.forward(leaky_relu(x))
    }

    /// The layer-0 embeddings of the graph users and the items, `e⁰ = MLP(z)` with a user's `z` the mean of its
    /// train items' language representations.
    ///
    /// The MLP's first layer is affine and a user's weights sum to 1, so `W₁ mean_i(z_i) + b₁ = mean_i(W₁ z_i + b₁)`:
    /// the users' first layer is the mean of their items' first layers (a gather and a scatter-add over the
    /// `E` train edges) instead of a second `[U, d_lm] × [d_lm, H]` product. Equal up to rounding to
    /// `project(user_language)`, the official `mlp(init_user_cf_embeds)`; it skips 27 % (CDs: 2,171 users beside
    /// 5,841 items) to 42 % (Industrial: 2,625 beside 3,686) of the first layer's FLOPs. The price is memory: the
    /// gathered messages are an `[E, H]` transient (E = train edges; 350 MB for CDs' 10.7k edges at H = 8192) where
    /// the official product holds `[U, H]`.
    ///
    /// # Shapes
    /// - output: (`[U, h]`, `[N, h]`)
    pub fn layer0(&self) -> (Tensor<2>, Tensor<2>) {
        let device = self.device();
        let items = self.mlp_in.forward(self.language.val()); // [N, H]
        let edges = self.edges.get_or_init(|| self.user_edges());
        let e = edges.weights.len();
        let ids = |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [e]), &device);
        let weights = Tensor::<2>::from_data(TensorData::new(edges.weights.clone(), [e, 1]), &device); // [E, 1]
        let messages = items.clone().select(0, ids(&edges.items)) * weights; // [E, H]
        let [_, h] = items.dims();
        let user_hidden = Tensor::<2>::zeros([self.n_users(), h], &device).select_assign(
            0,
            ids(&edges.users),
            messages,
            IndexingUpdateOp::Add,
        ); // [U, H]
        (self.head(user_hidden), self.head(items))
    }

    /// The train edges, read from the adjacency's non-zeros.
    fn user_edges(&self) -> UserEdges {
        let [u, n] = self.adjacency.val().dims();
        let adjacency: Vec<f32> =
            self.adjacency.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 adjacency");
        let UserEdges { mut users, mut items, mut weights } = UserEdges::default();
        for (user, row) in adjacency.chunks_exact(n.max(1)).take(u).enumerate() {
            let start = items.len();
            items.extend(row.iter().enumerate().filter(|(_, w)| **w != 0.0).map(|(i, _)| i as i64));
            let count = items.len() - start;
            users.extend(std::iter::repeat_n(user as i64, count));
            weights.extend(std::iter::repeat_n(1.0 / count.max(1) as f32, count));
        }
        UserEdges { users, items, weights }
    }

    /// Every LightGCN layer of the graph users and the items.
    fn layers(&self) -> Vec<(Tensor<2>, Tensor<2>)> {
        let (users, items) = self.layer0(); // [U, h], [N, h]
        lightgcn_layers(users, items, self.adjacency.val(), self.n_layers)
    }

    /// InfoNCE of a batch of examples `[user, positive, negatives...]` (from [`Graph::sample_examples`]).
    pub fn loss(&self, examples: &[&[ItemId]]) -> Tensor<1> {
        let device = self.device();
        let b = examples.len();
        let k = examples.iter().map(|e| e.len().saturating_sub(2)).min().unwrap_or(0);
        let layers = self.layers();
        let n = layers.len() as f64;
        let (us, is): (Vec<_>, Vec<_>) = layers.into_iter().unzip();
        let (users, items) = (mean_of(us, n), mean_of(is, n)); // [U, h], [N, h]
        let h = items.dims()[1];
        let ids = |v: Vec<i64>| {
            let len = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [len]), &device)
        };
        let u = normalize(users.select(0, ids(examples.iter().map(|e| i64::from(e[0])).collect()))); // [B, h]
        let p = normalize(items.clone().select(0, ids(examples.iter().map(|e| i64::from(e[1])).collect()))); // [B, h]
        let negs: Vec<i64> = examples.iter().flat_map(|e| e[2..2 + k].iter().map(|&j| i64::from(j))).collect();
        let pos = (u.clone() * p).sum_dim(1); // [B, 1]
        let logits = if k > 0 {
            let q = normalize(items.select(0, ids(negs))).reshape([b, k, h]); // [B, K, h]
            let neg = q.matmul(u.unsqueeze_dim::<3>(2)).reshape([b, k]); // [B, K]
            Tensor::cat(vec![pos, neg], 1) // [B, 1 + K]
        } else {
            pos
        };
        let logp = log_softmax(logits.div_scalar(self.tau), 1); // [B, 1 + K]
        logp.narrow(1, 0, 1).mean().neg()
    }

    /// The item side of scoring, computed once for many batches of histories: every LightGCN layer of the
    /// items, the final normalised item embeddings and the items' train degrees.
    pub fn prepare(&self) -> Prepared {
        let layers = self.layers();
        let k = layers.len() as f64;
        let items: Vec<Tensor<2>> = layers.into_iter().map(|(_, i)| i).collect();
        let degree: Vec<f32> =
            self.item_degree.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 degrees");
        let item_final = normalize(mean_of(items.clone(), k)); // [N, h]
        Prepared { item_layers: items, item_final, degree }
    }

    /// The cosine scores of every catalogue item for each history, folded into the graph by the inductive rule
    /// of the module docs.
    ///
    /// # Shapes
    /// - output: `[B, N]`
    pub fn scores(&self, histories: &[&[ItemId]]) -> Tensor<2> {
        self.scores_with(&self.prepare(), histories)
    }

    /// As [`AlphaRec::scores`] with the item side from [`AlphaRec::prepare`].
    ///
    /// # Shapes
    /// - output: `[B, N]`
    pub fn scores_with(&self, prepared: &Prepared, histories: &[&[ItemId]]) -> Tensor<2> {
        let device = self.device();
        let (b, n) = (histories.len(), self.n_items);
        let mut mean = vec![0f32; b * n];
        let mut fold = vec![0f32; b * n];
        let mut mask = vec![0f32; b * n];
        for (r, h) in histories.iter().enumerate() {
            let mut items: Vec<ItemId> = h.iter().copied().filter(|&i| (i as usize) < n).collect();
            items.sort_unstable();
            items.dedup();
            for &i in &items {
                let i = i as usize;
                mean[r * n + i] = 1.0 / items.len() as f32;
                fold[r * n + i] = 1.0 / (items.len() as f32 * prepared.degree[i].max(1.0)).sqrt();
                if self.mask_history {
                    mask[r * n + i] = MASKED;
                }
            }
        }
        let mean = Tensor::<2>::from_data(TensorData::new(mean, [b, n]), &device); // [B, N]
        let fold = Tensor::<2>::from_data(TensorData::new(fold, [b, n]), &device); // [B, N]
        let layers = &prepared.item_layers;
        let mut user = vec![self.project(mean.matmul(self.language.val()))]; // [B, h]
        for i in &layers[..layers.len() - 1] {
            user.push(fold.clone().matmul(i.clone())); // [B, h]
        }
        let user = normalize(mean_of(user, layers.len() as f64)); // [B, h]
        let scores = user.matmul(prepared.item_final.clone().transpose()); // [B, N]
        if self.mask_history { scores + Tensor::<2>::from_data(TensorData::new(mask, [b, n]), &device) } else { scores }
    }
}

/// The item side of [`AlphaRec`]'s scores ([`AlphaRec::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    item_layers: Vec<Tensor<2>>,
    item_final: Tensor<2>,
    degree: Vec<f32>,
}
