//! The run files as today's writers lay them out (`latentr3 eval`, `latentr3 train sft|grpo`, `latentr3
//! baseline train`, `cargo xtask reproduce`) parse into the typed structs and write back the same JSON; a renamed
//! or missing field is an error that names the file and the field.

use std::path::Path;

use r3_runs::baseline::{BaselineConfig, BaselineEpoch, BaselineMetrics, BaselinePrediction, BaselineSummary};
use r3_runs::eval::{EvalMetrics, EvalPrediction, EvalSettings};
use r3_runs::reproduce::RunMarker;
use r3_runs::train::{Algorithm, GrpoRecord, GrpoResolved, GrpoSummary, RunEnv, SftRecord, SftSummary};
use r3_runs::{Error, RunFile, read_json, read_json_array, read_jsonl};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A report of `r3_metrics::Report` as `latentr3 eval` and `latentr3 baseline` serialise it.
fn report() -> Value {
    let m = json!({"n": 4, "k": [5, 10], "hr": [0.5, 0.75], "ndcg": [0.3, 0.4]});
    json!({
        "predictions": "runs/eval/x/predictions.json",
        "samples": 4,
        "by_title": m,
        "by_item_id": m,
        "outside_catalogue": {"count": 1, "predictions": 40},
        "buckets": [
            {"bucket": "popular", "n": 3, "k": [5, 10], "hr": [0.66, 1.0], "ndcg": [0.4, 0.5]},
            {"bucket": "unpopular", "n": 1, "k": [5, 10], "hr": [0.0, 0.0], "ndcg": [0.0, 0.0]},
        ],
        "baseline": null,
    })
}

fn settings() -> Value {
    json!({
        "checkpoint": "runs/reproduce/grpo/abc/model", "model": null, "data": "../data", "stem": "CDs",
        "split": "test", "limit": 16, "seed": 0, "decoding": "bigrec", "users": 16, "assistant": null,
        "guidance_scale": 1.0, "cot_tokens": 0,
    })
}

/// `metrics.json` of `latentr3 eval` as `cmd/eval.rs` assembles it.
fn eval_metrics() -> Value {
    json!({
        "settings": settings(),
        "n_latent": 1,
        "search": {"num_beams": 10.0, "length_penalty": 1.0, "max_new_tokens": 128.0},
        "cot": {"max_tokens": 0, "reasoning_cue": null, "answer_cue": null},
        "device": "Flex",
        "guidance": {"assistant": null, "scale": 1.0},
        "latency": {"users": 16, "median_s": 1.5, "p90_s": 2.0, "mean_s": 1.6, "users_per_s": 0.625},
        "popularity": {"coverage": 0.8, "popular_items": 1200},
        "report": report(),
    })
}

fn eval_prediction() -> Value {
    json!({
        "input": "The user has palyed the following CDs before: \"A\"", "output": "\"B\"\n",
        "predict": ["\"B\"\n", "\"C\"\n"], "row": 3, "user_id": "U1", "item_id": 7,
        "scores": [-0.5, null], "item_ids": [[7], []], "latency_s": 0.5, "batch_s": 2.0, "batch_size": 4,
    })
}

