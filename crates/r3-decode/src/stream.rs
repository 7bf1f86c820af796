//! Streaming beam search: users enter the running batch as others leave it, so that every decoding step runs
//! over as many live rows as the batch holds, instead of fixed batches that shrink until their slowest user ends.
//!
//! The running batch is one key/value cache whose rows are the running beams of up to `width` users. A step
//! reads the log-probs of every allowed continuation (the one host read the trie mask needs), advances every
//! user by one token ([`BeamSearch`]'s step, HF's semantics, each user at its own generated length), sends the
//! users that can no longer improve to `done`, and feeds the kept beams' tokens through the model with their
//! cache rows selected (rows of finished users are dropped: the batch is compacted). When at least a quarter of
//! the width is free, the next users' start states are computed (one prefill) and joined to the batch.
//!
//! Rows of different lengths share the cache through left padding: a row of `n` real positions in a cache of
//! `L` has `L − n` masked positions in front (and possibly masked positions inside, when its start state
//! shares a prompt prefix, see [`crate::Recommender::with_shared_prefix`]). Positions come from the padding mask (`transformers`' rule for
//! left-padded batches, [`r3_backbone::Backbone::hidden`]), so a joined row attends and is rotated exactly as
//! alone; only the order of floating-point sums over the masked zeros may differ. Leading columns that are
//! padding in every row are cut after each step, so the cache is as long as its longest live row.

use std::ops::Range;

use burn::tensor::{Bool, Tensor, TensorData};
use r3_backbone::{Backbone, KvCache, LayerKv};

use crate::beam::{BeamSearch, Guidance, Hypothesis, UserState};
use crate::start::{DecodeStart, advance, log_probs_at};
use crate::trie::Trie;

/// The inputs of [`BeamSearch::search_stream`].
pub struct StreamInput<'a> {
    /// The number of users; they enter the batch in order `0..users`.
    pub users: usize,
    /// The most users decoded together (each with up to `num_beams` rows).
    pub width: usize,
    /// The item trie that constrains every step.
    pub trie: &'a Trie,
    /// D3's optional assistant guidance (its scorer is asked for user `u` of `0..users`).
    pub guidance: Option<Guidance<'a>>,
    /// The start states of a range of consecutive users (one row each, in order).
    pub start: &'a mut (dyn FnMut(Range<usize>) -> DecodeStart + Send),
    /// Receives each user's hypotheses (best first) as soon as its search ends; users end in any order.
    pub done: &'a mut (dyn FnMut(usize, Vec<Hypothesis>) + Send),
}

impl std::fmt::Debug for StreamInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamInput").field("users", &self.users).field("width", &self.width).finish_non_exhaustive()
    }
}

/// What a streaming search did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StreamStats {
    /// Decoding steps run (forward passes of one token per row).
    pub steps: usize,
    /// Users decoded.
    pub users: usize,
    /// Generated positions summed over users (each user's own number of steps).
    pub user_steps: usize,
    /// Rows scored, summed over steps (the beams whose log-probs a step read).
    pub live_rows: usize,
    /// Row capacity summed over steps: `width · num_beams` per step.
    pub row_slots: usize,
    /// Prefills run (groups of users that entered the batch).
    pub prefills: usize,
}

impl StreamStats {
    /// The mean number of generated positions per user.
    pub fn steps_per_user(&self) -> f64 {
        self.user_steps as f64 / self.users.max(1) as f64
    }

    /// The share of the row capacity that was live, in `[0, 1]`.
    pub fn live_share(&self) -> f64 {
        self.live_rows as f64 / self.row_slots.max(1) as f64
    }

    /// Adds the counts of another search.
    pub fn add(&mut self, other: &StreamStats) {
        self.steps += other.steps;
        self.users += other.users;
        self.user_steps += other.user_steps;
        self.live_rows += other.live_rows;
        self.row_slots += other.row_slots;
        self.prefills += other.prefills;
    }
}

/// The running batch: the cache of every live row, the logits of its last position, and each row's mask of
/// real positions (kept on the host, so that joining and trimming read nothing back; a row may have masked
/// positions inside, e.g. between a shared prompt prefix and its own suffix).
struct Batch {
    cache: KvCache,
    logits: Tensor<2>,
    real: Vec<Vec<bool>>,
}

