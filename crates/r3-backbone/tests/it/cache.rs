//! The KV cache and padding on the real SmolLM2 checkpoint, against the plain full forward: cached decoding,
//! left padding, a prefix shared by several continuations ([`KvCache::expand`]), greedy decoding, and a pass
//! repeated after another one (`on_pool` leaves non-flex work on the calling thread). All comparisons are
//! within 1e-4 absolute on hidden states and 3e-4 on logits (the same model in f32; differences come only from
//! summation order in matmuls of different shapes).

use std::sync::OnceLock;

use burn::tensor::{Bool, Int, Tensor, TensorData};
use r3_backbone::{Backbone, HiddenInput, KvCache, greedy_generate};

use crate::common::golden_dir;
use crate::common::{load, test_device};

const TOL: f32 = 1e-4;

/// The tolerance on logits: they are the hidden states (within [`TOL`]) times the `[V, d]` embedding matrix,
/// whose products add the hidden states' rounding differences up. Cached vs full logits of SmolLM2 differ by
/// 1.0e-4 on an Intel Xeon (family 6 model 207, AVX-512) and by less on AMD Zen 4.
const LOGITS_TOL: f32 = 3e-4;

/// SmolLM2, loaded once for all tests of this module.
fn model() -> &'static Backbone {
    static MODEL: OnceLock<Backbone> = OnceLock::new();
    MODEL.get_or_init(|| load("smollm2-135m").model)
}

/// The ids of golden prompt `p` (real CDs prompts, tokenised by HF).
fn prompt(p: usize) -> Vec<i64> {
    let text = std::fs::read_to_string(golden_dir().join("smollm2").join("golden.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["forward"][p]["ids"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn ids_tensor(rows: &[Vec<i64>]) -> Tensor<2, Int> {
    let l = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == l));
    Tensor::from_data(TensorData::new(rows.concat(), [rows.len(), l]), &test_device())
}

/// Hidden states of the full forward of one row, no cache.
fn full_hidden(m: &Backbone, ids: &[i64]) -> Tensor<3> {
    m.hidden(HiddenInput::new(m.embed(ids_tensor(&[ids.to_vec()])))).hidden
}

fn maxdiff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}

fn check(what: &str, d: f32) {
    check_within(what, d, TOL);
}

fn check_logits(what: &str, d: f32) {
    check_within(what, d, LOGITS_TOL);
}

fn check_within(what: &str, d: f32, tol: f32) {
    println!("{what}: maxdiff {d:.3e}");
    assert!(d <= tol, "{what}: maxdiff {d:.3e} > {tol:.0e}");
}

/// Prefill 5 tokens, then feed the remaining ones one at a time through the cache: every hidden state and
/// logit equals the full forward's.
#[test]
fn cached_decoding_equals_full_forward() {
    let m = model();
    let ids: Vec<i64> = prompt(0)[..40].to_vec();
    let full = full_hidden(m, &ids);
    let mut out = m.hidden(HiddenInput::new(m.embed(ids_tensor(&[ids[..5].to_vec()]))));
    let mut parts = vec![out.hidden.clone()];
    for &t in &ids[5..] {
        out = m.hidden(HiddenInput::new(m.embed(ids_tensor(&[vec![t]]))).with_cache(Some(out.cache)));
        parts.push(out.hidden.clone());
    }
    assert_eq!(out.cache.len(), ids.len());
    let cached = Tensor::cat(parts, 1);
    check("cached vs full hidden", maxdiff(full.clone(), cached.clone()));
    check_logits("cached vs full logits", maxdiff(m.logits(full), m.logits(cached)));
}

/// A batch of a short and a long prompt, the short one left-padded: each row's last logits equal those of the
/// row run alone (positions restart at 0 after the padding, as in transformers).
#[test]
fn left_padding_matches_running_alone() {
    let m = model();
    let long: Vec<i64> = prompt(0)[..48].to_vec();
    let short: Vec<i64> = prompt(1)[..21].to_vec();
    let pad = long.len() - short.len();
    let padded: Vec<i64> = std::iter::repeat_n(2, pad).chain(short.iter().copied()).collect();
    let mask: Vec<bool> = (0..long.len()).map(|i| i >= pad).chain(std::iter::repeat_n(true, long.len())).collect();
    let padding = Tensor::<2, Bool>::from_data(TensorData::new(mask, [2, long.len()]), &test_device());
    let out = m.hidden(HiddenInput::new(m.embed(ids_tensor(&[padded, long.clone()]))).with_padding(padding));
    let l = long.len();
    let batch_last = m.logits(out.hidden.narrow(1, l - 1, 1)); // [2, 1, V]
    for (row, ids) in [(0, &short), (1, &long)] {
        let alone = full_hidden(m, ids);
        let alone_last = m.logits(alone.narrow(1, ids.len() - 1, 1));
        check_logits(
            &format!("row {row} last logits, batch vs alone"),
            maxdiff(batch_last.clone().narrow(0, row, 1), alone_last),
        );
    }

    // Decoding continues correctly from a padded cache: one more token per row.
    let next = ids_tensor(&[vec![30], vec![30]]);
    let step = m.hidden(HiddenInput::new(m.embed(next)).with_cache(Some(out.cache)));
    let step_last = m.logits(step.hidden); // [2, 1, V]
    let short_alone = full_hidden(m, &[short, vec![30]].concat());
    let want = m.logits(short_alone.narrow(1, 21, 1));
    check_logits("padded row, one cached step vs alone", maxdiff(step_last.narrow(0, 0, 1), want));
}

