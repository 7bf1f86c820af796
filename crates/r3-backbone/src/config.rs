//! The resolved decoder configuration, read from GGUF metadata or a Hugging Face `config.json`.
//!
//! [`BackboneConfig`] is `Option`-free where the architecture needs a value: both readers resolve defaults
//! (`head_dim = hidden_size / n_heads`, tied embeddings when the file has no separate LM head) and then
//! [`BackboneConfig::validate`] checks the divisibility rules the decoder relies on, with messages that say how
//! to fix each failure. Field names follow Hugging Face `transformers` where one exists, so that
//! [`BackboneConfig::to_hf_json`] writes a `config.json` that `transformers` reads back.

use burn::config::Config;
use serde::Deserialize;

use crate::error::Error;
use crate::gguf::Gguf;

/// The decoder family. Both are pre-norm decoders with RMSNorm, rotary position embeddings (rotate-half
/// convention after import), grouped-query attention and a SwiGLU MLP; they differ in the q/k/v biases and in
/// the way llama.cpp stores the q/k projections (see [`crate::import`]).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama (SmolLM2): no attention biases; GGUF q/k rows are permuted by llama.cpp's converter.
    Llama,
    /// Qwen2 (Qwen2.5, Qwen2.5-Coder): biases on the q/k/v projections; GGUF rows are in HF order.
    Qwen2,
}

impl Arch {
    /// The architecture name used by GGUF (`general.architecture`) and by HF (`model_type`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    /// The architecture named `name` (`llama` or `qwen2`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            _ => None,
        }
    }
}

/// The resolved configuration of a Llama or Qwen2 decoder.
#[derive(Config, Debug)]
pub struct BackboneConfig {
    /// The decoder family.
    pub arch: Arch,
    /// Rows of the token embedding (and columns of the logits).
    pub vocab_size: usize,
    /// The model width `d`.
    pub hidden_size: usize,
    /// The number of decoder layers.
    pub n_layers: usize,
    /// The number of query heads.
    pub n_heads: usize,
    /// The number of key/value heads (grouped-query attention when smaller than `n_heads`).
    pub n_kv_heads: usize,
    /// The width of one attention head (`hidden_size / n_heads` for both families here).
    pub head_dim: usize,
    /// The inner width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// The RoPE base θ (`inv_freq[i] = θ^(-2i / head_dim)`).
    pub rope_theta: f64,
    /// The ε inside every RMSNorm.
    pub rms_norm_eps: f64,
    /// Whether the q/k/v projections carry biases (Qwen2: yes, Llama: no).
    pub qkv_bias: bool,
    /// Whether the LM head reuses the token embedding (`logits = h · Eᵀ`) instead of its own weight.
    pub tie_word_embeddings: bool,
    /// The context length the checkpoint was trained for (informational: positions are not limited).
    pub max_position_embeddings: usize,
    /// The beginning-of-sequence token id, when the checkpoint names one.
    pub bos_token_id: Option<u32>,
    /// The end-of-sequence token id, when the checkpoint names one.
    pub eos_token_id: Option<u32>,
}

/// The fields of a Hugging Face `config.json` that the decoder needs; unknown keys are ignored because real
/// configs carry many unrelated ones (`torch_dtype`, `transformers_version`, ...).
#[derive(Deserialize)]
struct HfConfig {
    model_type: String,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    intermediate_size: usize,
    rope_theta: Option<f64>,
    rms_norm_eps: Option<f64>,
    tie_word_embeddings: Option<bool>,
    max_position_embeddings: Option<usize>,
    attention_bias: Option<bool>,
    bos_token_id: Option<TokenIds>,
    eos_token_id: Option<TokenIds>,
    rope_scaling: Option<serde_json::Value>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
}

