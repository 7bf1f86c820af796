//! `latentr3 data stats` and `latentr3 device`.

use r3_data::DatasetStats;

use crate::device;

/// Arguments of `latentr3 data stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub dataset: super::DatasetArgs,
    /// Share of train interactions covered by the "popular" items.
    #[arg(long, default_value_t = 0.8)]
    pub coverage: f64,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `latentr3 data stats`.
pub fn run_stats(args: &StatsArgs) -> anyhow::Result<()> {
    let popularity = super::popularity_config(args.coverage)?;
    let dir = args.dataset.dir()?;
    let ds = args.dataset.load(&dir)?;
    let stats = DatasetStats::compute(&ds, popularity);
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
    /// The compute device: flex, wgpu[:N], vulkan[:N] or cuda[:N] (default: the first compiled in, GPUs
    /// first; `BURN_DEVICE` overrides the default).
    #[arg(long, alias = "backend")]
    pub device: Option<device::DeviceSpec>,
}

/// Runs `latentr3 device`.
pub fn run_device(args: &DeviceArgs) -> anyhow::Result<()> {
    println!("compiled backends: {:?}", device::compiled());
    let dev = device::select(args.device)?;
    let err = device::self_check(&dev)?;
    println!("device {dev:?}: matmul check passed (max abs difference {err:.2e})");
    Ok(())
}
