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
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;
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

/// Build one component from its config with seeded random weights and write the weights and
/// the config into `dir` (`weights` is the safetensors file name the layout expects).
fn write_component<C: DeserializeOwned>(
    dir: &Path,
    config_json: &str,
    weights: &str,
    seed: u64,
    what: &str,
    build: impl FnOnce(VarBuilder, &C) -> Result<()>,
) -> Result<()> {
    let config: C = serde_json::from_str(config_json)
        .with_context(|| format!("the built-in tiny {what} config"))?;
    let store = ParamStore::random(seed, what, Mode::Frozen, DType::F32, &Device::Cpu);
    build(store.var_builder(), &config)?;
    store
        .save(&dir.join(weights), DType::F32)
        .with_context(|| format!("writing the tiny {what} to {}", dir.display()))?;
    write_atomic(&dir.join("config.json"), config_json.as_bytes())
}

/// Write the tiny SD to `out/sd` and the tiny CLIP to `out/clip`, every weight drawn from `seed`.
pub fn write_tiny_models(out: &Path, seed: u64) -> Result<TinyPaths> {
    let sd = out.join("sd");
    let clip = out.join("clip");
    write_component(
        &sd.join("unet"),
        TINY_UNET,
        "diffusion_pytorch_model.safetensors",
        seed,
        "unet",
        |vb, c: &UNetConfig| UNet2DConditionModel::new(vb, c).map(|_| ()),
    )?;
    write_component(
        &sd.join("vae"),
        TINY_VAE,
        "diffusion_pytorch_model.safetensors",
        seed.wrapping_add(1),
        "vae",
        |vb, c: &VaeConfig| AutoencoderKL::new(vb, c).map(|_| ()),
    )?;
    write_component(
        &sd.join("text_encoder"),
        TINY_TEXT_ENCODER,
        "model.safetensors",
        seed.wrapping_add(2),
        "text encoder",
        |vb, c: &ClipTextConfig| ClipTextModel::new(vb, c).map(|_| ()),
    )?;
    write_component(
        &clip,
        TINY_CLIP,
        "model.safetensors",
        seed.wrapping_add(3),
        "clip",
        |vb, c: &ClipConfig| ClipModel::new(vb, c).map(|_| ()),
    )?;
    for (dir, name, text) in [
        (
            sd.join("tokenizer"),
            "tokenizer.json",
            BUILTIN_TOKENIZER_JSON,
        ),
        (
            sd.join("tokenizer"),
            "tokenizer_config.json",
            TINY_TOKENIZER_CONFIG,
        ),
        (
            sd.join("scheduler"),
            "scheduler_config.json",
            TINY_SCHEDULER,
        ),
        (sd.clone(), "model_index.json", TINY_MODEL_INDEX),
        (clip.clone(), "tokenizer.json", BUILTIN_TOKENIZER_JSON),
        (clip.clone(), "tokenizer_config.json", TINY_TOKENIZER_CONFIG),
    ] {
        write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(TinyPaths { sd, clip })
}
