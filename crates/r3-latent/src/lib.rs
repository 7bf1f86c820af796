//! LatentR³'s latent reasoning (PAPER.md §3): the LatentRATT layer and the two-pass latent model.
#![deny(missing_docs)]

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
