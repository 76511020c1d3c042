//! `rlhf-t2i world pretrain`: the world's own "Stable Diffusion" and "CLIP", trained from scratch
//! on rendered images with true captions, in resumable stages:
//! 1. render the pre-training set (`data/`);
//! 2. with `--latent` only: the autoencoder (32 px <-> 16x16x4); by default the UNet denoises
//!    pixels, with no VAE;
//! 3. CLIP, contrastively (the reward model's frozen embedder; its text tower is also SD's text
//!    encoder, as SD1.5 uses OpenAI CLIP's);
//! 4. the UNet, by the fine-tuning trainer with every image weighted 1 and no pre-training term
//!    (that is exactly the denoising objective SD was trained with).
//!
//! Outputs: `sd/` (diffusers layout) and `clip/` (transformers layout), loadable by every stage.

pub mod clip;
pub mod vae;

use super::dataset::{load_images, write_pretraining_set, CaptionedImage, SCENES};
use crate::finetune::config::{FinetuneConfig, Precision};
use crate::finetune::data::pretrain_dataset;
use crate::finetune::output::write_model_folder;
use crate::finetune::trainer::{load_base, Trainer};
use crate::io::atomic::write_atomic;
use crate::io::jsonl::read_jsonl;
use crate::models::clip::ClipConfig;
use crate::models::image_space::ImageSpace;
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::models::vae::VaeConfig;
use crate::train::optim::AdamWConfig;
use crate::train::schedule::Decay;
use crate::weights::{save_safetensors, Mode, ModelSource, ParamStore};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const WORLD_UNET: &str = include_str!("../../../configs/world/unet.json");
pub const WORLD_SCHEDULER: &str = include_str!("../../../configs/world/scheduler.json");
pub const WORLD_MODEL_INDEX: &str = include_str!("../../../configs/world/model_index.json");
pub const WORLD_LATENT_UNET: &str = include_str!("../../../configs/world/unet-latent.json");
pub const WORLD_VAE: &str = include_str!("../../../configs/world/vae.json");
pub const WORLD_TEXT_ENCODER: &str = include_str!("../../../configs/world/text_encoder.json");
pub const WORLD_CLIP: &str = include_str!("../../../configs/world/clip.json");
const SCHEDULER: &str = include_str!("../../../configs/tiny/scheduler.json");
const MODEL_INDEX: &str = include_str!("../../../configs/tiny/model_index.json");
const TOKENIZER_CONFIG: &str = include_str!("../../../configs/tiny/tokenizer_config.json");

/// A training curve: (step, loss).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Curve(pub Vec<(usize, f64)>);

impl Curve {
    pub fn push(&mut self, step: usize, loss: f64) {
        self.0.push((step, loss));
    }
    /// Mean loss over the first and the last `k` steps.
    pub fn ends(&self, k: usize) -> (f64, f64) {
        let k = k.min(self.0.len()).max(1);
        let mean = |s: &[(usize, f64)]| s.iter().map(|x| x.1).sum::<f64>() / s.len().max(1) as f64;
        (mean(&self.0[..k]), mean(&self.0[self.0.len() - k..]))
    }
}

/// How much of everything to train (the command's flags).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainPlan {
    pub images: usize,
    pub vae_steps: usize,
    pub clip_steps: usize,
    pub unet_steps: u64,
    pub unet_batch: usize,
    pub unet_lr: f64,
    pub seed: u64,
    /// A UNet config other than `configs/world/unet.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet_config: Option<PathBuf>,
    /// Go on from these world models (a folder with `sd/` and `clip/`, e.g. the committed
    /// `assets/world`): their CLIP and text encoder are kept, and their UNet (config, weights,
    /// schedule) trains on instead of a fresh one; with `unet_config`, a fresh UNet of that
    /// config trains beside the kept CLIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_from: Option<PathBuf>,
    /// Fit the UNet's training into this many minutes (`unet_steps` becomes what fits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet_minutes: Option<f64>,
    /// Train the UNet only on these timesteps (`lo..hi`; default every one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet_timesteps: Option<[u32; 2]>,
    /// Min-SNR-gamma weighting of the UNet's loss (None: the plain v loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet_snr_gamma: Option<f64>,
    /// DDPM-IP input perturbation of the UNet's training inputs (0: off).
    #[serde(default, skip_serializing_if = "crate::finetune::config::is_zero")]
    pub unet_input_perturbation: f64,
    /// Steps of decoder hardening on noisy latents after the UNet (0: none; latent only).
    #[serde(default)]
    pub decoder_steps: usize,
    /// Denoise in the latents of a small trained VAE (`configs/world/vae.json`,
    /// `unet-latent.json`) instead of pixels.
    #[serde(default)]
    pub latent: bool,
}

