//! `rlhf-t2i score`: the learned reward and the CLIP score (100 x cosine, as CLIPScore) of every
//! image of a manifest against its prompt, written as JSONL.

use crate::embed::cache::EmbeddingCache;
use crate::embed::embedder::{hash_files, ClipEmbedder};
use crate::io::jsonl::{read_jsonl, write_jsonl};
use crate::io::manifest::ImageRecord;
use crate::io::scores::ScoreRecord;
use crate::reward::saved;
use anyhow::{Context, Result};
use candle_core::Tensor;
use std::path::{Path, PathBuf};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

/// Score every image of `manifest`, embedding (and caching) whatever the cache lacks.
pub fn run(
    embedder: &ClipEmbedder,
    reward_dir: &Path,
    manifest: &Path,
    cache_path: &Path,
    batch_size: usize,
    out: &Path,
) -> Result<Vec<ScoreRecord>> {
    let (reward, _) = saved::load(reward_dir, &embedder.name, &embedder.device)?;
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    let root = manifest.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = records.iter().map(|r| root.join(&r.path)).collect();
    let hashes = hash_files(&files)?;
    let mut cache = EmbeddingCache::open(cache_path, &embedder.name)?;
    let images: Vec<(PathBuf, String)> = files.into_iter().zip(hashes.iter().cloned()).collect();
    let texts: Vec<String> = records.iter().map(|r| r.prompt.text.clone()).collect();
    embedder.fill_cache(
        &mut cache,
        &images,
        &texts,
        batch_size,
        cache_path,
        |_, _| {},
    )?;
    let mut out_records = Vec::with_capacity(records.len());
    for (chunk, hs) in records.chunks(1024).zip(hashes.chunks(1024)) {
        let img: Vec<&[f32]> = hs
            .iter()
            .map(|h| {
                cache
                    .image(h)
                    .context("image embedding vanished from the cache")
            })
            .collect::<Result<_>>()?;
        let txt: Vec<&[f32]> = chunk
            .iter()
            .map(|r| {
                cache
                    .text(&r.prompt.text)
                    .context("text embedding vanished from the cache")
            })
            .collect::<Result<_>>()?;
        let to_t = |rows: &[&[f32]]| -> Result<Tensor> {
            let d = rows[0].len();
            Ok(Tensor::from_vec(
                rows.iter()
                    .flat_map(|r| r.iter().copied())
                    .collect::<Vec<f32>>(),
                (rows.len(), d),
                &embedder.device,
            )?)
        };
        let r = reward.score(&to_t(&img)?, &to_t(&txt)?)?.to_vec1::<f32>()?;
        for (i, rec) in chunk.iter().enumerate() {
            out_records.push(ScoreRecord {
                image_id: rec.id.clone(),
                path: rec.path.clone(),
                prompt: rec.prompt.clone(),
                reward: r[i],
                clip_score: 100.0 * cosine(img[i], txt[i]),
            });
        }
    }
    write_jsonl(out, &out_records)?;
    Ok(out_records)
}
