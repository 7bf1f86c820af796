//! One module per subcommand group.

pub mod bench;
pub mod data;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod prepare;
pub mod train;

use std::path::PathBuf;

use anyhow::Context;

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
