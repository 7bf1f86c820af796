//! Loading pretrained weights from GGUF into a [`Backbone`].
//!
//! Tensor names (llama.cpp) and where they go:
//!
//! | GGUF | module |
//! |---|---|
//! | `token_embd.weight` `[V, d]` | `embed_tokens.weight` |
//! | `blk.N.attn_norm.weight` | `layers[N].input_layernorm.gamma` |
//! | `blk.N.attn_{q,k,v}.weight` / `.bias` | `layers[N].self_attn.{q,k,v}_proj` |
//! | `blk.N.attn_output.weight` | `layers[N].self_attn.o_proj` |
//! | `blk.N.ffn_norm.weight` | `layers[N].post_attention_layernorm.gamma` |
//! | `blk.N.ffn_{gate,up,down}.weight` | `layers[N].mlp.{gate,up,down}_proj` |
//! | `output_norm.weight` | `norm.gamma` |
//! | `output.weight` (absent when tied) | `lm_head` |
//!
//! GGUF matrices are row-major `[out, in]` (PyTorch layout) while burn's `Linear` computes `x · W` with `W`
//! `[in, out]`. The loader dequantises each matrix in blocks of rows and writes them transposed, so every
//! `Linear` weight is a contiguous `[in, out]` tensor. A transposed *view* would save that pass but costs more
//! at run time: burn's `linear` reshapes the weight to `[1, in, out]`, which copies a strided tensor on every
//! call, and a strided right operand halves the speed of the small matmuls of cached decoding (measured on
//! flex: 10×576×1536 in 1.8 ms instead of 0.7 ms).
//!
//! For `llama` files, llama.cpp's converter permuted the rows of `attn_q` and `attn_k` within each head so that
//! rotary pairs are adjacent (interleaved RoPE). The loader undoes it, exactly as `transformers` does when it
//! reads a llama GGUF (`reverse_permute`), so that the rotate-half RoPE of [`crate::rope`] applies.
//!
//! Tensors are dequantised one at a time per loader thread (up to 4: the model's parts are independent)
//! straight into their final layout and moved into the device tensor without a copy, so the peak memory is the
//! f32 model plus one quantised tensor per thread.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::attention::Attention;
use crate::config::{Arch, BackboneConfig};
use crate::dequant::dequantize;
use crate::error::{Error, Result};
use crate::gguf::{Gguf, TensorInfo};
use crate::model::{Backbone, DecoderLayer, Mlp};
use crate::rope::RotaryEmbeddingConfig;

/// Options of [`load_gguf_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The float type of the parameters; `None` uses the device's default float type (f32 unless configured,
    /// which is what the CPU wants; bf16 suits GPUs).
    pub dtype: Option<DType>,
}

/// A loaded checkpoint: its resolved configuration and the decoder.
#[derive(Debug)]
pub struct LoadedBackbone {
    /// The configuration read from the file.
    pub config: BackboneConfig,
    /// The decoder with the pretrained weights.
    pub model: Backbone,
}

/// Loads a Llama or Qwen2 GGUF checkpoint onto `device` in the device's default float type.
///
/// # Errors
/// I/O and format errors of the file, [`Error::Metadata`] or [`Error::Config`] for the configuration,
/// [`Error::Tensor`] for a missing or mis-shaped tensor.
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedBackbone> {
    load_gguf_with(path, device, &LoadOptions::default())
}

