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
        let x = random_batch(images, opts.batch, opts.crop, &mut r)?;
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

/// `batch` images drawn at random from `images`, cut to a random `crop` x `crop` window at even
/// offsets when given (the autoencoder is convolutional: windows teach it the same local
/// reconstruction at a fraction of the cost).
fn random_batch(
    images: &Tensor,
    batch: usize,
    crop: Option<usize>,
    r: &mut crate::runtime::Rng64,
) -> Result<Tensor> {
    let idx = rand_index(r, batch, images.dim(0)?, images.device())?;
    let x = images.index_select(&idx, 0)?;
    let (h, w) = (x.dim(2)?, x.dim(3)?);
    match crop {
        Some(c) if c < h && c < w => {
            let oy = 2 * r.random_range(0..=(h - c) / 2);
            let ox = 2 * r.random_range(0..=(w - c) / 2);
            Ok(x.narrow(2, oy, c)?.narrow(3, ox, c)?.contiguous()?)
        }
        _ => Ok(x),
    }
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

/// Settings of a decoder-hardening run.
#[derive(Debug, Clone)]
pub struct DecoderHardening {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Gaussian noise on the (scaled) latents, its std drawn per image from U(0, max_noise).
    pub max_noise: f64,
    pub seed: u64,
    pub crop: Option<usize>,
}

/// Fine-tune the decoder of the VAE in `vae_dir` (the encoder, and so every latent the UNet was
/// trained on, stays as it is) to decode noisy latents to the clean image. A small world VAE's
/// decoder turns latent errors of a tenth of a standard deviation into texture; a diffusion
/// model's samples carry errors of that size, so a decoder that has seen them gives clean
/// images (the role SD's decoder fine-tuning on noisier latents plays). The weights are
/// replaced in place; returns the MSE curve.
pub fn harden_decoder(
    vae_dir: &std::path::Path,
    images: &Tensor,
    opts: &DecoderHardening,
    device: &Device,
    mut progress: impl FnMut(usize, f64),
) -> Result<Curve> {
    let source = crate::weights::ModelSource::Local(vae_dir.parent().unwrap().to_path_buf());
    let (vae, store) = crate::pipeline::load_vae(&source, Mode::Trainable, DType::F32, device)?;
    let decoder: Vec<_> = store
        .named_vars()
        .into_iter()
        .filter(|(n, _)| n.starts_with("decoder.") || n.starts_with("post_quant_conv."))
        .collect();
    if decoder.is_empty() {
        bail!("{}: no decoder weights found", vae_dir.display());
    }
    let mut optim = AdamW::new(
        decoder,
        AdamWConfig {
            lr: opts.lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )?;
    let sf = vae.config.scaling_factor;
    let mut r = rng(opts.seed ^ 0x4445_434f);
    let mut curve = Curve::default();
    for step in 0..opts.steps {
        let x = random_batch(images, opts.batch, opts.crop, &mut r)?;
        let mean = vae.encode(&x)?.mean.detach();
        let sigma: Vec<f32> = (0..opts.batch)
            .map(|_| (r.random::<f64>() * opts.max_noise / sf) as f32)
            .collect();
        let sigma = Tensor::from_vec(sigma, (opts.batch, 1, 1, 1), device)?;
        let noise = randn(&mut r, mean.dims(), DType::F32, device)?;
        let z = (mean + noise.broadcast_mul(&sigma)?)?;
        let mse = (vae.decode(&z)? - &x)?.sqr()?.mean_all()?;
        let grads = mse.backward()?;
        optim.step(&grads, opts.lr * warmup(step), 1.0)?;
        let l = mse.to_scalar::<f32>()? as f64;
        curve.push(step, l);
        progress(step, l);
    }
    store.save(
        &vae_dir.join("diffusion_pytorch_model.safetensors"),
        DType::F32,
    )?;
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::dataset::{load_images, write_pretraining_set};

    fn mse_at_noise(vae_dir: &std::path::Path, x: &Tensor, noise: f64) -> f64 {
        let source = crate::weights::ModelSource::Local(vae_dir.parent().unwrap().to_path_buf());
        let (vae, _) =
            crate::pipeline::load_vae(&source, Mode::Frozen, DType::F32, &Device::Cpu).unwrap();
        let mean = vae.encode(x).unwrap().mean;
        let eps = randn(&mut rng(9), mean.dims(), DType::F32, &Device::Cpu).unwrap();
        let z = (mean + (eps * (noise / vae.config.scaling_factor)).unwrap()).unwrap();
        let d = (vae.decode(&z).unwrap() - x).unwrap();
        d.sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    }

    /// The autoencoder's loss falls; hardening then lowers the error on noisy latents and leaves
    /// the encoder exactly as it was.
    #[test]
    fn vae_training_and_decoder_hardening_lower_their_losses() {
        let dir = tempfile::tempdir().unwrap();
        let set = write_pretraining_set(&dir.path().join("data"), 24, 0).unwrap();
        let images = load_images(&dir.path().join("data"), &set, &Device::Cpu).unwrap();
        let config: VaeConfig = serde_json::from_str(super::super::WORLD_VAE).unwrap();
        let opts = VaeTraining {
            steps: 60,
            batch: 8,
            lr: 2e-3,
            kl_weight: 1e-6,
            seed: 0,
            crop: Some(16),
        };
        let t = train_vae(&images, &config, &opts, &Device::Cpu, |_, _| {}).unwrap();
        let (first, last) = t.curve.ends(10);
        assert!(last < 0.7 * first, "VAE loss {first} -> {last}");

        let vae_dir = dir.path().join("sd/vae");
        t.store
            .save(
                &vae_dir.join("diffusion_pytorch_model.safetensors"),
                DType::F32,
            )
            .unwrap();
        let mut cfg: serde_json::Value = serde_json::from_str(super::super::WORLD_VAE).unwrap();
        cfg["scaling_factor"] = serde_json::json!(t.scaling_factor);
        std::fs::write(vae_dir.join("config.json"), cfg.to_string()).unwrap();
        let encoder_before: Vec<(String, Vec<f32>)> = t
            .store
            .named_tensors()
            .into_iter()
            .filter(|(n, _)| n.starts_with("encoder.") || n.starts_with("quant_conv."))
            .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        let x = images.narrow(0, 0, 8).unwrap();
        let before = mse_at_noise(&vae_dir, &x, 0.3);
        let h = DecoderHardening {
            steps: 40,
            batch: 8,
            lr: 1e-3,
            max_noise: 0.5,
            seed: 0,
            crop: Some(16),
        };
        harden_decoder(&vae_dir, &images, &h, &Device::Cpu, |_, _| {}).unwrap();
        let after = mse_at_noise(&vae_dir, &x, 0.3);
        assert!(
            after < before,
            "MSE at latent noise 0.3: {before} -> {after}"
        );
        let saved = candle_core::safetensors::load(
            vae_dir.join("diffusion_pytorch_model.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        for (name, v) in encoder_before {
            assert_eq!(
                saved[&name]
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
                v,
                "{name} changed"
            );
        }
    }
}
