//! The classifier-free-guidance sampling loop: DDIM (default) or DDPM steps over a UNet.

use super::ddim::{ddim_step, ddpm_step};
use super::schedule::{timestep_tensor, NoiseSchedule};
use crate::models::unet::UNet2DConditionModel;
use crate::runtime::{randn, Rng64};
use anyhow::{bail, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    Ddim,
    Ddpm,
}

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::Ddpm => "ddpm",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SampleSettings {
    pub scheduler: SchedulerKind,
    pub steps: usize,
    pub guidance: f64,
    /// DDIM's eta (0 = deterministic).
    #[serde(default)]
    pub eta: f64,
}

impl Default for SampleSettings {
    fn default() -> Self {
        Self {
            scheduler: SchedulerKind::Ddim,
            steps: 50,
            guidance: 7.5,
            eta: 0.0,
        }
    }
}

/// Draw one noise tensor per sample, each from that sample's own generator, so an image depends
/// on its seed alone and not on the batch it was drawn in.
pub fn per_sample_noise(rngs: &mut [Rng64], shape: &[usize], like: &Tensor) -> Result<Tensor> {
    let parts = rngs
        .iter_mut()
        .map(|r| randn(r, shape, like.dtype(), like.device()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&parts, 0)?)
}

/// Run the sampler from `latents` (B, C, h, w) to clean latents. `cond`/`uncond` are the text
/// encoder states for the prompts and for the empty prompt, both (B, L, D). `rngs` (one per
/// sample) supply DDPM's and DDIM-with-eta's step noise. `on_step` is called after each step.
#[allow(clippy::too_many_arguments)]
pub fn sample(
    unet: &UNet2DConditionModel,
    schedule: &NoiseSchedule,
    settings: &SampleSettings,
    cond: &Tensor,
    uncond: &Tensor,
    latents: Tensor,
    rngs: &mut [Rng64],
    mut on_step: impl FnMut(usize),
) -> Result<Tensor> {
    let b = latents.dim(0)?;
    if rngs.len() != b || cond.dim(0)? != b || uncond.dim(0)? != b {
        bail!("sampler: batch of {b} latents needs as many generators and text states");
    }
    let guided = settings.guidance > 1.0;
    let context = if guided {
        Tensor::cat(&[uncond, cond], 0)?
    } else {
        cond.clone()
    };
    let timesteps = schedule.inference_timesteps(settings.steps)?;
    let stride = schedule.step_stride(settings.steps);
    let sample_shape = latents.dims()[1..].to_vec();
    let mut x = latents;
    for (i, &t) in timesteps.iter().enumerate() {
        let input = if guided {
            Tensor::cat(&[&x, &x], 0)?
        } else {
            x.clone()
        };
        let ts = timestep_tensor(&vec![t as u32; input.dim(0)?], x.device())?;
        let out = unet.forward(&input, &ts, &context)?;
        let eps = if guided {
            let (u, c) = (out.narrow(0, 0, b)?, out.narrow(0, b, b)?);
            (&u + ((c - &u)? * settings.guidance)?)?
        } else {
            out
        };
        x = match settings.scheduler {
            SchedulerKind::Ddim => {
                let noise = if settings.eta > 0.0 {
                    Some(per_sample_noise(rngs, &sample_shape, &x)?)
                } else {
                    None
                };
                ddim_step(schedule, &eps, t, stride, &x, settings.eta, noise.as_ref())?
            }
            SchedulerKind::Ddpm => {
                let noise = per_sample_noise(rngs, &sample_shape, &x)?;
                ddpm_step(schedule, &eps, t, stride, &x, &noise)?
            }
        };
        on_step(i);
    }
    Ok(x)
}
