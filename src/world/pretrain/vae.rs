//! Pre-training the world's autoencoder: reconstruction (MSE in [-1, 1] pixels) plus a small KL
//! term towards N(0, I), on batches of rendered images. SD's VAE adds perceptual and adversarial
//! losses; flat-colored shapes do not need them.

use super::Curve;
use crate::models::vae::{AutoencoderKL, VaeConfig};
use crate::runtime::{rand_index, randn, rng};
use crate::train::optim::{AdamW, AdamWConfig};
use crate::weights::{Mode, ParamStore};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use rand::Rng;

/// Settings of one VAE pre-training run.
#[derive(Debug, Clone)]
pub struct VaeTraining {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub kl_weight: f64,
    pub seed: u64,
    /// Train on random `crop` x `crop` windows (even offsets): the autoencoder is convolutional,
    /// so it learns the same local reconstruction at a fraction of the cost.
    pub crop: Option<usize>,
}

/// The trained autoencoder and what its training measured.
pub struct TrainedVae {
    pub store: ParamStore,
    pub vae: AutoencoderKL,
    /// 1 / std of the latent means over the training images: SD's `scaling_factor` recipe.
    pub scaling_factor: f64,
    pub curve: Curve,
}

/// Train on `images` `(N, 3, H, W)` in [-1, 1].
pub fn train_vae(
    images: &Tensor,
    config: &VaeConfig,
    opts: &VaeTraining,
    device: &Device,
    mut progress: impl FnMut(usize, f64),
) -> Result<TrainedVae> {
    let n = images.dim(0)?;
    if n == 0 || opts.batch == 0 {
        bail!("no images to train the autoencoder on");
    }
    let store = ParamStore::random(opts.seed, "world vae", Mode::Trainable, DType::F32, device);
    let vae = AutoencoderKL::new(store.var_builder(), config)?;
    let mut optim = AdamW::new(
        store.named_vars(),
        AdamWConfig {
            lr: opts.lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )?;
    let mut r = rng(opts.seed ^ 0x0056_4145);
    let mut curve = Curve::default();
    for step in 0..opts.steps {
        let idx = rand_index(&mut r, opts.batch, n, device)?;
        let mut x = images.index_select(&idx, 0)?;
        if let Some(c) = opts.crop {
            let (h, w) = (x.dim(2)?, x.dim(3)?);
            if c < h && c < w {
                let oy = 2 * r.random_range(0..=(h - c) / 2);
                let ox = 2 * r.random_range(0..=(w - c) / 2);
                x = x.narrow(2, oy, c)?.narrow(3, ox, c)?.contiguous()?;
            }
        }
        let dist = vae.encode(&x)?;
        let noise = randn(&mut r, dist.mean.dims(), DType::F32, device)?;
        let recon = vae.decode(&dist.sample(&noise)?)?;
        let mse = (recon - &x)?.sqr()?.mean_all()?;
        // KL(N(mean, std) || N(0, 1)) per latent element, averaged.
        let var = dist.std.sqr()?;
        let kl = ((dist.mean.sqr()? + &var)? - var.log()?)?
            .affine(1.0, -1.0)?
            .mean_all()?
            .affine(0.5, 0.0)?;
        let loss = (&mse + (kl * opts.kl_weight)?)?;
        let grads = loss.backward()?;
        optim.step(&grads, opts.lr * warmup(step), 1.0)?;
        let l = mse.to_scalar::<f32>()? as f64;
        curve.push(step, l);
        progress(step, l);
    }
    let scaling_factor = latent_scale(&vae, images)?;
    Ok(TrainedVae {
        store,
        vae,
        scaling_factor,
        curve,
    })
}

/// A short linear warm-up (the first 100 steps) keeps the first updates of a fresh network sane.
fn warmup(step: usize) -> f64 {
    ((step + 1) as f64 / 100.0).min(1.0)
}

/// 1 / std of the latent means over (up to 512 of) the images.
fn latent_scale(vae: &AutoencoderKL, images: &Tensor) -> Result<f64> {
    let n = images.dim(0)?.min(512);
    let mut means = Vec::new();
    for start in (0..n).step_by(64) {
        let x = images.narrow(0, start, (n - start).min(64))?;
        means.push(vae.encode(&x)?.mean.detach());
    }
    let all = Tensor::cat(&means, 0)?.flatten_all()?;
    let mean = all.mean_all()?.to_scalar::<f32>()? as f64;
    let var = (all - mean)?.sqr()?.mean_all()?.to_scalar::<f32>()? as f64;
    if !(var.is_finite() && var > 0.0) {
        bail!("the autoencoder's latents have variance {var}; training diverged");
    }
    Ok(1.0 / var.sqrt())
}