/// A token id field that HF writes either as one integer or as a list (Llama 3 lists several EOS ids).
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    fn first(self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> Error {
    Error::Config { key: key.into(), message: message.into() }
}

impl BackboneConfig {
    /// Reads the configuration from the metadata and tensor table of a GGUF file.
    ///
    /// Keys (with `{arch}` = `general.architecture`): `{arch}.block_count`, `.embedding_length`,
    /// `.attention.head_count`, `.attention.head_count_kv` (default: `head_count`), `.feed_forward_length`,
    /// `.rope.freq_base` (default 10 000), `.attention.layer_norm_rms_epsilon`, `.context_length`,
    /// `.attention.key_length` (default: width / heads). The vocabulary size is the row count of
    /// `token_embd.weight` (else the length of `tokenizer.ggml.tokens`, else `{arch}.vocab_size`); the head is
    /// tied when there is no `output.weight`; q/k/v biases are present when `blk.0.attn_q.bias` is.
    ///
    /// # Errors
    /// [`Error::Metadata`] naming a missing key, [`Error::Unsupported`] for other architectures or partial
    /// rotary embeddings, [`Error::Config`] when the values are inconsistent.
    pub fn from_gguf(g: &Gguf) -> crate::Result<Self> {
        let arch_name = g.get_str("general.architecture")?;
        let arch = Arch::from_name(arch_name).ok_or_else(|| Error::Unsupported {
            tensor: "general.architecture".into(),
            ggml_type: arch_name.into(),
            hint: "only `llama` and `qwen2` decoders are implemented".into(),
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let u = |k: &str| g.get_u64(&key(k)).map(|v| v as usize);
        // The hyper-parameters are checked as they are read, before anything derived from them (the head width,
        // the rotary dimension) is compared, so that a wrong value is reported under its own key.
        let bad = |k: &str, message: String| Error::Metadata { path: g.path.clone(), key: key(k), message };
        let positive = |k: &str| -> crate::Result<usize> {
            match u(k)? {
                0 => Err(bad(k, "is 0: it must be at least 1".into())),
                v => Ok(v),
            }
        };
        let hidden_size = positive("embedding_length")?;
        let n_heads = positive("attention.head_count")?;
        if !hidden_size.is_multiple_of(n_heads) && !g.metadata.contains_key(&key("attention.key_length")) {
            return Err(bad(
                "attention.head_count",
                format!(
                    "{n_heads} heads do not divide {} = {hidden_size}: the head width is the width / the heads",
                    key("embedding_length")
                ),
            ));
        }
        let n_kv_heads = if g.metadata.contains_key(&key("attention.head_count_kv")) {
            positive("attention.head_count_kv")?
        } else {
            n_heads
        };
        if !n_heads.is_multiple_of(n_kv_heads) {
            return Err(bad(
                "attention.head_count_kv",
                format!("{n_kv_heads} key/value heads do not divide {n_heads} query heads (grouped-query attention)"),
            ));
        }
        let n_layers = positive("block_count")?;
        let intermediate_size = positive("feed_forward_length")?;
        let head_dim = if g.metadata.contains_key(&key("attention.key_length")) {
            positive("attention.key_length")?
        } else {
            hidden_size / n_heads
        };
        if g.metadata.contains_key(&key("rope.dimension_count")) {
            let rot = u("rope.dimension_count")?;
            if rot != head_dim {
                return Err(Error::Unsupported {
                    tensor: key("rope.dimension_count"),
                    ggml_type: format!("{rot} of {head_dim}"),
                    hint: "partial rotary embeddings are not implemented".into(),
                });
            }
        }
        let vocab_size = if let Some(t) = g.tensor("token_embd.weight") {
            t.shape()[0]
        } else if g.metadata.contains_key("tokenizer.ggml.tokens") {
            g.get_strings("tokenizer.ggml.tokens")?.len()
        } else {
            u("vocab_size")?
        };
        let rope_theta =
            if g.metadata.contains_key(&key("rope.freq_base")) { g.get_f64(&key("rope.freq_base"))? } else { 10_000.0 };
        let token = |k: &str| -> crate::Result<Option<u32>> {
            if g.metadata.contains_key(k) { Ok(Some(g.get_u64(k)? as u32)) } else { Ok(None) }
        };
        let config = BackboneConfig {
            arch,
            vocab_size,
            hidden_size,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            intermediate_size,
            rope_theta,
            rms_norm_eps: g.get_f64(&key("attention.layer_norm_rms_epsilon"))?,
            qkv_bias: g.tensor("blk.0.attn_q.bias").is_some(),
            tie_word_embeddings: g.tensor("output.weight").is_none(),
            max_position_embeddings: u("context_length")?,
            bos_token_id: token("tokenizer.ggml.bos_token_id")?,
            eos_token_id: token("tokenizer.ggml.eos_token_id")?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads a Hugging Face `config.json` (`model_type` `llama` or `qwen2`).
    ///
    /// Defaults follow `transformers`: `num_key_value_heads = num_attention_heads`, `head_dim = hidden_size /
    /// num_attention_heads`, `rope_theta = 10000`, `rms_norm_eps = 1e-6`, `tie_word_embeddings = false`,
    /// `attention_bias = false` for Llama (Qwen2 always has q/k/v biases).
    ///
    /// # Errors
    /// [`Error::ConfigJson`] when the text is not such a JSON object, [`Error::Config`] for unsupported settings
    /// (`rope_scaling`, an activation other than SiLU, sliding-window attention) or inconsistent values.
    pub fn from_hf_json(text: &str) -> crate::Result<Self> {
        let hf: HfConfig = serde_json::from_str(text).map_err(|source| Error::ConfigJson { source })?;
        let arch = Arch::from_name(&hf.model_type).ok_or_else(|| {
            invalid("model_type", format!("`{}` is not supported: use a `llama` or `qwen2` checkpoint", hf.model_type))
        })?;
        if hf.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "rope_scaling",
                "RoPE scaling is not implemented: remove it or use a plain-RoPE model",
            ));
        }
        if let Some(act) = hf.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(invalid("hidden_act", format!("`{act}` is not supported: the MLP is SwiGLU with SiLU")));
        }
        if hf.use_sliding_window == Some(true) {
            return Err(invalid("use_sliding_window", "sliding-window attention is not implemented: set it to false"));
        }
        let config = BackboneConfig {
            arch,
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            n_layers: hf.num_hidden_layers,
            n_heads: hf.num_attention_heads,
            n_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            head_dim: hf.head_dim.unwrap_or(hf.hidden_size / hf.num_attention_heads.max(1)),
            intermediate_size: hf.intermediate_size,
            rope_theta: hf.rope_theta.unwrap_or(10_000.0),
            rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-6),
            qkv_bias: arch == Arch::Qwen2 || hf.attention_bias.unwrap_or(false),
            tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(false),
            max_position_embeddings: hf.max_position_embeddings.unwrap_or(2048),
            bos_token_id: hf.bos_token_id.and_then(TokenIds::first),
            eos_token_id: hf.eos_token_id.and_then(TokenIds::first),
        };
        config.validate()?;
        Ok(config)
    }

    /// Writes the configuration as a Hugging Face `config.json` (pretty-printed) that `transformers` loads as
    /// `LlamaForCausalLM` or `Qwen2ForCausalLM`.
    pub fn to_hf_json(&self) -> String {
        let mut v = serde_json::json!({
            "architectures": [match self.arch { Arch::Llama => "LlamaForCausalLM", Arch::Qwen2 => "Qwen2ForCausalLM" }],
            "model_type": self.arch.name(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.n_layers,
            "num_attention_heads": self.n_heads,
            "num_key_value_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "hidden_act": "silu",
            "rope_theta": self.rope_theta,
            "rope_scaling": null,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "torch_dtype": "float32",
        });
        if self.arch == Arch::Llama {
            v["attention_bias"] = self.qkv_bias.into();
            v["mlp_bias"] = false.into();
        } else {
            v["use_sliding_window"] = false.into();
        }
        serde_json::to_string_pretty(&v).expect("a JSON value always serialises")
    }

    /// Checks the rules the decoder relies on.
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending field and what to change.
    pub fn validate(&self) -> crate::Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("intermediate_size", self.intermediate_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(invalid(
                "n_kv_heads",
                format!(
                    "{} key/value heads do not divide {} query heads: grouped-query attention needs n_heads to be a \
                     multiple of n_kv_heads",
                    self.n_kv_heads, self.n_heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(invalid("head_dim", format!("{} is odd: rotary embeddings rotate pairs", self.head_dim)));
        }
        // Both families here split the width evenly over the heads (later ones, e.g. Qwen3, do not; the
        // attention module itself would allow it, but nothing here has been checked against such a model).
        if !self.hidden_size.is_multiple_of(self.n_heads) {
            return Err(invalid(
                "n_heads",
                format!("{} heads do not divide hidden_size {}: choose a divisor", self.n_heads, self.hidden_size),
            ));
        }
        if self.n_heads * self.head_dim != self.hidden_size {
            return Err(invalid(
                "head_dim",
                format!(
                    "n_heads × head_dim = {} × {} ≠ hidden_size {}: set head_dim to hidden_size / n_heads = {}",
                    self.n_heads,
                    self.head_dim,
                    self.hidden_size,
                    self.hidden_size / self.n_heads
                ),
            ));
        }
        if self.rope_theta.is_nan() || self.rope_theta <= 0.0 {
            return Err(invalid("rope_theta", format!("{} must be positive (typically 1e4 to 1e6)", self.rope_theta)));
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0 {
            return Err(invalid(
                "rms_norm_eps",
                format!("{} must be positive (typically 1e-6 or 1e-5)", self.rms_norm_eps),
            ));
        }
        for (name, id) in [("bos_token_id", self.bos_token_id), ("eos_token_id", self.eos_token_id)] {
            if let Some(id) = id.filter(|&id| id as usize >= self.vocab_size) {
                return Err(invalid(name, format!("{id} is outside the vocabulary of {} tokens", self.vocab_size)));
            }
        }
        Ok(())
    }

    /// The number of query heads that share one key/value head.
    pub fn group_size(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// The number of parameters of the decoder in closed form (what [`burn::module::Module::num_params`] counts).
    ///
    /// Per layer: two RMSNorm gains (`2d`), q and o projections (`2·d·H·h`), k and v projections (`2·d·K·h`),
    /// biases (`H·h + 2·K·h` when `qkv_bias`), the MLP (`3·d·f`); plus the embedding (`V·d`), the final norm
    /// (`d`) and, when not tied, the LM head (`V·d`).
    pub fn num_params(&self) -> usize {
        let (d, h, f, v) = (self.hidden_size, self.head_dim, self.intermediate_size, self.vocab_size);
        let (q, kv) = (self.n_heads * h, self.n_kv_heads * h);
        let bias = if self.qkv_bias { q + 2 * kv } else { 0 };
        let layer = 2 * d + 2 * d * q + 2 * d * kv + bias + 3 * d * f;
        let head = if self.tie_word_embeddings { 0 } else { v * d };
        v * d + self.n_layers * layer + d + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(arch: Arch) -> BackboneConfig {
        BackboneConfig::new(arch, 50, 16, 2, 4, 2, 4, 24, 10_000.0, 1e-6, arch == Arch::Qwen2, true, 128)
    }

    #[test]
    fn hf_json_round_trip() {
        for arch in [Arch::Llama, Arch::Qwen2] {
            let c = tiny(arch).with_eos_token_id(Some(3)).with_bos_token_id(Some(1));
            let back = BackboneConfig::from_hf_json(&c.to_hf_json()).unwrap();
            assert_eq!(back.to_string(), c.to_string());
        }
    }

    #[test]
    fn hf_json_reads_a_real_qwen2_config() {
        // The keys of Qwen2.5-0.5B-Instruct's config.json that matter here.
        let text = r#"{"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
            "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
            "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
            "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
            "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
            "use_sliding_window": false, "vocab_size": 151936}"#;
        let c = BackboneConfig::from_hf_json(text).unwrap();
        assert_eq!((c.arch, c.head_dim, c.group_size(), c.qkv_bias), (Arch::Qwen2, 64, 7, true));
        assert_eq!(c.num_params(), 494_032_768, "Qwen2.5-0.5B has 494,032,768 parameters");
    }

    #[test]
    fn validation_says_how_to_fix() {
        let mut c = tiny(Arch::Llama);
        c.n_kv_heads = 3;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("multiple of n_kv_heads"), "{e}");
        let mut c = tiny(Arch::Llama);
        c.head_dim = 8;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("set head_dim to hidden_size / n_heads = 4"), "{e}");
        let e = BackboneConfig::from_hf_json(r#"{"model_type": "gpt2"}"#).unwrap_err().to_string();
        assert!(e.contains("missing field"), "{e}");
    }

    /// The SmolLM2-135M hyper-parameters as GGUF metadata, with `edit` applied (no tensors: the checks run first).
    fn smollm2_gguf(edit: (&str, u32)) -> crate::Result<BackboneConfig> {
        use crate::gguf::{Gguf, Value, write_gguf};
        let mut meta = vec![
            ("general.architecture", Value::String("llama".into())),
            ("llama.embedding_length", Value::U32(576)),
            ("llama.attention.head_count", Value::U32(9)),
            ("llama.attention.head_count_kv", Value::U32(3)),
            ("llama.block_count", Value::U32(30)),
            ("llama.feed_forward_length", Value::U32(1536)),
            ("llama.rope.dimension_count", Value::U32(64)),
            ("llama.rope.freq_base", Value::F32(100_000.0)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("llama.context_length", Value::U32(8192)),
            ("llama.vocab_size", Value::U32(49152)),
        ];
        for (k, v) in &mut meta {
            if *k == edit.0 {
                *v = Value::U32(edit.1);
            }
        }
        BackboneConfig::from_gguf(&Gguf::parse(&write_gguf(&meta, &[], 32)).unwrap())
    }

    #[test]
    fn bad_gguf_head_settings_name_their_key() {
        let c = smollm2_gguf(("none", 0)).unwrap();
        assert_eq!((c.head_dim, c.n_kv_heads, c.n_layers), (64, 3, 30));
        for (key, value, phrase) in [
            ("llama.attention.head_count", 0, "is 0"),
            ("llama.attention.head_count", 7, "7 heads do not divide"),
            ("llama.embedding_length", 0, "is 0"),
            ("llama.attention.head_count_kv", 0, "is 0"),
            ("llama.attention.head_count_kv", 2, "do not divide 9 query heads"),
            ("llama.block_count", 0, "is 0"),
            ("llama.feed_forward_length", 0, "is 0"),
        ] {
            let e = smollm2_gguf((key, value)).unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")) && e.contains(phrase), "{key} = {value}: {e}");
            assert!(!e.contains("rotary"), "{key} = {value}: {e}");
        }
    }
}
