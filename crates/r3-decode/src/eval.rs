//! Recommending with a LatentR³ model: prompts in, ranked catalogue titles out (docs/method.md §5 `[CODE]`; the
//! inference of the official `evaluate.py`).
//!
//! For a batch of users, [`Recommender::recommend`]
//! 1. encodes each history as the training prompt (the model's [`Encoder`]: template, BOS, `N` `<|Thought|>`
//!    tokens when the model reasons, none for BIGRec or an untuned "Base" model);
//! 2. lays the prompts out left-padded ([`SftBatch`] with `T = 0`);
//! 3. runs pass 1 over the prompts once ([`LatentModel::prefix`]: the KV cache, and the latents
//!    `r_1..r_N` computed before any token is decoded), then the latents over that cache
//!    ([`LatentModel::decode_start`]), whose last final hidden state scores the first generated token;
//! 4. hands the cache and those logits to the constrained beam search ([`BeamSearch::search`]), which copies the
//!    prompt's cache rows to the beams itself;
//! 5. maps every finished path back to its catalogue title and item ids through the [`CatalogueTrie`].
//!
//! A "Base" model (the untuned LLM of Table 1) is `LatentModel::new(backbone, None, vocab_size, 0)` with an
//! encoder of `n_thought = 0`. Users are independent: a user's recommendations do not depend on the other users
//! of its batch (up to floating-point rounding of padded rows; tested with batch sizes 1 and 4).

use burn::tensor::Tensor;
use r3_data::{Catalogue, EncodedSample, Encoder, SftBatch};
use r3_latent::LatentModel;

use crate::beam::{BeamSearch, BeamSearchConfig, BeamSearchInput, BeamSearchOutput, Hypothesis};
use crate::cot::{ChainOfThought, stops_at_empty_line};
use crate::error::{Error, Result};
use crate::prefix::SharedPrefix;
use crate::start::DecodeStart;
use crate::stream::{StreamInput, StreamStats};
use crate::trie::Trie;

/// The item trie of a catalogue with the titles behind its item indices (item index = catalogue item id).
#[derive(Clone, Debug)]
pub struct CatalogueTrie {
    trie: Trie,
    titles: Vec<String>,
}

impl CatalogueTrie {
    /// Builds the trie over `encoder.encode_target(title)` of every catalogue title, in id order (the same ids as
    /// the SFT labels, docs/method.md §2), so that a decoded path's item index is its catalogue item id.
    ///
    /// # Errors
    /// [`Error::EmptyTrie`] for an empty catalogue.
    pub fn new(encoder: &Encoder, catalogue: &Catalogue) -> Result<Self> {
        let titles = catalogue.titles().to_vec();
        let targets: Vec<Vec<u32>> = titles.iter().map(|t| encoder.encode_target(t)).collect();
        let trie = Trie::new(&targets)?;
        tracing::debug!(items = trie.num_items(), paths = trie.num_paths(), nodes = trie.num_nodes(), "catalogue trie");
        Ok(CatalogueTrie { trie, titles })
    }

    /// The trie (item index = catalogue item id).
    pub fn trie(&self) -> &Trie {
        &self.trie
    }

    /// The title of catalogue item `item`, if it exists.
    pub fn title(&self, item: usize) -> Option<&str> {
        self.titles.get(item).map(String::as_str)
    }

    /// The number of catalogue items (duplicated titles counted once per id).
    pub fn len(&self) -> usize {
        self.titles.len()
    }

    /// Whether the catalogue has no items (never true for a built trie).
    pub fn is_empty(&self) -> bool {
        self.titles.is_empty()
    }
}

/// One recommended item.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommended {
    /// The catalogue title; for a path cut at `max_new_tokens` (not a catalogue title), the decoded tokens.
    pub title: String,
    /// Every catalogue item id whose title encodes to this path, ascending (several ids may share a title);
    /// empty for a cut path.
    pub item_ids: Vec<u32>,
    /// The beam score: summed log-probs divided by `len(tokens)^length_penalty` (HF's sequence score).
    pub score: f32,
    /// The generated tokens, EOS included.
    pub tokens: Vec<u32>,
}

impl Recommended {
    /// The prediction text as the official inference script stores it: the decoded output without EOS,
    /// `"` + title + `"` + newline.
    pub fn predict_text(&self) -> String {
        if self.item_ids.is_empty() { self.title.clone() } else { format!("\"{}\"\n", self.title) }
    }
}

