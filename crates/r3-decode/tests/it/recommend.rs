//! `Recommender` with the fetched SmolLM2 on real CDs test users: an untuned "Base" model (no thought token) and a
//! LatentR³ model (one latent token, a seeded random LatentRATT). The recommendations are complete catalogue
//! paths whose titles and item ids agree with the catalogue, in score order; a user gets the same recommendations
//! alone (batch size 1) and inside a left-padded batch (size 4, resp. 3); the Base path through
//! `LatentModel::prefix` equals the plain-prompt start `DecodeStart::from_prompts`; streaming 64 users through a
//! batch of 8 with the shared prompt prefix gives each the recommendations of decoding it alone; mismatched parts
//! are refused
//! naming the key.

use burn::tensor::Device;
use r3_backbone::gguf::Gguf;
use r3_backbone::vocab::bpe_vocab;
use r3_backbone::{Backbone, load_gguf};
use r3_data::{Catalogue, Encoder, EncoderConfig, Interaction, Split, Tokenizer, read_split};
use r3_decode::{
    BeamSearchConfig, BeamSearchInput, CatalogueTrie, DecodeStart, Error, Recommended, Recommender, RecommenderInput,
};
use r3_latent::{LatentModel, LatentModelConfig, LatentRattConfig};

use crate::common::test_device;

const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";
/// Scores of the same user alone and in a padded batch differ only by rounding.
const TOLERANCE: f32 = 1e-3;

struct Fixture {
    tokenizer: Tokenizer,
    backbone: Backbone,
    catalogue: Catalogue,
    rows: Vec<Interaction>,
}

fn fixture(n_rows: usize) -> Fixture {
    let path = r3_backbone::fetch::cached_path("smollm2-135m");
    assert!(path.is_file(), "{} is missing: run `latentr3 model fetch smollm2-135m`", path.display());
    let tokenizer = Tokenizer::from_bpe_vocab(bpe_vocab(&Gguf::open(&path).unwrap()).unwrap()).unwrap();
    let backbone = load_gguf(&path, &test_device()).expect("loading SmolLM2").model;
    let data = r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18");
    let catalogue = Catalogue::read(&data.join("info").join(format!("{STEM}.txt"))).unwrap();
    let mut rows = read_split(&Split::Test.path(&data, STEM)).unwrap();
    rows.truncate(n_rows);
    Fixture { tokenizer, backbone, catalogue, rows }
}

fn encoder(tokenizer: &Tokenizer, n_thought: usize) -> Encoder {
    Encoder::new(tokenizer.clone(), EncoderConfig::for_dataset(STEM).unwrap().with_n_thought(n_thought)).unwrap()
}

/// Checks that every recommendation is a catalogue title whose target ids are its tokens, that its item ids are
/// exactly the catalogue ids of that title, that the scores descend and the titles are distinct.
fn check_catalogue(recs: &[Recommended], enc: &Encoder, catalogue: &Catalogue) {
    assert_eq!(recs.len(), 10, "10 returned sequences");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(enc.encode_target(&r.title), r.tokens, "recommendation {i} is its title's trie path");
        assert_eq!(r.item_ids, catalogue.ids_of(&r.title), "recommendation {i}: the ids of {:?}", r.title);
        assert_eq!(r.predict_text(), format!("\"{}\"\n", r.title));
        if i > 0 {
            assert!(recs[i - 1].score >= r.score, "scores descend: {recs:?}");
            assert!(recs[..i].iter().all(|p| p.title != r.title), "distinct titles: {recs:?}");
        }
    }
}

/// Same titles in the same order, scores within the tolerance.
fn check_same(a: &[Recommended], b: &[Recommended], what: &str) {
    let titles = |r: &[Recommended]| r.iter().map(|x| x.title.clone()).collect::<Vec<_>>();
    assert_eq!(titles(a), titles(b), "{what}");
    let max = a.iter().zip(b).map(|(x, y)| (x.score - y.score).abs()).fold(0f32, f32::max);
    assert!(max <= TOLERANCE, "{what}: maxdiff of the scores {max:.2e} > {TOLERANCE}");
    eprintln!("{what}: same 10 titles, maxdiff of the scores {max:.2e}");
}

