//! AlphaRec: LightGCN's normalisation and propagation by hand, memorising a tiny cyclic set from random "language"
//! vectors, chance level untrained, model folders with the frozen tensors, and the text-embeddings file.

use burn::tensor::{Tensor, TensorData};
use r3_baselines::alpharec::{Graph, lightgcn, lightgcn_layers};
use r3_baselines::{BaselineExperiment, Evaluator, ModelKind, Sequences, seed_device, store};
use r3_data::SplitMix64;
use r3_metrics::Cutoffs;

use crate::common::{Measured, catalogue, fit_and_measure, random_rows, row, test_device};

/// `n · d` standard-normal-ish values from a seeded generator (sum of uniforms).
fn random_language(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n * d).map(|_| ((0..4).map(|_| rng.next_f64()).sum::<f64>() - 2.0) as f32).collect()
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
}

/// A 3-node graph: user 0 bought items 0 and 1. Degrees 2, 1, 1, so `Â` holds `1/√2` on both edges; with
/// embeddings u = [1, 0], i₀ = [0, 2], i₁ = [4, 0] one layer gives u¹ = (i₀ + i₁)/√2 = [2√2, √2],
/// i₀¹ = i₁¹ = u/√2 = [1/√2, 0], and a second layer u² = (i₀¹ + i₁¹)/√2 = [1, 0], i₀² = i₁² = u¹/√2 = [2, 1].
#[test]
fn lightgcn_normalisation_on_three_nodes_by_hand() {
    let seqs = Sequences { n_items: 2, seqs: vec![vec![1, 0, 1]] }; // item 1 twice: one edge
    let g = Graph::from_sequences(&seqs);
    assert_eq!(g.user_items, vec![vec![0, 1]]);
    assert_eq!(g.item_degrees(2), vec![1, 1]);
    let r2 = std::f32::consts::FRAC_1_SQRT_2;
    let w = g.user_item_weights(2);
    assert!(close(&w, &[r2, r2]), "{w:?}");

    let device = test_device();
    let t = |v: Vec<f32>, shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, shape), &device);
    let users = t(vec![1.0, 0.0], [1, 2]);
    let items = t(vec![0.0, 2.0, 4.0, 0.0], [2, 2]);
    let r = t(w, [1, 2]);
    let layers = lightgcn_layers(users.clone(), items.clone(), r.clone(), 2);
    let s2 = std::f32::consts::SQRT_2;
    let want = [
        (vec![1.0, 0.0], vec![0.0, 2.0, 4.0, 0.0]),
        (vec![2.0 * s2, s2], vec![r2, 0.0, r2, 0.0]),
        (vec![1.0, 0.0], vec![2.0, 1.0, 2.0, 1.0]),
    ];
    for (k, ((u, i), (wu, wi))) in layers.into_iter().zip(want).enumerate() {
        let (u, i) = (values(u), values(i));
        assert!(close(&u, &wu) && close(&i, &wi), "layer {k}: users {u:?} items {i:?}");
    }
    let (u, i) = lightgcn(users, items, r, 2);
    let (u, i) = (values(u), values(i));
    assert!(close(&u, &[(2.0 + 2.0 * s2) / 3.0, s2 / 3.0]), "{u:?}");
    assert!(close(&i, &[(2.0 + r2) / 3.0, 1.0, (6.0 + r2) / 3.0, 1.0 / 3.0]), "{i:?}");
}

/// Negatives are never the user's own items; every user appears; one example per edge.
#[test]
fn sampling_follows_the_official_train_dataset() {
    let seqs = Sequences { n_items: 6, seqs: vec![vec![0, 1, 2], vec![3, 4]] };
    let g = Graph::from_sequences(&seqs);
    let ex = g.sample_examples(6, 16, &mut SplitMix64::new(3));
    assert_eq!(ex.len(), 5);
    for e in &ex {
        assert_eq!(e.len(), 18);
        let own = &g.user_items[e[0] as usize];
        assert!(own.contains(&e[1]), "{e:?}");
        assert!(e[2..].iter().all(|j| !own.contains(j)), "{e:?}");
    }
    assert_eq!(ex.iter().filter(|e| e[0] == 1).count(), 2);
}

