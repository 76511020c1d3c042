//! Pixel-level segmentation for the oracle: background estimate, per-pixel
//! labels from a blend model, connected components and soft masks.
//!
//! Every pixel is modelled as `bg + t * (color - bg)` for the object color
//! whose blend line passes nearest; it is that object color when `t >= 1/2`,
//! background otherwise, and unknown when no blend line passes within
//! `BLEND_TOLERANCE`. Anti-aliased and blurred rims are blends, so they are
//! split at half coverage instead of being forced to some third color.

use std::collections::VecDeque;

use super::classify::{SoftMask, FRAME_MARGIN, ONE};
use super::render::BBox;
use super::scene::Color;

/// Border pixels within this RGB distance of the estimate count as uniform.
pub const BORDER_TOLERANCE: f32 = 40.0;
/// Largest RGB distance from a pixel to its background–object blend line.
pub const BLEND_TOLERANCE: f32 = 50.0;
/// A pixel's object fraction `t` maps to soft-mask weight 0 at or below this...
const SOFT_LOW: f32 = 0.1;
/// ...and to 1 at or above this (absorbs noise and color jitter).
const SOFT_HIGH: f32 = 0.9;

/// Label of a background pixel (object pixels hold their `Color::ALL` index).
const BG: u8 = 254;

/// Label of a pixel that fits no blend.
const UNKNOWN: u8 = 255;

/// Euclidean distance in RGB.
pub fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    (0..3).map(|c| (a[c] - b[c]).powi(2)).sum::<f32>().sqrt()
}

/// An RGB triple as floats.
pub fn to_f32(rgb: [u8; 3]) -> [f32; 3] {
    rgb.map(|c| c as f32)
}

fn pixel(pixels: &[u8], i: usize) -> [f32; 3] {
    [
        pixels[3 * i] as f32,
        pixels[3 * i + 1] as f32,
        pixels[3 * i + 2] as f32,
    ]
}

/// Per-channel median of the border and the fraction of border pixels near it.
fn estimate_background(pixels: &[u8], w: usize, h: usize) -> ([u8; 3], f32) {
    let mut border: Vec<usize> = (0..w).flat_map(|x| [x, (h - 1) * w + x]).collect();
    border.extend((1..h - 1).flat_map(|y| [y * w, y * w + w - 1]));
    let mut rgb = [0u8; 3];
    for (c, out) in rgb.iter_mut().enumerate() {
        let mut vals: Vec<u8> = border.iter().map(|&i| pixels[3 * i + c]).collect();
        vals.sort_unstable();
        *out = vals[vals.len() / 2];
    }
    let est = to_f32(rgb);
    let near = border
        .iter()
        .filter(|&&i| dist(pixel(pixels, i), est) <= BORDER_TOLERANCE)
        .count();
    (rgb, near as f32 / border.len() as f32)
}

/// The line of blends from the background to one object color.
struct BlendLine {
    bg: [f32; 3],
    dir: [f32; 3],
    inv_len2: f32,
}

impl BlendLine {
    fn new(bg: [f32; 3], color: Color) -> BlendLine {
        let c = to_f32(color.rgb());
        let dir = [c[0] - bg[0], c[1] - bg[1], c[2] - bg[2]];
        let len2 = dir.iter().map(|x| x * x).sum::<f32>().max(1.0);
        BlendLine {
            bg,
            dir,
            inv_len2: 1.0 / len2,
        }
    }

    /// Models `p` as `bg + t * (color - bg)`: the best `t` in 0..=1 and the
    /// squared distance from `p` to that blend.
    fn fit(&self, p: [f32; 3]) -> (f32, f32) {
        let q = [p[0] - self.bg[0], p[1] - self.bg[1], p[2] - self.bg[2]];
        let t = ((q[0] * self.dir[0] + q[1] * self.dir[1] + q[2] * self.dir[2]) * self.inv_len2)
            .clamp(0.0, 1.0);
        let e = (0..3).map(|i| (q[i] - t * self.dir[i]).powi(2)).sum();
        (t, e)
    }
}

/// Labels a pixel as an object color index, `BG` or `UNKNOWN` by the nearest
/// blend line between the background and an object color.
fn label(p: [f32; 3], lines: &[BlendLine]) -> u8 {
    let mut best = (f32::INFINITY, UNKNOWN);
    for (k, line) in lines.iter().enumerate() {
        let (t, e) = line.fit(p);
        if e < best.0 {
            best = (e, if t >= 0.5 { k as u8 } else { BG });
        }
    }
    if best.0 <= BLEND_TOLERANCE * BLEND_TOLERANCE {
        best.1
    } else {
        UNKNOWN
    }
}

/// Pixels 8-connected to `start` with the same label; marks them in `seen`.
fn flood(labels: &[u8], w: usize, h: usize, seen: &mut [bool], start: usize) -> Vec<usize> {
    let want = labels[start];
    let mut out = Vec::new();
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(i) = stack.pop() {
        out.push(i);
        let (x, y) = (i % w, i / w);
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let n = ny * w + nx;
                if !seen[n] && labels[n] == want {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
    }
    out
}

/// Bounding box of a set of pixel indices.
fn bbox_of(component: &[usize], w: usize) -> BBox {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for &i in component {
        let (x, y) = (i % w, i / w);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    BBox {
        x: x0,
        y: y0,
        w: x1 - x0 + 1,
        h: y1 - y0 + 1,
    }
}

const NOBODY: u32 = u32::MAX;

/// Assigns every pixel within `FRAME_MARGIN` of some component to the nearest
/// one (breadth-first, 8-connected), so each object's soft mask sees only its
/// own blended rim.
fn owners(components: &[Vec<usize>], w: usize, h: usize) -> Vec<u32> {
    let mut owner = vec![NOBODY; w * h];
    let mut queue = VecDeque::new();
    for (k, comp) in components.iter().enumerate() {
        for &i in comp {
            owner[i] = k as u32;
            queue.push_back((i, 0));
        }
    }
    while let Some((i, d)) = queue.pop_front() {
        if d == FRAME_MARGIN {
            continue;
        }
        let (x, y) = (i % w, i / w);
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let n = ny * w + nx;
                if owner[n] == NOBODY {
                    owner[n] = owner[i];
                    queue.push_back((n, d + 1));
                }
            }
        }
    }
    owner
}

