//! `latentr3 baseline train|eval --model alpharec` on the real Industrial data, with a prepared
//! `text_embeddings.safetensors` in the run folder (random 8-d representations under a made-up backbone name, so
//! that no backbone is loaded: the cache is reused when backbone, title count and titles hash match), a small MLP
//! and one epoch (the dataset named by the experiment file); and the errors of `--backbone` and of a missing stem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use r3_baselines::store;
use serde_json::Value;

const STEM: &str = "Industrial_and_Scientific_5_1996-10-2018-11";

fn data_root() -> PathBuf {
    r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18 beside the repository")
}

fn latentr3(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latentr3")).args(args).arg("--out").arg(out).output().unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn alpharec_trains_from_cached_text_embeddings_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let ds = r3_data::Dataset::load(&data_root(), STEM).unwrap();
    let titles = ds.catalogue.titles();
    let d = 8;
    let mut rng = r3_data::SplitMix64::new(1);
    let e = store::TextEmbeddings {
        backbone: "random-8d".into(),
        titles_hash: store::titles_hash(titles),
        d,
        values: (0..titles.len() * d).map(|_| rng.next_f64() as f32 - 0.5).collect(),
    };
    store::write_text_embeddings(&run.join(store::TEXT_EMBEDDINGS_FILE), &e).unwrap();
    let cfg = tmp.path().join("alpharec.toml");
    std::fs::write(
        &cfg,
        format!("model = \"alpharec\"\nstem = \"{STEM}\"\n[alpharec]\nbackbone = \"random-8d\"\nmlp_hidden = 16\nn_negatives = 8\n[train]\nepochs = 1\n"),
    )
    .unwrap();
    let data = data_root();
    // No --stem: the experiment file's `stem` names the dataset.
    let args = ["baseline", "train", "--config", cfg.to_str().unwrap(), "--data", data.to_str().unwrap()];
    let out = latentr3(&args, &run);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("alpharec on Industrial"), "{stdout}");
    // The cache was reused, not overwritten (a recomputation would need the made-up backbone and fail).
    assert_eq!(store::read_text_embeddings(&run.join(store::TEXT_EMBEDDINGS_FILE)).unwrap(), e);
    let meta = read_json(&run.join("model").join(store::CONFIG_FILE));
    assert_eq!(meta["alpharec"]["d_lm"], 8);
    assert_eq!(meta["alpharec"]["backbone"], "random-8d");
    assert_eq!(meta["experiment"]["train"]["batch_size"], 4096, "AlphaRec's training defaults");
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["epochs"], 1);
    let test = read_json(&run.join("test").join("metrics.json"));
    assert_eq!(test["rows"], 4533);

    let args = ["baseline", "eval", "--model", "alpharec", "--stem", STEM, "--split", "valid", "--data"];
    let mut full: Vec<&str> = args.to_vec();
    full.push(data.to_str().unwrap());
    let out = latentr3(&full, &run);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_json(&run.join("valid").join("metrics.json"))["rows"], 4532);
    // The valid ranking of `eval` is the one validation saw for the best (only) epoch.
    // metrics.jsonl holds a record per step and per epoch (`kind`); the first epoch's validation:
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let records: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let epoch = records.iter().find(|r| r["kind"] == "epoch").expect("an epoch record");
    let report = &read_json(&run.join("valid").join("metrics.json"))["report"];
    let at10 = report["by_title"]["k"].as_array().unwrap().iter().position(|k| k == 10).unwrap();
    let ndcg10 = report["by_title"]["ndcg"][at10].as_f64().unwrap();
    assert!((ndcg10 - epoch["valid_ndcg10"].as_f64().unwrap()).abs() < 1e-9, "{ndcg10} vs {epoch}");
}

#[test]
fn backbone_is_alpharecs_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out =
        latentr3(&["baseline", "train", "--model", "sasrec", "--stem", STEM, "--backbone", "smollm2-135m"], tmp.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--backbone is AlphaRec's"), "{err}");
}

#[test]
fn the_dataset_is_named_by_stem_or_by_the_experiment_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = latentr3(&["baseline", "train", "--model", "sasrec"], tmp.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass --stem STEM") && err.contains("`stem` in the experiment file"), "{err}");
}
