//! Stable Diffusion and CLIP assembled from a [`ModelSource`]: each component's config and weights
//! read through [`crate::weights`], plus the few operations every stage needs (encode prompts,
//! decode latents to pictures).

use crate::diffusion::NoiseSchedule;
use crate::models::clip::{
    ClipConfig, ClipModel, ClipTextConfig, ClipTextModel, ClipTextTransformer,
};
use crate::models::image_space::ImageSpace;
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::models::vae::{AutoencoderKL, VaeConfig};
use crate::tokenizer::ClipTokenizer;
use crate::weights::{read_config, Mode, ModelSource, ParamStore};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use serde::de::DeserializeOwned;

/// Weight file names a diffusers / transformers component may use, in order of preference.
const DIFFUSERS_WEIGHTS: &[&str] = &[
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
];
const TRANSFORMERS_WEIGHTS: &[&str] = &["model.safetensors", "model.fp16.safetensors"];

/// Read `sub/config.json` and the weights beside it into a parameter store.
pub fn load_component<C: DeserializeOwned>(
    source: &ModelSource,
    sub: &str,
    weight_names: &[&str],
    mode: Mode,
    dtype: DType,
    device: &Device,
) -> Result<(C, ParamStore)> {
    let join = |f: &str| {
        if sub.is_empty() {
            f.to_string()
        } else {
            format!("{sub}/{f}")
        }
    };
    let config_path = source.file(&join("config.json"))?;
    let config: C = read_config(&config_path)?;
    let candidates: Vec<String> = weight_names.iter().map(|w| join(w)).collect();
    let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let weights = source.first_file(&refs)?;
    let params = ParamStore::from_file(&weights, &source.describe(), mode, dtype, device)?;
    Ok((config, params))
}

pub fn load_unet(
    source: &ModelSource,
    mode: Mode,
    dtype: DType,
    device: &Device,
) -> Result<(UNet2DConditionModel, ParamStore)> {
    let (cfg, params): (UNetConfig, _) =
        load_component(source, "unet", DIFFUSERS_WEIGHTS, mode, dtype, device)?;
    let unet = UNet2DConditionModel::new(params.var_builder(), &cfg)
        .with_context(|| format!("building the UNet of {}", source.describe()))?;
    params.warn_unused();
    Ok((unet, params))
}

pub fn load_vae(
    source: &ModelSource,
    mode: Mode,
    dtype: DType,
    device: &Device,
) -> Result<(AutoencoderKL, ParamStore)> {
    let (cfg, params): (VaeConfig, _) =
        load_component(source, "vae", DIFFUSERS_WEIGHTS, mode, dtype, device)?;
    let vae = AutoencoderKL::new(params.var_builder(), &cfg)
        .with_context(|| format!("building the VAE of {}", source.describe()))?;
    params.warn_unused();
    Ok((vae, params))
}

/// The VAE, or pixel space for a folder whose `model_index.json` names no VAE (a missing or
/// `[null, null]` entry, as diffusers writes for absent components; its optional
/// `pixel_patch_size` folds patches into channels). A folder without `model_index.json` is taken
/// to be SD's layout, with a VAE.
pub fn load_image_space(source: &ModelSource, dtype: DType, device: &Device) -> Result<ImageSpace> {
    if source.has_file("model_index.json") {
        let path = source.file("model_index.json")?;
        let index: serde_json::Value = read_config(&path)?;
        let has_vae = match index.get("vae") {
            Some(serde_json::Value::Array(a)) => a.iter().any(|x| !x.is_null()),
            Some(v) => !v.is_null(),
            None => false,
        };
        if !has_vae {
            let patch = match index.get("pixel_patch_size") {
                None => 1,
                Some(v) => v.as_u64().filter(|p| *p >= 1).with_context(|| {
                    format!(
                        "{}: pixel_patch_size must be a positive integer, got {v}",
                        path.display()
                    )
                })? as usize,
            };
            return Ok(ImageSpace::Pixel { patch });
        }
    }
    let (vae, _) = load_vae(source, Mode::Frozen, dtype, device)?;
    Ok(ImageSpace::Latent(Box::new(vae)))
}

pub fn load_text_encoder(
    source: &ModelSource,
    mode: Mode,
    dtype: DType,
    device: &Device,
) -> Result<(ClipTextModel, ParamStore)> {
    let (cfg, params): (ClipTextConfig, _) = load_component(
        source,
        "text_encoder",
        TRANSFORMERS_WEIGHTS,
        mode,
        dtype,
        device,
    )?;
    // transformers >= 5 saves CLIPTextModel without the `text_model.` prefix SD1.5's files carry.
    let vb = params.var_builder();
    let unprefixed = !vb.contains_tensor("text_model.embeddings.token_embedding.weight")
        && vb.contains_tensor("embeddings.token_embedding.weight");
    let te = if unprefixed {
        ClipTextTransformer::new(vb, &cfg).map(|text_model| ClipTextModel { text_model })
    } else {
        ClipTextModel::new(vb, &cfg)
    }
    .with_context(|| format!("building the text encoder of {}", source.describe()))?;
    params.warn_unused();
    Ok((te, params))
}

