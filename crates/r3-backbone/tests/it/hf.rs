//! Hugging Face folders (`hf.rs`): the real GGUF checkpoints exported with [`export_hf_dir`] and read back with
//! [`load_hf_dir`] give bit-identical logits (max abs diff 0: the same f32 weights, transposed twice), the same
//! configuration and a `tokenizer.json` that encodes to the same ids; f16/bf16 files are cast on load; a missing
//! tensor or a bad `config.json` gives an error that names the file and the key.

use std::path::Path;

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, SafetensorsStore,
};
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use r3_backbone::gguf::Gguf;
use r3_backbone::hf::{CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use r3_backbone::{
    Arch, Backbone, BackboneConfig, HiddenInput, LoadedBackbone, export_hf_dir, load_gguf, load_hf_dir, vocab,
};
use r3_data::{BpeVocab, PreTokenizerKind, Tokenizer};

use crate::common::model_path;
use crate::common::test_device;

/// Strings whose ids must survive the export: plain text, digits, a control token, non-ASCII and whitespace.
const TEXTS: [&str; 5] = [
    "Greatest Hits - The Best of Henry Mancini, Abbey Road (Remastered)",
    "12345 apples cost $3.99 in 2018.",
    "<|im_start|>user\nRecommend a CD<|im_end|>",
    "Beyoncé — Lemonade 「日本語」 😀",
    "  leading spaces\tand\ttabs  ",
];

fn logits_of(m: &Backbone, ids: &[i64]) -> Tensor<3> {
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), &test_device());
    m.logits(m.hidden(HiddenInput::new(m.embed(t))).hidden) // [1, L, V]
}

fn maxdiff(a: Tensor<3>, b: Tensor<3>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}

/// Exports GGUF model `id`, reloads the folder and compares model, configuration and tokenizer.
fn round_trip(id: &str, arch: Arch, tied: bool) {
    let path = model_path(id);
    let device = test_device();
    let original = load_gguf(&path, &device).unwrap_or_else(|e| panic!("loading {id}: {e}"));
    assert_eq!((original.config.arch, original.config.tie_word_embeddings), (arch, tied), "{id}");
    let tokenizer = Tokenizer::from_bpe_vocab(vocab::bpe_vocab(&Gguf::open(&path).unwrap()).unwrap()).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(id);
    let t = std::time::Instant::now();
    export_hf_dir(&original, &tokenizer, &dir).unwrap();
    println!("{id}: exported in {:.1} s", t.elapsed().as_secs_f64());
    let weights = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + header_len]).unwrap();
    assert_eq!(header.get("lm_head.weight").is_some(), !tied, "{id}: lm_head.weight is written iff untied");
    let q = &header["model.layers.0.self_attn.q_proj.weight"];
    assert_eq!(q["dtype"], "F32", "{id}: f32 export");
    let (d, h) = (original.config.hidden_size, original.config.n_heads * original.config.head_dim);
    assert_eq!(q["shape"], serde_json::json!([h, d]), "{id}: PyTorch [out, in] layout");
    assert_eq!(header["model.layers.0.self_attn.q_proj.bias"].is_object(), original.config.qkv_bias, "{id}: biases");
    assert_eq!(header["__metadata__"]["format"], "pt", "{id}: transformers needs format = pt");
    drop(weights);

    let t = std::time::Instant::now();
    let back = load_hf_dir(&dir, &device).unwrap_or_else(|e| panic!("reloading {id}: {e}"));
    println!("{id}: reloaded in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(back.config.to_string(), original.config.to_string(), "{id}: configuration");
    let written = std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
    assert_eq!(written, original.config.to_hf_json(), "{id}: config.json");
    assert_eq!(back.model.num_params(), original.model.num_params(), "{id}: parameter count");

    // A 20-token prompt of real text.
    let ids: Vec<i64> = tokenizer.encode(&TEXTS[..2].join(" ")).into_iter().take(20).map(i64::from).collect();
    assert_eq!(ids.len(), 20);
    let d = maxdiff(logits_of(&original.model, &ids), logits_of(&back.model, &ids));
    println!("{id}: logits maxdiff {d:e}");
    assert_eq!(d, 0.0, "{id}: the reloaded model's logits differ (maxdiff {d:e})");

    let reread = Tokenizer::from_file(&dir.join(TOKENIZER_FILE)).unwrap();
    for text in TEXTS {
        assert_eq!(reread.encode(text), tokenizer.encode(text), "{id}: ids of {text:?}");
    }
    assert_eq!(
        (reread.bos_id(), reread.eos_id(), reread.pad_id(), reread.add_bos()),
        (tokenizer.bos_id(), tokenizer.eos_id(), tokenizer.pad_id(), tokenizer.add_bos()),
        "{id}: special ids"
    );
}

/// SmolLM2-135M: llama, tied head, no biases (its q/k rows were un-permuted by the GGUF import).
#[test]
fn smollm2_export_reload_is_exact() {
    round_trip("smollm2-135m", Arch::Llama, true);
}

/// Qwen2.5-Coder-0.5B: qwen2, separate LM head, q/k/v biases.
#[test]
fn qwen2_0_5b_export_reload_is_exact() {
    round_trip("qwen2.5-coder-0.5b", Arch::Qwen2, false);
}

