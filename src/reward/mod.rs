//! The learned reward: its model, the prompt perturbations of the auxiliary loss, the training
//! data assembled from files, training, and the saved form.

pub mod data;
pub mod metrics;
pub mod model;
pub mod perturb;
pub mod saved;
pub mod train;
