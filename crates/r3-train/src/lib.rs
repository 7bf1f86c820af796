//! LatentR³ training runs (PAPER.md §4): the SFT trainer, configs and checkpoints.
#![deny(missing_docs)]

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
