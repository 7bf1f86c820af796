//! Data for LatentR³: the BIGRec / D3 / R3 dataset layout, item popularity and raw Amazon 2018 ingestion.
//!
//! - [`Dataset`] loads `info/{stem}.txt` ([`Catalogue`]) and `{train,valid,test}/{stem}.csv` ([`Interaction`]
//!   rows) with validation; [`write_split`] writes the same bytes Python's `csv.writer` wrote.
//! - [`Popularity`] counts train interactions per item and splits the catalogue into popular and unpopular items.
//! - [`DatasetStats`] summarises a dataset (`latentr3 data stats`).
//! - [`raw`] turns Amazon 2018 review and metadata files into the layout, as the official `process.py` does.
//! - [`Tokenizer`] is the byte-level BPE tokenizer (built from a GGUF [`BpeVocab`] or a HF `tokenizer.json`): the
//!   only place that turns text into ids.
//! - [`Encoder`] turns an [`Interaction`] into an [`EncodedSample`] (the R3 prompt, `<|Thought|>` tokens, the target
//!   `encode('"' + title + '"\n') + [eos]` shared with the decoding trie), and samples into an [`SftBatch`].
//! - [`rng::SplitMix64`] is the seeded generator of bootstrap resampling and token sampling.
//!
//! ```
//! use r3_data::{Catalogue, pylit};
//! let cat = Catalogue::from_titles(vec!["Abbey Road".into(), "Help!".into(), "Abbey Road".into()]);
//! assert_eq!(cat.ids_of("Abbey Road"), &[0, 2]);
//! assert_eq!(pylit::parse_str_list(r#"['Help!', "Don't"]"#).unwrap(), ["Help!", "Don't"]);
//! ```
#![deny(missing_docs)]

pub mod encode;
mod error;
mod layout;
mod paths;
mod popularity;
pub mod pylit;
pub mod raw;
pub mod rng;
mod stats;
pub mod tokenizer;

pub use encode::{
    CATEGORY_WORDS, EncodedSample, Encoder, EncoderConfig, FullSequences, SftBatch, THOUGHT_TOKEN, Template,
    category_word,
};
pub use error::{Error, Result};
pub use layout::{
    COLUMNS, Catalogue, Dataset, Interaction, ItemId, Split, read_split, utf8_line, write_atomic, write_split,
};
pub use paths::{DATA_DIR_ENV, default_data_dir, repo_root, shared_data_dir, shared_golden_dir};
pub use popularity::{Popularity, PopularityConfig};
pub use rng::SplitMix64;
pub use stats::{DatasetStats, SplitStats, utc_date};
pub use tokenizer::{BpeVocab, PreTokenizerKind, Tokenizer};
