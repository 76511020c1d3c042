//! Shape classification by soft template matching.
//!
//! An object's soft mask (how much of each pixel is object color, 0..=1) is
//! compared with each shape's coverage template (the renderer's geometry),
//! sharp and Gaussian-blurred. Objects are drawn in square boxes, so templates
//! are square: side `max(w, h)` of the object's thresholded box up to
//! `MAX_EXTEND` pixels more (thin tips fall below half coverage, more so when
//! blurred), and for blurred templates down to `MAX_SHRINK` pixels less (blur
//! spills past the edges and grows the thresholded box: a blurred square
//! otherwise fits a larger circle best), at every placement that covers the box
//! or lies inside it. The score is the soft IoU `Σ min(a, t) / Σ max(a, t)`;
//! the best shape wins. Elongated blobs (two merged objects, a stretched shape)
//! score low against every template.

use std::cell::RefCell;
use std::collections::HashMap;

use super::render::{coverage, BBox};
use super::scene::Shape;

/// Blur levels (Gaussian sigma, pixels) of the templates: sharp renders and
/// blurry generated images.
pub const TEMPLATE_BLURS: [f32; 3] = [0.0, 0.7, 1.2];
/// How many pixels a template box may extend past the object's box on each side.
pub const MAX_EXTEND: usize = 2;
/// How many pixels smaller than the object's box a blurred template box may be.
pub const MAX_SHRINK: usize = 2;
/// Soft-mask and template value of a fully covered pixel.
pub const ONE: u8 = 255;
/// Padding around a template box that holds its blurred spill.
const PAD: usize = 3;
/// Farthest a soft mask pixel can be from its object (beyond it, weight 0).
pub const FRAME_MARGIN: usize = MAX_EXTEND + PAD;

/// An object's soft mask over its box grown by [`SoftMask::margins`].
pub struct SoftMask {
    /// The object's thresholded bounding box.
    pub bbox: BBox,
    /// Row-major frame of values from 0 (background) to [`ONE`] (object color).
    pub alpha: Vec<u8>,
}

impl SoftMask {
    /// Horizontal and vertical margins of the frame around `bbox`: room for a
    /// square template `MAX_EXTEND` larger than the box's longer side, plus blur.
    pub fn margins(bbox: BBox) -> (usize, usize) {
        let side = bbox.w.max(bbox.h);
        (side - bbox.w + FRAME_MARGIN, side - bbox.h + FRAME_MARGIN)
    }

    /// Frame width.
    pub fn width(&self) -> usize {
        self.bbox.w + 2 * SoftMask::margins(self.bbox).0
    }
}

/// A shape's coverage in a `w`×`h` box, padded by `pad` (room for blur
/// spill), laid out with the row stride of the soft mask it is compared with,
/// so one placement is a single contiguous comparison.
struct Template {
    /// Rows of `stride` values; the columns past the padded box are zero and the
    /// trailing zeros of the last row are cut.
    values: Vec<u8>,
    pad: usize,
    sum: u32,
}

fn make_template(shape: Shape, w: usize, h: usize, sigma: f32, stride: usize) -> Template {
    let pad = if sigma > 0.0 { PAD } else { 0 };
    let (fw, fh) = (w + 2 * pad, h + 2 * pad);
    let mut frame = vec![0.0f32; fw * fh];
    for j in 0..h {
        for i in 0..w {
            frame[(j + pad) * fw + i + pad] = coverage(shape, i, j, w, h);
        }
    }
    if sigma > 0.0 {
        frame = blur(&frame, fw, fh, sigma);
    }
    let mut values = vec![0u8; (fh - 1) * stride + fw];
    for (row, chunk) in frame.chunks_exact(fw).enumerate() {
        for (col, v) in chunk.iter().enumerate() {
            values[row * stride + col] = (v * ONE as f32).round() as u8;
        }
    }
    let sum = values.iter().map(|&v| v as u32).sum();
    Template { values, pad, sum }
}