/// [`load_gguf`] with options (the parameter dtype).
///
/// # Errors
/// As [`load_gguf`].
pub fn load_gguf_with(path: &Path, device: &Device, options: &LoadOptions) -> Result<LoadedBackbone> {
    let start = Instant::now();
    let g = Gguf::open(path)?;
    let config = BackboneConfig::from_gguf(&g)?;
    check_all_used(&g, &config)?;

    // The parts are independent: dequantise them on a few threads (each with its own file handle), largest
    // first so that the vocabulary-sized matrices do not come last.
    let mut jobs = vec![Part::Embedding, Part::FinalNorm];
    if !config.tie_word_embeddings {
        jobs.insert(0, Part::Head);
    }
    jobs.extend((0..config.n_layers).map(Part::Layer));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(jobs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Result<Vec<(Part, Loaded)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut reader = Reader { g: &g, file: g.open_data()?, device, dtype: options.dtype };
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&part) = jobs.get(i) else { break };
                        match reader.part(part, &config) {
                            Ok(loaded) => done.push((part, loaded)),
                            Err(e) => {
                                // Stop the other threads early: the load fails anyway.
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a loader thread panicked")).collect()
    });

    let mut embed_tokens = None;
    let mut norm = None;
    let mut lm_head = None;
    let mut layers: Vec<Option<DecoderLayer>> = (0..config.n_layers).map(|_| None).collect();
    for batch in results {
        for (part, loaded) in batch? {
            match (part, loaded) {
                (Part::Embedding, Loaded::Embedding(e)) => embed_tokens = Some(e),
                (Part::FinalNorm, Loaded::Norm(n)) => norm = Some(n),
                (Part::Head, Loaded::Head(h)) => lm_head = Some(h),
                (Part::Layer(n), Loaded::Layer(l)) => layers[n] = Some(*l),
                _ => unreachable!("a part loads as its own kind"),
            }
        }
    }
    let model = Backbone {
        embed_tokens: embed_tokens.expect("the embedding was loaded"),
        layers: layers.into_iter().map(|l| l.expect("every layer was loaded")).collect(),
        norm: norm.expect("the final norm was loaded"),
        lm_head,
        rope: RotaryEmbeddingConfig::new(config.head_dim, config.rope_theta).init(device),
    };
    tracing::info!(
        path = %path.display(),
        arch = config.arch.name(),
        params = model.num_params(),
        threads,
        seconds = start.elapsed().as_secs_f64(),
        "loaded GGUF backbone"
    );
    Ok(LoadedBackbone { config, model })
}

/// An independently loadable part of the model.
#[derive(Clone, Copy, Debug)]
enum Part {
    Embedding,
    Head,
    FinalNorm,
    Layer(usize),
}

/// A loaded [`Part`].
enum Loaded {
    Embedding(Embedding),
    Head(Linear),
    Norm(RmsNorm),
    Layer(Box<DecoderLayer>),
}

/// Reads tensors of one GGUF file onto a device.
struct Reader<'a> {
    g: &'a Gguf,
    file: File,
    device: &'a Device,
    dtype: Option<DType>,
}

impl<'a> Reader<'a> {
    fn part(&mut self, part: Part, config: &BackboneConfig) -> Result<Loaded> {
        let (d, h, eps) = (config.hidden_size, config.head_dim, config.rms_norm_eps);
        Ok(match part {
            Part::Embedding => {
                Loaded::Embedding(Embedding { weight: self.param("token_embd.weight", [config.vocab_size, d])? })
            }
            Part::Head => Loaded::Head(self.linear("output", d, config.vocab_size, false, None)?),
            Part::FinalNorm => Loaded::Norm(self.norm("output_norm.weight", d, eps)?),
            Part::Layer(n) => {
                let name = |t: &str| format!("blk.{n}.{t}");
                let heads = |count| (config.arch == Arch::Llama).then_some(count);
                let (q, kv, ff, bias) =
                    (config.n_heads * h, config.n_kv_heads * h, config.intermediate_size, config.qkv_bias);
                Loaded::Layer(Box::new(DecoderLayer {
                    input_layernorm: self.norm(&name("attn_norm.weight"), d, eps)?,
                    self_attn: Attention {
                        q_proj: self.linear(&name("attn_q"), d, q, bias, heads(config.n_heads))?,
                        k_proj: self.linear(&name("attn_k"), d, kv, bias, heads(config.n_kv_heads))?,
                        v_proj: self.linear(&name("attn_v"), d, kv, bias, None)?,
                        o_proj: self.linear(&name("attn_output"), q, d, false, None)?,
                        n_heads: config.n_heads,
                        n_kv_heads: config.n_kv_heads,
                        head_dim: h,
                    },
                    post_attention_layernorm: self.norm(&name("ffn_norm.weight"), d, eps)?,
                    mlp: Mlp {
                        gate_proj: self.linear(&name("ffn_gate"), d, ff, false, None)?,
                        up_proj: self.linear(&name("ffn_up"), d, ff, false, None)?,
                        down_proj: self.linear(&name("ffn_down"), ff, d, false, None)?,
                    },
                }))
            }
        })
    }

