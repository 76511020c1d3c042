//! The fine-tuned model as a diffusers-layout folder: the new UNet weights beside copies of the
//! base model's unchanged parts, so `rlhf-t2i generate --model OUT` and diffusers'
//! `from_pretrained(OUT)` both load it.

use crate::weights::{save_safetensors, ModelSource};
use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Files of the frozen components copied from the base model when present.
const COPIED: &[&str] = &[
    "model_index.json",
    "scheduler/scheduler_config.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "tokenizer/tokenizer.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "tokenizer/tokenizer_config.json",
    "tokenizer/special_tokens_map.json",
];

pub fn write_model_folder(
    base: &ModelSource,
    unet: &HashMap<String, Tensor>,
    dtype: DType,
    out: &Path,
) -> Result<()> {
    for rel in COPIED {
        if !base.has_file(rel) {
            continue;
        }
        let src = base.file(rel)?;
        let dst = out.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap_or(out))?;
        let tmp = dst.with_extension("tmp-copy");
        std::fs::copy(&src, &tmp)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        std::fs::rename(&tmp, &dst)?;
    }
    let config = base.file("unet/config.json")?;
    std::fs::create_dir_all(out.join("unet"))?;
    std::fs::copy(&config, out.join("unet/config.json"))
        .with_context(|| format!("copying {}", config.display()))?;
    let cast: HashMap<String, Tensor> = unet
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?)))
        .collect::<Result<_>>()?;
    save_safetensors(&cast, &out.join("unet/diffusion_pytorch_model.safetensors"))
}
