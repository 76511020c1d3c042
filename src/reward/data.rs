//! Assembling the reward model's training data from files: aggregated labels, the images they
//! point to (by content hash) and the embedding cache, with each good image's perturbed prompts.

use super::perturb::perturbations;
use super::train::{Example, RewardData};
use crate::embed::cache::{file_sha256, EmbeddingCache};
use crate::feedback::TrainingLabel;
use crate::prompts::Vocabulary;
use anyhow::{anyhow, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Rows of a growing embedding table, deduplicated by key.
struct Rows<'a> {
    index: HashMap<String, u32>,
    rows: Vec<&'a [f32]>,
}

impl<'a> Rows<'a> {
    fn new() -> Self {
        Self {
            index: HashMap::new(),
            rows: Vec::new(),
        }
    }

    fn add(&mut self, key: &str, row: &'a [f32]) -> u32 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.rows.len() as u32;
        self.index.insert(key.to_string(), i);
        self.rows.push(row);
        i
    }

    fn tensor(&self, device: &Device) -> Result<Tensor> {
        let dim = self.rows.first().map_or(0, |r| r.len());
        let flat: Vec<f32> = self.rows.iter().flat_map(|r| r.iter().copied()).collect();
        Ok(Tensor::from_vec(flat, (self.rows.len(), dim), &Device::Cpu)?.to_device(device)?)
    }
}

/// Labels to training data. Image paths are relative to `image_root` (the manifest's folder).
/// A missing embedding is an error that says how to make it.
pub fn build(
    labels: &[TrainingLabel],
    image_root: &Path,
    cache: &EmbeddingCache,
    vocab: &Vocabulary,
    device: &Device,
) -> Result<RewardData> {
    let mut images = Rows::new();
    let mut texts = Rows::new();
    let missing = |what: &str| {
        anyhow!("{what} is not in the embedding cache ({}): run `rlhf-t2i embed` on this manifest first", cache.model)
    };
    let mut examples = Vec::with_capacity(labels.len());
    for l in labels {
        let path = image_root.join(&l.path);
        let sha = file_sha256(&path)?;
        let img = cache
            .image(&sha)
            .ok_or_else(|| missing(&format!("image {} ({})", l.image_id, path.display())))?;
        let image = images.add(&sha, img);
        let txt = cache
            .text(&l.prompt.text)
            .ok_or_else(|| missing(&format!("prompt {:?}", l.prompt.text)))?;
        let text = texts.add(&l.prompt.text, txt);
        let negatives = match vocab.object(&l.prompt.object) {
            Some(_) => perturbations(&l.prompt, vocab)?
                .iter()
                .map(|t| {
                    cache
                        .text(t)
                        .map(|row| texts.add(t, row))
                        .ok_or_else(|| missing(&format!("perturbed prompt {t:?}")))
                })
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        examples.push(Example {
            image,
            text,
            target: l.target,
            negatives,
            prompt_id: l.prompt.id.clone(),
            split: l.prompt.split,
            category: l.prompt.category,
        });
    }
    Ok(RewardData {
        images: images.tensor(device)?,
        texts: texts.tensor(device)?,
        examples,
    })
}