/// A CLIP model folder or repo (`config.json`, `model.safetensors`, `tokenizer.json`).
pub fn load_clip(
    source: &ModelSource,
    dtype: DType,
    device: &Device,
) -> Result<(ClipModel, ClipTokenizer)> {
    let (cfg, params): (ClipConfig, _) = load_component(
        source,
        "",
        TRANSFORMERS_WEIGHTS,
        Mode::Frozen,
        dtype,
        device,
    )?;
    let clip = ClipModel::new(params.var_builder(), &cfg)
        .with_context(|| format!("building CLIP from {}", source.describe()))?;
    params.warn_unused();
    let tok = load_tokenizer(source, "")?;
    Ok((clip, tok))
}

/// `sub/tokenizer.json`, else `sub/vocab.json` + `sub/merges.txt`.
pub fn load_tokenizer(source: &ModelSource, sub: &str) -> Result<ClipTokenizer> {
    let join = |f: &str| {
        if sub.is_empty() {
            f.to_string()
        } else {
            format!("{sub}/{f}")
        }
    };
    if let Ok(p) = source.file(&join("tokenizer.json")) {
        return ClipTokenizer::from_file(&p);
    }
    let vocab = source.file(&join("vocab.json")).with_context(|| {
        format!(
            "{} has neither {} nor {}",
            source.describe(),
            join("tokenizer.json"),
            join("vocab.json")
        )
    })?;
    let merges = source.file(&join("merges.txt"))?;
    ClipTokenizer::from_vocab_merges(&vocab, &merges)
}

/// The parts of Stable Diffusion that sampling and fine-tuning use.
pub struct StableDiffusion {
    pub source: ModelSource,
    pub unet: UNet2DConditionModel,
    pub unet_params: ParamStore,
    /// The VAE's latents, or pixels for a model without one.
    pub image_space: ImageSpace,
    pub text_encoder: ClipTextModel,
    pub tokenizer: ClipTokenizer,
    pub schedule: NoiseSchedule,
    pub dtype: DType,
    pub device: Device,
}

impl StableDiffusion {
    /// Load every component; only the UNet can be trainable (`unet_mode`).
    pub fn load(
        source: &ModelSource,
        unet_mode: Mode,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let (unet, unet_params) = load_unet(source, unet_mode, dtype, device)?;
        let image_space = load_image_space(source, dtype, device)?;
        anyhow::ensure!(
            unet.config.in_channels == image_space.channels()
                && unet.config.out_channels == image_space.channels(),
            "{}: the UNet takes {} and gives {} channels, but its {} space has {}",
            source.describe(),
            unet.config.in_channels,
            unet.config.out_channels,
            image_space.name(),
            image_space.channels()
        );
        let (text_encoder, _) = load_text_encoder(source, Mode::Frozen, dtype, device)?;
        let tokenizer = load_tokenizer(source, "tokenizer")?;
        let schedule = NoiseSchedule::load(&source.file("scheduler/scheduler_config.json")?)?;
        Ok(Self {
            source: source.clone(),
            unet,
            unet_params,
            image_space,
            text_encoder,
            tokenizer,
            schedule,
            dtype,
            device: device.clone(),
        })
    }

    /// Image side in pixels implied by the configs (512 for SD1.5).
    pub fn image_size(&self) -> usize {
        self.unet.config.sample_size * self.image_space.scale_factor()
    }

    pub fn latent_channels(&self) -> usize {
        self.unet.config.in_channels
    }

    /// Text-encoder states `(B, 77, D)` for a batch of prompts.
    pub fn encode_prompts(&self, prompts: &[&str]) -> Result<Tensor> {
        let ids = self.tokenizer.batch_tensor(prompts, &self.device)?;
        Ok(self
            .text_encoder
            .forward(&ids)?
            .last_hidden_state
            .to_dtype(self.dtype)?)
    }

    /// Samples (latents, or pixels for a pixel-space model) in the UNet's scale to 8-bit RGB
    /// pictures.
    pub fn decode_to_images(&self, latents: &Tensor) -> Result<Vec<RgbImage>> {
        tensor_to_images(&self.image_space.decode(latents)?)
    }

    /// Pictures to samples in the UNet's scale, using the posterior mean (for tests and editing).
    pub fn encode_images_mean(&self, images: &Tensor) -> Result<Tensor> {
        self.image_space.encode_mean(images)
    }
}

/// `(B, 3, H, W)` in [-1, 1] to RGB images (clamped, rounded as diffusers' `numpy_to_pil`).
pub fn tensor_to_images(images: &Tensor) -> Result<Vec<RgbImage>> {
    let (b, c, h, w) = images.dims4()?;
    anyhow::ensure!(c == 3, "expected 3 image channels, got {c}");
    let x = ((images.to_dtype(DType::F32)? / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
    let x = (x * 255.0)?
        .round()?
        .permute((0, 2, 3, 1))?
        .to_device(&Device::Cpu)?
        .contiguous()?;
    let data: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let per = h * w * 3;
    (0..b)
        .map(|i| {
            let bytes: Vec<u8> = data[i * per..(i + 1) * per]
                .iter()
                .map(|v| *v as u8)
                .collect();
            RgbImage::from_raw(w as u32, h as u32, bytes).context("image buffer size mismatch")
        })
        .collect()
}
