//! `rlhf-t2i init-tiny`: a tiny, seeded, random-initialised Stable Diffusion (diffusers layout)
//! and CLIP (transformers layout), loadable by the same code as the real checkpoints. Used by the
//! demo and the tests; the architecture is SD1.5's at toy width (configs in `configs/tiny/`).

use crate::io::atomic::write_atomic;
use crate::models::clip::{ClipConfig, ClipModel, ClipTextConfig, ClipTextModel};
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::models::vae::{AutoencoderKL, VaeConfig};
use crate::tokenizer::BUILTIN_TOKENIZER_JSON;
use crate::weights::{Mode, ParamStore};
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};

pub const TINY_UNET: &str = include_str!("../../configs/tiny/unet.json");
pub const TINY_VAE: &str = include_str!("../../configs/tiny/vae.json");
pub const TINY_TEXT_ENCODER: &str = include_str!("../../configs/tiny/text_encoder.json");
pub const TINY_SCHEDULER: &str = include_str!("../../configs/tiny/scheduler.json");
pub const TINY_MODEL_INDEX: &str = include_str!("../../configs/tiny/model_index.json");
pub const TINY_CLIP: &str = include_str!("../../configs/tiny/clip.json");
pub const TINY_TOKENIZER_CONFIG: &str = include_str!("../../configs/tiny/tokenizer_config.json");

/// Where `init-tiny` put the two models.
pub struct TinyPaths {
    pub sd: PathBuf,
    pub clip: PathBuf,
}

fn random_store(seed: u64, what: &str) -> ParamStore {
    ParamStore::random(seed, what, Mode::Frozen, DType::F32, &Device::Cpu)
}

/// Write the tiny SD to `out/sd` and the tiny CLIP to `out/clip`, every weight drawn from `seed`.
pub fn write_tiny_models(out: &Path, seed: u64) -> Result<TinyPaths> {
    let sd = out.join("sd");
    let clip = out.join("clip");
    let ctx = |what: &str| format!("writing the tiny {what} under {}", out.display());

    let unet_cfg: UNetConfig = serde_json::from_str(TINY_UNET)?;
    let store = random_store(seed, "tiny unet");
    UNet2DConditionModel::new(store.var_builder(), &unet_cfg)?;
    store
        .save(
            &sd.join("unet/diffusion_pytorch_model.safetensors"),
            DType::F32,
        )
        .with_context(|| ctx("unet"))?;
    write_atomic(&sd.join("unet/config.json"), TINY_UNET.as_bytes())?;

    let vae_cfg: VaeConfig = serde_json::from_str(TINY_VAE)?;
    let store = random_store(seed.wrapping_add(1), "tiny vae");
    AutoencoderKL::new(store.var_builder(), &vae_cfg)?;
    store
        .save(
            &sd.join("vae/diffusion_pytorch_model.safetensors"),
            DType::F32,
        )
        .with_context(|| ctx("vae"))?;
    write_atomic(&sd.join("vae/config.json"), TINY_VAE.as_bytes())?;

    let te_cfg: ClipTextConfig = serde_json::from_str(TINY_TEXT_ENCODER)?;
    let store = random_store(seed.wrapping_add(2), "tiny text encoder");
    ClipTextModel::new(store.var_builder(), &te_cfg)?;
    store
        .save(&sd.join("text_encoder/model.safetensors"), DType::F32)
        .with_context(|| ctx("text encoder"))?;
    write_atomic(
        &sd.join("text_encoder/config.json"),
        TINY_TEXT_ENCODER.as_bytes(),
    )?;

    write_atomic(
        &sd.join("tokenizer/tokenizer.json"),
        BUILTIN_TOKENIZER_JSON.as_bytes(),
    )?;
    write_atomic(
        &sd.join("tokenizer/tokenizer_config.json"),
        TINY_TOKENIZER_CONFIG.as_bytes(),
    )?;
    write_atomic(
        &sd.join("scheduler/scheduler_config.json"),
        TINY_SCHEDULER.as_bytes(),
    )?;
    write_atomic(&sd.join("model_index.json"), TINY_MODEL_INDEX.as_bytes())?;

    let clip_cfg: ClipConfig = serde_json::from_str(TINY_CLIP)?;
    let store = random_store(seed.wrapping_add(3), "tiny clip");
    ClipModel::new(store.var_builder(), &clip_cfg)?;
    store
        .save(&clip.join("model.safetensors"), DType::F32)
        .with_context(|| ctx("clip"))?;
    write_atomic(&clip.join("config.json"), TINY_CLIP.as_bytes())?;
    write_atomic(
        &clip.join("tokenizer.json"),
        BUILTIN_TOKENIZER_JSON.as_bytes(),
    )?;
    write_atomic(
        &clip.join("tokenizer_config.json"),
        TINY_TOKENIZER_CONFIG.as_bytes(),
    )?;

    Ok(TinyPaths { sd, clip })
}
