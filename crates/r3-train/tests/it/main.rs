//! Integration tests of r3-train on the real checkpoints and data (one module per topic).