/// Runs each user alone, then all as one batch, and compares.
fn batch_invariance(rec: &Recommender<'_>, rows: &[Interaction], enc: &Encoder, catalogue: &Catalogue, name: &str) {
    let histories: Vec<&[String]> = rows.iter().map(|r| r.history_titles.as_slice()).collect();
    let t = std::time::Instant::now();
    let batched = rec.recommend(&histories);
    eprintln!("{name}: batch of {}: {:.2} s", rows.len(), t.elapsed().as_secs_f64());
    assert_eq!(batched.len(), rows.len());
    for (u, h) in histories.iter().enumerate() {
        let alone = rec.recommend(std::slice::from_ref(h));
        check_catalogue(&alone[0], enc, catalogue);
        check_same(&alone[0], &batched[u], &format!("{name}: user {u} alone vs in the batch"));
    }
}

#[test]
fn base_model_batch_sizes_1_and_4_agree() {
    let f = fixture(4);
    let enc = encoder(&f.tokenizer, 0);
    let items = CatalogueTrie::new(&enc, &f.catalogue).unwrap();
    assert_eq!(items.len(), f.catalogue.len());
    let vocab = f.backbone.vocab_size();
    let model = LatentModel::new(f.backbone, None, vocab, 0);
    let search = BeamSearchConfig::new(enc.eos_id());
    let rec =
        Recommender::new(RecommenderInput { model: &model, encoder: &enc, items: &items, search: &search }).unwrap();
    batch_invariance(&rec, &f.rows, &enc, &f.catalogue, "base");

    // The Base path (pass 1 through LatentModel::prefix) equals the plain-prompt start of r3-decode.
    let samples: Vec<_> = f.rows.iter().map(|r| rec.encode(&r.history_titles)).collect();
    let prompts: Vec<Vec<u32>> = samples.iter().map(|s| s.prompt_ids.clone()).collect();
    let device: Device = test_device();
    let start = DecodeStart::from_prompts(&model.backbone, &prompts, enc.pad_id(), &device);
    let plain =
        search.init().unwrap().search(&model.backbone, BeamSearchInput { start, trie: items.trie(), guidance: None });
    let ours = rec.recommend_encoded(&samples);
    for (u, (p, o)) in plain.hypotheses.iter().zip(&ours.users).enumerate() {
        let plain_tokens: Vec<&Vec<u32>> = p.iter().map(|h| &h.tokens).collect();
        let our_tokens: Vec<&Vec<u32>> = o.iter().map(|r| &r.tokens).collect();
        assert_eq!(plain_tokens, our_tokens, "user {u}: LatentModel's start vs DecodeStart::from_prompts");
        let max = p.iter().zip(o).map(|(h, r)| (h.score - r.score).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-4, "user {u}: maxdiff {max:.2e}");
    }
    assert_eq!(plain.steps, ours.steps);

    // A mismatched encoder (one thought token for a model without latents) is refused, naming the key.
    let enc1 = encoder(&f.tokenizer, 1);
    let err = Recommender::new(RecommenderInput { model: &model, encoder: &enc1, items: &items, search: &search })
        .unwrap_err();
    assert!(matches!(err, Error::Config { key: "n_thought", .. }), "{err}");
    let bad_eos = BeamSearchConfig::new(enc.eos_id() + 1);
    let err = Recommender::new(RecommenderInput { model: &model, encoder: &enc, items: &items, search: &bad_eos })
        .unwrap_err();
    assert!(matches!(err, Error::Config { key: "eos_id", .. }), "{err}");
}

