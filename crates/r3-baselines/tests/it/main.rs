//! Integration tests of `r3-baselines`:
//! - `alpharec`: LightGCN's normalisation on a 3-node graph by hand, the official negative sampling, AlphaRec
//!   memorising a tiny cyclic set from random language vectors, chance level untrained, model folders and the
//!   text-embeddings file;
//! - `models`: each model overfits a tiny set; an untrained model's HR@10 is near 10/|items|; model folders
//!   round-trip; experiment files refuse unknown keys;
//! - `guidance`: D3's assistant guidance with scale 1 changes nothing and moves the beams toward the assistant's
//!   ranking as the scale goes to 0;
//! - `resume`: a killed run resumes to the weights of an uninterrupted one, bit for bit;
//! - `real_data` (slow, `R3_SLOW=1`): a short SASRec run on the CDs data beats the popularity-free chance level.

mod alpharec;
mod common;
mod guidance;
mod models;
mod real_data;
mod resume;
