//! The integration test binary: parity with the reference implementations, gradients, loading
//! errors, and the stages end to end on tiny models.

mod bench;
mod browser;
mod common;
mod comparing;
mod demo;
mod eval;
mod fid;
mod finetune;
mod generate;
mod gradients;
mod labeling;
mod loading;
mod method;
mod parity;
mod preprocess;
mod reward;
mod reward_stages;
mod web_common;
mod world;