#[test]
fn latent_model_batch_sizes_1_and_3_agree() {
    let f = fixture(3);
    let enc = encoder(&f.tokenizer, 1);
    let items = CatalogueTrie::new(&enc, &f.catalogue).unwrap();
    let device = test_device();
    device.seed(7);
    let d = f.backbone.hidden_size();
    let model = LatentModelConfig::new().with_ratt(Some(LatentRattConfig::new(d))).init(f.backbone, &device);
    assert_eq!(Some(model.thought_id as u32), enc.thought_id());
    let search = BeamSearchConfig::d3(enc.eos_id());
    let rec =
        Recommender::new(RecommenderInput { model: &model, encoder: &enc, items: &items, search: &search }).unwrap();
    // The latent position is in the cache before decoding: P prompt positions + 1 latent.
    let sample = rec.encode(&f.rows[0].history_titles);
    assert_eq!(sample.n_thought, 1);
    let start = rec.decode_start(std::slice::from_ref(&sample));
    assert_eq!(start.cache.len(), sample.prompt_ids.len() + 1);
    assert_eq!(start.logits.dims(), [1, model.backbone.vocab_size()]);
    batch_invariance(&rec, &f.rows, &enc, &f.catalogue, "latent (D3 decoding)");
}

/// Streaming evaluation as `latentr3 eval` runs it (users leave the batch as their search ends, the next ones join
/// it, rows of different lengths left-padded into one cache, the prompt prefix common to all users computed once
/// and shared by every row) gives every one of the first 64 CDs test users the recommendations of decoding it
/// alone from its full prompt: the same 10 titles in the same order, scores within the tolerance. Base SmolLM2,
/// BIGRec decoding, a streaming batch of 8 users (so that 56 users join a running batch).
#[test]
fn streaming_equals_one_user_at_a_time_on_64_users() {
    let f = fixture(64);
    let enc = encoder(&f.tokenizer, 0);
    let items = CatalogueTrie::new(&enc, &f.catalogue).unwrap();
    let vocab = f.backbone.vocab_size();
    let model = LatentModel::new(f.backbone, None, vocab, 0);
    let search = BeamSearchConfig::new(enc.eos_id());
    let rec =
        Recommender::new(RecommenderInput { model: &model, encoder: &enc, items: &items, search: &search }).unwrap();
    let samples: Vec<_> = f.rows.iter().map(|r| rec.encode(&r.history_titles)).collect();
    let t = std::time::Instant::now();
    let shared = Recommender::new(RecommenderInput { model: &model, encoder: &enc, items: &items, search: &search })
        .unwrap()
        .with_shared_prefix(&samples, 16);
    let prefix = shared.shared_prefix().expect("the CDs prompts share their instruction").ids().len();
    assert!((16..samples.iter().map(|s| s.prompt_ids.len()).min().unwrap()).contains(&prefix), "{prefix}");
    let mut streamed: Vec<Option<Vec<Recommended>>> = vec![None; samples.len()];
    let mut order = Vec::new();
    let stats = shared.recommend_stream(&samples, 8, &mut |u, recs| {
        assert!(streamed[u].replace(recs).is_none(), "user {u} finished twice");
        order.push(u);
    });
    eprintln!("streaming 64 users, shared prefix of {prefix} tokens: {:.1} s, {stats:?}", t.elapsed().as_secs_f64());
    assert_eq!(stats.users, 64);
    assert!(stats.prefills > 1, "users joined a running batch: {stats:?}");
    assert!(order.windows(2).any(|w| w[0] > w[1]), "users finish out of order: {order:?}");
    assert!(stats.live_share() > 0.0 && stats.live_share() <= 1.0, "{stats:?}");
    let t = std::time::Instant::now();
    let mut user_steps = 0;
    for (u, s) in samples.iter().enumerate() {
        let alone = rec.recommend_encoded(std::slice::from_ref(s));
        user_steps += alone.steps;
        let got = streamed[u].as_ref().unwrap_or_else(|| panic!("user {u} never finished"));
        check_catalogue(&alone.users[0], &enc, &f.catalogue);
        check_same(&alone.users[0], got, &format!("user {u}: alone vs streamed"));
    }
    eprintln!("one at a time: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(stats.user_steps, user_steps, "every user took as many steps as alone");
}
