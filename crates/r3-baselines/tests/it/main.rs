//! Integration tests of `r3-baselines`:
//! - `models`: each model overfits a tiny set; an untrained model's HR@10 is near 10/|items|; model folders
//!   round-trip; experiment files refuse unknown keys;
//! - `guidance`: D3's assistant guidance with scale 1 changes nothing and moves the beams toward the assistant's
//!   ranking as the scale goes to 0;
//! - `real_data` (slow, `R3_SLOW=1`): a short SASRec run on the CDs data beats the popularity-free chance level.

mod common;
mod guidance;
mod models;
mod real_data;
