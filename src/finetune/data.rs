//! The two data sets of fine-tuning. D_model: generated images with a weight each (the learned
//! reward from `score`, or the aggregated human label). D_pre: a pre-training image-text set,
//! as a folder of webdataset `.tar` shards written by img2dataset (`NNNNN.jpg` + `NNNNN.txt`),
//! or a folder of images with a captions JSONL (`{"file": ..., "caption": ...}` per line).
//! Images are decoded on demand, resized (short side, Pillow bicubic) and centre-cropped.

use crate::embed::preprocess::resize_bicubic;
use crate::feedback::TrainingLabel;
pub use crate::io::image_source::ImageSource;
use crate::io::image_source::{read_shard, ShardContents};
use crate::io::jsonl::read_jsonl;
use crate::io::manifest::ImageRecord;
use crate::io::scores::ScoreRecord;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One training image with its caption and weight.
#[derive(Debug, Clone)]
pub struct Item {
    pub source: ImageSource,
    pub caption: String,
    pub weight: f32,
}

/// Decode, composite alpha onto white, resize the short side to `size` and centre-crop.
pub fn load_square(source: &ImageSource, size: u32) -> Result<RgbImage> {
    let rgb = source.decode_rgb()?;
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        bail!("{}: empty image", source.describe());
    }
    let scale = size as f64 / w.min(h) as f64;
    let (rw, rh) = (
        ((w as f64 * scale).round() as u32).max(size),
        ((h as f64 * scale).round() as u32).max(size),
    );
    let resized = if (rw, rh) == (w, h) {
        rgb
    } else {
        resize_bicubic(&rgb, rw, rh)
    };
    Ok(
        image::imageops::crop_imm(&resized, (rw - size) / 2, (rh - size) / 2, size, size)
            .to_image(),
    )
}

/// Pixels in [-1, 1] as a `(3, S, S)` tensor.
pub fn to_tensor(img: &RgbImage, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let data: Vec<f32> = img
        .as_raw()
        .iter()
        .map(|&v| v as f32 / 127.5 - 1.0)
        .collect();
    Ok(
        Tensor::from_vec(data, (h as usize, w as usize, 3), &Device::Cpu)?
            .permute((2, 0, 1))?
            .contiguous()?
            .to_device(device)?,
    )
}

/// Which weight a generated image carries.
#[derive(Debug, Clone)]
pub enum Weights {
    /// The learned reward from a `score` output.
    Scores(PathBuf),
    /// The aggregated human label (1 good, 0 bad); unlabeled images are left out.
    Labels(PathBuf),
}

/// D_model from a manifest and its weights.
pub fn model_dataset(manifest: &Path, weights: &Weights) -> Result<Vec<Item>> {
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    let root = manifest.parent().unwrap_or(Path::new("."));
    let (file, w): (&Path, HashMap<String, f32>) = match weights {
        Weights::Scores(p) => (
            p,
            read_jsonl::<ScoreRecord>(p)?
                .into_iter()
                .map(|s| (s.image_id, s.reward))
                .collect(),
        ),
        Weights::Labels(p) => (
            p,
            read_jsonl::<TrainingLabel>(p)?
                .into_iter()
                .map(|l| (l.image_id, l.target))
                .collect(),
        ),
    };
    let mut items = Vec::new();
    for r in records {
        let Some(&weight) = w.get(&r.id) else {
            if matches!(weights, Weights::Scores(_)) {
                bail!(
                    "{}: image `{}` of {} has no score",
                    file.display(),
                    r.id,
                    manifest.display()
                );
            }
            continue;
        };
        if !weight.is_finite() || weight < 0.0 {
            bail!(
                "{}: image `{}` has weight {weight}; weights must be finite and non-negative",
                file.display(),
                r.id
            );
        }
        items.push(Item {
            source: ImageSource::File(root.join(&r.path)),
            caption: r.prompt.text,
            weight,
        });
    }
    if items.is_empty() {
        bail!(
            "{}: no weighted images for {}",
            file.display(),
            manifest.display()
        );
    }
    Ok(items)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptionLine {
    file: String,
    caption: String,
}

/// Index the image + caption pairs of one webdataset shard (members grouped by key = name
/// without extension; a key needs an image and a `.txt`).
fn index_shard(shard: &Path) -> Result<Vec<Item>> {
    let ShardContents { images, mut texts } = read_shard(shard)?;
    let images: BTreeMap<String, ImageSource> = images.into_iter().collect();
    Ok(images
        .into_iter()
        .filter_map(|(key, source)| {
            texts.remove(&key).map(|caption| Item {
                source,
                caption,
                weight: 1.0,
            })
        })
        .collect())
}

/// D_pre from a folder of `.tar` shards, or a folder with `captions.jsonl` (or the JSONL file
/// itself, whose `file` entries are relative to its folder).
pub fn pretrain_dataset(path: &Path) -> Result<Vec<Item>> {
    let (jsonl, root) = if path.is_file() {
        (
            Some(path.to_path_buf()),
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        )
    } else if path.join("captions.jsonl").is_file() {
        (Some(path.join("captions.jsonl")), path.to_path_buf())
    } else {
        (None, path.to_path_buf())
    };
    let items = match jsonl {
        Some(j) => {
            let lines: Vec<CaptionLine> = read_jsonl(&j)?;
            lines
                .into_iter()
                .map(|l| Item {
                    source: ImageSource::File(root.join(l.file)),
                    caption: l.caption,
                    weight: 1.0,
                })
                .collect()
        }
        None => {
            let mut shards: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("could not list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "tar"))
                .collect();
            shards.sort();
            if shards.is_empty() {
                bail!("{}: no .tar shards and no captions.jsonl: give a webdataset folder or an image folder with captions.jsonl", path.display());
            }
            let mut items = Vec::new();
            for s in &shards {
                items.extend(index_shard(s)?);
            }
            items
        }
    };
    if items.is_empty() {
        bail!("{}: no image-caption pairs found", path.display());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 9) as u8, (y * 7) as u8, 100]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn webdataset_shards_pair_images_and_captions() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(std::fs::File::create(dir.path().join("00000.tar")).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        add("000000000.png", &png_bytes(20, 10));
        add("000000000.txt", b"A red dog ");
        add("000000000.json", b"{}");
        add("000000001.png", &png_bytes(8, 8)); // no caption: skipped
        add("000000002.txt", b"caption without image");
        b.finish().unwrap();
        drop(b);
        let items = pretrain_dataset(dir.path()).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].caption, "A red dog");
        let img = load_square(&items[0].source, 8).unwrap();
        assert_eq!(img.dimensions(), (8, 8));
    }

    #[test]
    fn caption_folder_and_bad_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), png_bytes(30, 40)).unwrap();
        std::fs::write(dir.path().join("b.png"), b"not a png").unwrap();
        std::fs::write(
            dir.path().join("captions.jsonl"),
            "{\"file\":\"a.png\",\"caption\":\"x\"}\n{\"file\":\"b.png\",\"caption\":\"y\"}\n",
        )
        .unwrap();
        let items = pretrain_dataset(dir.path()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            load_square(&items[0].source, 16).unwrap().dimensions(),
            (16, 16)
        );
        let e = load_square(&items[1].source, 16).unwrap_err().to_string();
        assert!(e.contains("b.png"), "{e}");
        assert!(pretrain_dataset(&dir.path().join("nothing")).is_err());
    }
}
