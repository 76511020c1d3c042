//! Fine-tuning settings. `configs/paper.json` holds the paper's (Section 3.3, Appendix D) and
//! marks which values are assumptions.

use crate::train::optim::AdamWConfig;
use crate::train::schedule::Decay;
use serde::{Deserialize, Serialize};

/// Compute precision of the UNet's forward and backward; the optimiser always updates f32
/// master weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    pub optim: AdamWConfig,
    pub warmup_steps: u64,
    pub decay: Decay,
    /// Optimiser steps in all.
    pub steps: u64,
    /// Generated (D_model) images per micro-batch.
    pub model_batch: usize,
    /// Pre-training (D_pre) images per micro-batch.
    pub pre_batch: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub max_grad_norm: f64,
    /// Weight beta of the pre-training loss (0 ignores D_pre).
    pub beta: f64,
    pub precision: Precision,
    /// Exponential moving average of the weights (None = off); the EMA weights are the output.
    pub ema_decay: Option<f64>,
    pub seed: u64,
    pub checkpoint_every: u64,
    pub keep_checkpoints: usize,
    /// Encode every image with the VAE once (posterior mean and std kept, sampled each use).
    pub cache_latents: bool,
    /// Share of captions replaced by the empty prompt, so the model also learns the
    /// unconditional prediction that classifier-free guidance needs (SD's recipe: 0.1 when
    /// training from scratch; 0, the default, when fine-tuning).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub caption_dropout: f64,
    /// Train only on timesteps `lo..hi` (half-open; None, the default: every timestep), as
    /// sd-scripts' `--min_timestep` / `--max_timestep`: to spend a run on the noise levels where
    /// a model is weakest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestep_range: Option<[u32; 2]>,
    /// Min-SNR-gamma loss weighting (diffusers' `--snr_gamma`; 5 in its paper): each image's
    /// loss is weighted so that it counts as `min(SNR, gamma)` times its x0 error. None (the
    /// default): the plain loss of the schedule's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_gamma: Option<f64>,
    /// Input perturbation (DDPM-IP, Ning et al. 2023; diffusers' `--input_perturbation`, 0.1 in
    /// its paper): the noised input is built from `noise + p * xi` with a fresh `xi` while the
    /// target keeps `noise`, so the model also learns from inputs a little off the true noised
    /// images, as its own samples are (exposure bias). 0, the default: off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_perturbation: f64,
    /// Update only the UNet parameters whose names contain one of these (e.g. `["attn2"]`: the
    /// cross-attention layers, as Custom Diffusion does); the rest keep the base model's values.
    /// None (the default): every parameter trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainable: Option<Vec<String>>,
}

/// For `skip_serializing_if`: a setting left at its zero default is not written.
pub(crate) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl FinetuneConfig {
    /// Whether the parameter `name` is updated (see `trainable`).
    pub fn trains(&self, name: &str) -> bool {
        self.trainable
            .as_ref()
            .is_none_or(|pats| pats.iter().any(|p| name.contains(p.as_str())))
    }

    /// The settings a resumed run must share with the checkpoint it continues (all but the
    /// length of the run and the checkpoint cadence).
    pub fn resume_key(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            for k in ["steps", "checkpoint_every", "keep_checkpoints"] {
                m.remove(k);
            }
        }
        v
    }
}
