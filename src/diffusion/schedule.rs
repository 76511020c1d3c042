//! The noise schedule (diffusers `scheduler_config.json`): betas, cumulative alphas, the training
//! forward process `q(x_t | x_0)` and the regression targets. Shared by the samplers and training.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

fn default_train_steps() -> usize {
    1000
}
fn default_beta_start() -> f64 {
    0.0001
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_schedule() -> String {
    "linear".into()
}
fn default_prediction() -> String {
    "epsilon".into()
}
fn default_true() -> bool {
    true
}
fn default_spacing() -> String {
    "leading".into()
}

/// The fields of a diffusers scheduler config this crate reads (any of DDIM/DDPM/PNDM/... configs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerConfig {
    #[serde(default = "default_train_steps")]
    pub num_train_timesteps: usize,
    #[serde(default = "default_beta_start")]
    pub beta_start: f64,
    #[serde(default = "default_beta_end")]
    pub beta_end: f64,
    #[serde(default = "default_schedule")]
    pub beta_schedule: String,
    #[serde(default = "default_prediction")]
    pub prediction_type: String,
    #[serde(default = "default_true")]
    pub set_alpha_to_one: bool,
    #[serde(default)]
    pub steps_offset: usize,
    #[serde(default)]
    pub clip_sample: bool,
    #[serde(default = "default_spacing")]
    pub timestep_spacing: String,
}

impl SchedulerConfig {
    pub fn load(path: &Path) -> Result<Self> {
        crate::weights::read_config(path)
    }

    /// Stable Diffusion v1.5's scheduler settings.
    pub fn sd15() -> Self {
        Self {
            num_train_timesteps: 1000,
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: "scaled_linear".into(),
            prediction_type: "epsilon".into(),
            set_alpha_to_one: false,
            steps_offset: 1,
            clip_sample: false,
            timestep_spacing: "leading".into(),
        }
    }
}

/// What the UNet predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    Epsilon,
    VPrediction,
}

#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    pub config: SchedulerConfig,
    pub prediction: Prediction,
    pub alphas_cumprod: Vec<f64>,
    /// alpha_bar used past the last step (1 with `set_alpha_to_one`, else alphas_cumprod[0]).
    pub final_alpha_cumprod: f64,
}

