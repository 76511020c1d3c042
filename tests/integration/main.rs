//! The integration test binary: parity with the reference implementations, gradients, loading
//! errors, and the stages end to end on tiny models.

mod common;
mod demo;
mod eval;
mod fid;
mod finetune;
mod generate;
mod gradients;
mod loading;
mod method;
mod parity;
mod preprocess;
mod reward;
mod reward_stages;
