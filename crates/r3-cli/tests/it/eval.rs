//! `latentr3 eval`, `latentr3 recommend` and `latentr3 bench eval` through the binary with the fetched SmolLM2 on
//! the CDs data: the run folder and its files, a resumed evaluation (the JSONL cut to one line plus a partly
//! written one) that ends with the same predictions as the uninterrupted run, a LatentR³ model folder (one latent
//! token, random LatentRATT) evaluated with D3 decoding, `recommend` printing k catalogue titles, the benchmark's
//! JSON line and dump, chain-of-thought decoding (`--cot-tokens`) writing the reasoning, and the errors for an unknown stem, a missing checkpoint, `--limit 0` and changed settings on resume (naming the
//! setting with both values).

use std::path::Path;
use std::process::{Command, Output};

use r3_data::{Catalogue, Encoder, EncoderConfig, Tokenizer};
use r3_latent::{LatentModelConfig, LatentRattConfig};
use serde_json::Value;

const STEM: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

fn latentr3(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latentr3")).args(args).output().unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn catalogue() -> Catalogue {
    let data = r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18");
    Catalogue::read(&data.join("info").join(format!("{STEM}.txt"))).unwrap()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `predict` lists of a `predictions.json`, in record order.
fn predicts(run: &Path) -> Vec<Vec<String>> {
    let v = read_json(&run.join("predictions.json"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["predict"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect())
        .collect()
}

/// `eval` of 3 seeded test users with the untuned SmolLM2, in batches of 2, into `out`.
fn eval_args<'a>(out: &'a str, seed: &'a str) -> Vec<&'a str> {
    let mut args = vec!["eval", "--model", "smollm2-135m", "--stem", STEM, "--split", "test", "--limit", "3"];
    args.extend_from_slice(&["--seed", seed, "--batch", "2", "--out", out]);
    args
}

/// Three seeded test users with the untuned SmolLM2 ("Base"): the run folder's files, then a resume from a JSONL
/// cut to its first line plus a partly written second line: it completes, and the predictions equal the
/// uninterrupted run's. Changing a setting on resume is refused, naming the key and eval.json.
#[test]
fn eval_writes_its_run_folder_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run1 = tmp.path().join("run1");
    let run1_s = run1.to_str().unwrap();
    let stdout = stdout_ok(&latentr3(&eval_args(run1_s, "5")));
    assert!(stdout.contains("HR@10") && stdout.contains("latency per user"), "{stdout}");
    for f in ["eval.json", "predictions.jsonl", "predictions.json", "metrics.json"] {
        assert!(run1.join(f).is_file(), "{f} is missing in {}", run1.display());
    }
    let jsonl = std::fs::read_to_string(run1.join("predictions.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 3, "{jsonl}");
    let cat = catalogue();
    let first = predicts(&run1);
    assert_eq!(first.len(), 3);
    for p in &first {
        assert_eq!(p.len(), 10, "10 predictions per user");
        for title in p {
            let t = title.strip_prefix('"').and_then(|t| t.strip_suffix("\"\n")).unwrap();
            assert!(!cat.ids_of(t).is_empty(), "{title:?} is a catalogue title");
        }
    }
    let records = read_json(&run1.join("predictions.json"));
    let r0 = &records[0];
    assert!(r0["input"].as_str().unwrap().starts_with("The user has palyed the following musicss before: "), "{r0}");
    assert!(r0["output"].as_str().unwrap().ends_with("\"\n") && r0["scores"].as_array().unwrap().len() == 10);
    assert!(r0.get("reasoning").is_none(), "no reasoning without --cot-tokens: {r0}");
    let metrics = read_json(&run1.join("metrics.json"));
    assert_eq!(metrics["report"]["samples"], 3, "{metrics}");
    assert_eq!(metrics["n_latent"], 0);
    assert!(metrics["latency"]["median_s"].as_f64().is_some_and(|x| x > 0.0), "{metrics}");
    assert!(metrics["latency"]["p90_s"].as_f64() >= metrics["latency"]["median_s"].as_f64(), "{metrics}");
    assert!(metrics["report"]["buckets"].as_array().is_some_and(|b| !b.is_empty()), "{metrics}");
    assert_eq!(metrics["settings"]["decoding"], "bigrec");
    assert_eq!(metrics["search"]["num_beams"], 10, "{metrics}");
    let live = metrics["stream"]["live_share"].as_f64().unwrap_or(0.0);
    assert!(live > 0.0 && live <= 1.0, "the streaming evaluator's live rows: {metrics}");
    assert!(metrics["stream"]["steps_per_user"].as_f64().is_some_and(|s| s >= 2.0), "{metrics}");
    assert!(stdout.contains("steps per user"), "{stdout}");

    // A killed run: the first record, then half of the second; no predictions.json or metrics.json yet.
    let run2 = tmp.path().join("run2");
    std::fs::create_dir(&run2).unwrap();
    std::fs::copy(run1.join("eval.json"), run2.join("eval.json")).unwrap();
    let lines: Vec<&str> = jsonl.lines().collect();
    std::fs::write(run2.join("predictions.jsonl"), format!("{}\n{}", lines[0], &lines[1][..lines[1].len() / 2]))
        .unwrap();
    let run2_s = run2.to_str().unwrap();
    let out = latentr3(&eval_args(run2_s, "6"));
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("`seed` = 5") && err.contains("`seed` = 6") && err.contains("eval.json"), "{err}");
    stdout_ok(&latentr3(&eval_args(run2_s, "5")));
    let resumed = std::fs::read_to_string(run2.join("predictions.jsonl")).unwrap();
    assert_eq!(resumed.lines().count(), 3, "{resumed}");
    assert_eq!(resumed.lines().next(), Some(lines[0]), "the finished record is kept as it was");
    assert_eq!(predicts(&run2), first, "the resumed run's predictions equal the uninterrupted run's");
    assert_eq!(read_json(&run2.join("metrics.json"))["report"]["by_title"], metrics["report"]["by_title"]);
}

/// A LatentR³ model folder (SmolLM2 with the thought row and a seeded random LatentRATT, one latent token) is
/// evaluated with D3 decoding and recommends through `--checkpoint`.
#[test]
fn a_latent_checkpoint_evaluates_and_recommends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let path = r3_backbone::fetch::cached_path("smollm2-135m");
    let device = burn::tensor::Device::flex();
    let loaded = r3_backbone::load_gguf(&path, &device).unwrap();
    let gguf = r3_backbone::gguf::Gguf::open(&path).unwrap();
    let tokenizer = Tokenizer::from_bpe_vocab(r3_backbone::vocab::bpe_vocab(&gguf).unwrap()).unwrap();
    let encoder = Encoder::new(tokenizer, EncoderConfig::for_dataset(STEM).unwrap()).unwrap();
    device.seed(11);
    let d = loaded.model.hidden_size();
    let model = LatentModelConfig::new().with_ratt(Some(LatentRattConfig::new(d))).init(loaded.model, &device);
    let mut backbone_config = loaded.config;
    backbone_config.vocab_size = model.backbone.vocab_size();
    r3_train::save_model_dir(&r3_train::LatentSetup { model, encoder, backbone_config }, &dir).unwrap();

    let run = tmp.path().join("run");
    let (dir_s, run_s) = (dir.to_str().unwrap(), run.to_str().unwrap());
    let args = ["eval", "--checkpoint", dir_s, "--stem", STEM, "--limit", "2", "--decoding", "d3", "--out", run_s];
    stdout_ok(&latentr3(&args));
    let metrics = read_json(&run.join("metrics.json"));
    assert_eq!((metrics["n_latent"].as_u64(), metrics["report"]["samples"].as_u64()), (Some(1), Some(2)));
    assert_eq!(metrics["search"]["length_penalty"], 0.0);
    let records = read_json(&run.join("predictions.json"));
    for r in records.as_array().unwrap() {
        let scores: Vec<f64> = r["scores"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "D3 scores descend: {scores:?}");
    }

    let out = latentr3(&["recommend", "--checkpoint", dir_s, "--k", "3", "--json", "--history", "Abbey Road"]);
    let v: Value = serde_json::from_str(stdout_ok(&out).trim()).unwrap();
    assert_eq!(v["recommendations"].as_array().unwrap().len(), 3, "{v}");
}

/// `eval --cot-tokens 4` with the untuned SmolLM2 on 2 seeded test users: every record carries its reasoning
/// text, the predictions are catalogue titles, the settings and metrics name the budget and the cues, and the
/// users decoded together (`--batch 2`) get the same reasoning and predictions as one at a time (`--batch 1`).
#[test]
fn eval_with_cot_tokens_writes_the_reasoning() {
    let help = stdout_ok(&latentr3(&["eval", "--help"]));
    assert!(help.contains("--cot-tokens"), "{help}");
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue();
    let mut runs = Vec::new();
    for batch in ["2", "1"] {
        let run = tmp.path().join(format!("cot-batch{batch}"));
        let run_s = run.to_str().unwrap();
        let mut args = vec!["eval", "--model", "smollm2-135m", "--stem", STEM, "--limit", "2", "--seed", "3"];
        args.extend_from_slice(&["--batch", batch, "--cot-tokens", "4", "--out", run_s]);
        let t = std::time::Instant::now();
        stdout_ok(&latentr3(&args));
        eprintln!("eval --cot-tokens 4 --batch {batch}: {:.1} s", t.elapsed().as_secs_f64());
        assert_eq!(read_json(&run.join("eval.json"))["cot_tokens"], 4);
        let metrics = read_json(&run.join("metrics.json"));
        assert_eq!(metrics["cot"]["max_tokens"], 4, "{metrics}");
        assert_eq!(metrics["cot"]["answer_cue"].as_str(), Some(r3_decode::ANSWER_CUE), "{metrics}");
        let records = read_json(&run.join("predictions.json"));
        let records = records.as_array().unwrap().clone();
        assert_eq!(records.len(), 2);
        for r in &records {
            let reasoning = r["reasoning"].as_str().unwrap_or_else(|| panic!("no reasoning in {r}"));
            assert!(!reasoning.is_empty() && reasoning.len() < 200, "4 tokens of reasoning: {reasoning:?}");
            let predict = r["predict"].as_array().unwrap();
            assert_eq!(predict.len(), 10);
            for title in predict {
                let title = title.as_str().unwrap();
                let t = title.strip_prefix('"').and_then(|t| t.strip_suffix("\"\n")).unwrap();
                assert!(!cat.ids_of(t).is_empty(), "{title:?} is a catalogue title");
            }
        }
        runs.push(records);
    }
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        assert_eq!(a["user_id"], b["user_id"]);
        assert_eq!(a["reasoning"], b["reasoning"], "batch 2 vs batch 1");
        assert_eq!(a["predict"], b["predict"], "batch 2 vs batch 1");
    }
}

#[test]
fn recommend_prints_k_catalogue_titles() {
    let cat = catalogue();
    let known = cat.titles()[0].clone();
    let args = ["recommend", "--model", "smollm2-135m", "--k", "5", "--history", &known, "An Album Nobody Made 123"];
    let out = latentr3(&args);
    let stdout = stdout_ok(&out);
    let err = stderr_of(&out);
    assert!(err.contains("free text") && err.contains("An Album Nobody Made 123"), "{err}");
    assert!(!err.contains(&format!("title={known}")), "a catalogue title is not warned about: {err}");
    let lines: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    for (i, line) in lines.iter().enumerate() {
        // `rank  score  item ids  title`
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[0], (i + 1).to_string(), "{line}");
        assert!(cols[1].parse::<f32>().is_ok_and(|s| s < 0.0), "{line}");
        let ids: Vec<u32> = cols[2].split(',').map(|x| x.parse().unwrap()).collect();
        let title = cat.title(ids[0]).unwrap();
        assert!(line.ends_with(title), "{line} ends with the catalogue title {title:?} of item {}", ids[0]);
        assert_eq!(cat.ids_of(title), ids, "{line}");
    }
}

