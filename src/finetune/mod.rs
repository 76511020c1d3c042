//! Reward-weighted fine-tuning of the UNet (the paper's Section 3.3): data sets, the training
//! loop with checkpoints, and the fine-tuned model folder.

pub mod config;
pub mod data;
pub mod output;
pub mod trainer;
