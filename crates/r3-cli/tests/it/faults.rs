//! The CLI fault suite: a table of bad inputs, each run through the real binary, with the exit code it must give
//! and a phrase its message must contain. A panic anywhere (exit code 101 or `panicked at` on stderr) fails the
//! suite, and so does an OS error text printed twice.
//!
//! The bad inputs are made in a temporary folder: datasets are the real CDs split files (symbolic links) with one
//! file replaced by a damaged copy; raw review and metadata files come from the real Amazon 2018 files of the
//! shared data folder; models are a tiny random Llama written as GGUF (and exported as a Hugging Face folder by
//! the binary), so that no case loads a full model. Every case is independent of the others and of the model
//! cache (`LATENTR3_CACHE` points into the temporary folder).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use r3_backbone::dequant::GgmlType;
use r3_backbone::gguf::{Value, write_gguf};
use r3_data::Split;

const CDS: &str = "CDs_and_Vinyl_5_2015-10-2018-11";

/// One bad input: the arguments (whitespace-separated, with `{T}` the temporary folder and `{D}` the real data
/// folder), extra environment variables, the exit code and a phrase of stderr.
struct Case {
    args: String,
    env: Vec<(&'static str, String)>,
    code: i32,
    phrase: &'static str,
}

fn case(args: &str, code: i32, phrase: &'static str) -> Case {
    Case { args: args.into(), env: Vec::new(), code, phrase }
}

fn case_env(args: &str, env: &[(&'static str, &str)], code: i32, phrase: &'static str) -> Case {
    Case { args: args.into(), env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(), code, phrase }
}

fn data_root() -> PathBuf {
    r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18 beside the repository")
}

/// The four files of the CDs dataset in `dir`.
fn dataset_files(dir: &Path) -> [PathBuf; 4] {
    [
        dir.join("info").join(format!("{CDS}.txt")),
        Split::Train.path(dir, CDS),
        Split::Valid.path(dir, CDS),
        Split::Test.path(dir, CDS),
    ]
}

/// A copy of the CDs dataset in `{root}/{name}`: links to the real files, except file `which` (0 = info, 1 =
/// train, 2 = valid, 3 = test) whose bytes are `edit(real bytes)`; `None` removes that file.
fn dataset_variant(root: &Path, name: &str, which: usize, edit: impl Fn(Vec<u8>) -> Option<Vec<u8>>) {
    let real = dataset_files(&data_root());
    let dir = root.join(name);
    for (i, (src, dst)) in real.iter().zip(dataset_files(&dir)).enumerate() {
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if i == which {
            if let Some(bytes) = edit(std::fs::read(src).unwrap()) {
                std::fs::write(&dst, bytes).unwrap();
            }
        } else {
            std::os::unix::fs::symlink(src, &dst).unwrap();
        }
    }
}

/// `bytes` (a text file with `\n` or `\r\n` line ends) with line `line` (1-based) replaced by `edit(line)`.
fn edit_line(bytes: Vec<u8>, line: usize, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let text = String::from_utf8(bytes).unwrap();
    let sep = if text.contains("\r\n") { "\r\n" } else { "\n" };
    text.split(sep)
        .enumerate()
        .map(|(i, l)| if i + 1 == line { edit(l) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join(sep)
        .into_bytes()
}

/// `bytes` with field `col` (0-based, split at commas outside quotes) of line `line` replaced by `value`.
fn edit_field(bytes: Vec<u8>, line: usize, col: usize, value: &str) -> Vec<u8> {
    edit_line(bytes, line, |l| {
        let mut fields = Vec::new();
        let (mut cur, mut quoted) = (String::new(), false);
        for c in l.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    cur.push(c);
                }
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        fields[col] = value.to_string();
        fields.join(",")
    })
}

/// `bytes` with the marker `@@LATIN1@@` replaced by the Latin-1 byte of `é` (0xe9), which is not UTF-8.
fn latin1(bytes: Vec<u8>) -> Vec<u8> {
    let marker = b"@@LATIN1@@";
    let at = bytes.windows(marker.len()).position(|w| w == marker).unwrap();
    [&bytes[..at], &[0xe9], &bytes[at + marker.len()..]].concat()
}

/// Deterministic small weights.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % 2001) as f32 / 10_000.0 - 0.1
        })
        .collect()
}

/// The tensors of a tiny random Llama (d = 16, 2 layers, 2 heads, 1 key/value head, vocabulary 258): name,
/// GGUF dims (innermost first) and values.
type Tensors = Vec<(String, Vec<u64>, Vec<f32>)>;

const D: u64 = 16;
const FF: u64 = 32;
const VOCAB: u64 = 258;

fn tiny_tensors(layers: usize) -> Tensors {
    let mut t: Tensors = Vec::new();
    let mut push = |name: String, dims: Vec<u64>| {
        let n = dims.iter().product::<u64>() as usize;
        let seed = t.len() as u64 + 1;
        let values = if name.contains("norm") { vec![1.0; n] } else { weights(n, seed) };
        t.push((name, dims, values));
    };
    push("token_embd.weight".into(), vec![D, VOCAB]);
    for n in 0..layers {
        push(format!("blk.{n}.attn_norm.weight"), vec![D]);
        push(format!("blk.{n}.attn_q.weight"), vec![D, D]);
        push(format!("blk.{n}.attn_k.weight"), vec![D, D / 2]);
        push(format!("blk.{n}.attn_v.weight"), vec![D, D / 2]);
        push(format!("blk.{n}.attn_output.weight"), vec![D, D]);
        push(format!("blk.{n}.ffn_norm.weight"), vec![D]);
        push(format!("blk.{n}.ffn_gate.weight"), vec![D, FF]);
        push(format!("blk.{n}.ffn_up.weight"), vec![D, FF]);
        push(format!("blk.{n}.ffn_down.weight"), vec![FF, D]);
    }
    push("output_norm.weight".into(), vec![D]);
    t
}

fn tiny_metadata() -> Vec<(String, Value)> {
    let mut tokens: Vec<Value> = r3_data::tokenizer::byte_level_alphabet().into_iter().map(Value::String).collect();
    tokens.push(Value::String("Ġt".into()));
    tokens.push(Value::String("<|endoftext|>".into()));
    let mut types = vec![Value::I32(1); 257];
    types.push(Value::I32(3));
    let u = |v: u64| Value::U32(v as u32);
    vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.block_count".into(), u(2)),
        ("llama.embedding_length".into(), u(D)),
        ("llama.attention.head_count".into(), u(2)),
        ("llama.attention.head_count_kv".into(), u(1)),
        ("llama.feed_forward_length".into(), u(FF)),
        ("llama.rope.dimension_count".into(), u(D / 2)),
        ("llama.rope.freq_base".into(), Value::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(1e-5)),
        ("llama.context_length".into(), u(256)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![Value::String("Ġ t".into())])),
        ("tokenizer.ggml.eos_token_id".into(), u(VOCAB - 1)),
    ]
}

