//! Checkpoints of SFT runs: the generic ones of `r3-trainer` (`checkpoints/step-NNNNNNNN/` with `model.bpk`,
//! `optimizer.bpk` and `state.json`, plus the pointer `checkpoints/latest.json`), re-exported here.

pub use r3_trainer::checkpoint::*;

/// Where the SFT trainer stands: the generic loop state.
pub type TrainerState = r3_trainer::LoopState;
