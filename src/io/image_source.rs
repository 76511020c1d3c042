//! Where an image's bytes are: a file, or a member of a webdataset `.tar` shard (read in place by
//! offset, so shards are never unpacked), and decoding it the way every stage does (RGB, alpha
//! composited onto white).

use crate::embed::preprocess::composite_on_white;
use anyhow::{anyhow, Context, Result};
use image::RgbImage;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const IMAGE_EXTS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Where an image's encoded bytes are.
#[derive(Debug, Clone)]
pub enum ImageSource {
    File(PathBuf),
    /// A member of a tar shard: the shard, the byte offset of its data, and its size.
    TarMember {
        shard: PathBuf,
        offset: u64,
        size: u64,
        name: String,
    },
}

impl ImageSource {
    pub fn describe(&self) -> String {
        match self {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::TarMember { shard, name, .. } => format!("{}:{name}", shard.display()),
        }
    }

    pub fn bytes(&self) -> Result<Vec<u8>> {
        match self {
            ImageSource::File(p) => {
                std::fs::read(p).with_context(|| format!("could not read {}", p.display()))
            }
            ImageSource::TarMember {
                shard,
                offset,
                size,
                name,
            } => {
                let mut f = std::fs::File::open(shard)
                    .with_context(|| format!("could not open {}", shard.display()))?;
                f.seek(SeekFrom::Start(*offset))?;
                let mut buf = vec![0u8; *size as usize];
                f.read_exact(&mut buf)
                    .with_context(|| format!("{}: member {name} is truncated", shard.display()))?;
                Ok(buf)
            }
        }
    }
}

impl ImageSource {
    pub fn decode_rgb(&self) -> Result<RgbImage> {
        let bytes = self.bytes()?;
        let img = image::load_from_memory(&bytes)
            .map_err(|e| anyhow!("{}: not a readable image: {e}", self.describe()))?;
        Ok(if img.color().has_alpha() {
            composite_on_white(&img.to_rgba8())
        } else {
            img.to_rgb8()
        })
    }
}

fn is_image(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, e)| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What a webdataset shard holds: its image members in archive order, and its `.txt` members
/// (trimmed), each under its key (the member name without its extension).
pub struct ShardContents {
    pub images: Vec<(String, ImageSource)>,
    pub texts: std::collections::HashMap<String, String>,
}

/// Walk a tar shard once, indexing images (read later in place) and reading captions.
pub fn read_shard(shard: &Path) -> Result<ShardContents> {
    let f = std::fs::File::open(shard)
        .with_context(|| format!("could not open {}", shard.display()))?;
    let mut archive = tar::Archive::new(f);
    let mut out = ShardContents {
        images: Vec::new(),
        texts: Default::default(),
    };
    for entry in archive
        .entries()
        .with_context(|| format!("{} is not a tar file", shard.display()))?
    {
        let mut entry = entry.with_context(|| format!("{}: corrupt tar entry", shard.display()))?;
        let name = entry.path()?.to_string_lossy().to_string();
        let Some((key, ext)) = name.rsplit_once('.') else {
            continue;
        };
        let key = key.to_string();
        if ext.eq_ignore_ascii_case("txt") {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .with_context(|| format!("{}: caption {name} is not UTF-8", shard.display()))?;
            out.texts.insert(key, text.trim().to_string());
        } else if is_image(&name) {
            let source = ImageSource::TarMember {
                shard: shard.to_path_buf(),
                offset: entry.raw_file_position(),
                size: entry.size(),
                name,
            };
            out.images.push((key, source));
        }
    }
    Ok(out)
}

/// The images of a folder: the image members of its `.tar` shards when it has any (a
/// webdataset), else its image files; sorted.
pub fn images_in(dir: &Path) -> Result<Vec<ImageSource>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("could not list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let shards: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    if !shards.is_empty() {
        let mut out = Vec::new();
        for s in shards {
            out.extend(read_shard(s)?.images.into_iter().map(|(_, src)| src));
        }
        return Ok(out);
    }
    Ok(entries
        .into_iter()
        .filter(|p| is_image(&p.to_string_lossy()))
        .map(ImageSource::File)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        RgbImage::from_fn(w, 4, |x, _| image::Rgb([x as u8 * 30, 0, 0]))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn folders_of_files_and_of_shards() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), png(3)).unwrap();
        std::fs::write(dir.path().join("a.png"), png(5)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let found = images_in(dir.path()).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|s| s.decode_rgb().unwrap().width())
                .collect::<Vec<_>>(),
            vec![5, 3]
        );

        let shards = tempfile::tempdir().unwrap();
        let mut b =
            tar::Builder::new(std::fs::File::create(shards.path().join("00000.tar")).unwrap());
        for (name, data) in [
            ("0.png", png(6)),
            ("0.txt", b"cap".to_vec()),
            ("1.png", png(2)),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        let found = images_in(shards.path()).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|s| s.decode_rgb().unwrap().width())
                .collect::<Vec<_>>(),
            vec![6, 2]
        );
        assert!(found[0].describe().contains("00000.tar:0.png"));
    }
}
