//! CLIP's image preprocessing, exactly as transformers' `CLIPImageProcessor` (PIL backend) does
//! it: RGBA composited onto white, shortest side resized to `size` with Pillow's bicubic filter
//! (its fixed-point, horizontal-then-vertical algorithm, reproduced here bit for bit), a centre
//! crop, then `(x / 255 - mean) / std` per channel.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::{RgbImage, RgbaImage};
use std::path::Path;

pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bicubic kernel (a = -0.5), evaluated in the same order as its C source.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: first input index, and fixed-point weights (Pillow's `precompute_coeffs`
/// followed by `normalize_coeffs_8bpc`).
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
            let mut w: Vec<f64> = (0..xmax)
                .map(|x| bicubic((x as f64 + xmin as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                for v in &mut w {
                    *v /= total;
                }
            }
            let fixed = w
                .iter()
                .map(|&v| {
                    let s = v * (1u32 << PRECISION_BITS) as f64;
                    (if v < 0.0 { s - 0.5 } else { s + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    if acc >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// Resample an 8-bit RGB image as `PIL.Image.resize((w, h), BICUBIC)` does.
pub fn resize_bicubic(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (iw, ih) = img.dimensions();
    let mut cur = img.clone();
    if w != iw {
        let coeffs = coefficients(iw as usize, w as usize);
        let mut out = RgbImage::new(w, ih);
        for y in 0..ih {
            for (x, (xmin, k)) in coeffs.iter().enumerate() {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, kj) in k.iter().enumerate() {
                        acc += cur.get_pixel((xmin + j) as u32, y)[c] as i64 * *kj as i64;
                    }
                    out.get_pixel_mut(x as u32, y)[c] = clip8(acc);
                }
            }
        }
        cur = out;
    }
    if h != ih {
        let coeffs = coefficients(ih as usize, h as usize);
        let mut out = RgbImage::new(w, h);
        for (y, (ymin, k)) in coeffs.iter().enumerate() {
            for x in 0..w {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, kj) in k.iter().enumerate() {
                        acc += cur.get_pixel(x, (ymin + j) as u32)[c] as i64 * *kj as i64;
                    }
                    out.get_pixel_mut(x, y as u32)[c] = clip8(acc);
                }
            }
        }
        cur = out;
    }
    cur
}

/// transformers 5's `convert_to_rgb`: alpha composited onto opaque white.
pub fn composite_on_white(img: &RgbaImage) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = img.get_pixel(x, y);
        let a = p[3] as u32;
        let f = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([f(p[0]), f(p[1]), f(p[2])])
    })
}

/// Load any image file as RGB the way the CLIP processor sees it.
pub fn load_for_clip(path: &Path) -> Result<RgbImage> {
    let img = image::open(path).with_context(|| format!("loading image {}", path.display()))?;
    Ok(if img.color().has_alpha() {
        composite_on_white(&img.to_rgba8())
    } else {
        img.to_rgb8()
    })
}

/// Shortest side to `size` (the long side `size * long / short`, truncated), then a centre crop
/// of `size` x `size`: the 8-bit pixels before normalisation.
pub fn resize_and_crop(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (size as u64 * long as u64 / short as u64) as u32;
    let (rw, rh) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    let resized = resize_bicubic(img, rw, rh);
    let (left, top) = ((rw - size) / 2, (rh - size) / 2);
    image::imageops::crop_imm(&resized, left, top, size, size).to_image()
}

/// 8-bit pixels to a normalised `(3, S, S)` f32 tensor.
pub fn normalize(img: &RgbImage, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let mut data = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            let x = (p[c] as f64 * (1.0 / 255.0)) as f32;
            data[c * n + i] = (x - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    Ok(Tensor::from_vec(data, (3, h as usize, w as usize), device)?)
}

/// The whole preprocessing: an image to CLIP's `(3, size, size)` input.
pub fn preprocess(img: &RgbImage, size: u32, device: &Device) -> Result<Tensor> {
    normalize(&resize_and_crop(img, size), device)
}