impl Batch {
    /// The batch of a start state; reads its padding mask back once.
    fn from_start(start: DecodeStart) -> Batch {
        let DecodeStart { cache, logits } = start;
        let b = logits.dims()[0];
        let l = cache.len();
        let real = match &cache.padding {
            None => vec![vec![true; l]; b],
            Some(p) => {
                let flat: Vec<bool> = p.clone().int().into_data().iter::<i64>().map(|v| v != 0).collect();
                flat.chunks(l).map(<[bool]>::to_vec).collect()
            }
        };
        Batch { cache, logits, real }
    }

    /// The number of rows.
    fn rows(&self) -> usize {
        self.real.len()
    }

    /// Appends the rows of `other` after this batch's, the shorter cache left-padded to the longer.
    fn join(self, other: Batch) -> Batch {
        let l = self.cache.len().max(other.cache.len());
        let (a, b) = (self.left_pad(l), other.left_pad(l));
        let layers = a
            .cache
            .layers
            .into_iter()
            .zip(b.cache.layers)
            .map(|(x, y)| LayerKv { k_t: Tensor::cat(vec![x.k_t, y.k_t], 0), v: Tensor::cat(vec![x.v, y.v], 0) })
            .collect();
        let real = [a.real, b.real].concat();
        let logits = Tensor::cat(vec![a.logits, b.logits], 0); // [R_a + R_b, V]
        let padding = padding_mask(&real, &logits.device());
        Batch { cache: KvCache { layers, padding }, logits, real }
    }

    /// The batch with `l − len` more padding positions in front of every row.
    fn left_pad(mut self, l: usize) -> Batch {
        let n = l - self.cache.len();
        if n == 0 {
            return self;
        }
        for layer in &mut self.cache.layers {
            let [b, k, h, _] = layer.k_t.dims();
            let zeros = |shape: [usize; 4]| Tensor::<4>::zeros(shape, (&layer.v.device(), layer.v.dtype()));
            layer.k_t = Tensor::cat(vec![zeros([b, k, h, n]), layer.k_t.clone()], 3); // [B, K, h, l]
            layer.v = Tensor::cat(vec![zeros([b, k, n, h]), layer.v.clone()], 2); // [B, K, l, h]
        }
        for r in &mut self.real {
            r.splice(0..0, std::iter::repeat_n(false, n));
        }
        self.cache.padding = padding_mask(&self.real, &self.logits.device());
        self
    }

    /// One decoding step: keeps the rows `parents` and feeds `tokens`, then cuts the leading columns that are
    /// padding in every kept row.
    fn advance(self, model: &Backbone, parents: &[usize], tokens: &[u32]) -> Batch {
        let real: Vec<Vec<bool>> = parents
            .iter()
            .map(|&p| {
                let mut r = Vec::with_capacity(self.real[p].len() + 1);
                r.extend_from_slice(&self.real[p]);
                r.push(true);
                r
            })
            .collect();
        let (cache, logits) = advance(model, self.cache, parents, tokens);
        Batch { cache, logits, real }.trim()
    }

    /// Cuts the leading columns that are padding in every row; drops the mask when no padding is left.
    fn trim(mut self) -> Batch {
        let cut = self.real.iter().map(|r| r.iter().take_while(|x| !**x).count()).min().unwrap_or(0);
        let dense = self.real.iter().all(|r| r[cut..].iter().all(|x| *x));
        if cut == 0 && !(dense && self.cache.padding.is_some()) {
            return self;
        }
        if cut > 0 {
            let l = self.cache.len() - cut;
            for layer in &mut self.cache.layers {
                layer.k_t = layer.k_t.clone().narrow(3, cut, l); // [B, K, h, l]
                layer.v = layer.v.clone().narrow(2, cut, l); // [B, K, l, h]
            }
            for r in &mut self.real {
                r.drain(..cut);
            }
        }
        self.cache.padding = padding_mask(&self.real, &self.logits.device());
        self
    }
}