/// Where the pre-trained world models are, and what their training measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainReport {
    pub plan: PretrainPlan,
    /// The VAE's training (absent in pixel space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae_mse_first_last: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae_scaling_factor: Option<f64>,
    pub clip_loss_first_last: (f64, f64),
    pub unet_loss_first_last: (f64, f64),
    /// The UNet's steps as run (differs from the plan's under `unet_minutes`).
    #[serde(default)]
    pub unet_steps_done: u64,
    /// Decoder hardening on noisy latents (absent when not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_mse_first_last: Option<(f64, f64)>,
    pub seconds: f64,
}

fn stage_done(dir: &Path) -> bool {
    dir.join(".done").exists()
}

fn mark_done(dir: &Path) -> Result<()> {
    write_atomic(&dir.join(".done"), b"")
}

/// Run (or resume) every stage into `out`. `log` receives progress lines.
pub fn pretrain(
    out: &Path,
    plan: &PretrainPlan,
    device: &Device,
    mut log: impl FnMut(&str),
) -> Result<PretrainReport> {
    let started = std::time::Instant::now();
    anyhow::ensure!(
        plan.latent || plan.decoder_steps == 0,
        "decoder hardening needs a VAE: add --latent or drop --decoder-steps"
    );
    anyhow::ensure!(
        plan.continue_from.is_none() || !plan.latent,
        "--continue-from takes the image space of the models it continues: drop --latent"
    );
    let data = out.join("data");
    let set: Vec<CaptionedImage> = if stage_done(&data) {
        read_jsonl(&data.join(SCENES))?
    } else {
        log(&format!("rendering {} pre-training images", plan.images));
        let s = write_pretraining_set(&data, plan.images, plan.seed)?;
        mark_done(&data)?;
        s
    };
    let images = load_images(&data, &set, device)?;
    let sd_init = out.join("sd-init");
    if let Some(from) = &plan.continue_from {
        adopt_clip(from, out, &sd_init)?;
    }
    let (vae_curve, scaling) = if plan.latent {
        let (c, s) = train_vae_stage(&sd_init, &images, plan, device, &mut log)?;
        (Some(c), Some(s))
    } else {
        (None, None)
    };
    let clip_curve = train_clip_stage(out, &sd_init, &images, &set, plan, device, &mut log)?;
    let unet_curve = train_unet_stage(out, &sd_init, &data, plan, device, &mut log)?;
    let unet_steps_done = unet_curve.0.last().map_or(0, |s| s.0 as u64);
    let decoder_curve = harden_decoder_stage(out, &images, plan, device, &mut log)?;
    let report = PretrainReport {
        plan: plan.clone(),
        vae_mse_first_last: vae_curve.map(|c| c.ends(50)),
        vae_scaling_factor: scaling,
        clip_loss_first_last: clip_curve.ends(50),
        unet_loss_first_last: unet_curve.ends(50),
        unet_steps_done,
        decoder_mse_first_last: decoder_curve.map(|c| c.ends(50)),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_atomic(
        &out.join("pretrain.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

fn train_vae_stage(
    sd: &Path,
    images: &Tensor,
    plan: &PretrainPlan,
    device: &Device,
    log: &mut impl FnMut(&str),
) -> Result<(Curve, f64)> {
    let dir = sd.join("vae");
    let curve_file = dir.join("curve.json");
    if stage_done(&dir) {
        let c: Curve = serde_json::from_str(&std::fs::read_to_string(&curve_file)?)?;
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        return Ok((c, cfg["scaling_factor"].as_f64().unwrap_or(1.0)));
    }
    let config: VaeConfig = serde_json::from_str(WORLD_VAE)?;
    let opts = vae::VaeTraining {
        steps: plan.vae_steps,
        batch: 16,
        lr: 1e-3,
        kl_weight: 1e-6,
        seed: plan.seed ^ 1,
        crop: Some(16),
    };
    let t = vae::train_vae(images, &config, &opts, device, |s, l| {
        if s % 50 == 0 {
            log(&format!("vae step {s}/{}: mse {l:.5}", opts.steps));
        }
    })?;
    t.store
        .save(&dir.join("diffusion_pytorch_model.safetensors"), DType::F32)?;
    let mut cfg: serde_json::Value = serde_json::from_str(WORLD_VAE)?;
    cfg["scaling_factor"] = serde_json::json!(t.scaling_factor);
    write_atomic(
        &dir.join("config.json"),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    write_atomic(&curve_file, serde_json::to_string(&t.curve)?.as_bytes())?;
    mark_done(&dir)?;
    Ok((t.curve, t.scaling_factor))
}

fn train_clip_stage(
    out: &Path,
    sd: &Path,
    images: &Tensor,
    set: &[CaptionedImage],
    plan: &PretrainPlan,
    device: &Device,
    log: &mut impl FnMut(&str),
) -> Result<Curve> {
    let dir = out.join("clip");
    let curve_file = dir.join("curve.json");
    if stage_done(&dir) {
        return Ok(serde_json::from_str(&std::fs::read_to_string(
            &curve_file,
        )?)?);
    }
    let tok_json = super::tokenizer::tokenizer_json(&super::vocabulary())?;
    for d in [dir.clone(), sd.join("tokenizer")] {
        write_atomic(&d.join("tokenizer.json"), tok_json.as_bytes())?;
        write_atomic(
            &d.join("tokenizer_config.json"),
            TOKENIZER_CONFIG.as_bytes(),
        )?;
    }
    let tokenizer = crate::tokenizer::ClipTokenizer::from_file(&dir.join("tokenizer.json"))?;
    let config: ClipConfig = serde_json::from_str(WORLD_CLIP)?;
    let pixels = clip_pixels(images)?;
    let captions: Vec<String> = set.iter().map(|c| c.caption.clone()).collect();
    let opts = clip::ClipTraining {
        steps: plan.clip_steps,
        batch: 64,
        lr: 1e-3,
        seed: plan.seed ^ 2,
    };
    let t = clip::train_clip(
        &pixels,
        &captions,
        &tokenizer,
        &config,
        &opts,
        device,
        |s, l| {
            if s % 50 == 0 {
                log(&format!("clip step {s}/{}: loss {l:.4}", opts.steps));
            }
        },
    )?;
    t.store.save(&dir.join("model.safetensors"), DType::F32)?;
    write_atomic(&dir.join("config.json"), WORLD_CLIP.as_bytes())?;
    // SD's text encoder is the CLIP text tower (same tensor names under `text_model.`).
    let text: HashMap<String, Tensor> = t
        .store
        .named_tensors()
        .into_iter()
        .filter(|(k, _)| k.starts_with("text_model."))
        .collect();
    save_safetensors(&text, &sd.join("text_encoder/model.safetensors"))?;
    write_atomic(
        &sd.join("text_encoder/config.json"),
        WORLD_TEXT_ENCODER.as_bytes(),
    )?;
    write_atomic(&curve_file, serde_json::to_string(&t.curve)?.as_bytes())?;
    mark_done(&dir)?;
    Ok(t.curve)
}

/// [-1, 1] images to CLIP's normalisation (the world's images are already CLIP's 32 px size).
pub fn clip_pixels(images: &Tensor) -> Result<Tensor> {
    use crate::embed::preprocess::{CLIP_MEAN, CLIP_STD};
    let dev = images.device();
    let mean = Tensor::new(&CLIP_MEAN, dev)?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&CLIP_STD, dev)?.reshape((1, 3, 1, 1))?;
    Ok(((images + 1.0)? * 0.5)?
        .broadcast_sub(&mean)?
        .broadcast_div(&std)?)
}

fn train_unet_stage(
    out: &Path,
    sd_init: &Path,
    data: &Path,
    plan: &PretrainPlan,
    device: &Device,
    log: &mut impl FnMut(&str),
) -> Result<Curve> {
    let final_dir = out.join("sd");
    let train_dir = out.join("unet-training");
    if stage_done(&final_dir) {
        return read_unet_curve(&train_dir);
    }
    let unet_dir = sd_init.join("unet");
    if !unet_dir
        .join("diffusion_pytorch_model.safetensors")
        .exists()
    {
        match (&plan.continue_from, &plan.unet_config) {
            (Some(from), None) => copy_files(&from.join("sd"), sd_init, UNET_FILES)?,
            // Another UNet config: a fresh UNet beside the kept CLIP and text encoder.
            _ => fresh_unet(plan, sd_init)?,
        }
    }
    let source = ModelSource::parse(&sd_init.display().to_string())?;
    let sd = load_base(&source, None, device)?;
    let items = pretrain_dataset(&data.join(super::dataset::CAPTIONS))?;
    let config = FinetuneConfig {
        optim: AdamWConfig {
            lr: plan.unet_lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        warmup_steps: 100,
        decay: Decay::Cosine,
        steps: plan.unet_steps,
        model_batch: plan.unet_batch,
        pre_batch: 0,
        grad_accum: 1,
        max_grad_norm: 1.0,
        beta: 0.0,
        precision: Precision::F32,
        ema_decay: Some(0.995),
        seed: plan.seed ^ 4,
        checkpoint_every: 250,
        keep_checkpoints: 1,
        cache_latents: true,
        caption_dropout: 0.1,
        timestep_range: plan.unet_timesteps,
        snr_gamma: plan.unet_snr_gamma,
        input_perturbation: plan.unet_input_perturbation,
        trainable: None,
    };
    let mut trainer = Trainer::new(&sd, config, items, Vec::new(), &train_dir, true)?;
    let t = std::time::Instant::now();
    let n = trainer.cache_all_latents()?;
    log(&format!(
        "encoded {n} training latents in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    trainer.time_budget = plan
        .unet_minutes
        .map(|m| std::time::Duration::from_secs_f64(m * 60.0));
    trainer.run(|l| {
        if l.step % 100 == 0 {
            log(&format!(
                "unet step {}: loss {:.4} ({:.1} img/s, lr {:.2e})",
                l.step, l.loss, l.images_per_s, l.lr
            ));
        }
    })?;
    write_model_folder(&source, &trainer.final_weights(), DType::F32, &final_dir)?;
    mark_done(&final_dir)?;
    read_unet_curve(&train_dir)
}

/// Harden `sd/vae`'s decoder against latent noise (see `vae::harden_decoder`); resumable by
/// its `.hardened` marker.
fn harden_decoder_stage(
    out: &Path,
    images: &Tensor,
    plan: &PretrainPlan,
    device: &Device,
    log: &mut impl FnMut(&str),
) -> Result<Option<Curve>> {
    if plan.decoder_steps == 0 {
        return Ok(None);
    }
    let dir = out.join("sd/vae");
    let curve_file = dir.join("decoder-curve.json");
    let marker = dir.join(".hardened");
    if marker.exists() {
        return Ok(Some(serde_json::from_str(&std::fs::read_to_string(
            &curve_file,
        )?)?));
    }
    let opts = vae::DecoderHardening {
        steps: plan.decoder_steps,
        batch: 16,
        lr: 3e-4,
        max_noise: 0.5,
        seed: plan.seed ^ 5,
        crop: None,
    };
    let curve = vae::harden_decoder(&dir, images, &opts, device, |s, l| {
        if s % 50 == 0 {
            log(&format!("decoder step {s}/{}: mse {l:.5}", opts.steps));
        }
    })?;
    write_atomic(&curve_file, serde_json::to_string(&curve)?.as_bytes())?;
    write_atomic(&marker, b"")?;
    Ok(Some(curve))
}

/// A randomly initialised UNet (`--unet-config`, else the world's) with the scheduler and
/// `model_index.json` of its image space, into `sd_init` (the weights last: their presence marks
/// the folder complete).
fn fresh_unet(plan: &PretrainPlan, sd_init: &Path) -> Result<()> {
    let unet_json = match &plan.unet_config {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the UNet config {}", p.display()))?,
        None if plan.latent => WORLD_LATENT_UNET.to_string(),
        None => WORLD_UNET.to_string(),
    };
    let config: UNetConfig = serde_json::from_str(&unet_json)
        .context("the UNet config is not a diffusers UNet2DConditionModel config")?;
    let store = ParamStore::random(
        plan.seed ^ 3,
        "world unet",
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    );
    UNet2DConditionModel::new(store.var_builder(), &config)?;
    let unet_dir = sd_init.join("unet");
    let (scheduler, index) = if plan.latent {
        (SCHEDULER, MODEL_INDEX.to_string())
    } else {
        (
            WORLD_SCHEDULER,
            pixel_model_index(config.in_channels).with_context(|| {
                let file = plan.unet_config.as_deref();
                let file = file.map_or("configs/world/unet.json".into(), |p| {
                    p.display().to_string()
                });
                format!("the UNet config {file}")
            })?,
        )
    };
    write_atomic(
        &sd_init.join("scheduler/scheduler_config.json"),
        scheduler.as_bytes(),
    )?;
    write_atomic(&sd_init.join("model_index.json"), index.as_bytes())?;
    write_atomic(&unet_dir.join("config.json"), unet_json.as_bytes())?;
    // The weights last: their presence marks the folder complete.
    store.save(
        &unet_dir.join("diffusion_pytorch_model.safetensors"),
        DType::F32,
    )
}

/// The world's `model_index.json` for a pixel-space UNet of `in_channels` channels: the patch
/// whose pixel space has that many channels (3 p^2).
fn pixel_model_index(in_channels: usize) -> Result<String> {
    let patch = (1..=8)
        .find(|&patch| ImageSpace::Pixel { patch }.channels() == in_channels)
        .with_context(|| {
            format!(
                "a pixel-space world UNet takes 3 p^2 input channels (RGB patches of side p: \
                 3, 12, 27, 48, ...), not {in_channels}"
            )
        })?;
    let mut index: serde_json::Value = serde_json::from_str(WORLD_MODEL_INDEX)?;
    index["pixel_patch_size"] = patch.into();
    Ok(serde_json::to_string_pretty(&index)?)
}

/// What `--continue-from` takes of an earlier `sd/`: the UNet with its schedule (its weights
/// last: their presence marks the copy complete).
const UNET_FILES: &[&str] = &[
    "model_index.json",
    "scheduler/scheduler_config.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
];

/// `--continue-from`: the earlier models' CLIP (as a finished stage) and SD's text encoder and
/// tokenizer (its text tower), so that the UNet goes on with the text states it learned on.
fn adopt_clip(from: &Path, out: &Path, sd_init: &Path) -> Result<()> {
    let clip = out.join("clip");
    if stage_done(&clip) {
        return Ok(());
    }
    copy_files(
        &from.join("clip"),
        &clip,
        &[
            "config.json",
            "curve.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors",
        ],
    )?;
    copy_files(
        &from.join("sd"),
        sd_init,
        &[
            "tokenizer/tokenizer.json",
            "tokenizer/tokenizer_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
        ],
    )?;
    mark_done(&clip)
}

/// Copy `files` (relative paths) from `from` to `to`, each atomically, in order.
fn copy_files(from: &Path, to: &Path, files: &[&str]) -> Result<()> {
    for f in files {
        let bytes = std::fs::read(from.join(f)).with_context(|| {
            format!(
                "--continue-from: {} has no {f} (world models: sd/ and clip/, as `world \
                 pretrain` writes them)",
                from.display()
            )
        })?;
        write_atomic(&to.join(f), &bytes)?;
    }
    Ok(())
}

fn read_unet_curve(train_dir: &Path) -> Result<Curve> {
    let logs: Vec<crate::finetune::trainer::StepLog> =
        read_jsonl(&train_dir.join("metrics.jsonl")).context("the UNet's training metrics")?;
    Ok(Curve(
        logs.iter().map(|l| (l.step as usize, l.loss)).collect(),
    ))
}

/// The model folders inside a pre-training output.
pub fn model_paths(out: &Path) -> (PathBuf, PathBuf) {
    (out.join("sd"), out.join("clip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pixel_patch_follows_the_unet_channels() {
        let patch = |c| -> u64 {
            let index: serde_json::Value =
                serde_json::from_str(&pixel_model_index(c).unwrap()).unwrap();
            index["pixel_patch_size"].as_u64().unwrap()
        };
        assert_eq!(patch(12), 2);
        assert_eq!(patch(48), 4);
        assert_eq!(patch(3), 1);
        let err = pixel_model_index(16).unwrap_err().to_string();
        assert!(err.contains("not 16"), "{err}");
    }

    #[test]
    fn every_world_unet_config_builds_a_unet() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/world");
        let mut configs: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("unet") && n.ends_with(".json"))
            .map(|n| (n.clone(), std::fs::read_to_string(dir.join(&n)).unwrap()))
            .collect();
        configs.sort();
        assert!(configs.len() >= 5, "{configs:?}");
        for (name, json) in &configs {
            let name = name.as_str();
            let config: UNetConfig = serde_json::from_str(json).expect(name);
            let store = ParamStore::random(0, name, Mode::Frozen, DType::F32, &Device::Cpu);
            UNet2DConditionModel::new(store.var_builder(), &config).expect(name);
            let n: usize = store
                .named_tensors()
                .iter()
                .map(|(_, t)| t.elem_count())
                .sum();
            assert!(n > 100_000, "{name}: {n} parameters");
        }
    }
}
