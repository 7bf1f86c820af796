//! Integration tests of `r3-data` on the real files of the shared data folder.
//!
//! - `encode`: prompts, targets and batches (`r3_data::encode`) on a byte-level tokenizer and the real splits.
//! - `layout`: reading, validating and writing the BIGRec/D3/R3 layout (both real datasets, round trips, errors).
//! - `raw`: raw Amazon 2018 ingestion (the real raw files, a raw set derived from the CDs CSVs, errors).
//! - `tokenizer`: the byte-level BPE tokenizer on handmade vocabularies (merges, special tokens, round trips, errors).

mod common;
mod encode;
mod layout;
mod raw;
mod tokenizer;
