//! `latentr3 data stats` and `latentr3 device`.

use std::path::PathBuf;

use anyhow::Context;
use r3_data::{Dataset, DatasetStats, PopularityConfig};

use crate::device;

/// Arguments of `latentr3 data stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The data folder (with info/, train/, valid/, test/). Default: $LATENTR3_DATA, else
    /// ../shared/datasets/amazon18 beside the repository.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The dataset stem, e.g. CDs_and_Vinyl_5_2015-10-2018-11.
    #[arg(long)]
    pub stem: String,
    /// Share of train interactions covered by the "popular" items.
    #[arg(long, default_value_t = 0.8)]
    pub coverage: f64,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `latentr3 data stats`.
pub fn run_stats(args: &StatsArgs) -> anyhow::Result<()> {
    if !(args.coverage > 0.0 && args.coverage <= 1.0) {
        anyhow::bail!("--coverage must be in (0, 1], got {}", args.coverage);
    }
    let dir = super::data_dir(args.data.as_ref())?;
    let ds =
        Dataset::load(&dir, &args.stem).with_context(|| format!("loading `{}` from {}", args.stem, dir.display()))?;
    let stats = DatasetStats::compute(&ds, PopularityConfig { coverage: args.coverage });
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        print!("{}", stats.to_table());
    }
    Ok(())
}

/// Arguments of `latentr3 device`.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// The backend to check; default: the first one compiled in (BURN_DEVICE overrides).
    #[arg(long, value_enum)]
    pub backend: Option<device::BackendName>,
}

/// Runs `latentr3 device`.
pub fn run_device(args: &DeviceArgs) -> anyhow::Result<()> {
    println!("compiled backends: {:?}", device::compiled());
    let dev = device::select(args.backend)?;
    let err = device::self_check(&dev)?;
    println!("device {dev:?}: matmul check passed (max abs difference {err:.2e})");
    Ok(())
}