/// Writes a tiny GGUF model to `path`, with its metadata and tensors edited.
fn write_tiny(path: &Path, meta_edit: impl Fn(&mut Vec<(String, Value)>), tensor_edit: impl Fn(&mut Tensors)) {
    let mut meta = tiny_metadata();
    meta_edit(&mut meta);
    let mut tensors = tiny_tensors(2);
    tensor_edit(&mut tensors);
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let meta: Vec<(&str, Value)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let tensors: Vec<(&str, &[u64], GgmlType, &[u8])> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, d, _), b)| (n.as_str(), d.as_slice(), GgmlType::F32, b.as_slice()))
        .collect();
    std::fs::write(path, write_gguf(&meta, &tensors, 32)).unwrap();
}

fn set_meta(key: &'static str, value: Value) -> impl Fn(&mut Vec<(String, Value)>) {
    move |m| {
        m.retain(|(k, _)| k != key);
        m.push((key.into(), value.clone()));
    }
}

fn drop_meta(key: &'static str) -> impl Fn(&mut Vec<(String, Value)>) {
    move |m| m.retain(|(k, _)| k != key)
}

fn no_edit<T>(_: &mut T) {}

/// Sets element 5 of tensor `name` to `value`.
fn poison(name: &'static str, value: f32) -> impl Fn(&mut Tensors) {
    move |t| t.iter_mut().filter(|(n, _, _)| n == name).for_each(|(_, _, v)| v[5] = value)
}

/// The byte range of tensor `name` in a safetensors file.
fn safetensors_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let offsets = &header[name]["data_offsets"];
    let (a, b) = (offsets[0].as_u64().unwrap() as usize, offsets[1].as_u64().unwrap() as usize);
    8 + n + a..8 + n + b
}

/// A copy of the folder `src` as `dst`, with `file` replaced by `edit(its bytes)` (`None`: removed) and without
/// the checksum marker of `file` (so that the checks after the checksum are reached).
fn folder_variant(src: &Path, dst: &Path, file: &str, edit: impl Fn(Vec<u8>) -> Option<Vec<u8>>) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name == format!("{file}.sha256") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let bytes = if name == file { edit(bytes) } else { Some(bytes) };
        if let Some(b) = bytes {
            std::fs::write(dst.join(&name), b).unwrap();
        }
    }
}

fn config_edit(edit: impl Fn(&mut serde_json::Value)) -> impl Fn(Vec<u8>) -> Option<Vec<u8>> {
    move |bytes| {
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        edit(&mut v);
        Some(v.to_string().into_bytes())
    }
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2_read(path, &mut out);
    out
}

/// Decompresses a gzip file with the system's `gzip` (the tests have no gzip crate of their own).
fn flate2_read(path: &Path, out: &mut Vec<u8>) {
    let mut child = Command::new("gzip").arg("-dc").arg(path).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdout.take().unwrap().read_to_end(out).unwrap();
    assert!(child.wait().unwrap().success());
}

