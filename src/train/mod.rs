//! Training plumbing shared by the reward model and the UNet fine-tuning: the optimiser with
//! savable state, learning-rate schedules and checkpoints.

pub mod checkpoint;
pub mod optim;
pub mod schedule;