/// The inputs of [`Recommender::new`].
#[derive(Clone, Copy, Debug)]
pub struct RecommenderInput<'a> {
    /// The model (a trained LatentR³ or BIGRec model, or an untuned "Base" backbone with `n_latent = 0`).
    pub model: &'a LatentModel,
    /// The prompt encoder the model was trained with (its `n_thought` must be the model's `n_latent`).
    pub encoder: &'a Encoder,
    /// The catalogue's item trie, built with the same encoder.
    pub items: &'a CatalogueTrie,
    /// The decoding: [`BeamSearchConfig::new`] (BIGRec, length penalty 1) or [`BeamSearchConfig::d3`]; its
    /// `eos_id` must be the encoder's EOS.
    pub search: &'a BeamSearchConfig,
}

/// The outputs of [`Recommender::recommend_encoded`].
#[derive(Clone, Debug)]
pub struct RecommendOutput {
    /// Per user, the recommendations best first (at most `num_return_sequences`).
    pub users: Vec<Vec<Recommended>>,
    /// The number of beam-search steps (generated positions).
    pub steps: usize,
    /// Per user, the chain-of-thought reasoning tokens ([`Recommender::recommend_cot_encoded`]; empty for plain
    /// decoding).
    pub reasoning: Vec<Vec<u32>>,
}

/// A model, its encoder, the catalogue trie and a validated beam search: recommends for batches of users.
#[derive(Debug)]
pub struct Recommender<'a> {
    model: &'a LatentModel,
    encoder: &'a Encoder,
    items: &'a CatalogueTrie,
    search: BeamSearch,
    /// The prompt prefix computed once ([`Recommender::with_shared_prefix`]).
    prefix: Option<SharedPrefix>,
}

impl<'a> Recommender<'a> {
    /// Checks that the parts fit together and validates the search.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key when the encoder's thought count differs from the model's latent count,
    /// the thought ids differ, the search's EOS is not the encoder's, the trie holds a token outside the model's
    /// vocabulary, or the search settings are invalid ([`BeamSearchConfig::init`]).
    pub fn new(input: RecommenderInput<'a>) -> Result<Self> {
        let RecommenderInput { model, encoder, items, search } = input;
        let bad = |key, value: String, hint| Err(Error::Config { key, value, hint });
        if encoder.n_thought() != model.n_latent {
            return bad(
                "n_thought",
                format!("{} (the model has n_latent {})", encoder.n_thought(), model.n_latent),
                "encode prompts with the model's own encoder (latent.json of the model folder): one <|Thought|> \
                 token per latent token, none for BIGRec or a Base model",
            );
        }
        if model.n_latent > 0 && encoder.thought_id().map(|t| t as usize) != Some(model.thought_id) {
            return bad(
                "thought_id",
                format!("{:?} in the encoder, {} in the model", encoder.thought_id(), model.thought_id),
                "the tokenizer's <|Thought|> must be the model's last vocabulary row: load both from one model folder",
            );
        }
        if search.eos_id != encoder.eos_id() {
            return bad(
                "eos_id",
                format!("{} (the encoder's EOS is {})", search.eos_id, encoder.eos_id()),
                "build the search config with the encoder's eos_id: every trie path ends with it",
            );
        }
        let vocab = model.backbone.vocab_size();
        if items.trie().max_token() as usize >= vocab {
            return bad(
                "trie",
                format!("max token {} with a vocabulary of {vocab}", items.trie().max_token()),
                "build the catalogue trie with the model's own encoder",
            );
        }
        Ok(Recommender { model, encoder, items, search: search.init()?, prefix: None })
    }

    /// Computes the keys and values of the longest common token prefix of `samples`' prompts once
    /// ([`SharedPrefix`]); every later start state whose prompts all start with it reuses them
    /// ([`Recommender::decode_start`]). Only for models without latent tokens (BIGRec, Base): LatentRATT reads
    /// the whole prompt's hidden states, which the shared cache does not keep. A prefix shorter than
    /// `min_len` tokens is not worth a separate pass and is not kept.
    pub fn with_shared_prefix(mut self, samples: &[EncodedSample], min_len: usize) -> Self {
        let prompts: Vec<&[u32]> = samples.iter().map(|s| s.prompt_ids.as_slice()).collect();
        let n = SharedPrefix::common_len(&prompts);
        self.prefix = (self.model.n_latent == 0 && n >= min_len.max(1)).then(|| {
            tracing::debug!(tokens = n, prompts = prompts.len(), "shared prompt prefix");
            SharedPrefix::new(&self.model.backbone, prompts[0][..n].to_vec(), &self.model.device())
        });
        self
    }