#[test]
fn bench_eval_prints_one_json_line_and_dumps_the_users() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("dump.json");
    let args = [
        "bench",
        "eval",
        "--model",
        "smollm2-135m",
        "--users",
        "2",
        "--batch",
        "2",
        "--n-latent",
        "1",
        "--warmup",
        "0",
        "--json",
        "--dump",
    ];
    let mut args: Vec<&str> = args.to_vec();
    args.push(dump.to_str().unwrap());
    let stdout = stdout_ok(&latentr3(&args));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((v["kind"].as_str(), v["users"].as_u64(), v["n_latent"].as_u64()), (Some("eval"), Some(2), Some(1)));
    for key in ["median_users_per_s", "users_per_s", "latency_median_s", "latency_p90_s"] {
        assert!(v[key].as_f64().is_some_and(|x| x.is_finite() && x > 0.0), "{key}: {v}");
    }
    let d = read_json(&dump);
    assert_eq!(d["prompts"].as_array().unwrap().len(), 2);
    assert_eq!(d["prompts"][0][0], 1, "SmolLM2 prompts start with BOS");
    let cat = catalogue();
    assert_eq!(d["catalogue_ids"].as_array().unwrap().len(), cat.len());
    assert_eq!(d["results"][0].as_array().unwrap().len(), 10);
}

#[test]
fn errors_name_the_stem_and_the_checkpoint() {
    let out = latentr3(&["eval", "--model", "smollm2-135m", "--stem", "Nope_Stem", "--limit", "1"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("Nope_Stem") && err.contains("--stem"), "{err}");

    let out = latentr3(&["eval", "--checkpoint", "/no/such/model", "--stem", STEM, "--limit", "1"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("/no/such/model") && err.contains("train sft"), "{err}");

    let out = latentr3(&["recommend", "--checkpoint", "/no/such/model", "--history", "Abbey Road"]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("/no/such/model"), "{}", stderr_of(&out));

    // `--limit 0` would evaluate nobody: refused before anything is loaded, naming the flag.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out =
        latentr3(&["eval", "--model", "smollm2-135m", "--stem", STEM, "--limit", "0", "--out", run.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("--limit 0") && err.contains("at least one"), "{err}");
    assert!(!run.exists(), "no run folder for a refused run");

    let out = latentr3(&["eval", "--stem", STEM]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("--checkpoint") && err.contains("--model"), "{err}");
}