/// `Σ min(template, alpha)` with the template's first value at `start` of the soft mask.
fn overlap(t: &Template, soft: &SoftMask, start: usize) -> u32 {
    let a = &soft.alpha[start..start + t.values.len()];
    // Blocks of 256 fit a u16 sum (256 * 255 < 65536), which vectorizes well.
    t.values
        .chunks(256)
        .zip(a.chunks(256))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| u16::from(*p.min(q)))
                .sum::<u16>() as u32
        })
        .sum()
}

/// Separable Gaussian blur with radius `PAD`, zero outside the frame.
fn blur(src: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let r = PAD as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|d| (-((d * d) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f32 = kernel.iter().sum();
    let pass = |src: &[f32], dx: isize, dy: isize| -> Vec<f32> {
        let mut out = vec![0.0f32; src.len()];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut acc = 0.0;
                for (k, d) in (-r..=r).enumerate() {
                    let (sx, sy) = (x + d * dx, y + d * dy);
                    if sx >= 0 && sy >= 0 && (sx as usize) < w && (sy as usize) < h {
                        acc += kernel[k] * src[sy as usize * w + sx as usize];
                    }
                }
                out[y as usize * w + x as usize] = acc / norm;
            }
        }
        out
    };
    pass(&pass(src, 1, 0), 0, 1)
}

/// Templates up to this many pixels are cached (per thread).
const MAX_CACHED_AREA: usize = 48 * 48;

/// Shape, box side, index into `TEMPLATE_BLURS`, row stride.
type TemplateKey = (Shape, usize, usize, usize);

thread_local! {
    static TEMPLATES: RefCell<HashMap<TemplateKey, Template>> =
        RefCell::new(HashMap::new());
}

/// The best shape of [`shape_scores`] and its soft IoU (the first of equals).
pub fn best_shape(scores: [f32; 5]) -> (Shape, f32) {
    let mut best = (Shape::Circle, 0.0f32);
    for (shape, iou) in Shape::ALL.into_iter().zip(scores) {
        if iou > best.1 {
            best = (shape, iou);
        }
    }
    best
}

/// Each shape's best soft IoU with `soft` over its templates (sizes, placements, blurs), in the
/// order of `Shape::ALL`.
pub fn shape_scores(soft: &SoftMask) -> [f32; 5] {
    let total: u32 = soft.alpha.iter().map(|&v| v as u32).sum();
    let stride = soft.width();
    let b = soft.bbox;
    let (mx, my) = SoftMask::margins(b);
    let side = b.w.max(b.h);
    let mut scores = [0.0f32; 5];
    TEMPLATES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 20_000 {
            cache.clear();
        }
        for (shape, best) in Shape::ALL.into_iter().zip(scores.iter_mut()) {
            for (blur_idx, &sigma) in TEMPLATE_BLURS.iter().enumerate() {
                // Sharp shapes lose under a pixel at their tips; blurred ones up to two. Blur
                // also spills past a shape's edges, so a blurred template may be smaller.
                let (max_extend, max_shrink) = if sigma > 0.0 {
                    (MAX_EXTEND, MAX_SHRINK)
                } else {
                    (1, 0)
                };
                for s in side.saturating_sub(max_shrink).max(2)..=side + max_extend {
                    let fresh;
                    let t: &Template = if s * s <= MAX_CACHED_AREA {
                        cache
                            .entry((shape, s, blur_idx, stride))
                            .or_insert_with(|| make_template(shape, s, s, sigma, stride))
                    } else {
                        fresh = make_template(shape, s, s, sigma, stride);
                        &fresh
                    };
                    // The template box starts `left`, `top` pixels before the object's box
                    // (after it, when negative): every placement that covers the box, or that
                    // the box covers.
                    let offsets = |len: usize| {
                        let d = s as isize - len as isize;
                        d.min(0)..=d.max(0)
                    };
                    for left in offsets(b.w) {
                        for top in offsets(b.h) {
                            let ox = (mx as isize - left) as usize - t.pad;
                            let oy = (my as isize - top) as usize - t.pad;
                            let inter = overlap(t, soft, oy * stride + ox);
                            let iou = inter as f32 / (total + t.sum - inter).max(1) as f32;
                            *best = best.max(iou);
                        }
                    }
                }
            }
        }
    });
    scores
}