    /// The shared prompt prefix, if one is kept.
    pub fn shared_prefix(&self) -> Option<&SharedPrefix> {
        self.prefix.as_ref()
    }

    /// The prompt of one history (oldest title first), with the model's thought tokens, without a target.
    pub fn encode(&self, history_titles: &[String]) -> EncodedSample {
        EncodedSample {
            prompt_ids: self.encoder.encode_prompt(history_titles),
            n_thought: self.encoder.n_thought(),
            target_ids: Vec::new(),
        }
    }

    /// The decoder's start state of `samples`: one left-padded batch, pass 1 over the prompts once, the latents
    /// run over the prompt cache, and the logits of the last position (the first generated token).
    ///
    /// # Panics
    /// When `samples` is empty, a prompt is empty or a sample's thought count is not the model's.
    ///
    /// # Shapes
    /// - samples: `B` prompts
    /// - output: a cache of `B` rows of `P + N` positions; logits `[B, V]`
    pub fn decode_start(&self, samples: &[EncodedSample]) -> DecodeStart {
        if let Some(prefix) = &self.prefix
            && self.model.n_latent == 0
            && samples.iter().all(|s| prefix.fits(&s.prompt_ids))
        {
            let prompts: Vec<&[u32]> = samples.iter().map(|s| s.prompt_ids.as_slice()).collect();
            return prefix.start(&self.model.backbone, &prompts, self.encoder.pad_id());
        }
        let thought = self.encoder.thought_id().unwrap_or(self.encoder.pad_id());
        let batch = SftBatch::new(samples, self.model.n_latent, thought, self.encoder.pad_id()); // T = 0
        let prefix = self.model.prefix(&batch);
        let start = self.model.decode_start(&prefix);
        let logits: Tensor<2> = self.model.backbone.logits(start.last_hidden); // [B, V]
        DecodeStart { cache: start.cache, logits }
    }

    /// Recommends for encoded prompts (see [`Recommender::encode`]): one batch, one beam search.
    ///
    /// # Panics
    /// As [`Recommender::decode_start`].
    pub fn recommend_encoded(&self, samples: &[EncodedSample]) -> RecommendOutput {
        let start = self.decode_start(samples);
        let trie = self.items.trie();
        let out = self.search.search(&self.model.backbone, BeamSearchInput { start, trie, guidance: None });
        self.output(out, vec![Vec::new(); samples.len()])
    }

    /// Chain-of-thought decoding ([`crate::cot`], the "CoT" baseline of docs/method.md §6): each prompt gets `cot`'s
    /// reasoning cue and up to `cot.max_tokens` greedy reasoning tokens (stopping at EOS or an empty line), then
    /// the answer cue, and the same constrained beam search runs from that extended prompt (with the model's
    /// latent tokens, if any, right before the item, where training put them). With `cot.max_tokens = 0` this is
    /// exactly [`Recommender::recommend_encoded`]. Users are independent of their batch (left padding).
    ///
    /// # Errors
    /// [`Error::Config`] (`eos_id`) when `cot`'s EOS is not the encoder's.
    ///
    /// # Panics
    /// As [`Recommender::decode_start`].
    pub fn recommend_cot_encoded(&self, samples: &[EncodedSample], cot: &ChainOfThought) -> Result<RecommendOutput> {
        if cot.eos_id != self.encoder.eos_id() {
            return Err(Error::Config {
                key: "eos_id",
                value: format!("{} (the encoder's EOS is {})", cot.eos_id, self.encoder.eos_id()),
                hint: "build the chain of thought with ChainOfThought::new(encoder, n) from the model's own encoder",
            });
        }
        if cot.is_plain() {
            return Ok(self.recommend_encoded(samples));
        }
        let prompts: Vec<Vec<u32>> = samples.iter().map(|s| s.prompt_ids.clone()).collect();
        let reasoning =
            cot.reason(&self.model.backbone, &prompts, self.encoder.pad_id(), stops_at_empty_line(self.encoder));
        let extended: Vec<EncodedSample> = samples
            .iter()
            .zip(&reasoning)
            .map(|(s, r)| EncodedSample {
                prompt_ids: cot.answer_prompt(&s.prompt_ids, r),
                n_thought: s.n_thought,
                target_ids: Vec::new(),
            })
            .collect();
        let start = self.decode_start(&extended);
        let trie = self.items.trie();
        let out = self.search.search(&self.model.backbone, BeamSearchInput { start, trie, guidance: None });
        Ok(self.output(out, reasoning))
    }

