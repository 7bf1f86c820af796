//! The errors of r3-decode: invalid tries and invalid decoding settings, each naming the offending key or input
//! and saying how to fix it.

use thiserror::Error;

/// An error of this crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// [`crate::Trie::new`] got no sequence at all.
    #[error("the item trie needs at least one token sequence, got none: pass `encode_target` of every catalogue title")]
    EmptyTrie,
    /// [`crate::Trie::new`] got an empty token sequence.
    #[error(
        "token sequence {index} of the item trie is empty: every title must encode to at least one token (with \
         `encode_target` it ends with EOS), so check the title at index {index}"
    )]
    EmptySequence {
        /// The index of the empty sequence in the input.
        index: usize,
    },
    /// A decoding setting is out of range.
    #[error("invalid decoding setting `{key}` = {value}: {hint}")]
    Config {
        /// The setting's name (the config field).
        key: &'static str,
        /// The value given.
        value: String,
        /// How to fix it.
        hint: &'static str,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