/// The padding mask of rows with the real positions `real` (all of one length); `None` without padding.
fn padding_mask(real: &[Vec<bool>], device: &burn::tensor::Device) -> Option<Tensor<2, Bool>> {
    if real.iter().all(|r| r.iter().all(|x| *x)) {
        return None;
    }
    let l = real[0].len();
    let flat: Vec<bool> = real.concat();
    Some(Tensor::from_data(TensorData::new(flat, [real.len(), l]), device))
}

impl BeamSearch {
    /// Streams `input.users` users through a batch of at most `input.width` users: each user's search is
    /// [`BeamSearch::search`]'s, and its hypotheses go to `input.done` when it ends.
    ///
    /// # Panics
    /// When `width` is 0, a start state does not fit the model or has another number of rows than users asked
    /// for, or the trie holds a token outside the vocabulary.
    pub fn search_stream(&self, model: &Backbone, input: StreamInput<'_>) -> StreamStats {
        // Every decoding step is a forward pass and a handful of small tensor operations: on flex the whole
        // search runs on a worker of rayon's pool, so that none of them is handed to the pool from outside.
        let device = model.embed_tokens.weight.val().device();
        r3_backbone::on_pool(&device, || self.stream_on_pool(model, input))
    }

    /// [`BeamSearch::search_stream`] on the calling thread.
    fn stream_on_pool(&self, model: &Backbone, input: StreamInput<'_>) -> StreamStats {
        let StreamInput { users, width, trie, guidance, start, done } = input;
        assert!(width > 0, "a streaming search needs a width of at least one user");
        let v = model.vocab_size();
        let eos = self.config().eos_id;
        assert!(
            trie.max_token() < v as u32 && eos < v as u32,
            "the trie (max token {}) or EOS ({eos}) lies outside the vocabulary of {v}",
            trie.max_token()
        );
        let slots = width * self.config().num_beams;
        let mut stats = StreamStats { users, ..StreamStats::default() };
        let mut live: Vec<UserState> = Vec::new();
        let mut batch: Option<Batch> = None;
        let mut next = 0;
        loop {
            let free = width - live.len();
            if next < users && (live.is_empty() || 4 * free >= width) {
                let range = next..next + free.min(users - next);
                let s = start(range.clone());
                s.check(model);
                assert_eq!(s.batch_size(), range.len(), "one start row per user of {range:?}");
                let offset = batch.as_ref().map_or(0, Batch::rows);
                live.extend(range.clone().enumerate().map(|(i, u)| self.new_user(u, offset + i, trie, guidance)));
                let joined = Batch::from_start(s);
                batch = Some(match batch {
                    Some(b) => b.join(joined),
                    None => joined,
                });
                next = range.end;
                stats.prefills += 1;
            }
            let Some(b) = batch.take() else { break };
            stats.steps += 1;
            stats.row_slots += slots;
            let mut pairs = Vec::new();
            for u in &live {
                stats.live_rows += u.rows();
                self.push_pairs(u, trie, &mut pairs);
            }
            let lps = log_probs_at(b.logits.clone(), &pairs);
            let (mut parents, mut tokens, mut kept) = (Vec::new(), Vec::new(), Vec::with_capacity(live.len()));
            let mut cursor = 0;
            for mut u in live.drain(..) {
                cursor += self.step_user(&mut u, &lps[cursor..], trie, guidance);
                if u.active() {
                    BeamSearch::push_rows(&mut u, &mut parents, &mut tokens);
                    kept.push(u);
                } else {
                    stats.user_steps += u.steps;
                    done(u.user, self.hypotheses(u, trie));
                }
            }
            debug_assert_eq!(cursor, lps.len());
            live = kept;
            if !parents.is_empty() {
                batch = Some(b.advance(model, &parents, &tokens));
            }
        }
        tracing::debug!(?stats, "streaming beam search done");
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::{BeamSearchConfig, BeamSearchInput};
    use r3_backbone::{Arch, BackboneConfig};

    /// Seven users of prompt lengths 1 to 9 streamed through batches of 1, 3 and 7 users get each user's
    /// hypotheses of a search alone (same tokens, scores within 1e-5), users joining a running batch and the
    /// cache's all-padding columns cut; the counts add up.
    #[test]
    fn streaming_equals_each_user_alone() {
        let device = crate::test_device();
        device.seed(5);
        let v = 24;
        let model =
            BackboneConfig::new(Arch::Qwen2, v, 16, 2, 4, 2, 4, 32, 10_000.0, 1e-6, true, true, 64).init(&device);
        let titles: Vec<Vec<u32>> =
            vec![vec![5, 6, 2], vec![5, 7, 8, 2], vec![9, 2], vec![9, 10, 11, 12, 2], vec![13, 5, 2], vec![14, 2]];
        let trie = Trie::new(&titles).unwrap();
        let search = BeamSearchConfig::new(2).with_num_beams(3).with_num_return_sequences(3).init().unwrap();
        let prompts: Vec<Vec<u32>> =
            [9, 1, 4, 7, 2, 8, 3].iter().map(|&n| (0..n).map(|i| 3 + (i * 5 + n) % 20).collect()).collect();
        let start = |p: &[Vec<u32>]| DecodeStart::from_prompts(&model, p, 0, &device);
        let alone: Vec<Vec<Hypothesis>> = prompts
            .iter()
            .map(|p| {
                let input = BeamSearchInput { start: start(std::slice::from_ref(p)), trie: &trie, guidance: None };
                search.search(&model, input).hypotheses.remove(0)
            })
            .collect();
        for width in [1, 3, 7] {
            let mut got: Vec<Option<Vec<Hypothesis>>> = vec![None; prompts.len()];
            let mut first = |users: Range<usize>| start(&prompts[users]);
            let mut done = |u: usize, h: Vec<Hypothesis>| got[u] = Some(h);
            let input = StreamInput {
                users: prompts.len(),
                width,
                trie: &trie,
                guidance: None,
                start: &mut first,
                done: &mut done,
            };
            let stats = search.search_stream(&model, input);
            for (u, want) in alone.iter().enumerate() {
                let got = got[u].as_ref().unwrap();
                let tokens = |h: &[Hypothesis]| h.iter().map(|x| x.tokens.clone()).collect::<Vec<_>>();
                assert_eq!(tokens(got), tokens(want), "width {width}, user {u}");
                let d = got.iter().zip(want).map(|(a, b)| (a.score - b.score).abs()).fold(0f32, f32::max);
                assert!(d < 1e-5, "width {width}, user {u}: maxdiff {d}");
            }
            assert_eq!(stats.users, 7);
            assert!(stats.live_rows <= stats.row_slots && stats.live_rows > 0, "{stats:?}");
            assert!(stats.prefills >= 7usize.div_ceil(width), "{stats:?}");
        }
    }

    /// Joining left-pads the shorter cache and the mask follows the host's padding counts; trimming cuts the
    /// columns that are padding in every row and drops the mask when none is left.
    #[test]
    fn join_and_trim_keep_the_padding_consistent() {
        let device = crate::test_device();
        device.seed(2);
        let model =
            BackboneConfig::new(Arch::Llama, 20, 16, 2, 4, 2, 4, 32, 10_000.0, 1e-6, false, true, 64).init(&device);
        let a = Batch::from_start(DecodeStart::from_prompts(&model, &[vec![3, 4, 5, 6], vec![7]], 0, &device));
        let pads = |b: &Batch| b.real.iter().map(|r| r.iter().take_while(|x| !**x).count()).collect::<Vec<_>>();
        assert_eq!(pads(&a), vec![0, 3]);
        let b = Batch::from_start(DecodeStart::from_prompts(&model, &[vec![8, 9]], 0, &device));
        let j = a.join(b);
        assert_eq!((pads(&j), j.cache.len(), j.cache.batch_size()), (vec![0, 3, 2], 4, 3));
        let mask: Vec<bool> = j.cache.padding.clone().unwrap().into_data().iter::<bool>().collect();
        let want: Vec<bool> = [0, 3, 2].iter().flat_map(|&p| (0..4).map(move |i| i >= p)).collect();
        assert_eq!(mask, want);
        // Keep rows 1 and 2 only: two columns are padding in both and are cut.
        let k = j.advance(&model, &[1, 2], &[10, 11]);
        assert_eq!((pads(&k), k.cache.len()), (vec![1, 0], 3));
        let k = k.advance(&model, &[1], &[12]);
        assert_eq!((pads(&k), k.cache.len()), (vec![0], 4));
        assert!(k.cache.padding.is_none());
    }
}
