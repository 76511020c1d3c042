//! The learned reward: its model, the prompt perturbations of the auxiliary loss, and training.

pub mod model;
pub mod perturb;
pub mod train;
