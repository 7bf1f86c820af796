//! Integration tests of r3-latent on the real checkpoints and data (one module per topic).
