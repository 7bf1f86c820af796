//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The shared data folder (`../shared/datasets/amazon18` beside the repository root).
///
/// # Panics
/// When the folder is missing: these tests are about the real files and must not pass without them.
pub fn data_root() -> PathBuf {
    r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18 beside the repository")
}

/// The CDs stem (the paper's own data).
pub const CDS: &str = "CDs_and_Vinyl_5_2015-10-2018-11";
/// The Industrial stem.
pub const INDUSTRIAL: &str = "Industrial_and_Scientific_5_1996-10-2018-11";

/// GPT-2's byte-to-symbol map (`bytes_to_unicode`).
pub fn byte_symbols() -> Vec<String> {
    r3_data::tokenizer::byte_level_alphabet()
}
