//! PNG files with text metadata, and image loading with clear errors.
//!
//! Generated images carry their provenance in PNG text chunks under the keys
//! [`KEY_PROMPT`], [`KEY_SEED`], [`KEY_MODEL`], [`KEY_SCHEDULER`], [`KEY_STEPS`],
//! [`KEY_GUIDANCE`] and [`KEY_PARAMETERS`] (a JSON blob of all settings). Latin-1 text is
//! written as `tEXt`, anything else (e.g. a Japanese prompt) as UTF-8 `iTXt`.

use anyhow::{bail, Context, Result};
use image::RgbImage;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

pub const KEY_PROMPT: &str = "prompt";
pub const KEY_SEED: &str = "seed";
pub const KEY_MODEL: &str = "model";
pub const KEY_SCHEDULER: &str = "scheduler";
pub const KEY_STEPS: &str = "steps";
pub const KEY_GUIDANCE: &str = "guidance";
pub const KEY_PARAMETERS: &str = "parameters";

fn is_latin1(s: &str) -> bool {
    s.chars().all(|c| (c as u32) <= 0xFF)
}

/// PNG keywords: 1-79 printable Latin-1 characters, no leading/trailing space.
fn check_keyword(key: &str) -> Result<()> {
    let printable = key
        .chars()
        .all(|c| matches!(c as u32, 0x20..=0x7E | 0xA1..=0xFF));
    if key.is_empty() || key.chars().count() > 79 || !printable || key.trim() != key {
        bail!("invalid PNG text keyword {key:?}: need 1-79 printable Latin-1 characters");
    }
    Ok(())
}

/// Atomically save `img` as an 8-bit RGB PNG at `path`, with one text chunk per
/// `(key, value)` pair, in order, before the image data.
pub fn save_png_with_text(path: &Path, img: &RgbImage, text: &[(&str, &str)]) -> Result<()> {
    for (key, value) in text {
        check_keyword(key).with_context(|| format!("saving {}", path.display()))?;
        if value.contains('\0') {
            bail!(
                "saving {}: PNG text {key:?} contains a NUL character",
                path.display()
            );
        }
    }
    super::atomic::write_atomic_with(path, |w| {
        let mut enc = png::Encoder::new(w, img.width(), img.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        for (key, value) in text {
            if is_latin1(value) {
                writer.write_text_chunk(&png::text_metadata::TEXtChunk::new(*key, *value))?;
            } else {
                writer.write_text_chunk(&png::text_metadata::ITXtChunk::new(*key, *value))?;
            }
        }
        writer.write_image_data(img.as_raw())?;
        writer.finish()?;
        Ok(())
    })
}

/// Read all text chunks (`tEXt`, then `zTXt`, then `iTXt`, each in file order) of the PNG
/// at `path` as `(key, value)` pairs. Reads the whole file, so chunks after the image count.
pub fn read_png_text(path: &Path) -> Result<Vec<(String, String)>> {
    let ctx = || format!("reading PNG text from {}", path.display());
    let file = File::open(path).with_context(ctx)?;
    let mut reader = png::Decoder::new(BufReader::new(file))
        .read_info()
        .with_context(ctx)?;
    reader.finish().with_context(ctx)?;
    let info = reader.info();
    let mut out = Vec::new();
    for c in &info.uncompressed_latin1_text {
        out.push((c.keyword.clone(), c.text.clone()));
    }
    for c in &info.compressed_latin1_text {
        out.push((c.keyword.clone(), c.get_text().with_context(ctx)?));
    }
    for c in &info.utf8_text {
        out.push((c.keyword.clone(), c.get_text().with_context(ctx)?));
    }
    Ok(out)
}

/// Load the image at `path` (format sniffed from its bytes, then its extension) as 8-bit RGB.
/// A missing, truncated or non-image file gives an error naming the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let ctx = || format!("loading image {}", path.display());
    let img = image::ImageReader::open(path)
        .with_context(ctx)?
        .with_guessed_format()
        .with_context(ctx)?
        .decode()
        .with_context(ctx)?;
    Ok(img.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn test_image() -> RgbImage {
        RgbImage::from_fn(7, 5, |x, y| {
            image::Rgb([(x * 30) as u8, (y * 50) as u8, 128])
        })
    }

    fn get<'a>(t: &'a [(String, String)], k: &str) -> Option<&'a str> {
        t.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn png_text_round_trip_with_non_ascii_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out/img.png");
        let img = test_image();
        let prompt = "a cat on a café table, 富士山と桜 🐱";
        let params = r#"{"seed":42,"steps":30,"guidance":7.5,"prompt":"naïve"}"#;
        let text = [
            (KEY_PROMPT, prompt),
            (KEY_SEED, "42"),
            (KEY_MODEL, "runwayml/stable-diffusion-v1-5"),
            (KEY_SCHEDULER, "ddim"),
            (KEY_STEPS, "30"),
            (KEY_GUIDANCE, "7.5"),
            (KEY_PARAMETERS, params),
            ("comment", "naïve café"), // Latin-1 but not ASCII: tEXt
        ];
        save_png_with_text(&p, &img, &text).unwrap();
        let back = read_png_text(&p).unwrap();
        assert_eq!(back.len(), text.len());
        for (k, v) in text {
            assert_eq!(get(&back, k), Some(v), "key {k}");
        }
        assert_eq!(load_rgb(&p).unwrap(), img);
        // Only the PNG itself is left in the directory (no temp file).
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn bad_keyword_is_rejected_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img.png");
        for bad in ["", "提示", " lead", &"k".repeat(80)] {
            let msg = format!(
                "{:#}",
                save_png_with_text(&p, &test_image(), &[(bad, "x")]).unwrap_err()
            );
            assert!(msg.contains("img.png") && msg.contains("keyword"), "{msg}");
        }
        assert!(save_png_with_text(&p, &test_image(), &[("k", "a\0b")]).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn corrupt_png_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.png");
        save_png_with_text(&good, &test_image(), &[(KEY_SEED, "1")]).unwrap();
        let bytes = fs::read(&good).unwrap();

        let truncated = dir.path().join("truncated.png");
        fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let text_file = dir.path().join("notes.png");
        fs::write(&text_file, "this is not an image\n").unwrap();
        let missing = dir.path().join("missing.png");

        for (p, name) in [
            (&truncated, "truncated.png"),
            (&text_file, "notes.png"),
            (&missing, "missing.png"),
        ] {
            let msg = format!("{:#}", load_rgb(p).unwrap_err());
            assert!(msg.contains(name), "{msg}");
            let msg = format!("{:#}", read_png_text(p).unwrap_err());
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn load_rgb_converts_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gray.png");
        let gray = image::GrayImage::from_pixel(3, 2, image::Luma([200]));
        gray.save(&p).unwrap();
        let rgb = load_rgb(&p).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (3, 2));
        assert_eq!(rgb.get_pixel(1, 1), &image::Rgb([200, 200, 200]));
    }
}