/// 40 users walking the cycle `i → i + 1` over 30 items, 3 items each from the starts 0, 3, …, 27 (so that a
/// history of 2 consecutive items has one completion in the train graph: AlphaRec sees sets, not directions), each
/// item a random 4-d "language" vector (so narrow that the untrained language means do not separate the sets: the
/// MLP and the graph must learn it). The rows are each user's last train row (history = its first 2 items, target
/// = the 3rd): with the history masked (the official protocol), a model that memorised the train graph ranks the
/// target first (0.2 untrained with these seeds).
#[test]
fn alpharec_overfits_a_tiny_set() {
    let (n, d) = (30, 4);
    let cat = catalogue(n);
    let mut train = Vec::new();
    for u in 0..40 {
        let seq: Vec<u32> = (0..3).map(|i| (3 * (u % 10) + i) as u32).collect();
        for t in 1..3 {
            train.push(row(&format!("u{u:03}"), &seq[..t], seq[t], t as i64));
        }
    }
    let seqs = Sequences::from_train(&train, n);
    let rows: Vec<_> = train.iter().filter(|r| r.history_len() == 2).collect();
    assert_eq!(rows.len(), 40);
    let eval = Evaluator::new(&cat, rows, Cutoffs::new(vec![1, 10]).unwrap(), 64).unwrap();
    let mut exp = BaselineExperiment::defaults(ModelKind::Alpharec);
    exp.alpharec.mlp_hidden = 64;
    exp.alpharec.n_negatives = 16;
    exp.train.epochs = 150;
    exp.train.batch_size = 64;
    exp.train.lr = 1e-2;
    exp.train.weight_decay = 0.0;
    exp.train.patience = 150;
    let device = test_device().autodiff();
    seed_device(&device, 7);
    let model = exp.init_alpharec(&random_language(n, d, 5), d, &seqs, &device).unwrap();
    let Measured { before, after, losses, out } = fit_and_measure(model, &seqs, exp.max_len(), &eval, &exp.train);
    println!(
        "alpharec: HR@1 {:.3} → {:.3}, HR@10 {:.3} → {:.3}, loss {:.3} → {:.3}, best epoch {}",
        before.hr[0],
        after.hr[0],
        before.hr[1],
        after.hr[1],
        losses[0],
        losses[losses.len() - 1],
        out.best_epoch
    );
    assert!(after.hr[0] >= 0.999, "AlphaRec did not memorise the train graph: HR@1 = {}", after.hr[0]);
    assert!(before.hr[0] < 0.6, "untrained HR@1 = {} is too high for random vectors", before.hr[0]);
    assert!(losses[losses.len() - 1] < 0.5 * losses[0], "the loss fell only from {} to {:?}", losses[0], losses.last());
}

/// An untrained AlphaRec ranks random targets at chance: HR@10 ≈ 10 / |items|.
#[test]
fn alpharec_untrained_hr10_is_chance() {
    let (n, m, d) = (200, 3000, 24);
    let cat = catalogue(n);
    let rows = random_rows(m, n, 11);
    let seqs = Sequences::from_train(&random_rows(300, n, 12), n);
    let eval = Evaluator::new(&cat, rows.iter().collect(), Cutoffs::new(vec![10]).unwrap(), 500).unwrap();
    let p = 10.0 / n as f64;
    let sigma = (p * (1.0 - p) / m as f64).sqrt();
    let device = test_device();
    seed_device(&device, 3);
    let mut exp = BaselineExperiment::defaults(ModelKind::Alpharec);
    exp.alpharec.mlp_hidden = 128;
    let model = exp.init_alpharec(&random_language(n, d, 9), d, &seqs, &device).unwrap();
    let hr = eval.metrics(&model).unwrap().hr[0];
    println!("alpharec: untrained HR@10 = {hr:.4} (chance {p:.4} ± {sigma:.4})");
    assert!((hr - p).abs() < 4.0 * sigma, "HR@10 {hr} is not near chance {p}");
}

