//! The embedding cache: CLIP image embeddings keyed by the image file's SHA-256 and text
//! embeddings keyed by the prompt text, in one safetensors file (`images` (N, D), `texts` (M, D),
//! keys and the embedder's name in its metadata). Reruns embed only what is new; the file is
//! rewritten atomically.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

#[derive(Default)]
struct Table {
    dim: usize,
    keys: Vec<String>,
    data: Vec<f32>,
    index: HashMap<String, usize>,
}

impl Table {
    fn insert(&mut self, key: String, row: &[f32]) -> Result<()> {
        if self.dim == 0 {
            self.dim = row.len();
        }
        if row.len() != self.dim {
            bail!(
                "embedding of length {} does not fit a cache of dimension {}",
                row.len(),
                self.dim
            );
        }
        if self.index.contains_key(&key) {
            return Ok(());
        }
        self.index.insert(key.clone(), self.keys.len());
        self.keys.push(key);
        self.data.extend_from_slice(row);
        Ok(())
    }

    fn row(&self, key: &str) -> Option<&[f32]> {
        self.index
            .get(key)
            .map(|&i| &self.data[i * self.dim..(i + 1) * self.dim])
    }

    fn tensor(&self) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.data.clone(),
            (self.keys.len(), self.dim.max(1)),
            &Device::Cpu,
        )?)
    }

    fn from_parts(keys: Vec<String>, t: Option<&Tensor>) -> Result<Self> {
        let mut table = Table::default();
        if let Some(t) = t {
            let (n, d) = t.dims2()?;
            if n != keys.len() {
                bail!("{n} rows but {} keys", keys.len());
            }
            table.dim = d;
            table.data = t.flatten_all()?.to_vec1()?;
            table.index = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i))
                .collect();
            table.keys = keys;
        }
        Ok(table)
    }
}

pub struct EmbeddingCache {
    /// What made the embeddings (the CLIP model's name); a cache is never mixed across models.
    pub model: String,
    images: Table,
    texts: Table,
}

impl EmbeddingCache {
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            images: Table::default(),
            texts: Table::default(),
        }
    }

    /// Open `path` if it exists (it must come from the same `model`), else start empty.
    pub fn open(path: &Path, model: &str) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::new(model));
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{} is not a safetensors file", path.display()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k).cloned().with_context(|| {
                format!(
                    "{} has no `{k}` metadata: not an embedding cache",
                    path.display()
                )
            })
        };
        let stored_model = get("model")?;
        if stored_model != model {
            bail!("{} holds embeddings from `{stored_model}`, not `{model}`: use another --cache file", path.display());
        }
        let image_keys: Vec<String> = serde_json::from_str(&get("image_keys")?)?;
        let text_keys: Vec<String> = serde_json::from_str(&get("text_keys")?)?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let ctx = || format!("embedding cache {}", path.display());
        Ok(Self {
            model: model.to_string(),
            images: Table::from_parts(image_keys, tensors.get("images")).with_context(ctx)?,
            texts: Table::from_parts(text_keys, tensors.get("texts")).with_context(ctx)?,
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = Vec::new();
        if !self.images.keys.is_empty() {
            tensors.push(("images".to_string(), self.images.tensor()?));
        }
        if !self.texts.keys.is_empty() {
            tensors.push(("texts".to_string(), self.texts.tensor()?));
        }
        let meta: HashMap<String, String> = HashMap::from([
            ("model".to_string(), self.model.clone()),
            (
                "image_keys".to_string(),
                serde_json::to_string(&self.images.keys)?,
            ),
            (
                "text_keys".to_string(),
                serde_json::to_string(&self.texts.keys)?,
            ),
        ]);
        let views: Vec<(String, Tensor)> = tensors;
        let bytes = safetensors::serialize(views.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
            .with_context(|| format!("serialising {}", path.display()))?;
        crate::io::atomic::write_atomic(path, &bytes)
    }

    pub fn image(&self, sha: &str) -> Option<&[f32]> {
        self.images.row(sha)
    }

    pub fn text(&self, text: &str) -> Option<&[f32]> {
        self.texts.row(text)
    }

    pub fn insert_image(&mut self, sha: String, row: &[f32]) -> Result<()> {
        self.images.insert(sha, row)
    }

    pub fn insert_text(&mut self, text: String, row: &[f32]) -> Result<()> {
        self.texts.insert(text, row)
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.images.keys.len(), self.texts.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_model_guard() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.safetensors");
        let mut c = EmbeddingCache::new("clip-a");
        c.insert_image("abc".into(), &[1.0, 2.0]).unwrap();
        c.insert_text("Two dogs.".into(), &[3.0, 4.0, 5.0]).unwrap();
        assert!(c.insert_text("x".into(), &[1.0]).is_err());
        c.save(&p).unwrap();
        let d = EmbeddingCache::open(&p, "clip-a").unwrap();
        assert_eq!(d.image("abc").unwrap(), &[1.0, 2.0]);
        assert_eq!(d.text("Two dogs.").unwrap(), &[3.0, 4.0, 5.0]);
        assert_eq!(d.counts(), (1, 1));
        let e = EmbeddingCache::open(&p, "clip-b")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("clip-a") && e.contains("clip-b"), "{e}");
    }
}
