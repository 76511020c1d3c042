//! A frozen CLIP model turned into batched image and text embedders, filling an
//! [`EmbeddingCache`](super::cache::EmbeddingCache) with only what it lacks.

use super::cache::{file_sha256, EmbeddingCache};
use super::preprocess::{load_for_clip, preprocess};
use crate::models::clip::ClipModel;
use crate::pipeline::load_clip;
use crate::tokenizer::ClipTokenizer;
use crate::weights::ModelSource;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

pub struct ClipEmbedder {
    pub clip: ClipModel,
    pub tokenizer: ClipTokenizer,
    /// The model as named on the command line; recorded in caches.
    pub name: String,
    pub device: Device,
    pub dtype: DType,
}

impl ClipEmbedder {
    pub fn load(spec: &str, dtype: DType, device: &Device) -> Result<Self> {
        let (clip, tokenizer) = load_clip(&ModelSource::parse(spec)?, dtype, device)?;
        Ok(Self {
            clip,
            tokenizer,
            name: spec.to_string(),
            device: device.clone(),
            dtype,
        })
    }

    pub fn image_size(&self) -> u32 {
        self.clip.config.vision_config.image_size as u32
    }

    /// Projected (unnormalised) image features, one row per file.
    pub fn embed_image_files(&self, files: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        let size = self.image_size();
        let pixels = files
            .iter()
            .map(|f| preprocess(&load_for_clip(f)?, size, &Device::Cpu))
            .collect::<Result<Vec<_>>>()?;
        let x = Tensor::stack(&pixels, 0)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?;
        Ok(self
            .clip
            .image_features(&x)?
            .to_dtype(DType::F32)?
            .to_vec2()?)
    }

    /// Projected (unnormalised) text features, one row per text.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenizer.batch_tensor(texts, &self.device)?;
        Ok(self
            .clip
            .text_features(&ids)?
            .to_dtype(DType::F32)?
            .to_vec2()?)
    }

    /// Embed whatever of `images` (with their SHA-256) and `texts` the cache lacks, in batches,
    /// saving the cache to `save_to` after every `save_every` batches and at the end.
    /// `on_batch(done, total)` reports progress. Returns (new images, new texts).
    pub fn fill_cache(
        &self,
        cache: &mut EmbeddingCache,
        images: &[(PathBuf, String)],
        texts: &[String],
        batch_size: usize,
        save_to: &Path,
        mut on_batch: impl FnMut(usize, usize),
    ) -> Result<(usize, usize)> {
        let mut queued = std::collections::HashSet::new();
        let todo_img: Vec<&(PathBuf, String)> = images
            .iter()
            .filter(|(_, h)| cache.image(h).is_none() && queued.insert(h.as_str()))
            .collect();
        let mut todo_txt: Vec<&String> = texts.iter().filter(|t| cache.text(t).is_none()).collect();
        todo_txt.sort();
        todo_txt.dedup();
        let total = todo_img.len() + todo_txt.len();
        let mut done = 0;
        let batch_size = batch_size.max(1);
        for (n, chunk) in todo_img.chunks(batch_size).enumerate() {
            let files: Vec<PathBuf> = chunk.iter().map(|(p, _)| p.clone()).collect();
            let rows = self.embed_image_files(&files).with_context(|| {
                format!("embedding images starting with {}", files[0].display())
            })?;
            for ((_, h), row) in chunk.iter().zip(rows) {
                cache.insert_image(h.clone(), &row)?;
            }
            done += chunk.len();
            on_batch(done, total);
            if (n + 1) % 20 == 0 {
                cache.save(save_to)?;
            }
        }
        for chunk in todo_txt.chunks(batch_size.max(64)) {
            let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
            for (t, row) in chunk.iter().zip(self.embed_texts(&refs)?) {
                cache.insert_text((*t).clone(), &row)?;
            }
            done += chunk.len();
            on_batch(done, total);
        }
        cache.save(save_to)?;
        Ok((todo_img.len(), todo_txt.len()))
    }
}

/// SHA-256 of every file, in order.
pub fn hash_files(files: &[PathBuf]) -> Result<Vec<String>> {
    files.iter().map(|f| file_sha256(f)).collect()
}
