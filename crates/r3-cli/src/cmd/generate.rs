//! `latentr3 generate`: greedy decoding of a prompt, to check a model end to end.

use std::time::Instant;

use crate::{device, model_source};

/// Arguments of `latentr3 generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// A model id (see `latentr3 model list`), a .gguf file, or a Hugging Face folder.
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// The prompt text (encoded as is: no chat template, BOS only when the tokenizer asks for it).
    #[arg(long)]
    pub prompt: String,
    /// The largest number of new tokens.
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: usize,
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

/// Runs `latentr3 generate`: prints the continuation on stdout and the speed on stderr.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    if args.prompt.is_empty() {
        anyhow::bail!("--prompt is empty: give some text to continue");
    }
    if args.max_new_tokens == 0 {
        anyhow::bail!("--max-new-tokens 0: nothing would be generated; ask for at least 1 token");
    }
    let dev = device::select(args.device)?;
    let loaded = model_source::load(&model_source::resolve(&args.model)?, &dev)?;
    let tok = &loaded.tokenizer;
    let mut ids = Vec::new();
    if tok.add_bos()
        && let Some(bos) = tok.bos_id()
    {
        ids.push(bos);
    }
    ids.extend(tok.encode(&args.prompt));
    let start = Instant::now();
    let out = r3_backbone::greedy_generate(&loaded.backbone.model, &ids, args.max_new_tokens, tok.eos_id(), &dev);
    let secs = start.elapsed().as_secs_f64();
    let text_ids: Vec<u32> = out.iter().copied().filter(|&t| Some(t) != tok.eos_id()).collect();
    if text_ids.is_empty() {
        tracing::warn!("the model generated no text: its first token was the end of the sequence");
    }
    println!("{}", tok.decode(&text_ids));
    tracing::info!(
        "{} prompt tokens, {} new tokens in {secs:.2} s ({:.1} tokens/s)",
        ids.len(),
        out.len(),
        out.len() as f64 / secs
    );
    Ok(())
}
