//! `rlhf-t2i embed`: CLIP image embeddings for every image of a manifest and text embeddings for
//! its prompts and their perturbations, cached by content hash and text (reruns add only what
//! is new).

use crate::embed::cache::EmbeddingCache;
use crate::embed::embedder::{hash_files, ClipEmbedder};
use crate::io::jsonl::read_jsonl;
use crate::io::manifest::ImageRecord;
use crate::prompts::{PromptRecord, Vocabulary};
use crate::reward::perturb::perturbations;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub struct EmbedReport {
    pub new_images: usize,
    pub new_texts: usize,
    pub cached_images: usize,
    pub cached_texts: usize,
    pub images_per_second: f64,
}

/// Prompt texts and, where the vocabulary knows the object, their perturbations.
pub fn texts_for(prompts: &[&PromptRecord], vocab: &Vocabulary) -> Result<Vec<String>> {
    let mut texts = BTreeSet::new();
    for p in prompts {
        texts.insert(p.text.clone());
        if vocab.object(&p.object).is_some() {
            texts.extend(perturbations(p, vocab)?);
        }
    }
    Ok(texts.into_iter().collect())
}

pub fn run(
    embedder: &ClipEmbedder,
    manifest: &Path,
    cache_path: &Path,
    vocab: &Vocabulary,
    batch_size: usize,
) -> Result<EmbedReport> {
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    let root = manifest.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = records.iter().map(|r| root.join(&r.path)).collect();
    let hashes = hash_files(&files)?;
    let images: Vec<(PathBuf, String)> = files.into_iter().zip(hashes).collect();
    let texts = texts_for(
        &records.iter().map(|r| &r.prompt).collect::<Vec<_>>(),
        vocab,
    )?;
    let mut cache = EmbeddingCache::open(cache_path, &embedder.name)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("embed [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let (new_images, new_texts) = embedder.fill_cache(
        &mut cache,
        &images,
        &texts,
        batch_size,
        cache_path,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(EmbedReport {
        new_images,
        new_texts,
        cached_images: images.len() - new_images,
        cached_texts: texts.len() - new_texts,
        images_per_second: new_images as f64 / secs,
    })
}