/// Parses `v` as `T` and checks that writing it back gives the same JSON value.
fn round_trip<T: Serialize + DeserializeOwned>(v: &Value) -> T {
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    assert_eq!(&serde_json::to_value(&t).unwrap(), v, "the typed struct writes back the same fields");
    t
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn evaluation_files_round_trip() {
    let m: EvalMetrics = round_trip(&eval_metrics());
    assert_eq!((m.n_latent, m.popularity.coverage, m.report.by_title.hr[0]), (1, 0.8, 0.5));
    let s: EvalSettings = round_trip(&settings());
    assert_eq!(s.users, 16);
    let p: EvalPrediction = round_trip(&eval_prediction());
    assert_eq!((p.item_id, p.scores[1], p.reasoning), (7, None, None));
    let mut cot = eval_prediction();
    cot["reasoning"] = json!("because");
    let p: EvalPrediction = round_trip(&cot);
    assert_eq!(p.reasoning.as_deref(), Some("because"));
}

#[test]
fn evaluation_folders_of_older_versions_still_parse() {
    // Before D3's guidance and the CoT budget: no `assistant`, `guidance_scale`, `cot_tokens`, `cot`, `guidance`.
    let mut old = eval_metrics();
    let o = old.as_object_mut().unwrap();
    o.remove("cot");
    o.remove("guidance");
    for k in ["assistant", "guidance_scale", "cot_tokens"] {
        o["settings"].as_object_mut().unwrap().remove(k);
    }
    let m: EvalMetrics = serde_json::from_value(old).unwrap();
    assert_eq!((m.cot, m.guidance, m.settings.guidance_scale, m.settings.cot_tokens), (None, None, 1.0, 0));
}

#[test]
fn training_files_round_trip() {
    let env = json!({
        "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": true, "burn_version": "0.22.1",
        "device": "Flex", "dtype": "f32", "hostname": null, "unix_time": 1_780_000_000u64,
        "time_utc": "2026-05-28T20:26:40Z", "r3_train_version": "0.0.0",
    });
    let e: RunEnv = round_trip(&env);
    assert_eq!(e.provenance().label(), "0123456789ab-dirty");
    let step = json!({"kind": "step", "step": 1, "epoch": 0, "loss": 2.5, "lr": 1e-4, "grad_norm": 0.5,
        "tokens": 1900, "tokens_per_s": 40.0, "elapsed_s": 47.0});
    let eval = json!({"kind": "eval", "step": 8, "epoch": 0, "val_loss": 1.5});
    assert!(matches!(round_trip::<SftRecord>(&step), SftRecord::Step { tokens: 1900, .. }));
    assert!(matches!(round_trip::<SftRecord>(&eval), SftRecord::Eval { step: 8, .. }));
    let summary = json!({"run_dir": "runs/sft/x", "steps": 8, "total_steps": 8, "best_val_loss": 1.5,
        "best_step": 8, "last_val_loss": 1.5, "stopped_early": false, "finished": true, "interrupted": false,
        "tokens_seen": 15200, "elapsed_s": 380.0});
    round_trip::<SftSummary>(&summary);
    let gstep = json!({"kind": "step", "step": 2, "total_steps": 64, "epoch": 0, "loss": 0.1, "reward_mean": -2.5,
        "reward_std": 0.3, "equal_reward_groups": 0.0, "advantage_norm": 1.0, "clip_ratio": 0.0, "kl": null,
        "grad_norm": 0.2, "lr": 1e-5, "samples_per_s": 3.0, "elapsed_s": 20.0});
    let geval = json!({"kind": "eval", "step": 2, "k": [5, 10], "hr": [0.1, 0.2], "ndcg": [0.05, 0.07],
        "improved": true});
    assert_eq!(round_trip::<GrpoRecord>(&gstep).step(), 2);
    assert!(matches!(round_trip::<GrpoRecord>(&geval), GrpoRecord::Eval(e) if e.ndcg == [0.05, 0.07]));
    // Unknown fields are errors in tagged records too.
    let mut extra = eval.clone();
    extra["val_los"] = json!(1.5);
    assert!(serde_json::from_value::<SftRecord>(extra).unwrap_err().to_string().contains("val_los"));
    let mut extra = geval.clone();
    extra["ndcg10"] = json!(0.07);
    assert!(serde_json::from_value::<GrpoRecord>(extra).unwrap_err().to_string().contains("ndcg10"));
    let gsum = json!({"run_dir": "runs/grpo/x", "steps": 64, "total_steps": 64, "best_metric": 0.07,
        "best_step": 16, "finished": true, "elapsed_s": 900.0});
    round_trip::<GrpoSummary>(&gsum);
}

#[test]
fn baseline_files_round_trip() {
    let config = json!({"experiment": {"model": "sasrec", "train": {"epochs": 3}}, "data": "../data",
        "stem": "CDs", "n_items": 5000, "device": "Flex"});
    round_trip::<BaselineConfig>(&config);
    let epoch = json!({"epoch": 1, "loss": 7.5, "valid_hr10": 0.02, "valid_ndcg10": 0.01, "train_s": 30.0,
        "valid_s": 2.0, "best": true});
    round_trip::<BaselineEpoch>(&epoch);
    let summary = json!({"model": "sasrec", "stem": "CDs", "best_epoch": 1, "epochs": 3, "valid_ndcg10": 0.01,
        "train_s_per_epoch": 30.0, "total_s": 100.0, "test": {"n": 4, "k": [5], "hr": [0.5], "ndcg": [0.3]}});
    round_trip::<BaselineSummary>(&summary);
    let metrics = json!({"split": "test", "rows": 4, "ranking_s": 0.5,
        "popularity": {"coverage": 0.8, "popular_items": 1200}, "report": report()});
    round_trip::<BaselineMetrics>(&metrics);
    let pred = json!({"input": "\"A\", \"B\"", "output": "\"C\"\n", "predict": ["\"C\"\n"], "row": 0,
        "user_id": "U1", "item_id": 3, "item_ids": [3], "scores": [1.5]});
    round_trip::<BaselinePrediction>(&pred);
}

#[test]
fn markers_with_and_without_provenance_parse() {
    let mut marker = json!({"experiment": "table1/cds-bigrec", "id": "sft", "kind": "sft", "key": "0123456789abcdef",
        "resolved": {"kind": "sft"}, "commands": [["train", "sft"]], "wall_s": 12.5,
        "finished": "2026-11-26T02:15:00Z", "hardware": "x, 2 logical cores"});
    assert_eq!(round_trip::<RunMarker>(&marker).code, None);
    marker["code"] = json!({"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": false});
    assert_eq!(round_trip::<RunMarker>(&marker).code.unwrap().label(), "0123456789ab");
}

/// The message of a read error, asserting that it names the file.
fn message<T: std::fmt::Debug>(r: r3_runs::Result<T>, path: &Path) -> String {
    let e = r.unwrap_err();
    let s = e.to_string();
    assert!(s.contains(&path.display().to_string()), "{s}");
    assert!(matches!(e, Error::Schema { .. }), "{e:?}");
    s
}

#[test]
fn a_renamed_or_missing_field_is_an_error_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut renamed = eval_metrics();
    let o = renamed.as_object_mut().unwrap();
    let v = o.remove("n_latent").unwrap();
    o.insert("n_thought".into(), v);
    let p = write(dir.path(), "metrics.json", &renamed.to_string());
    let e = message(read_json::<EvalMetrics>(&p), &p);
    assert!(e.contains("n_thought") && e.contains(EvalMetrics::WHAT), "{e}");
    // A GRPO step without its reward: an error on line 2, not a zero.
    let mut step = json!({"kind": "step", "step": 2, "total_steps": 64, "epoch": 0, "loss": 0.1,
        "reward_std": 0.3, "equal_reward_groups": 0.0, "advantage_norm": 1.0, "clip_ratio": 0.0, "kl": null,
        "grad_norm": 0.2, "lr": 1e-5, "samples_per_s": 3.0, "elapsed_s": 20.0});
    let eval = json!({"kind": "eval", "step": 2, "k": [10], "hr": [0.2], "ndcg": [0.07], "improved": true});
    let p = write(dir.path(), "metrics.jsonl", &format!("{eval}\n\n{step}\n"));
    let e = message(read_jsonl::<GrpoRecord>(&p), &p);
    assert!(e.contains(":3:") || e.contains("metrics.jsonl:3"), "{e}");
    assert!(e.contains("reward_mean"), "{e}");
    step["reward_mean"] = json!(-1.0);
    let p = write(dir.path(), "metrics.jsonl", &format!("{eval}\n{step}\n"));
    assert_eq!(read_jsonl::<GrpoRecord>(&p).unwrap().len(), 2);
    // A prediction array with an unknown key.
    let mut pred = eval_prediction();
    pred["instruction"] = json!("x");
    let p = write(dir.path(), "predictions.json", &json!([pred]).to_string());
    let e = message(read_json_array::<EvalPrediction>(&p), &p);
    assert!(e.contains("instruction"), "{e}");
    // A missing file is an I/O error naming it.
    let missing = dir.path().join("nope.json");
    let e = read_json::<EvalSettings>(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("nope.json"), "{e}");
}

#[test]
fn the_algorithm_of_a_grpo_run_is_read_not_defaulted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.resolved.toml", "[grpo]\nalgorithm = \"grpo\"\nsigma = 1.5\n\n[train]\nlr = 1e-5\n");
    assert_eq!(GrpoResolved::read(dir.path()).unwrap().grpo.algorithm, Algorithm::Grpo);
    write(dir.path(), "config.resolved.toml", "[grpo]\nsigma = 1.5\n");
    let e = GrpoResolved::read(dir.path()).unwrap_err().to_string();
    assert!(e.contains("config.resolved.toml") && e.contains("algorithm"), "{e}");
}