/// A saved AlphaRec folder (frozen language, graph and degrees included) loads back to the same scores; the
/// text-embeddings file round-trips and refuses a truncated file.
#[test]
fn alpharec_folder_and_text_embeddings_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let device = test_device();
    seed_device(&device, 5);
    let (n, d) = (17, 8);
    let mut exp = BaselineExperiment::defaults(ModelKind::Alpharec);
    exp.alpharec.mlp_hidden = 16;
    let seqs = Sequences { n_items: n, seqs: vec![vec![1, 2, 3], vec![4, 16], vec![2, 5, 6, 7]] };
    let language = random_language(n, d, 1);
    let model = exp.init_alpharec(&language, d, &seqs, &device).unwrap();
    let meta = store::ModelMeta {
        experiment: exp.clone(),
        n_items: n,
        stem: "tiny".into(),
        epoch: 1,
        valid_ndcg10: 0.5,
        alpharec: store::AlphaRecShape::of(&model, "random"),
    };
    assert_eq!(meta.alpharec.as_ref().map(|s| (s.n_users, s.d_lm)), Some((3, d)));
    let path = dir.path().join("alpharec");
    store::save(&path, &model, &meta).unwrap();
    let (loaded, meta2) = store::load(&path, &device).unwrap();
    assert_eq!(meta2, meta);
    let h: &[&[u32]] = &[&[1, 2, 3], &[16], &[], &[9, 9, 10]];
    let a = values(model.scores(h));
    let b = values(loaded.scores(h));
    assert_eq!(a, b);
    // History items are masked (the official protocol), every other score is a cosine.
    for (r, hist) in h.iter().enumerate() {
        for i in 0..n {
            let x = a[r * n + i];
            if hist.contains(&(i as u32)) {
                assert_eq!(x, r3_baselines::alpharec::MASKED, "row {r} item {i}");
            } else {
                assert!(x.is_finite() && x.abs() <= 1.0 + 1e-5, "row {r} item {i}: {x}");
            }
        }
    }
    // Without the mask the history items keep their cosines; the other scores are unchanged.
    // The same weights under `mask_history = false` (the folder's config edited).
    let mut unmasked = meta.clone();
    unmasked.experiment.alpharec.mask_history = false;
    std::fs::write(path.join(store::CONFIG_FILE), serde_json::to_string(&unmasked).unwrap()).unwrap();
    let plain = values(store::load(&path, &device).unwrap().0.scores(h));
    for (r, hist) in h.iter().enumerate() {
        for i in 0..n {
            if !hist.contains(&(i as u32)) {
                assert_eq!(plain[r * n + i], a[r * n + i], "row {r} item {i}: the mask changes only history items");
            }
        }
    }
    assert!(plain.iter().all(|x| x.abs() <= 1.0 + 1e-5));
    // The batched evaluation path scores as the one-shot one.
    let rows = loaded.score_rows(h, 3);
    assert!(close(&rows.concat(), &a));

    let e = store::TextEmbeddings {
        backbone: "random".into(),
        titles_hash: store::titles_hash(&["a", "b"]),
        d: 4,
        values: (0..8).map(|x| x as f32 / 3.0).collect(),
    };
    assert_ne!(e.titles_hash, store::titles_hash(&["a", "c"]));
    let f = dir.path().join(store::TEXT_EMBEDDINGS_FILE);
    store::write_text_embeddings(&f, &e).unwrap();
    assert_eq!(store::read_text_embeddings(&f).unwrap(), e);
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 4]).unwrap();
    let msg = store::read_text_embeddings(&f).unwrap_err().to_string();
    assert!(msg.contains("text_embeddings.safetensors"), "{msg}");
}

/// AlphaRec experiment files take the official training defaults for the keys they leave out.
#[test]
fn alpharec_experiment_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("e.toml");
    std::fs::write(&p, "model = \"alpharec\"\n[alpharec]\ntau = 0.2\n[train]\nepochs = 7\n").unwrap();
    let e = BaselineExperiment::read(&p).unwrap();
    assert_eq!((e.alpharec.tau, e.alpharec.n_layers, e.alpharec.n_negatives), (0.2, 2, 256));
    assert_eq!((e.train.epochs, e.train.batch_size, e.train.lr, e.train.patience), (7, 4096, 5e-4, 20));
    assert_eq!(e.train.weight_decay, 1e-6);
    std::fs::write(&p, "model = \"alpharec\"\n[alpharec]\ntau = 0.0\n").unwrap();
    let msg = BaselineExperiment::read(&p).unwrap_err().to_string();
    assert!(msg.contains("alpharec.tau"), "{msg}");
}

/// The users' layer 0 from the items' first layer (gather and scatter-add over the edges) equals the official
/// `MLP(user_language)`, in values and in the gradient it sends to the MLP.
#[test]
fn alpharec_user_layer0_through_the_items_equals_the_official_mlp_of_the_user_means() {
    let device = test_device().autodiff();
    seed_device(&device, 13);
    let (n, d) = (23, 6);
    let mut exp = BaselineExperiment::defaults(ModelKind::Alpharec);
    exp.alpharec.mlp_hidden = 32;
    exp.alpharec.hidden = 8;
    let seqs =
        Sequences { n_items: n, seqs: vec![vec![1, 2, 3], vec![4, 22, 4], vec![], vec![2, 5, 6, 7, 0], vec![9]] };
    let r3_baselines::BaselineModel::AlphaRec(model) =
        exp.init_alpharec(&random_language(n, d, 2), d, &seqs, &device).unwrap()
    else {
        panic!("init_alpharec gives an AlphaRec")
    };
    let (users, items) = model.layer0();
    let official = model.project(model.user_language());
    assert_eq!(users.dims(), [4, 8]);
    assert_eq!(items.dims(), [n, 8]);
    let (a, b) = (values(users.clone()), values(official.clone()));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?}\nvs {b:?}");
    // The same gradient reaches the MLP's weights through both paths.
    // The first parameters in declaration order: mlp_in.weight, mlp_in.bias, mlp_out.weight.
    let ids = burn::module::list_param_ids(&model);
    let grad_of = |t: Tensor<2>| {
        let grads = burn::optim::GradientsParams::from_grads((t.clone() * t).sum().backward(), &model);
        [ids[0], ids[2]].map(|id| values(grads.get::<2>(id).expect("an MLP weight has a gradient")))
    };
    let (ga, gb) = (grad_of(users), grad_of(official));
    for (k, (ga, gb)) in ga.iter().zip(&gb).enumerate() {
        let scale = gb.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(scale > 0.0, "weight {k}: no gradient");
        assert!(ga.iter().zip(gb).all(|(x, y)| (x - y).abs() <= 1e-5 * scale), "weight {k}: gradients differ");
    }
}