/// Soft mask of component `k`: per pixel of its frame, how much of its color
/// (the far end of `line`) the pixel holds, counting only pixels it owns.
fn soft_mask(img: &Image, owner: &[u32], k: usize, line: &BlendLine, bbox: BBox) -> SoftMask {
    let (mx, my) = SoftMask::margins(bbox);
    let (fw, fh) = (bbox.w + 2 * mx, bbox.h + 2 * my);
    let mut alpha = vec![0u8; fw * fh];
    for fy in 0..fh {
        for fx in 0..fw {
            let (x, y) = (
                (bbox.x + fx).wrapping_sub(mx),
                (bbox.y + fy).wrapping_sub(my),
            );
            if x < img.w && y < img.h && owner[y * img.w + x] == k as u32 {
                let (t, _) = line.fit(pixel(img.pixels, y * img.w + x));
                let a = ((t - SOFT_LOW) / (SOFT_HIGH - SOFT_LOW)).clamp(0.0, 1.0);
                alpha[fy * fw + fx] = (a * ONE as f32).round() as u8;
            }
        }
    }
    SoftMask { bbox, alpha }
}

/// An image being observed.
struct Image<'a> {
    pixels: &'a [u8],
    w: usize,
    h: usize,
}

/// One object candidate: a large enough connected component of one color.
pub struct Segment {
    /// Its color.
    pub color: Color,
    /// Number of pixels.
    pub area: usize,
    /// Soft mask around the component (its box is the component's box).
    pub soft: SoftMask,
}

/// What segmentation found.
pub struct Segments {
    /// Per-channel median of the border.
    pub bg_rgb: [u8; 3],
    /// Fraction of border pixels within `BORDER_TOLERANCE` of `bg_rgb`.
    pub uniformity: f32,
    /// Object candidates in raster order of their first pixel.
    pub objects: Vec<Segment>,
    /// Solid regions of unknown color at least `min_area` large.
    pub unknown_blobs: usize,
}

/// Segments an RGB image; `pixels.len() == 3 * w * h` and `w, h >= 2`.
/// Components smaller than `min_area` are dropped as specks.
pub fn segment(pixels: &[u8], w: usize, h: usize, min_area: usize) -> Segments {
    let n = w * h;
    let (bg_rgb, uniformity) = estimate_background(pixels, w, h);
    let bg = to_f32(bg_rgb);
    let lines = Color::ALL.map(|c| BlendLine::new(bg, c));
    // Shortcut, exact: a pixel this close to the background has t < 1/2 on every
    // blend line and lies within tolerance of all of them, so it is background.
    let min_len2 = lines
        .iter()
        .map(|l| 1.0 / l.inv_len2)
        .fold(f32::INFINITY, f32::min);
    let near_bg2 = (0.24 * min_len2).min(BLEND_TOLERANCE * BLEND_TOLERANCE);
    let labels: Vec<u8> = (0..n)
        .map(|i| {
            let p = pixel(pixels, i);
            if (0..3).map(|c| (p[c] - bg[c]).powi(2)).sum::<f32>() < near_bg2 {
                BG
            } else {
                label(p, &lines)
            }
        })
        .collect();
    let mut seen = vec![false; n];
    let (mut color_ids, mut components) = (Vec::new(), Vec::new());
    for i in 0..n {
        if seen[i] || labels[i] >= BG {
            continue;
        }
        let component = flood(&labels, w, h, &mut seen, i);
        if component.len() >= min_area {
            color_ids.push(labels[i] as usize);
            components.push(component);
        }
    }
    let owner = owners(&components, w, h);
    let img = Image { pixels, w, h };
    let objects = components
        .iter()
        .zip(color_ids)
        .enumerate()
        .map(|(k, (component, id))| Segment {
            color: Color::ALL[id],
            area: component.len(),
            soft: soft_mask(&img, &owner, k, &lines[id], bbox_of(component, w)),
        })
        .collect();
    Segments {
        bg_rgb,
        uniformity,
        objects,
        unknown_blobs: unknown_blobs(&labels, w, h, min_area),
    }
}

/// Counts solid unknown regions: unknown pixels whose 4-neighbours are all
/// unknown (thin blended rims around objects vanish under this erosion),
/// grouped 8-connected, at least `min_area` large.
fn unknown_blobs(labels: &[u8], w: usize, h: usize, min_area: usize) -> usize {
    let n = w * h;
    let solid: Vec<u8> = (0..n)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let interior = x > 0 && y > 0 && x + 1 < w && y + 1 < h;
            let all = interior
                && [i, i - 1, i + 1, i - w, i + w]
                    .iter()
                    .all(|&j| labels[j] == UNKNOWN);
            all as u8
        })
        .collect();
    let mut seen = vec![false; n];
    (0..n)
        .filter(|&i| {
            solid[i] == 1 && !seen[i] && flood(&solid, w, h, &mut seen, i).len() >= min_area
        })
        .count()
}
