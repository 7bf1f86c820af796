//! `latentr3 train sft` and `latentr3 bench sft` through the binary: config errors that name the key, a tiny
//! LatentR³ run on real CDs samples with the fetched SmolLM2 that leaves a complete run folder and model folder,
//! and the benchmark's JSON line and batch dump.

use std::path::Path;
use std::process::{Command, Output};

fn latentr3(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latentr3")).args(args).output().unwrap()
}

fn repo_file(rel: &str) -> String {
    r3_data::repo_root().unwrap().join(rel).display().to_string()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_config_typo_names_the_key_and_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[train]\nlrr = 1e-4\n").unwrap();
    let out = latentr3(&["train", "sft", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("`train.lrr`") && err.contains("`train.lr`") && err.contains("typo.toml"), "{err}");

    let smoke = repo_file("experiments/sft/cds-bigrec-smoke.toml");
    let out = latentr3(&["train", "sft", "--config", &smoke, "--set", "train.micro_batch=3"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("train.micro_batch") && err.contains("not a multiple"), "{err}");

    let out = latentr3(&["train", "sft", "--config", &smoke, "--set", "data.nope=1"]);
    assert!(stderr_of(&out).contains("`data.nope`"), "{}", stderr_of(&out));
}

/// Runs `train sft` on the smoke config with 4 CDs samples (`--sample 4`), batch 2, one epoch, sequences cut to 48
/// tokens, plus `extra` arguments, into a fresh folder; returns the folder (kept alive) and the run folder.
fn tiny_run(extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let out_dir = tempfile::tempdir().unwrap();
    let run = out_dir.path().join("run");
    let smoke = repo_file("experiments/sft/cds-latentr3-smoke.toml");
    let mut args: Vec<String> =
        ["train", "sft", "--config", &smoke, "--sample", "4"].iter().map(|s| s.to_string()).collect();
    for kv in [
        "data.valid_sample=2",
        "data.cutoff=48",
        "train.batch=2",
        "train.micro_batch=1",
        "train.epochs=1",
        "train.warmup=0",
        "run.timestamped=false",
    ] {
        args.extend(["--set".to_string(), kv.to_string()]);
    }
    args.extend(["--set".to_string(), format!("run.output_dir={:?}", run.display().to_string())]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_latentr3")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    (out_dir, run)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Two optimizer steps of LatentR³ SFT on 4 CDs samples: the run folder has its resolved config, environment,
/// metrics and summary, and the model folder holds the backbone with the thought row, LatentRATT and latent.json.
#[test]
fn a_tiny_latent_run_writes_its_run_folder_and_model() {
    let (_keep, run) = tiny_run(&[]);
    for f in ["config.resolved.toml", "env.json", "metrics.jsonl", "summary.json"] {
        assert!(run.join(f).is_file(), "{f} is missing in {}", run.display());
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["loss"].is_number())
        .collect();
    assert_eq!(steps.len(), 2, "{metrics}");
    assert!(steps.iter().all(|s| s["loss"].as_f64().unwrap().is_finite()), "{metrics}");
    assert!(std::fs::read_to_string(run.join("config.resolved.toml")).unwrap().contains("sample = 4"));

    let model = run.join("model");
    let meta = json(&model.join("latent.json"));
    assert_eq!((meta["n_latent"].as_u64(), meta["thought_id"].as_u64()), (Some(1), Some(49152)), "{meta}");
    assert_eq!(meta["encoder"]["category"], "musics");
    assert_eq!(json(&model.join("backbone/config.json"))["vocab_size"], 49153, "the thought row is exported");
    assert!(model.join("latentratt.safetensors").is_file());
    assert!(std::fs::read_to_string(model.join("backbone/tokenizer.json")).unwrap().contains("<|Thought|>"));
    assert!(model.join("backbone/model.safetensors").is_file());

    // A finished run folder is not overwritten by a second fresh run.
    let smoke = repo_file("experiments/sft/cds-latentr3-smoke.toml");
    let out = latentr3(&[
        "train",
        "sft",
        "--config",
        &smoke,
        "--set",
        "run.timestamped=false",
        "--set",
        &format!("run.output_dir={:?}", run.display().to_string()),
    ]);
    assert!(!out.status.success() && stderr_of(&out).contains("already holds a run"), "{}", stderr_of(&out));
}

/// `--no-latent` trains BIGRec: no thought row, no LatentRATT.
#[test]
fn no_latent_trains_bigrec() {
    let (_keep, run) = tiny_run(&["--no-latent"]);
    let model = run.join("model");
    let meta = json(&model.join("latent.json"));
    assert_eq!(meta["n_latent"].as_u64(), Some(0), "{meta}");
    assert!(meta["ratt"].is_null(), "{meta}");
    assert_eq!(json(&model.join("backbone/config.json"))["vocab_size"], 49152);
    assert!(!model.join("latentratt.safetensors").exists());
}

#[test]
fn bench_sft_prints_one_json_line_and_dumps_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("batch.json");
    let out = latentr3(&[
        "bench",
        "sft",
        "--model",
        "smollm2-135m",
        "--batch",
        "2",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--json",
        "--dump-batch",
        dump.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((v["kind"].as_str(), v["batch"].as_u64()), (Some("sft"), Some(2)), "{v}");
    for key in ["median_s", "tokens_per_s", "loss", "peak_rss_mb"] {
        assert!(v[key].as_f64().is_some_and(|x| x.is_finite() && x > 0.0), "{key}: {v}");
    }
    assert_eq!(v["warmup"], 0, "{v}");
    assert_eq!(v["times_s_sorted"].as_array().map(Vec::len), Some(1), "{v}");
    let batch: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    assert_eq!(batch["thought_id"], 49152);
    let samples = batch["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0]["prompt_ids"][0], 1, "SmolLM2 prompts start with BOS");
    assert_eq!(samples[0]["target_ids"].as_array().unwrap().last().unwrap(), 2, "targets end with EOS");
}

/// An empty config is checked whole before any model is fetched: the missing `data.stem` is its own error (it
/// failed after loading the default model, with "no prompt word for the dataset ``").
#[test]
fn an_empty_config_names_the_missing_stem_before_fetching() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.toml");
    std::fs::write(&path, "").unwrap();
    let out = latentr3(&["train", "sft", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("`data.stem` is not set") && !err.contains("prompt word"), "{err}");
}
