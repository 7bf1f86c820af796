//! Integration tests of `r3-metrics`.
//!
//! - `files`: prediction-file round trips (JSON array and JSON lines, extra keys, unicode, atomic writes).
//! - `errors`: malformed prediction files (missing fields, truncated JSON, empty files) name the file and record.
//! - `real_data`: the CDs catalogue and test split (shared titles, title versus id matching).

mod common;
mod errors;
mod files;
mod real_data;