/// The first `n` lines of `bytes`.
fn head(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n').take(n) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// An edit of a file's bytes: the new bytes, or `None` to remove the file.
type FileEdit = Box<dyn Fn(Vec<u8>) -> Option<Vec<u8>>>;

/// Writes the bad inputs under `t` and returns the cases that use them.
fn cases(t: &Path) -> Vec<Case> {
    let mut c = Vec::new();
    let data = data_root();

    // ---- Datasets: `data stats` and `metrics` read the info file and the three split CSVs. ----
    let info_faults: Vec<(&str, FileEdit, &'static str)> = vec![
        (
            "info_empty_title",
            Box::new(|b| Some(edit_line(b, 3, |_| "\t2".into()))),
            "info/CDs_and_Vinyl_5_2015-10-2018-11.txt:3: column `title`: item 2 has an empty title",
        ),
        (
            "info_latin1",
            Box::new(|b| Some(latin1(edit_line(b, 4, |l| format!("Caf@@LATIN1@@{l}"))))),
            ":4: column `title<TAB>item_id`: byte 4 of the line (0xe9) is not UTF-8",
        ),
        (
            "info_no_tab",
            Box::new(|b| Some(edit_line(b, 2, |l| l.replace('\t', " ")))),
            ":2: column `title<TAB>item_id`: no tab",
        ),
        (
            "info_gap",
            Box::new(|b| Some(edit_line(b, 5, |l| l.replace("\t4", "\t5")))),
            ":5: item id 5 on line 5: ids must be dense",
        ),
        (
            "info_bad_id",
            Box::new(|b| Some(edit_line(b, 6, |l| l.replace("\t5", "\tfive")))),
            ":6: column `item_id`: `five` is not a non-negative integer",
        ),
        ("info_empty", Box::new(|_| Some(Vec::new())), "the catalogue is empty"),
        ("info_missing", Box::new(|_| None), "the catalogue `info/{stem}.txt` is missing"),
    ];
    let csv_faults: Vec<(&str, FileEdit, &'static str)> = vec![
        ("unterminated", Box::new(|b| Some(edit_field(b, 3, 5, "\"['oops, \""))), ":3: column `history_item_title`"),
        (
            "item_id_text",
            Box::new(|b| Some(edit_field(b, 4, 4, "12x"))),
            ":4: column `item_id`: `12x` is not an integer",
        ),
        (
            "timestamp_text",
            Box::new(|b| Some(edit_field(b, 2, 10, "soon"))),
            ":2: column `timestamp`: `soon` is not an integer",
        ),
        ("rating_text", Box::new(|b| Some(edit_field(b, 5, 8, "five"))), ":5: column `rating`: `five` is not a number"),
        (
            "extra_field",
            Box::new(|b| Some(edit_line(b, 2, |l| format!("{l},extra")))),
            ":2: column `(row)`: 12 fields where the header has 11",
        ),
        (
            "header",
            Box::new(|b| Some(edit_line(b, 1, |l| l.replace("item_asin,", "asin,")))),
            ":1: column `(header)`: expected the columns",
        ),
        ("id_outside", Box::new(|b| Some(edit_field(b, 2, 4, "5841"))), ":2: `item_id` 5841 is outside the catalogue"),
        ("title_differs", Box::new(|b| Some(edit_field(b, 2, 6, "Loud Days"))), "Loud Days"),
        (
            "lengths_differ",
            Box::new(|b| Some(edit_field(b, 2, 7, "\"[5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\""))),
            ":2: ",
        ),
        ("latin1", Box::new(|b| Some(latin1(edit_field(b, 3, 0, "A@@LATIN1@@B")))), ":3: column `field 1`: not UTF-8"),
        ("missing", Box::new(|_| None), "the split CSV is missing"),
    ];
    let mut datasets = Vec::new();
    for (name, edit, phrase) in &info_faults {
        dataset_variant(t, name, 0, edit);
        datasets.push((name.to_string(), *phrase));
    }
    for (s, split) in ["train", "valid", "test"].iter().enumerate() {
        for (name, edit, phrase) in &csv_faults {
            let name = format!("{split}_{name}");
            dataset_variant(t, &name, s + 1, edit);
            datasets.push((name, *phrase));
        }
    }
    for (name, phrase) in &datasets {
        c.push(case(&format!("data stats --data {{T}}/{name} --stem {CDS}"), 1, phrase));
    }
    // The same damaged datasets through `metrics` (which loads the dataset before the predictions).
    write(&t.join("one.json"), r#"[{"input": "i", "output": "\"A\"\n", "predict": ["\"A\"\n"]}]"#);
    for (name, phrase) in datasets.iter().filter(|(n, _)| n.starts_with("info") || n.starts_with("test")) {
        c.push(case(&format!("metrics --predictions {{T}}/one.json --data {{T}}/{name} --stem {CDS}"), 1, phrase));
    }
    c.push(case(
        &format!("data stats --data {{T}}/nowhere --stem {CDS}"),
        1,
        "the data folder does not exist: pass --data DIR",
    ));
    c.push(case("data stats --data {D} --stem No_Such_Stem", 1, "No_Such_Stem.txt"));
    c.push(case(&format!("data stats --data {{D}} --stem {CDS} --coverage 0"), 1, "--coverage must be in (0, 1]"));
    c.push(case(&format!("data stats --data {{D}} --stem {CDS} --coverage 1.5"), 1, "--coverage must be in (0, 1]"));
    c.push(case(&format!("data stats --data {{D}} --stem {CDS} --coverage x"), 2, "invalid value 'x' for '--coverage"));
    c.push(case("data stats --data {D}", 2, "--stem <STEM>"));
    c.push(case_env(
        &format!("data stats --stem {CDS}"),
        &[("LATENTR3_DATA", "/nonexistent/data")],
        1,
        "/nonexistent/data",
    ));

    // ---- Raw files: `data prepare`. ----
    let raw = data.join("raw");
    let reviews = gunzip(&raw.join("Appliances_5.json.gz"));
    let meta = gunzip(&raw.join("meta_Magazine_Subscriptions.json.gz"));
    let ok_review = String::from_utf8(head(&reviews, 1)).unwrap();
    let ok_review = ok_review.trim_end();
    write(&t.join("raw/reviews.json"), head(&reviews, 200));
    write(
        &t.join("raw/reviews_truncated.json"),
        [head(&reviews, 3), ok_review.as_bytes()[..ok_review.len() / 2].to_vec()].concat(),
    );
    write(&t.join("raw/reviews_blank.json"), [head(&reviews, 2), b"\n".to_vec(), head(&reviews, 2)].concat());
    write(&t.join("raw/reviews_no_asin.json"), format!("{ok_review}\n{}\n", ok_review.replace("\"asin\"", "\"ASIN\"")));
    write(
        &t.join("raw/reviews_overall_text.json"),
        format!("{ok_review}\n{ok_review}\n{}\n", ok_review.replace("\"overall\": 5.0", "\"overall\": \"5.0\"")),
    );
    let mut latin1 = format!("{ok_review}\n{ok_review}\n").into_bytes();
    latin1
        .extend_from_slice(b"{\"reviewerID\": \"A\xe9\", \"asin\": \"B1\", \"overall\": 5.0, \"unixReviewTime\": 1}\n");
    write(&t.join("raw/reviews_latin1.json"), latin1);
    write(&t.join("raw/reviews_not_json.json"), "reviewerID,asin,overall\nA1,B1,5\n");
    write(&t.join("raw/reviews_array.json"), format!("[{ok_review}]\n"));
    write(&t.join("raw/reviews_empty.json"), "");
    let gz = std::fs::read(raw.join("Appliances_5.json.gz")).unwrap();
    write(&t.join("raw/reviews_cut.json.gz"), &gz[..gz.len() / 2]);
    let mut garbage = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    garbage.extend((0..300u32).map(|i| (i * 37 % 251) as u8));
    write(&t.join("raw/reviews_garbage.json.gz"), garbage);
    write(&t.join("raw/meta_other.json"), head(&meta, 300));
    write(&t.join("raw/meta_empty.json"), "");
    let asins: Vec<String> = reviews
        .split(|&b| b == b'\n')
        .take(200)
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .map(|v| v["asin"].as_str().unwrap().to_string())
        .collect();
    let untitled: String = asins.iter().map(|a| format!("{{\"asin\": \"{a}\", \"price\": \"$1\"}}\n")).collect();
    write(&t.join("raw/meta_untitled.json"), untitled);
    let titled: String = asins.iter().map(|a| format!("{{\"asin\": \"{a}\", \"title\": \"Part {a}\"}}\n")).collect();
    write(&t.join("raw/meta_ok.json"), &titled);
    write(&t.join("raw/meta_no_asin.json"), format!("{titled}{{\"title\": \"No asin\"}}\n"));
    write(&t.join("raw/meta_title_list.json"), format!("{{\"asin\": \"B1\", \"title\": [\"A list\"]}}\n{titled}"));
    let prep = |r: &str, m: &str, extra: &str| {
        format!(
            "data prepare --reviews {{T}}/raw/{r} --meta {{T}}/raw/{m} --category Appliances --out {{T}}/prepared {extra}"
        )
    };
    c.push(case(&prep("reviews.json", "meta_other.json", ""), 1, "different categories"));
    c.push(case(&format!("data prepare --reviews {}/Appliances_5.json.gz --meta {}/meta_Magazine_Subscriptions.json.gz --category Appliances --out {{T}}/prepared", raw.display(), raw.display()), 1, "different categories"));
    c.push(case(&prep("reviews.json", "meta_untitled.json", ""), 1, "usable `title`"));
    c.push(case(&prep("reviews_empty.json", "meta_ok.json", ""), 1, "has no review"));
    c.push(case(&prep("reviews.json", "meta_empty.json", ""), 1, "has no record"));
    c.push(case(&prep("reviews.json", "meta_ok.json", "--k 500 --min-items 1 --start 1996-01"), 1, "lower k"));
    c.push(case(&prep("reviews_truncated.json", "meta_ok.json", ""), 1, "reviews_truncated.json:4:"));
    c.push(case(
        &prep("reviews_blank.json", "meta_ok.json", ""),
        1,
        "reviews_blank.json:3: column `(line)`: empty line",
    ));
    c.push(case(&prep("reviews_no_asin.json", "meta_ok.json", ""), 1, "reviews_no_asin.json:2:"));
    c.push(case(
        &prep("reviews_overall_text.json", "meta_ok.json", ""),
        1,
        "reviews_overall_text.json:3: column `overall`",
    ));
    c.push(case(&prep("reviews_latin1.json", "meta_ok.json", ""), 1, "reviews_latin1.json:3: column `(line)`: byte"));
    c.push(case(&prep("reviews_not_json.json", "meta_ok.json", ""), 1, "reviews_not_json.json:1:"));
    c.push(case(&prep("reviews_array.json", "meta_ok.json", ""), 1, "reviews_array.json:1:"));
    c.push(case(&prep("reviews_cut.json.gz", "meta_ok.json", ""), 1, "gzip"));
    c.push(case(&prep("reviews_garbage.json.gz", "meta_ok.json", ""), 1, "reviews_garbage.json.gz:1: column `(gzip)`"));
    c.push(case(&prep("nope.json", "meta_ok.json", ""), 1, "the raw reviews file does not exist"));
    c.push(case(&prep("reviews.json", "nope.json", ""), 1, "the raw metadata file does not exist"));
    c.push(case(&prep("reviews.json", "meta_no_asin.json", ""), 1, "column `asin`"));
    c.push(case(&prep("reviews.json", "meta_title_list.json", ""), 1, "meta_title_list.json:1: column `title`"));
    c.push(case(&prep("reviews.json", "meta_ok.json", "--k 0"), 1, "invalid setting `k`"));
    c.push(case(&prep("reviews.json", "meta_ok.json", "--max-history 0"), 1, "invalid setting `max_history`"));
    c.push(case(&prep("reviews.json", "meta_ok.json", "--start 2019-01"), 1, "invalid setting `start`"));
    c.push(case(&prep("reviews.json", "meta_ok.json", "--start 2017/10"), 2, "--start"));
    c.push(case(&prep("reviews.json", "meta_ok.json", "--end 2018-13"), 2, "--end"));
    c.push(case(
        "data prepare --reviews {T}/raw/reviews.json --meta {T}/raw/meta_ok.json --category a/b --out {T}/prepared",
        1,
        "invalid setting `category`",
    ));
    c.push(case(
        "data prepare --reviews {T}/raw/reviews.json --meta {T}/raw/meta_ok.json --out {T}/prepared",
        2,
        "--category <NAME>",
    ));

    // ---- `data synth`. ----
    c.push(case("data synth --reviews 0 --out {T}/synth", 1, "--reviews 0: nothing would be written"));
    c.push(case("data synth --reviews 100 --category a/b --out {T}/synth", 1, "cannot be a file name stem"));
    c.push(case("data synth --reviews=-5 --out {T}/synth", 2, "invalid value '-5' for '--reviews"));
    c.push(case("data synth --reviews 10", 2, "--out <DIR>"));
    write(&t.join("a_file"), "not a folder");
    c.push(case("data synth --reviews 100 --out {T}/a_file", 1, "a_file"));

    // ---- Prediction files: `metrics`. ----
    let test_rows = r3_data::read_split(&Split::Test.path(&data, CDS)).unwrap();
    let record = |i: usize, predict: serde_json::Value| serde_json::json!({"input": "i", "output": format!("\"{}\"\n", test_rows[i].item_title), "predict": predict});
    let all = |f: &dyn Fn(usize) -> serde_json::Value| serde_json::Value::Array((0..test_rows.len()).map(f).collect());
    let hit = |i: usize| record(i, serde_json::json!([format!("\"{}\"\n", test_rows[i].item_title)]));
    let good = all(&hit);
    write(&t.join("p/good.json"), good.to_string());
    write(&t.join("p/empty_predict.json"), all(&|i| record(i, serde_json::json!([]))).to_string());
    write(&t.join("p/wrapped.json"), serde_json::json!({"predictions": good}).to_string());
    write(
        &t.join("p/wrapped_pretty.json"),
        serde_json::to_string_pretty(&serde_json::json!({"predictions": good})).unwrap(),
    );
    write(&t.join("p/truncated.json"), &good.to_string()[..5000]);
    write(&t.join("p/empty.json"), "");
    write(&t.join("p/empty_array.json"), "[]");
    write(&t.join("p/not_json.json"), "input,output,predict\n");
    write(&t.join("p/numbers.json"), "[1, 2, 3]");
    let field = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v[7]);
        write(&t.join(format!("p/{name}.json")), v.to_string());
    };
    field("no_input", &|r| drop(r.as_object_mut().unwrap().remove("input")));
    field("no_output", &|r| drop(r.as_object_mut().unwrap().remove("output")));
    field("no_predict", &|r| drop(r.as_object_mut().unwrap().remove("predict")));
    field("input_number", &|r| r["input"] = 3.into());
    field("predict_string", &|r| r["predict"] = "A".into());
    field("predict_numbers", &|r| r["predict"] = serde_json::json!([1, 2]));
    field("output_empty_list", &|r| r["output"] = serde_json::json!([]));
    field("wrong_target", &|r| r["output"] = "\"Not The Target\"\n".into());
    let mut swapped = good.clone();
    swapped.as_array_mut().unwrap().swap(3, 4);
    write(&t.join("p/swapped.json"), swapped.to_string());
    let with_rows = |rows: &[usize]| {
        serde_json::Value::Array(
            rows.iter()
                .map(|&r| {
                    let mut rec = hit(r.min(test_rows.len() - 1));
                    rec["row"] = r.into();
                    rec
                })
                .collect(),
        )
    };
    write(&t.join("p/rows_ok.json"), with_rows(&[5, 3, 100]).to_string());
    write(&t.join("p/rows_outside.json"), with_rows(&[5, 99_999]).to_string());
    write(&t.join("p/rows_twice.json"), with_rows(&[5, 5]).to_string());
    let mut mixed = with_rows(&[5, 6]);
    mixed[1].as_object_mut().unwrap().remove("row");
    write(&t.join("p/rows_mixed.json"), mixed.to_string());
    let mut row_text = with_rows(&[5]);
    row_text[0]["row"] = "five".into();
    write(&t.join("p/row_text.json"), row_text.to_string());
    // Valid-split targets scored as a file without rows against the test split.
    let valid_rows = r3_data::read_split(&Split::Valid.path(&data, CDS)).unwrap();
    let short_valid: Vec<serde_json::Value> = valid_rows[..50]
        .iter()
        .map(|r| serde_json::json!({"input": "i", "output": format!("\"{}\"\n", r.item_title), "predict": ["\"A\"\n"]}))
        .collect();
    write(&t.join("p/short_valid.json"), serde_json::Value::Array(short_valid).to_string());
    let jsonl: String = (0..3).map(|i| format!("{}\n", hit(i))).collect();
    write(&t.join("p/lines_bad.jsonl"), format!("{jsonl}{{\"input\": \"i\", \"output\"\n"));
    let mut latin1 = jsonl.clone().into_bytes();
    latin1.extend_from_slice(b"{\"input\": \"caf\xe9\", \"output\": \"A\", \"predict\": []}\n");
    write(&t.join("p/lines_latin1.jsonl"), latin1);
    write(&t.join("p/line_array.jsonl"), format!("{jsonl}[1]\n"));
    let m = |file: &str, extra: &str| format!("metrics --predictions {{T}}/p/{file} --data {{D}} --stem {CDS} {extra}");
    c.push(case(&m("empty_predict.json", ""), 1, "every `predict` list of its 6157 records is empty"));
    c.push(case(&m("wrapped.json", ""), 1, "one JSON object with the key(s) `predictions`"));
    c.push(case(&m("wrapped_pretty.json", ""), 1, "if the records are the list under `predictions`"));
    c.push(case(&m("truncated.json", ""), 1, "malformed JSON"));
    c.push(case(&m("empty.json", ""), 1, "empty file"));
    c.push(case(&m("empty_array.json", ""), 1, "holds no prediction record"));
    c.push(case(&m("not_json.json", ""), 1, "not_json.json:1:"));
    c.push(case(&m("numbers.json", ""), 1, "record 0: field `(record)`: expected a JSON object, found a number"));
    c.push(case(&m("no_input.json", ""), 1, "record 7: field `input`: missing"));
    c.push(case(&m("no_output.json", ""), 1, "record 7: field `output`: missing"));
    c.push(case(&m("no_predict.json", ""), 1, "record 7: field `predict`: missing"));
    c.push(case(&m("input_number.json", ""), 1, "field `input`: expected a string, found a number"));
    c.push(case(&m("predict_string.json", ""), 1, "record 7: field `predict`"));
    c.push(case(&m("predict_numbers.json", ""), 1, "record 7: field `predict`"));
    c.push(case(&m("output_empty_list.json", ""), 1, "record 7"));
    c.push(case(&m("wrong_target.json", ""), 1, "record 7 has the target `Not The Target`"));
    c.push(case(&m("swapped.json", ""), 1, "record 3 has the target"));
    c.push(case(&m("rows_outside.json", ""), 1, "`row` 99999 is not a row"));
    c.push(case(&m("rows_twice.json", ""), 1, "row 5 is predicted twice"));
    c.push(case(&m("rows_mixed.json", ""), 1, "1 of 2 records have a `row` field"));
    c.push(case(&m("row_text.json", ""), 1, "`row` \"five\" is not a row"));
    c.push(case(&m("lines_bad.jsonl", ""), 1, "lines_bad.jsonl:4:"));
    c.push(case(&m("lines_latin1.jsonl", ""), 1, "lines_latin1.jsonl:4:15: byte 0xe9 is not UTF-8"));
    c.push(case(&m("line_array.jsonl", ""), 1, "record 3 (line 4): field `(record)`"));
    c.push(case(&m("nope.json", ""), 1, "nope.json: read: No such file or directory"));
    c.push(case(&m("good.json", "--k 5,1"), 2, "strictly increasing"));
    c.push(case(&m("good.json", "--k 0"), 2, "K = 0 is meaningless"));
    c.push(case(&m("good.json", "--k a,b"), 2, "--k"));
    c.push(case(&m("good.json", "--coverage 0"), 1, "--coverage must be in (0, 1]"));
    c.push(case(&m("good.json", "--split nope"), 2, "--split"));
    c.push(case(&m("good.json", "--baseline {T}/p/good.json --bootstrap 0"), 1, "--bootstrap 0"));
    c.push(case(&m("good.json", "--baseline {T}/p/rows_ok.json"), 1, "both files must predict the same rows"));
    c.push(case(&m("good.json", "--baseline {T}/p/empty_predict.json"), 1, "every `predict` list"));
    c.push(case(&m("good.json", "--baseline {T}/p/truncated.json"), 1, "truncated.json"));
    c.push(case(&m("good.json", "--split valid"), 1, "6157 prediction records but"));
    c.push(case(&m("rows_ok.json", "--split valid"), 1, "record 0 has the target"));
    c.push(case(&m("short_valid.json", ""), 1, "not (or not that often) a target of"));
    c.push(case("metrics --predictions {T}/p/good.json --data {D}", 2, "--stem <STEM>"));

    // ---- Models: a tiny GGUF, its damaged variants, and a Hugging Face folder exported from it. ----
    let g = t.join("m");
    std::fs::create_dir_all(&g).unwrap();
    write_tiny(&g.join("tiny.gguf"), no_edit, no_edit);
    write_tiny(&g.join("head_count_0.gguf"), set_meta("llama.attention.head_count", Value::U32(0)), no_edit);
    write_tiny(&g.join("head_count_7.gguf"), set_meta("llama.attention.head_count", Value::U32(7)), no_edit);
    write_tiny(&g.join("width_0.gguf"), set_meta("llama.embedding_length", Value::U32(0)), no_edit);
    write_tiny(&g.join("kv_heads_0.gguf"), set_meta("llama.attention.head_count_kv", Value::U32(0)), no_edit);
    write_tiny(&g.join("blocks_1.gguf"), set_meta("llama.block_count", Value::U32(1)), no_edit);
    write_tiny(&g.join("blocks_3.gguf"), set_meta("llama.block_count", Value::U32(3)), no_edit);
    write_tiny(&g.join("ff_wrong.gguf"), set_meta("llama.feed_forward_length", Value::U32(48)), no_edit);
    write_tiny(&g.join("arch_gpt2.gguf"), set_meta("general.architecture", Value::String("gpt2".into())), no_edit);
    write_tiny(&g.join("no_width.gguf"), drop_meta("llama.embedding_length"), no_edit);
    write_tiny(&g.join("width_text.gguf"), set_meta("llama.embedding_length", Value::String("16".into())), no_edit);
    write_tiny(&g.join("no_eps.gguf"), drop_meta("llama.attention.layer_norm_rms_epsilon"), no_edit);
    write_tiny(&g.join("tok_model.gguf"), set_meta("tokenizer.ggml.model", Value::String("llama".into())), no_edit);
    write_tiny(&g.join("tok_pre.gguf"), set_meta("tokenizer.ggml.pre", Value::String("falcon".into())), no_edit);
    write_tiny(&g.join("no_tokens.gguf"), drop_meta("tokenizer.ggml.tokens"), no_edit);
    write_tiny(&g.join("eos_outside.gguf"), set_meta("tokenizer.ggml.eos_token_id", Value::U32(9999)), no_edit);
    write_tiny(&g.join("nan.gguf"), no_edit, poison("blk.1.ffn_up.weight", f32::NAN));
    write_tiny(&g.join("inf.gguf"), no_edit, poison("token_embd.weight", f32::INFINITY));
    write_tiny(&g.join("no_tensor.gguf"), no_edit, |t: &mut Tensors| {
        t.retain(|(n, _, _)| n != "blk.0.ffn_gate.weight")
    });
    write_tiny(&g.join("shape.gguf"), no_edit, |t: &mut Tensors| {
        for (_, d, v) in t.iter_mut().filter(|(n, _, _)| n == "blk.0.attn_v.weight") {
            *d = vec![D, D];
            *v = weights((D * D) as usize, 9);
        }
    });
    let tiny = std::fs::read(g.join("tiny.gguf")).unwrap();
    write(&g.join("header_cut.gguf"), &tiny[..200]);
    write(&g.join("data_cut.gguf"), &tiny[..tiny.len() - 1000]);
    write(&g.join("not_gguf.gguf"), b"PK\x03\x04 a zip file, not GGUF");
    write(&g.join("empty.gguf"), b"");
    let mut version = tiny.clone();
    version[4..8].copy_from_slice(&9u32.to_le_bytes());
    write(&g.join("version.gguf"), version);
    // A copy with its checksum marker, then 4 KB overwritten with 0xFF (later modification time): the cheap
    // check hashes it and refuses it. The same damage under the old modification time passes that check, and
    // the loader's NaN check (0xFF bytes are NaN as f32) catches it.
    let sha = r3_backbone::fetch::sha256_of(&g.join("tiny.gguf")).unwrap();
    for name in ["marked", "marked_same_mtime"] {
        let path = g.join(format!("{name}.gguf"));
        write(&path, &tiny);
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(past).unwrap();
        write(&path.with_extension("gguf.sha256"), format!("{sha}\n"));
        let mut bytes = tiny.clone();
        let end = bytes.len();
        bytes[end - 4096 - 64..end - 64].fill(0xFF);
        write(&path, bytes);
        let when = if name == "marked" { std::time::SystemTime::now() } else { past };
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
    }
    let gguf = |file: &str| format!("{{T}}/m/{file}");
    let generate_with = |model: &str| format!("generate --max-new-tokens 2 --prompt=Hello --model {model}");
    let model_faults: Vec<(&str, &'static str)> = vec![
        ("head_count_0.gguf", "metadata `llama.attention.head_count`: is 0"),
        ("head_count_7.gguf", "metadata `llama.attention.head_count`: 7 heads do not divide"),
        ("width_0.gguf", "metadata `llama.embedding_length`: is 0"),
        ("kv_heads_0.gguf", "metadata `llama.attention.head_count_kv`: is 0"),
        ("blocks_1.gguf", "not used by the configuration"),
        ("blocks_3.gguf", "tensor `blk.2.attn_norm.weight`: missing from the file"),
        ("ff_wrong.gguf", "does not match the configuration's"),
        ("arch_gpt2.gguf", "only `llama` and `qwen2` decoders are implemented"),
        ("no_width.gguf", "llama.embedding_length"),
        ("width_text.gguf", "llama.embedding_length"),
        ("no_eps.gguf", "llama.attention.layer_norm_rms_epsilon"),
        ("tok_model.gguf", "metadata `tokenizer.ggml.model`: `llama` is not supported"),
        ("tok_pre.gguf", "unknown pre-tokenizer `falcon`"),
        ("no_tokens.gguf", "tokenizer.ggml.tokens"),
        ("eos_outside.gguf", "eos"),
        ("nan.gguf", "tensor `blk.1.ffn_up.weight`: 1 of 512 values are NaN or infinite"),
        ("inf.gguf", "tensor `token_embd.weight`: 1 of 4128 values are NaN or infinite"),
        ("no_tensor.gguf", "tensor `blk.0.ffn_gate.weight`: missing from the file"),
        ("shape.gguf", "tensor `blk.0.attn_v.weight`: shape [16, 16] does not match the configuration's [8, 16]"),
        ("header_cut.gguf", "corrupt GGUF"),
        ("data_cut.gguf", "corrupt GGUF"),
        ("not_gguf.gguf", "is not `GGUF`: not a GGUF file"),
        ("empty.gguf", "corrupt GGUF at byte 0"),
        ("version.gguf", "version"),
        ("marked.gguf", "the file is damaged: its sha256 is"),
        ("marked_same_mtime.gguf", "values are NaN or infinite"),
    ];
    for (file, phrase) in &model_faults {
        c.push(case(&generate_with(&gguf(file)), 1, phrase));
    }
    for (file, phrase) in model_faults.iter().step_by(3) {
        c.push(case(&format!("model export --model {} --out {{T}}/export_{file}", gguf(file)), 1, phrase));
    }
    for (file, phrase) in model_faults.iter().skip(1).step_by(4) {
        c.push(case(&format!("bench prefill --batch 1 --tokens 4 --runs 1 --model {}", gguf(file)), 1, phrase));
    }
    c.push(case(&generate_with("{T}/m/nope.gguf"), 1, "no such file or folder"));
    c.push(case(&generate_with("no-such-model"), 1, "unknown model id `no-such-model`"));
    c.push(case(&generate_with("{T}/m"), 1, "is a folder without config.json"));
    c.push(case(&format!("generate --prompt= --model {}", gguf("tiny.gguf")), 1, "--prompt is empty"));
    c.push(case(
        &format!("generate --prompt=Hi --max-new-tokens 0 --model {}", gguf("tiny.gguf")),
        1,
        "--max-new-tokens 0",
    ));
    c.push(case(
        &format!("generate --prompt=Hi --max-new-tokens=-1 --model {}", gguf("tiny.gguf")),
        2,
        "invalid value '-1' for '--max-new-tokens",
    ));
    c.push(case("generate --model smollm2-135m", 2, "--prompt <PROMPT>"));

    // The Hugging Face folder of the tiny model (exported by the binary) and its damaged variants.
    let hf = t.join("hf");
    let out = Command::new(env!("CARGO_BIN_EXE_latentr3"))
        .args(["model", "export", "--model"])
        .arg(g.join("tiny.gguf"))
        .arg("--out")
        .arg(&hf)
        .output()
        .unwrap();
    assert!(out.status.success(), "exporting the tiny model: {}", String::from_utf8_lossy(&out.stderr));
    let hf_faults: Vec<(&str, &str, FileEdit, &'static str)> = vec![
        (
            "layers_1",
            "config.json",
            Box::new(config_edit(|v| v["num_hidden_layers"] = 1.into())),
            "`num_hidden_layers` = 1: is it right?",
        ),
        (
            "layers_3",
            "config.json",
            Box::new(config_edit(|v| v["num_hidden_layers"] = 3.into())),
            "tensor `model.layers.2.",
        ),
        (
            "hidden_24",
            "config.json",
            Box::new(config_edit(|v| {
                v["hidden_size"] = 24.into();
                v["head_dim"] = 12.into();
            })),
            "does not match the configuration's",
        ),
        (
            "vocab_300",
            "config.json",
            Box::new(config_edit(|v| v["vocab_size"] = 300.into())),
            "model.embed_tokens.weight",
        ),
        (
            "untied",
            "config.json",
            Box::new(config_edit(|v| v["tie_word_embeddings"] = false.into())),
            "set `tie_word_embeddings: true` if the head is tied",
        ),
        (
            "heads_3",
            "config.json",
            Box::new(config_edit(|v| v["num_attention_heads"] = 3.into())),
            "config.json: metadata `",
        ),
        (
            "gpt2",
            "config.json",
            Box::new(config_edit(|v| v["model_type"] = "gpt2".into())),
            "metadata `model_type`: `gpt2` is not supported",
        ),
        (
            "rope_scaling",
            "config.json",
            Box::new(config_edit(|v| v["rope_scaling"] = serde_json::json!({"type": "linear", "factor": 2.0}))),
            "metadata `rope_scaling`",
        ),
        (
            "gelu",
            "config.json",
            Box::new(config_edit(|v| v["hidden_act"] = "gelu".into())),
            "metadata `hidden_act`: `gelu` is not supported",
        ),
        (
            "no_layers_key",
            "config.json",
            Box::new(config_edit(|v| drop(v.as_object_mut().unwrap().remove("num_hidden_layers")))),
            "metadata `num_hidden_layers`: missing field",
        ),
        (
            "layers_text",
            "config.json",
            Box::new(config_edit(|v| v["num_hidden_layers"] = "two".into())),
            "config.json: metadata `(json)`",
        ),
        (
            "config_cut",
            "config.json",
            Box::new(|b: Vec<u8>| Some(b[..b.len() / 2].to_vec())),
            "config.json: metadata `(json)`",
        ),
        ("no_config", "config.json", Box::new(|_| None), "is a folder without config.json"),
        (
            "weights_cut",
            "model.safetensors",
            Box::new(|b: Vec<u8>| Some(b[..b.len() / 2].to_vec())),
            "model.safetensors",
        ),
        (
            "weights_garbage",
            "model.safetensors",
            Box::new(|_| Some(b"\xff\xff\xff\xff\xff\xff\xff\xffnot safetensors".to_vec())),
            "model.safetensors",
        ),
        ("no_weights", "model.safetensors", Box::new(|_| None), "the folder has no safetensors file"),
        (
            "weights_nan",
            "model.safetensors",
            Box::new(move |mut b: Vec<u8>| {
                let r = safetensors_range(&b, "model.layers.0.mlp.up_proj.weight");
                b[r.start + 8..r.start + 12].copy_from_slice(&f32::NAN.to_le_bytes());
                Some(b)
            }),
            "tensor `model.layers.0.mlp.up_proj.weight`: holds NaN or infinite values",
        ),
        (
            "weights_inf",
            "model.safetensors",
            Box::new(move |mut b: Vec<u8>| {
                let r = safetensors_range(&b, "model.norm.weight");
                b[r.start..r.start + 4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
                Some(b)
            }),
            "tensor `model.norm.weight`: holds NaN or infinite values",
        ),
        ("no_tokenizer", "tokenizer.json", Box::new(|_| None), "reading the tokenizer of"),
        (
            "tokenizer_cut",
            "tokenizer.json",
            Box::new(|b: Vec<u8>| Some(b[..b.len() / 2].to_vec())),
            "reading the tokenizer of",
        ),
    ];
    for (name, file, edit, phrase) in &hf_faults {
        folder_variant(&hf, &t.join("hf_bad").join(name), file, edit);
        c.push(case(&generate_with(&format!("{{T}}/hf_bad/{name}")), 1, phrase));
    }
    for (name, _, _, phrase) in hf_faults.iter().step_by(4) {
        c.push(case(&format!("model export --model {{T}}/hf_bad/{name} --out {{T}}/export_hf_{name}"), 1, phrase));
    }
    // The exported weights changed after the export, with the checksum marker the export wrote beside them.
    let marked = t.join("hf_bad").join("weights_marked");
    folder_variant(&hf, &marked, "none", Some);
    let weights = marked.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let r = safetensors_range(&bytes, "model.norm.weight");
    bytes[r.start..r.start + 4].copy_from_slice(&0.5f32.to_le_bytes());
    write(&weights, bytes);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(&weights).unwrap().set_modified(later).unwrap();
    c.push(case(&generate_with("{T}/hf_bad/weights_marked"), 1, "model.safetensors: the file is damaged"));
    c.push(case(&format!("model export --model {} --out {{T}}/hf", gguf("tiny.gguf")), 1, "not empty"));
    c.push(case("model export --out {T}/x", 2, "--model <MODEL>"));

    // ---- The model cache: `model list`, `model fetch`, `--model ID`. ----
    let cache = t.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    // A damaged smollm2-135m: the right size and the right checksum marker, other bytes, modified after the marker.
    let spec = r3_backbone::fetch::spec("smollm2-135m").unwrap();
    let cached = cache.join("smollm2-135m.gguf");
    write(&cached.with_extension("gguf.sha256"), format!("{}\n", spec.sha256));
    let f = std::fs::File::create(&cached).unwrap();
    f.set_len(spec.size).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
    drop(f);
    // A qwen2.5-coder-0.5b of the wrong size.
    write(&cache.join("qwen2.5-coder-0.5b.gguf"), b"short");
    let cache_env = cache.to_str().unwrap().to_string();
    let env = |extra: &[(&'static str, &str)]| {
        let mut e: Vec<(&'static str, String)> = vec![("LATENTR3_CACHE", cache_env.clone())];
        e.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        e
    };
    c.push(Case { args: "model list".into(), env: env(&[]), code: 1, phrase: "1 cached file(s) are damaged" });
    c.push(Case { args: "model list --verify".into(), env: env(&[]), code: 1, phrase: "smollm2-135m.gguf: sha256" });
    c.push(Case {
        args: format!("generate --prompt=Hi --model {}", cached.display()),
        env: env(&[]),
        code: 1,
        phrase: "the file is damaged: its sha256 is",
    });
    c.push(Case {
        args: "generate --prompt=Hi --model smollm2-135m".into(),
        env: env(&[("PYTHON", "/nonexistent/python3")]),
        code: 1,
        phrase: "cannot run `/nonexistent/python3 -m pip`",
    });
    c.push(Case {
        args: "model fetch qwen2.5-coder-0.5b".into(),
        env: env(&[("PYTHON", "/nonexistent/python3")]),
        code: 1,
        phrase: "install Python 3 with pip",
    });
    c.push(case("model fetch gpt-17", 1, "unknown model id `gpt-17`"));
    c.push(case("model fetch", 2, "<ID>"));
    c.push(case("model list --verbose", 2, "--verbose"));

    // ---- The cached SmolLM2-135M: its real header with one hyper-parameter changed (sparse copies, so only
    // the header is real and only the header is read), and a full copy damaged as a disk or a bad copy would. ----
    let real = r3_backbone::fetch::fetched_path("smollm2-135m")
        .expect("the fault suite needs the cached smollm2-135m: run `latentr3 model fetch smollm2-135m`");
    let real_len = std::fs::metadata(&real).unwrap().len();
    let mut real_head = vec![0u8; 4 << 20];
    std::fs::File::open(&real).unwrap().read_exact(&mut real_head).unwrap();
    let sparse = |name: &str, key: &str, value: u32| {
        let mut head = real_head.clone();
        let pattern = [&(key.len() as u64).to_le_bytes()[..], key.as_bytes(), &4u32.to_le_bytes()].concat();
        let at = head.windows(pattern.len()).position(|w| w == pattern).unwrap() + pattern.len();
        head[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let path = g.join(name);
        std::fs::write(&path, head).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_len(real_len).unwrap();
    };
    sparse("real_head_count_0.gguf", "llama.attention.head_count", 0);
    sparse("real_head_count_7.gguf", "llama.attention.head_count", 7);
    sparse("real_width_0.gguf", "llama.embedding_length", 0);
    sparse("real_blocks_29.gguf", "llama.block_count", 29);
    write(&g.join("real_cut.gguf"), &real_head[..1 << 20]);
    for (file, phrase) in [
        ("real_head_count_0.gguf", "metadata `llama.attention.head_count`: is 0"),
        ("real_head_count_7.gguf", "metadata `llama.attention.head_count`: 7 heads do not divide"),
        ("real_width_0.gguf", "metadata `llama.embedding_length`: is 0"),
        ("real_blocks_29.gguf", "tensor `blk.29.attn_norm.weight`: not used by the configuration"),
        ("real_cut.gguf", "corrupt GGUF"),
    ] {
        c.push(case(&generate_with(&gguf(file)), 1, phrase));
    }
    // 4 KB overwritten with 0xFF in the middle of the weights, in a cache folder with the checksum marker: with a
    // new modification time the cheap check hashes the file; with the old one it passes, and the loader's NaN
    // check names the tensor (this case loads the whole model: nothing less can see that damage).
    let real_marker = std::fs::read(real.with_extension("gguf.sha256")).unwrap();
    for (dir, new_time) in [("realcache", true), ("realcache_same_mtime", false)] {
        let path = t.join(dir).join("smollm2-135m.gguf");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&real, &path).unwrap();
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(past).unwrap();
        write(&path.with_extension("gguf.sha256"), &real_marker);
        let mut f = std::fs::File::options().write(true).open(&path).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(real_len / 2)).unwrap();
        f.write_all(&[0xFF; 4096]).unwrap();
        f.set_modified(if new_time { std::time::SystemTime::now() } else { past }).unwrap();
    }
    let realcache = t.join("realcache").to_str().unwrap().to_string();
    c.push(case_env("model list", &[("LATENTR3_CACHE", &realcache)], 1, "1 cached file(s) are damaged"));
    c.push(case(&generate_with("{T}/realcache/smollm2-135m.gguf"), 1, "smollm2-135m.gguf: the file is damaged"));
    c.push(case_env(
        "generate --prompt=Hi --model smollm2-135m",
        &[("LATENTR3_CACHE", &realcache), ("PYTHON", "/nonexistent/python3")],
        1,
        "is damaged (sha256",
    ));
    c.push(case(&generate_with("{T}/realcache_same_mtime/smollm2-135m.gguf"), 1, "values are NaN or infinite"));
    c.push(case_env(
        "model list --verify",
        &[("LATENTR3_CACHE", t.join("realcache_same_mtime").to_str().unwrap())],
        1,
        "smollm2-135m.gguf: sha256",
    ));

    // ---- Devices: `--device` and `BURN_DEVICE` give the same clean errors. ----
    for (spec, phrase) in [
        ("cuda", "backend `Cuda` is not compiled into this binary"),
        ("vulkan:7", "backend `Vulkan` is not compiled into this binary"),
        ("wgpu", "backend `Wgpu` is not compiled into this binary"),
        ("tpu", "unknown device `tpu`"),
        ("flex:0", "the flex CPU backend has one device"),
        ("cuda:x", "must be a device index"),
    ] {
        c.push(case_env("device", &[("BURN_DEVICE", spec)], 1, phrase));
        let code = if phrase.contains("compiled") { 1 } else { 2 };
        c.push(case(&format!("device --device {spec}"), code, phrase));
    }
    c.push(case_env(
        &format!("generate --prompt=Hi --model {}", gguf("tiny.gguf")),
        &[("BURN_DEVICE", "cuda")],
        1,
        "BURN_DEVICE=cuda: backend `Cuda`",
    ));
    c.push(case_env(
        "bench prefill --batch 1 --tokens 4 --runs 1 --model {T}/m/tiny.gguf",
        &[("BURN_DEVICE", "rocm")],
        1,
        "BURN_DEVICE=rocm: unknown device `rocm`",
    ));

    // ---- Benchmarks: flags. ----
    c.push(case("bench prefill --batch x", 2, "--batch"));
    c.push(case("bench decode --tokens=-1", 2, "invalid value '-1' for '--tokens"));
    c.push(case("bench nope", 2, "unrecognized subcommand 'nope'"));

    // ---- Training: config errors found before anything is fetched. ----
    write(&t.join("train/syntax.toml"), "[train\nlr = 1e-4\n");
    write(&t.join("train/unknown_key.toml"), "[train]\nlrate = 1e-4\n");
    write(&t.join("train/wrong_type.toml"), "[train]\nlr = \"fast\"\n");
    write(&t.join("train/empty.toml"), "");
    for cmd in ["train sft", "train grpo"] {
        c.push(case(&format!("{cmd} --config {{T}}/train/missing.toml"), 1, "missing.toml"));
        c.push(case(&format!("{cmd} --config {{T}}/train/syntax.toml"), 1, "syntax.toml"));
        c.push(case(&format!("{cmd} --config {{T}}/train/unknown_key.toml"), 1, "lrate"));
        c.push(case(&format!("{cmd} --config {{T}}/train/wrong_type.toml"), 1, "wrong_type.toml"));
    }
    c.push(case("train sft", 2, "--config <CONFIG>"));
    c.push(case("train sft --config a.toml --resume b", 2, "cannot be used with"));

    // ---- Baselines, evaluation, recommendation: flag and input errors before any model is loaded. ----
    c.push(case("baseline train --model nope", 2, "invalid value 'nope' for '--model"));
    c.push(case("baseline train --config {T}/train/missing.toml", 1, "missing.toml"));
    c.push(case("baseline train --config {T}/train/syntax.toml", 1, "syntax.toml"));
    c.push(case("baseline eval --model sasrec --data {D}", 2, "--stem <STEM>"));
    c.push(case(
        &format!("eval --model {} --data {{T}}/info_empty_title --stem {CDS} --limit 4", gguf("tiny.gguf")),
        1,
        "empty title",
    ));
    c.push(case(
        &format!("eval --model {} --data {{T}}/test_missing --stem {CDS} --limit 4", gguf("tiny.gguf")),
        1,
        "the split CSV is missing",
    ));
    c.push(case(
        &format!("eval --model {} --data {{D}} --stem {CDS} --limit 4", gguf("nan.gguf")),
        1,
        "values are NaN or infinite",
    ));
    c.push(case(
        &format!("eval --model {} --data {{D}} --stem {CDS} --limit 4", gguf("head_count_7.gguf")),
        1,
        "`llama.attention.head_count`",
    ));
    c.push(case("eval --data {D}", 2, "--stem <STEM>"));
    c.push(case(
        &format!("recommend --model {} --data {{D}} --stem {CDS} --history=Abbey", gguf("nan.gguf")),
        1,
        "values are NaN or infinite",
    ));
    c.push(case(
        &format!("recommend --model {} --data {{T}}/info_latin1 --stem {CDS} --history=Abbey", gguf("tiny.gguf")),
        1,
        "is not UTF-8",
    ));
    c.push(case("recommend --data {D}", 2, "--history <HISTORY>"));
    c.push(case("nope", 2, "unrecognized subcommand 'nope'"));
    c
}

/// Runs every case and fails with the list of those that gave another exit code, lacked their phrase or
/// panicked.
#[test]
fn every_fault_gives_a_clear_error() {
    let start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = data_root();
    let table = cases(t);
    let setup_s = start.elapsed().as_secs_f64();
    let expand = |s: &str| s.replace("{T}", t.to_str().unwrap()).replace("{D}", data.to_str().unwrap());
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = table.get(i) else { break };
                    let args = expand(&case.args);
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latentr3"));
                    cmd.args(args.split_whitespace())
                        .env("LATENTR3_CACHE", t.join("empty-cache"))
                        .env_remove("BURN_DEVICE")
                        .env_remove("LATENTR3_DATA")
                        .env("RUST_LOG", "warn")
                        .current_dir(t);
                    for (k, v) in &case.env {
                        cmd.env(k, expand(v));
                    }
                    let out = cmd.output().unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let phrase = expand(case.phrase);
                    let code = out.status.code().unwrap_or(-1);
                    let mut wrong = Vec::new();
                    if code == 101 || stderr.contains("panicked at") {
                        wrong.push("PANIC".to_string());
                    }
                    if code != case.code {
                        wrong.push(format!("exit code {code}, expected {}", case.code));
                    }
                    // An I/O error's OS text is printed once, not by the error and again by its cause.
                    if stderr.matches("(os error").count() > 1 {
                        wrong.push("the OS error text is printed twice".into());
                    }
                    if !stderr.contains(&phrase) {
                        wrong.push(format!("no `{phrase}`"));
                    }
                    if !wrong.is_empty() {
                        let mut f = failures.lock().unwrap();
                        f.push(format!(
                            "case {i}: latentr3 {args}\n  {}\n  stderr: {}",
                            wrong.join("; "),
                            stderr.trim()
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let mut report = std::io::stderr();
    writeln!(
        report,
        "fault suite: {} cases, setup {setup_s:.1} s, total {:.1} s, {} failed",
        table.len(),
        start.elapsed().as_secs_f64(),
        failures.len()
    )
    .unwrap();
    assert!(table.len() >= 150, "the suite has {} cases; it must have at least 150", table.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), table.len(), failures.join("\n"));
}