/// A tiny random model with non-trivial norm gains, and a tiny tokenizer: for the error and dtype tests.
fn tiny(tied: bool) -> (LoadedBackbone, Tokenizer) {
    let device = test_device();
    let config = BackboneConfig::new(Arch::Qwen2, 61, 32, 2, 4, 2, 8, 40, 1e6, 1e-6, true, tied, 128);
    let mut model = config.init(&device);
    model.norm.gamma = burn::module::Param::from_tensor(Tensor::random([32], Distribution::Uniform(0.5, 1.5), &device));
    let tokenizer = Tokenizer::from_bpe_vocab(BpeVocab {
        tokens: ["a", "b", "ab", "<|end|>"].map(String::from).to_vec(),
        token_types: vec![1, 1, 1, 3],
        merges: vec!["a b".into()],
        pre: PreTokenizerKind::Qwen2,
        bos: None,
        eos: Some(3),
        pad: None,
        add_bos: false,
    })
    .unwrap();
    (LoadedBackbone { config, model }, tokenizer)
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(CONFIG_FILE);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A checkpoint without a tensor the configuration needs, and a `config.json` without a required key or with an
/// unsupported value: each error names the file and the tensor or key.
#[test]
fn errors_name_the_file_and_the_key() {
    let (loaded, tokenizer) = tiny(true);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    export_hf_dir(&loaded, &tokenizer, &dir).unwrap();
    let device = test_device();

    // The export is tied, so it has no lm_head.weight: an untied configuration misses it.
    edit_config(&dir, |v| v["tie_word_embeddings"] = false.into());
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("model.safetensors") && e.contains("`lm_head.weight`") && e.contains("missing"), "{e}");
    assert!(e.contains("tie_word_embeddings"), "the error says how to fix it: {e}");

    // One more layer than the file has: the first missing tensor of layer 2 is named, with a count of the rest.
    edit_config(&dir, |v| {
        v["tie_word_embeddings"] = true.into();
        v["num_hidden_layers"] = 3.into();
    });
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("model.safetensors") && e.contains("model.layers.2.") && e.contains("more"), "{e}");

    // A wider model than the file: a shape mismatch names the tensor.
    edit_config(&dir, |v| {
        v["num_hidden_layers"] = 2.into();
        v["intermediate_size"] = 48.into();
    });
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("model.safetensors") && e.contains("mlp.") && e.contains("shape"), "{e}");

    // config.json without hidden_size.
    edit_config(&dir, |v| {
        v["intermediate_size"] = 40.into();
        v.as_object_mut().unwrap().remove("hidden_size");
    });
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("config.json") && e.contains("hidden_size"), "{e}");

    // An unsupported architecture.
    edit_config(&dir, |v| {
        v["hidden_size"] = 32.into();
        v["model_type"] = "gpt2".into();
    });
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("config.json") && e.contains("model_type") && e.contains("gpt2"), "{e}");

    // No weights at all.
    edit_config(&dir, |v| v["model_type"] = "qwen2".into());
    load_hf_dir(&dir, &device).unwrap();
    std::fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("safetensors") && e.contains("tiny"), "{e}");

    // A folder without config.json.
    std::fs::remove_file(dir.join(CONFIG_FILE)).unwrap();
    let e = load_hf_dir(&dir, &device).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("config.json"), "{e}");
}

/// Writes the weights of `loaded` as `dtype` in PyTorch naming, over several shard files (the layers in one,
/// everything else in another), as `transformers` does for large checkpoints.
fn save_sharded(loaded: &LoadedBackbone, dir: &Path, dtype: DType) {
    let remap = || KeyRemapper::from_patterns(vec![(r"^(embed_tokens|layers|norm)\.", "model.$1.")]).unwrap();
    let adapter = || BurnToPyTorchAdapter.chain(FloatCastAdapter::to(dtype));
    let mut layers = SafetensorsStore::from_file(dir.join("model-00001-of-00002.safetensors"))
        .with_regex(r"^layers\.")
        .remap(remap())
        .with_to_adapter(adapter());
    loaded.model.save_into(&mut layers).unwrap();
    let mut rest = SafetensorsStore::from_file(dir.join("model-00002-of-00002.safetensors"))
        .with_regex(r"^(embed_tokens|norm|lm_head)\.")
        .remap(remap())
        .with_to_adapter(adapter());
    loaded.model.save_into(&mut rest).unwrap();
}

/// f16 and bf16 checkpoints split over two shards load into f32 parameters equal to the original weights
/// rounded to that type.
#[test]
fn sharded_half_precision_files_are_cast_on_load() {
    let (loaded, tokenizer) = tiny(false);
    let device = test_device();
    for dtype in [DType::F16, DType::BF16] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("half");
        export_hf_dir(&loaded, &tokenizer, &dir).unwrap();
        std::fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
        save_sharded(&loaded, &dir, dtype);
        let back = load_hf_dir(&dir, &device).unwrap();
        let rounded = |t: Tensor<2>| t.cast(dtype).cast(DType::F32);
        let pairs = [
            (loaded.model.embed_tokens.weight.val(), back.model.embed_tokens.weight.val()),
            (loaded.model.layers[1].mlp.down_proj.weight.val(), back.model.layers[1].mlp.down_proj.weight.val()),
            (loaded.model.lm_head.as_ref().unwrap().weight.val(), back.model.lm_head.as_ref().unwrap().weight.val()),
        ];
        for (i, (want, got)) in pairs.into_iter().enumerate() {
            assert_eq!(got.dtype(), DType::F32, "{dtype:?}: parameters are f32");
            let d = (rounded(want) - got).abs().max().into_scalar::<f32>();
            assert_eq!(d, 0.0, "{dtype:?}: tensor {i} differs from the rounded original by {d:e}");
        }
    }
}
