//! The networks, in pure candle: they take a `VarBuilder` and tensors and know nothing of files,
//! the command line or training loops.

pub mod clip;
pub mod fast_grad;
pub mod fused_attention;
pub mod image_space;
pub mod inception;
pub mod nn;
pub mod unet;
pub mod vae;