    /// Chain-of-thought recommendations for a batch of histories (see [`Recommender::recommend_cot_encoded`]):
    /// per user, the recommendations and the decoded reasoning text.
    ///
    /// # Errors
    /// As [`Recommender::recommend_cot_encoded`].
    ///
    /// # Panics
    /// When `histories` is empty.
    pub fn recommend_cot(
        &self,
        histories: &[&[String]],
        cot: &ChainOfThought,
    ) -> Result<Vec<(Vec<Recommended>, String)>> {
        let samples: Vec<EncodedSample> = histories.iter().map(|h| self.encode(h)).collect();
        let out = self.recommend_cot_encoded(&samples, cot)?;
        Ok(out.users.into_iter().zip(&out.reasoning).map(|(u, r)| (u, self.reasoning_text(r))).collect())
    }

    /// The text of reasoning tokens.
    pub fn reasoning_text(&self, tokens: &[u32]) -> String {
        self.encoder.tokenizer().decode(tokens)
    }

    /// Maps the beam search's hypotheses back to catalogue titles and item ids.
    fn output(&self, out: BeamSearchOutput, reasoning: Vec<Vec<u32>>) -> RecommendOutput {
        let users = out.hypotheses.into_iter().map(|hyps| self.recommended(hyps)).collect();
        RecommendOutput { users, steps: out.steps, reasoning }
    }

    /// Maps one user's hypotheses back to catalogue titles and item ids (a path cut at `max_new_tokens` keeps
    /// its decoded text and no id).
    pub fn recommended(&self, hyps: Vec<Hypothesis>) -> Vec<Recommended> {
        let trie = self.items.trie();
        hyps.into_iter()
            .map(|h| {
                let node = trie.walk(&h.tokens);
                let item_ids = node.map_or(Vec::new(), |n| trie.items_at(n).to_vec());
                let title = match h.item.and_then(|i| self.items.title(i)) {
                    Some(t) => t.to_string(),
                    None => {
                        let body = h.tokens.strip_suffix(&[self.encoder.eos_id()]).unwrap_or(&h.tokens);
                        self.encoder.tokenizer().decode(body)
                    }
                };
                Recommended { title, item_ids, score: h.score, tokens: h.tokens }
            })
            .collect()
    }

    /// Streams encoded prompts through a batch of at most `width` users ([`BeamSearch::search_stream`]): users
    /// whose search ended leave the batch, the next ones join it. `done(u, recs)` receives user `u`'s
    /// recommendations (an index into `samples`) as soon as they are final; users end in any order. A user's
    /// recommendations are those of [`Recommender::recommend_encoded`] on it alone, up to floating-point rounding.
    ///
    /// # Panics
    /// When `width` is 0, or as [`Recommender::decode_start`].
    pub fn recommend_stream(
        &self,
        samples: &[EncodedSample],
        width: usize,
        done: &mut (dyn FnMut(usize, Vec<Recommended>) + Send),
    ) -> StreamStats {
        let mut start = |users: std::ops::Range<usize>| self.decode_start(&samples[users]);
        let mut emit = |u: usize, hyps: Vec<Hypothesis>| done(u, self.recommended(hyps));
        let input = StreamInput {
            users: samples.len(),
            width,
            trie: self.items.trie(),
            guidance: None,
            start: &mut start,
            done: &mut emit,
        };
        self.search.search_stream(&self.model.backbone, input)
    }

    /// Recommends for a batch of histories (each oldest title first; titles outside the catalogue are used as
    /// free text): the best `num_return_sequences` catalogue items per user, best first.
    ///
    /// # Panics
    /// When `histories` is empty.
    pub fn recommend(&self, histories: &[&[String]]) -> Vec<Vec<Recommended>> {
        let samples: Vec<EncodedSample> = histories.iter().map(|h| self.encode(h)).collect();
        self.recommend_encoded(&samples).users
    }

    /// The beam search settings.
    pub fn search_config(&self) -> &BeamSearchConfig {
        self.search.config()
    }

    /// The model.
    pub fn model(&self) -> &LatentModel {
        self.model
    }

    /// The prompt encoder.
    pub fn encoder(&self) -> &Encoder {
        self.encoder
    }

    /// The catalogue trie.
    pub fn items(&self) -> &CatalogueTrie {
        self.items
    }
}