    /// The dequantised values of `name` in row-major order, checked against the expected row-major shape and
    /// for NaN/inf.
    fn read<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Vec<f32>> {
        let info = self.info(name, shape)?;
        let values = self.g.read_f32(&mut self.file, info)?;
        check_finite(&self.g.path, name, &values)?;
        Ok(values)
    }

    /// The matrix `name` (`[rows, cols]` in the file) dequantised and transposed to `[cols, rows]`, with row `r`
    /// of the file becoming column `row_order(r)`.
    fn read_transposed(
        &mut self,
        name: &str,
        [rows, cols]: [usize; 2],
        row_order: impl Fn(usize) -> usize,
    ) -> Result<Vec<f32>> {
        /// Rows dequantised at a time: large enough that each column of the block is written as one run.
        const BLOCK: usize = 64;
        let info = self.info(name, [rows, cols])?;
        let raw = self.g.read_raw(&mut self.file, info)?;
        let row_bytes = info.ggml_type.row_bytes(cols as u64) as usize;
        let mut out = vec![0f32; rows * cols];
        // Checked block by block while each is in the cache (a second pass over `out` costs ~10 % of the load).
        let mut finite = true;
        for r0 in (0..rows).step_by(BLOCK) {
            let n = BLOCK.min(rows - r0);
            let block = dequantize(info.ggml_type, &raw[r0 * row_bytes..(r0 + n) * row_bytes], n * cols)
                .map_err(|m| self.corrupt(info, m))?; // [n, cols]
            finite &= all_finite(&block);
            let dst: Vec<usize> = (r0..r0 + n).map(&row_order).collect();
            for c in 0..cols {
                let column = &mut out[c * rows..(c + 1) * rows];
                for (i, &d) in dst.iter().enumerate() {
                    column[d] = block[i * cols + c];
                }
            }
        }
        if !finite {
            check_finite(&self.g.path, name, &out)?;
        }
        Ok(out)
    }

    fn corrupt(&self, info: &TensorInfo, message: String) -> Error {
        Error::Gguf {
            path: self.g.path.clone(),
            offset: self.g.data_offset + info.offset,
            message: format!("tensor `{}`: {message}", info.name),
        }
    }

    /// The info of tensor `name`, checked against the expected row-major shape.
    fn info<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<&'a TensorInfo> {
        let info = self.g.tensor(name).ok_or_else(|| Error::Tensor {
            path: self.g.path.clone(),
            tensor: name.into(),
            message: "missing from the file".into(),
        })?;
        if info.shape() != shape {
            return Err(Error::Tensor {
                path: self.g.path.clone(),
                tensor: name.into(),
                message: format!("shape {:?} does not match the configuration's {shape:?}", info.shape()),
            });
        }
        Ok(info)
    }

    fn tensor<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        let data = TensorData::new(values, shape);
        match self.dtype {
            Some(dtype) => Tensor::from_data(data, (self.device, dtype)),
            None => Tensor::from_data(data, self.device),
        }
    }

    fn param<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<D>>> {
        let values = self.read(name, shape)?;
        Ok(Param::from_tensor(self.tensor(values, shape)))
    }

    fn norm(&mut self, name: &str, d: usize, epsilon: f64) -> Result<RmsNorm> {
        Ok(RmsNorm { gamma: self.param(name, [d])?, epsilon })
    }

    /// The linear layer `{prefix}.weight` (`[d_out, d_in]` in the file) and, when `bias`, `{prefix}.bias`.
    /// `unpermute_heads`: undo llama.cpp's q/k row permutation for that many heads.
    fn linear(
        &mut self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        unpermute_heads: Option<usize>,
    ) -> Result<Linear> {
        let name = format!("{prefix}.weight");
        let w = match unpermute_heads {
            Some(n_head) => self.read_transposed(&name, [d_out, d_in], |r| unpermuted_row(r, d_out / n_head))?,
            None => self.read_transposed(&name, [d_out, d_in], |r| r)?,
        };
        let weight = Param::from_tensor(self.tensor(w, [d_in, d_out]));
        let bias = if bias {
            let mut b = self.read(&format!("{prefix}.bias"), [d_out])?;
            if let Some(n_head) = unpermute_heads {
                b = unpermute_rows(&b, n_head, 1);
            }
            Some(Param::from_tensor(self.tensor(b, [d_out])))
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }
}

