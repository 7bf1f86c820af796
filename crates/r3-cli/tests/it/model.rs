//! Pretrained models through the binary: `bench prefill --json`, `bench decode --dump-ids`, `generate`,
//! `model export` and `--model DIR`, and the errors for an unknown model id or a folder that is not a model. They use
//! the fetched `smollm2-135m` (`latentr3 model fetch smollm2-135m`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with the whitespace-separated arguments of `line`, then the `extra` ones (paths, text with
/// spaces).
fn latentr3(line: &str, extra: &[&dyn AsRef<OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latentr3"));
    cmd.args(line.split_whitespace());
    for arg in extra {
        cmd.arg(arg);
    }
    cmd.output().unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn bench_prefill_prints_one_json_line() {
    let out = latentr3("bench prefill --model smollm2-135m --batch 1 --tokens 16 --runs 2 --warmup 1 --json", &[]);
    let stdout = stdout_of(&out);
    assert_eq!(stdout.lines().count(), 1, "--json prints exactly one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["kind"], "prefill");
    assert_eq!([&v["batch"], &v["tokens"], &v["runs"]], [1, 16, 2], "{v}");
    for key in ["median_s", "tokens_per_s", "gflops"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} is positive: {v}");
    }
    assert!(v["threads"].as_u64().is_some_and(|n| n >= 1) && v["device"].is_string(), "{v}");
}

#[test]
fn bench_decode_dumps_the_token_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = tmp.path().join("ids.json");
    let out = latentr3(
        "bench decode --model smollm2-135m --batch 2 --tokens 8 --runs 1 --warmup 0 --json --dump-ids",
        &[&ids],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(v["kind"], "decode");
    assert!(v["tokens_per_s"].as_f64().is_some_and(|x| x > 0.0), "{v}");
    let dumped: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ids).unwrap()).unwrap();
    let windows = dumped["windows"].as_array().unwrap();
    // Two rows of 8 cached tokens plus the decoded one.
    assert_eq!(windows.len(), 2);
    assert!(windows.iter().all(|w| w.as_array().unwrap().len() == 9), "{dumped}");
}

#[test]
fn generate_runs_end_to_end() {
    let out = latentr3("generate --model smollm2-135m --max-new-tokens 4 --prompt", &[&"My favourite albums are"]);
    assert!(!stdout_of(&out).trim().is_empty(), "some text is generated");
}

/// `model export` writes a Hugging Face folder, and `--model DIR` loads it: greedy decoding gives the same text
/// as the GGUF file it came from.
#[test]
fn exported_folder_generates_like_the_gguf() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("smollm2-hf");
    let out = latentr3("model export --model smollm2-135m --out", &[&dir]);
    assert_eq!(stdout_of(&out).trim(), dir.to_str().unwrap());
    for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        assert!(dir.join(file).is_file(), "{file} is written");
    }
    let generate = |model: &Path| {
        stdout_of(&latentr3("generate --max-new-tokens 6 --prompt", &[&"Abbey Road, Revolver,", &"--model", &model]))
    };
    assert_eq!(generate(&dir), generate(Path::new("smollm2-135m")));
    // Exporting again into the same, now non-empty, folder is refused.
    let again = latentr3("model export --model smollm2-135m --out", &[&dir]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[test]
fn an_unknown_model_id_lists_the_known_ones() {
    let out = latentr3("generate --model gpt-5 --prompt hello --max-new-tokens 1", &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for id in ["gpt-5", "smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"] {
        assert!(stderr.contains(id), "the error names {id}: {stderr}");
    }
    // A folder without config.json is not a model.
    let tmp = tempfile::tempdir().unwrap();
    let out = latentr3("bench prefill --runs 1 --model", &[&tmp.path()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}
