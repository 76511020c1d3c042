//! DDIM and DDPM (ancestral) update steps as pure functions of the model output, following
//! diffusers `DDIMScheduler.step` and `DDPMScheduler.step` (fixed_small variance).

use super::schedule::NoiseSchedule;
use anyhow::Result;
use candle_core::Tensor;

/// One DDIM step from timestep `t` to `t - stride`. With `eta > 0`, `noise` must be given.
pub fn ddim_step(
    s: &NoiseSchedule,
    model_output: &Tensor,
    t: usize,
    stride: usize,
    sample: &Tensor,
    eta: f64,
    noise: Option<&Tensor>,
) -> Result<Tensor> {
    let prev_t = t as i64 - stride as i64;
    let (ab_t, ab_prev) = (s.alpha_bar(t as i64), s.alpha_bar(prev_t));
    let (mut x0, eps) = s.split_prediction(model_output, sample, t)?;
    if s.config.clip_sample {
        x0 = x0.clamp(-1f32, 1f32)?;
    }
    let variance = (1.0 - ab_prev) / (1.0 - ab_t) * (1.0 - ab_t / ab_prev);
    let std = eta * variance.sqrt();
    let dir = (eps * (1.0 - ab_prev - std * std).max(0.0).sqrt())?;
    let mut prev = ((x0 * ab_prev.sqrt())? + dir)?;
    if eta > 0.0 {
        if let Some(n) = noise {
            prev = (prev + (n * std)?)?;
        } else {
            anyhow::bail!("ddim_step: eta > 0 needs a noise tensor");
        }
    }
    Ok(prev)
}

/// One DDPM ancestral step from `t` to `t - stride`; `noise` is added for `t > 0`.
pub fn ddpm_step(
    s: &NoiseSchedule,
    model_output: &Tensor,
    t: usize,
    stride: usize,
    sample: &Tensor,
    noise: &Tensor,
) -> Result<Tensor> {
    let prev_t = t as i64 - stride as i64;
    let ab_t = s.alpha_bar(t as i64);
    let ab_prev = if prev_t >= 0 {
        s.alpha_bar(prev_t)
    } else {
        1.0
    };
    let (beta_t, beta_prev) = (1.0 - ab_t, 1.0 - ab_prev);
    let alpha_t = ab_t / ab_prev;
    let cur_beta = 1.0 - alpha_t;
    let (mut x0, _) = s.split_prediction(model_output, sample, t)?;
    if s.config.clip_sample {
        x0 = x0.clamp(-1f32, 1f32)?;
    }
    let c0 = ab_prev.sqrt() * cur_beta / beta_t;
    let ct = alpha_t.sqrt() * beta_prev / beta_t;
    let mean = ((x0 * c0)? + (sample * ct)?)?;
    if t == 0 {
        return Ok(mean);
    }
    let var = (beta_prev / beta_t * cur_beta).max(1e-20);
    Ok((mean + (noise * var.sqrt())?)?)
}