/// Checks that the values of tensor `name` of the checkpoint `path` are finite: a damaged file (overwritten bytes,
/// a bad download) usually decodes to NaN or inf, which would otherwise give garbage text without an error.
///
/// # Errors
/// [`Error::Tensor`] naming the tensor, the first bad element and how many there are.
pub fn check_finite(path: &Path, name: &str, values: &[f32]) -> Result<()> {
    if all_finite(values) {
        return Ok(());
    }
    let first = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
    let count = values.iter().filter(|v| !v.is_finite()).count();
    Err(Error::Tensor {
        path: path.to_path_buf(),
        tensor: name.into(),
        message: format!(
            "{count} of {} values are NaN or infinite (the first, element {first}, is {}): the file is damaged; \
             fetch or export it again",
            values.len(),
            values[first]
        ),
    })
}

/// Whether every value is finite: a branch-free test per chunk, which vectorises (`all` with its early exit does
/// not).
fn all_finite(values: &[f32]) -> bool {
    values.chunks(4096).all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()))
}

/// Checks that every tensor of the file was used by the configuration (a `block_count` smaller than the file's
/// layers would otherwise drop layers without a word).
fn check_all_used(g: &Gguf, config: &BackboneConfig) -> Result<()> {
    let mut used: std::collections::HashSet<String> =
        ["token_embd.weight", "output_norm.weight", "output.weight"].into_iter().map(String::from).collect();
    for n in 0..config.n_layers {
        for t in [
            "attn_norm.weight",
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "ffn_norm.weight",
            "ffn_gate.weight",
            "ffn_up.weight",
            "ffn_down.weight",
            "attn_q.bias",
            "attn_k.bias",
            "attn_v.bias",
        ] {
            used.insert(format!("blk.{n}.{t}"));
        }
    }
    // Precomputed RoPE frequencies (llama 3) and similar buffers are derived from the configuration.
    let unused: Vec<&str> = g
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !used.contains(*n) && !n.starts_with("rope_freqs"))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    Err(Error::Tensor {
        path: g.path.clone(),
        tensor: unused[0].into(),
        message: format!(
            "not used by the configuration ({} unused tensors: {}{}); the metadata says `{}.block_count` = {}: is \
             it right?",
            unused.len(),
            unused.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            if unused.len() > 5 { ", ..." } else { "" },
            config.arch.name(),
            config.n_layers
        ),
    })
}

/// Undoes llama.cpp's `permute` of q/k rows (`convert_hf_to_gguf.py`): within each of the `n_head` heads of
/// `head_dim` rows, the file holds row `2i + t` where HF holds row `t · head_dim/2 + i` (`t ∈ {0, 1}`). The same
/// as `transformers`' `reverse_permute`: `w.reshape(n_head, head_dim/2, 2, cols).swapaxes(1, 2)`.
pub fn unpermute_rows(w: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    assert_eq!(rows * cols, w.len(), "{} values are not rows of {cols}", w.len());
    assert_eq!(rows % (2 * n_head), 0, "{rows} rows do not split into {n_head} heads of pairs");
    let mut out = vec![0f32; w.len()];
    for src in 0..rows {
        let dst = unpermuted_row(src, rows / n_head);
        out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
    }
    out
}

/// Where row `r` of a llama.cpp-permuted q/k matrix (heads of `head_dim` rows) goes in HF order: file row
/// `h·head_dim + 2i + t` is HF row `h·head_dim + t·head_dim/2 + i`.
pub fn unpermuted_row(r: usize, head_dim: usize) -> usize {
    let (h, within) = (r / head_dim, r % head_dim);
    h * head_dim + (within % 2) * (head_dim / 2) + within / 2
}

#[cfg(test)]
mod tests;
