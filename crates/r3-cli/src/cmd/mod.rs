//! One module per subcommand group.

pub mod baseline;
pub mod bench;
pub mod bench_eval;
pub mod bench_grpo;
pub mod bench_sft;
pub mod data;
pub mod eval;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod prepare;
pub mod recommend;
pub mod train;
pub mod train_grpo;

use std::path::PathBuf;

use anyhow::{Context, bail};
use r3_data::{Dataset, PopularityConfig};

/// `--data` and `--stem`: the dataset a command reads.
#[derive(Debug, clap::Args)]
pub struct DatasetArgs {
    /// The data folder (with info/, train/, valid/, test/). Default: $LATENTR3_DATA, else
    /// ../shared/datasets/amazon18 beside the repository.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The dataset stem, e.g. CDs_and_Vinyl_5_2015-10-2018-11.
    #[arg(long)]
    pub stem: String,
}

impl DatasetArgs {
    /// The data folder (see [`data_dir`]).
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        data_dir(self.data.as_ref())
    }

    /// Loads the dataset `--stem` from the folder `dir` (from [`DatasetArgs::dir`]).
    pub fn load(&self, dir: &std::path::Path) -> anyhow::Result<Dataset> {
        Dataset::load(dir, &self.stem)
            .with_context(|| format!("loading the dataset `{}` from {}", self.stem, dir.display()))
    }
}

/// The popularity split of `--coverage` (the share of train interactions covered by the "popular" items), which
/// must be in (0, 1].
pub fn popularity_config(coverage: f64) -> anyhow::Result<PopularityConfig> {
    if !(coverage > 0.0 && coverage <= 1.0) {
        bail!("--coverage must be in (0, 1], got {coverage}");
    }
    Ok(PopularityConfig { coverage })
}

/// Resolves `--data`: the given folder, else `$LATENTR3_DATA`, else `../shared/datasets/amazon18` beside the
/// repository.
pub fn data_dir(data: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match data {
        Some(d) => Ok(d.clone()),
        None => r3_data::default_data_dir().context(
            "no data folder: pass --data DIR or set LATENTR3_DATA (the default ../shared/datasets/amazon18 beside the \
             repository does not exist)",
        ),
    }
}