/// A prefix computed once and expanded ×3, continued with three different suffixes, equals running each full
/// sequence alone; selecting rows of the expanded cache reorders them.
#[test]
fn expanded_prefix_equals_full_sequences() {
    let m = model();
    let prefix: Vec<i64> = prompt(2)[..30].to_vec();
    let suffixes: Vec<Vec<i64>> = vec![vec![330, 1345, 28], vec![42, 42, 42], vec![9, 1000, 20000]];
    let pre = m.hidden(HiddenInput::new(m.embed(ids_tensor(std::slice::from_ref(&prefix)))));
    let cache: KvCache = pre.cache.expand(3);
    assert_eq!((cache.batch_size(), cache.len()), (3, 30));
    let out = m.hidden(HiddenInput::new(m.embed(ids_tensor(&suffixes))).with_cache(Some(cache.clone())));
    for (i, s) in suffixes.iter().enumerate() {
        let alone = full_hidden(m, &[prefix.clone(), s.clone()].concat()).narrow(1, 30, 3);
        let got = out.hidden.clone().narrow(0, i, 1);
        check(&format!("suffix {i}: hidden"), maxdiff(got.clone(), alone.clone()));
        check_logits(&format!("suffix {i}: logits"), maxdiff(m.logits(got), m.logits(alone)));
    }
    // Beam reordering: rows [2, 0] of the continued cache continue like suffixes 2 and 0.
    let idx = Tensor::<1, Int>::from_data([2, 0], &test_device());
    let reordered = out.cache.select(idx);
    let step = m.hidden(HiddenInput::new(m.embed(ids_tensor(&[vec![7], vec![7]]))).with_cache(Some(reordered)));
    for (row, s) in [(0, &suffixes[2]), (1, &suffixes[0])] {
        let alone = full_hidden(m, &[prefix.clone(), s.clone(), vec![7]].concat()).narrow(1, 33, 1);
        check(&format!("reordered row {row}"), maxdiff(step.hidden.clone().narrow(0, row, 1), alone));
    }
}

/// Greedy decoding with the cache is deterministic and picks the same 8 tokens as argmax decoding by full
/// forwards without a cache.
#[test]
fn greedy_generate_equals_uncached_argmax() {
    let m = model();
    let device = test_device();
    let p: Vec<u32> = prompt(0).iter().map(|&t| t as u32).collect();
    let a = greedy_generate(m, &p, 8, None, &device);
    let b = greedy_generate(m, &p, 8, None, &device);
    assert_eq!(a, b, "greedy decoding is not deterministic");
    let mut ids: Vec<i64> = prompt(0);
    let mut want = Vec::new();
    for _ in 0..8 {
        let h = full_hidden(m, &ids);
        let last = m.logits(h.narrow(1, ids.len() - 1, 1));
        let t = last.argmax(2).into_scalar::<i64>();
        want.push(t as u32);
        ids.push(t);
    }
    println!("greedy continuation: {a:?}");
    assert_eq!(a, want);
    // Stopping at EOS: the EOS token is the last one returned.
    let eos = a[3];
    let stopped = greedy_generate(m, &p, 8, Some(eos), &device);
    assert_eq!(stopped, a[..=a.iter().position(|&t| t == eos).unwrap()].to_vec());
}

/// `on_pool` moves only flex's work onto rayon's pool; on the cubecl backends (wgpu, vulkan, cuda) the work stays
/// on the calling thread, whose stream holds the weights. And a forward pass repeated after another one gives
/// the same result: on wgpu over lavapipe, passes run on a rayon worker were right the first time and wrong
/// afterwards. CI runs this test on wgpu too (`cargo xtask ci`).
#[test]
fn on_pool_moves_only_flex_work() {
    let device = test_device();
    let flex = r3_backbone::is_flex(&device);
    let caller = std::thread::current().id();
    let (worker, same_thread) =
        r3_backbone::on_pool(&device, || (rayon::current_thread_index(), std::thread::current().id() == caller));
    assert_eq!(worker.is_some(), flex, "{device:?}: on a rayon worker: {worker:?}");
    assert_eq!(same_thread, !flex, "{device:?}: on the calling thread: {same_thread}");

    let m = model();
    // The prompts share their template's first tokens: their last 48 differ.
    let tail = |p: usize| {
        let ids = prompt(p);
        ids[ids.len() - 48..].to_vec()
    };
    let (a, b) = (tail(0), tail(1));
    let first = full_hidden(m, &a);
    let other = full_hidden(m, &b);
    let again = full_hidden(m, &a);
    check("the same pass repeated after another one", maxdiff(first.clone(), again));
    assert!(maxdiff(first, other) > 1e-2, "two different prompts gave the same hidden states");
}
