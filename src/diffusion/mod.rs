//! Diffusion mathematics apart from any network: the noise schedule, the DDIM/DDPM update steps
//! as pure functions, and the classifier-free-guidance sampling loop.

pub mod ddim;
pub mod sampler;
pub mod schedule;

pub use schedule::{NoiseSchedule, Prediction, SchedulerConfig};