impl NoiseSchedule {
    pub fn new(config: &SchedulerConfig) -> Result<Self> {
        let n = config.num_train_timesteps;
        if n < 2 {
            bail!("scheduler config: num_train_timesteps must be at least 2, got {n}");
        }
        let betas: Vec<f64> = match config.beta_schedule.as_str() {
            "linear" => (0..n).map(|i| config.beta_start + (config.beta_end - config.beta_start) * i as f64 / (n - 1) as f64).collect(),
            "scaled_linear" => {
                let (s, e) = (config.beta_start.sqrt(), config.beta_end.sqrt());
                (0..n).map(|i| (s + (e - s) * i as f64 / (n - 1) as f64).powi(2)).collect()
            }
            "squaredcos_cap_v2" => {
                let f = |t: f64| ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2).cos().powi(2);
                (0..n).map(|i| (1.0 - f((i + 1) as f64 / n as f64) / f(i as f64 / n as f64)).min(0.999)).collect()
            }
            other => bail!("scheduler config: beta_schedule `{other}` is not supported (linear, scaled_linear, squaredcos_cap_v2)"),
        };
        let prediction = match config.prediction_type.as_str() {
            "epsilon" => Prediction::Epsilon,
            "v_prediction" => Prediction::VPrediction,
            other => bail!("scheduler config: prediction_type `{other}` is not supported (epsilon, v_prediction)"),
        };
        let mut acc = 1.0;
        let alphas_cumprod: Vec<f64> = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        Ok(Self {
            config: config.clone(),
            prediction,
            alphas_cumprod,
            final_alpha_cumprod,
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::new(
            &SchedulerConfig::load(path)
                .with_context(|| format!("loading scheduler {}", path.display()))?,
        )
    }

    pub fn num_train_timesteps(&self) -> usize {
        self.config.num_train_timesteps
    }

    /// alpha_bar at `t`, or the final value for `t < 0`.
    pub fn alpha_bar(&self, t: i64) -> f64 {
        if t < 0 {
            self.final_alpha_cumprod
        } else {
            self.alphas_cumprod[t as usize]
        }
    }

    /// Per-sample `(B,1,1,1)` coefficient tensor from `f(alpha_bar_t)`.
    fn coeff(&self, timesteps: &[u32], f: impl Fn(f64) -> f64, like: &Tensor) -> Result<Tensor> {
        let v: Vec<f32> = timesteps
            .iter()
            .map(|&t| f(self.alphas_cumprod[t as usize]) as f32)
            .collect();
        Ok(
            Tensor::from_vec(v, (timesteps.len(), 1, 1, 1), like.device())?
                .to_dtype(like.dtype())?,
        )
    }

    /// `x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) noise`, one timestep per sample.
    pub fn add_noise(&self, x0: &Tensor, noise: &Tensor, timesteps: &[u32]) -> Result<Tensor> {
        let a = self.coeff(timesteps, f64::sqrt, x0)?;
        let s = self.coeff(timesteps, |ab| (1.0 - ab).sqrt(), x0)?;
        Ok((x0.broadcast_mul(&a)? + noise.broadcast_mul(&s)?)?)
    }

    /// What the UNet should output: the noise, or `v = sqrt(ab) noise - sqrt(1-ab) x_0`.
    pub fn target(&self, x0: &Tensor, noise: &Tensor, timesteps: &[u32]) -> Result<Tensor> {
        match self.prediction {
            Prediction::Epsilon => Ok(noise.clone()),
            Prediction::VPrediction => {
                let a = self.coeff(timesteps, f64::sqrt, x0)?;
                let s = self.coeff(timesteps, |ab| (1.0 - ab).sqrt(), x0)?;
                Ok((noise.broadcast_mul(&a)? - x0.broadcast_mul(&s)?)?)
            }
        }
    }

    /// Signal-to-noise ratio `ab_t / (1 - ab_t)` at `t`.
    pub fn snr(&self, t: u32) -> f64 {
        let ab = self.alphas_cumprod[t as usize];
        ab / (1.0 - ab)
    }

    /// Min-SNR-gamma loss weight at `t` (Hang et al. 2023; diffusers' `--snr_gamma`): the
    /// weight that turns this schedule's loss into `min(SNR, gamma)` times the x0 error, so the
    /// nearly clean timesteps stop dominating. `min(SNR, gamma) / SNR` for an epsilon target,
    /// `min(SNR, gamma) / (SNR + 1)` for a v target.
    pub fn min_snr_weight(&self, t: u32, gamma: f64) -> f64 {
        let snr = self.snr(t);
        match self.prediction {
            Prediction::Epsilon => snr.min(gamma) / snr,
            Prediction::VPrediction => snr.min(gamma) / (snr + 1.0),
        }
    }

    /// `(x_0, eps)` implied by a model output at scalar timestep `t`.
    pub fn split_prediction(
        &self,
        model_output: &Tensor,
        sample: &Tensor,
        t: usize,
    ) -> Result<(Tensor, Tensor)> {
        let ab = self.alphas_cumprod[t];
        let (sa, sb) = (ab.sqrt(), (1.0 - ab).sqrt());
        Ok(match self.prediction {
            Prediction::Epsilon => {
                let x0 = ((sample - (model_output * sb)?)? / sa)?;
                (x0, model_output.clone())
            }
            Prediction::VPrediction => {
                let x0 = ((sample * sa)? - (model_output * sb)?)?;
                let eps = ((model_output * sa)? + (sample * sb)?)?;
                (x0, eps)
            }
        })
    }

    /// Timesteps for an `n`-step sampler, from noisiest to cleanest (diffusers `set_timesteps`).
    pub fn inference_timesteps(&self, n: usize) -> Result<Vec<usize>> {
        let total = self.config.num_train_timesteps;
        if n == 0 || n > total {
            bail!("number of inference steps must be in 1..={total}, got {n}");
        }
        let mut ts: Vec<usize> = match self.config.timestep_spacing.as_str() {
            "leading" => {
                let ratio = total / n;
                (0..n).map(|i| i * ratio + self.config.steps_offset).collect()
            }
            "trailing" => {
                let ratio = total as f64 / n as f64;
                (1..=n).map(|i| ((i as f64 * ratio).round() as usize).saturating_sub(1)).collect()
            }
            "linspace" => (0..n).map(|i| ((total - 1) as f64 * i as f64 / (n - 1).max(1) as f64).round() as usize).collect(),
            other => bail!("scheduler config: timestep_spacing `{other}` is not supported (leading, trailing, linspace)"),
        };
        ts.reverse();
        Ok(ts)
    }

    /// The stride between inference timesteps, which diffusers uses to find the previous one.
    pub fn step_stride(&self, n: usize) -> usize {
        self.config.num_train_timesteps / n
    }
}

/// A vector of timesteps as a `(B,)` f32 tensor for the UNet.
pub fn timestep_tensor(timesteps: &[u32], device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
    Ok(Tensor::from_vec(v, timesteps.len(), device)?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_snr_weight_is_min_snr_gamma_on_the_x0_error() {
        // Loss in x0 terms: eps error = x0 error * SNR, v error = x0 error * (SNR + 1); the
        // weighted loss must be min(SNR, gamma) * x0 error at every t, for both targets.
        for prediction in ["epsilon", "v_prediction"] {
            let mut c = SchedulerConfig::sd15();
            c.prediction_type = prediction.into();
            let s = NoiseSchedule::new(&c).unwrap();
            for t in [0u32, 100, 400, 700, 999] {
                let snr = s.snr(t);
                let per_x0 = if prediction == "epsilon" {
                    snr
                } else {
                    snr + 1.0
                };
                let w = s.min_snr_weight(t, 5.0);
                assert!(
                    (w * per_x0 - snr.min(5.0)).abs() < 1e-9 * snr.max(1.0),
                    "{prediction} t {t}"
                );
            }
            // Below gamma, an epsilon loss is unchanged.
            if prediction == "epsilon" {
                assert_eq!(s.min_snr_weight(999, 5.0), 1.0);
            }
        }
    }

    #[test]
    fn sd15_leading_timesteps() {
        let s = NoiseSchedule::new(&SchedulerConfig::sd15()).unwrap();
        let ts = s.inference_timesteps(50).unwrap();
        assert_eq!(ts.len(), 50);
        assert_eq!(ts[0], 981);
        assert_eq!(*ts.last().unwrap(), 1);
        assert!((s.alphas_cumprod[0] - (1.0 - 0.00085)).abs() < 1e-12);
    }
}
