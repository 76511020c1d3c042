//! Procedural renderer: a scene becomes a small RGB image with known boxes.

use rand::Rng;

use super::scene::{Scene, Shape, MAX_COUNT};

/// Side of a rendered image in pixels.
pub const SIZE: usize = 32;
/// Smallest object side in pixels.
pub const MIN_SIDE: usize = 8;
/// Largest object side in pixels.
pub const MAX_SIDE: usize = 11;
/// Minimum empty pixels between two objects' boxes.
pub const GAP: usize = 2;
/// Minimum empty pixels between an object's box and the image border.
pub const MARGIN: usize = 1;
/// Largest per-channel color jitter applied to objects and background.
pub const JITTER: i32 = 12;
/// Thickness of a cross bar as a fraction of the box side.
pub const CROSS_BAR: f32 = 0.4;

/// An axis-aligned box in pixels: columns `x..x+w`, rows `y..y+h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BBox {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl BBox {
    /// Whether the boxes are at least `gap` pixels apart along some axis.
    pub fn separated(&self, other: &BBox, gap: usize) -> bool {
        self.x + self.w + gap <= other.x
            || other.x + other.w + gap <= self.x
            || self.y + self.h + gap <= other.y
            || other.y + other.h + gap <= self.y
    }
}

/// A rendered image and the boxes of its objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// RGB bytes, row-major, `SIZE * SIZE * 3`.
    pub pixels: Vec<u8>,
    /// One box per object.
    pub boxes: Vec<BBox>,
}

/// Whether the point `(u, v)`, in box units (`0..1` each, `v` down), is inside `shape`.
pub fn inside(shape: Shape, u: f32, v: f32) -> bool {
    let (du, dv) = ((u - 0.5).abs(), (v - 0.5).abs());
    match shape {
        Shape::Circle => du * du + dv * dv <= 0.25,
        Shape::Square => (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v),
        Shape::Triangle => (0.0..=1.0).contains(&v) && du <= v * 0.5,
        Shape::Cross => {
            let half = CROSS_BAR * 0.5;
            (du <= half && dv <= 0.5) || (dv <= half && du <= 0.5)
        }
        Shape::Diamond => du + dv <= 0.5,
    }
}

/// Subsamples per axis for anti-aliasing; odd, so coverage is never exactly 1/2.
const SUPERSAMPLE: usize = 5;

/// Fraction of pixel `(i, j)` of a `w`×`h` box covered by `shape` (supersampled).
pub fn coverage(shape: Shape, i: usize, j: usize, w: usize, h: usize) -> f32 {
    let n = SUPERSAMPLE as f32;
    let mut hits = 0;
    for sj in 0..SUPERSAMPLE {
        for si in 0..SUPERSAMPLE {
            let u = (i as f32 + (si as f32 + 0.5) / n) / w as f32;
            let v = (j as f32 + (sj as f32 + 0.5) / n) / h as f32;
            hits += inside(shape, u, v) as u32;
        }
    }
    hits as f32 / (n * n)
}

/// `shape` rasterised into a `w`×`h` box (row-major): the pixels that [`render`]
/// covers at least half, i.e. the pixels that read as object color. The binary
/// form of the oracle's templates (which use the [`coverage`] values themselves).
pub fn shape_mask(shape: Shape, w: usize, h: usize) -> Vec<bool> {
    let mut mask = Vec::with_capacity(w * h);
    for j in 0..h {
        for i in 0..w {
            mask.push(coverage(shape, i, j, w, h) >= 0.5);
        }
    }
    mask
}

fn jittered(rgb: [u8; 3], rng: &mut impl Rng) -> [f32; 3] {
    rgb.map(|c| (c as i32 + rng.random_range(-JITTER..=JITTER)).clamp(0, 255) as f32)
}

/// Random boxes of the given sides, pairwise `GAP` apart and `MARGIN` inside
/// the image, by rejection sampling; `None` after too many rejections.
fn place_randomly(sides: &[usize], rng: &mut impl Rng) -> Option<Vec<BBox>> {
    'attempt: for _ in 0..20 {
        let mut boxes: Vec<BBox> = Vec::with_capacity(sides.len());
        for &side in sides {
            let max = SIZE - MARGIN - side;
            let placed = (0..50).find_map(|_| {
                let b = BBox {
                    x: rng.random_range(MARGIN..=max),
                    y: rng.random_range(MARGIN..=max),
                    w: side,
                    h: side,
                };
                boxes.iter().all(|o| o.separated(&b, GAP)).then_some(b)
            });
            match placed {
                Some(b) => boxes.push(b),
                None => continue 'attempt,
            }
        }
        return Some(boxes);
    }
    None
}

/// Deterministic fallback: each box centred in a cell of a 2×2 grid (at most 4 sides).
fn grid_layout(sides: &[usize]) -> Vec<BBox> {
    let cell = (SIZE - 2 * MARGIN) / 2;
    sides
        .iter()
        .enumerate()
        .map(|(k, &side)| {
            let (cx, cy) = (k % 2, (k / 2) % 2);
            let off = (cell - side.min(cell)) / 2;
            BBox {
                x: MARGIN + cx * cell + off,
                y: MARGIN + cy * cell + off,
                w: side,
                h: side,
            }
        })
        .collect()
}

/// `count` (at most 4) boxes with jittered sides: random, else the grid.
fn layout(count: usize, rng: &mut impl Rng) -> Vec<BBox> {
    let sides: Vec<usize> = (0..count)
        .map(|_| rng.random_range(MIN_SIDE..=MAX_SIDE))
        .collect();
    place_randomly(&sides, rng).unwrap_or_else(|| grid_layout(&sides))
}

/// Renders `scene` into a `SIZE`×`SIZE` RGB image; deterministic given `rng`.
/// Object and background colors get one jitter each per image; edges are
/// anti-aliased by 5×5 supersampling. A count above `MAX_COUNT` is clamped.
pub fn render(scene: &Scene, rng: &mut impl Rng) -> Rendered {
    let bg = jittered(scene.background.rgb(), rng);
    let fg = jittered(scene.color.rgb(), rng);
    let boxes = layout(scene.count.min(MAX_COUNT) as usize, rng);
    let pixels = paint(scene.shape, &boxes, fg, bg);
    Rendered { pixels, boxes }
}

/// Draws `shape` into each of `boxes` (clipped to the image) in color `fg` on `bg`, anti-aliased
/// as [`render`] does: a `SIZE`×`SIZE` RGB image. `render` places the boxes itself; given the
/// boxes of another image's objects, this redraws that image's layout with exact shapes.
pub fn paint(shape: Shape, boxes: &[BBox], fg: [f32; 3], bg: [f32; 3]) -> Vec<u8> {
    let mut alpha = vec![0.0f32; SIZE * SIZE];
    for b in boxes {
        for j in 0..b.h.min(SIZE.saturating_sub(b.y)) {
            for i in 0..b.w.min(SIZE.saturating_sub(b.x)) {
                let a = &mut alpha[(b.y + j) * SIZE + b.x + i];
                *a = a.max(coverage(shape, i, j, b.w, b.h));
            }
        }
    }
    let mut pixels = Vec::with_capacity(SIZE * SIZE * 3);
    for a in alpha {
        for c in 0..3 {
            pixels.push((bg[c] * (1.0 - a) + fg[c] * a).round() as u8);
        }
    }
    pixels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::scene::{Background, Color};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn deterministic_for_a_seed() {
        let scene = Scene::new(Shape::Cross, 3, Color::Blue, Background::Gray);
        let a = render(&scene, &mut ChaCha8Rng::seed_from_u64(7));
        let b = render(&scene, &mut ChaCha8Rng::seed_from_u64(7));
        let c = render(&scene, &mut ChaCha8Rng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.pixels.len(), SIZE * SIZE * 3);
    }

    #[test]
    fn boxes_are_separate_inside_and_colored() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let scene = Scene::random(&mut rng, &[]);
            let r = render(&scene, &mut rng);
            assert_eq!(r.boxes.len(), scene.count as usize);
            for (k, b) in r.boxes.iter().enumerate() {
                assert!((MIN_SIDE..=MAX_SIDE).contains(&b.w) && b.w == b.h);
                assert!(b.x >= MARGIN && b.y >= MARGIN);
                assert!(b.x + b.w + MARGIN <= SIZE && b.y + b.h + MARGIN <= SIZE);
                for o in &r.boxes[k + 1..] {
                    assert!(b.separated(o, GAP), "{b:?} overlaps {o:?}");
                }
                // The box centre is inside every shape: it must be the object color.
                let p = ((b.y + b.h / 2) * SIZE + b.x + b.w / 2) * 3;
                for (c, &nominal) in scene.color.rgb().iter().enumerate() {
                    let d = (r.pixels[p + c] as i32 - nominal as i32).abs();
                    assert!(d <= JITTER, "{scene:?} channel {c} off by {d}");
                }
            }
            // A corner pixel is background.
            for (c, &nominal) in scene.background.rgb().iter().enumerate() {
                assert!((r.pixels[c] as i32 - nominal as i32).abs() <= JITTER);
            }
        }
    }

    struct Zeros;
    impl rand::RngCore for Zeros {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(0);
        }
    }

    #[test]
    fn fallback_grid_is_valid() {
        let cell = (SIZE - 2 * MARGIN) / 2;
        assert!(cell >= MAX_SIDE + GAP);
        // An rng that always proposes the same box forces the fallback.
        assert!(place_randomly(&[MIN_SIDE; 2], &mut Zeros).is_none());
        let boxes = grid_layout(&[MAX_SIDE; 4]);
        for (k, b) in boxes.iter().enumerate() {
            assert!(b.x + b.w + MARGIN <= SIZE && b.y + b.h + MARGIN <= SIZE);
            for o in &boxes[k + 1..] {
                assert!(b.separated(o, GAP));
            }
        }
    }

    #[test]
    fn fallback_is_rare_and_counts_are_clamped() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let fails = (0..1000)
            .filter(|_| place_randomly(&[MAX_SIDE; 4], &mut rng).is_none())
            .count();
        println!("four largest objects fell back to the grid: {fails}/1000");
        assert!(fails < 500);
        assert_eq!(layout(4, &mut Zeros).len(), 4);
        let scene = Scene::new(Shape::Square, 9, Color::Red, Background::Black);
        assert_eq!(render(&scene, &mut rng).boxes.len(), MAX_COUNT as usize);
    }

    #[test]
    fn paint_redraws_a_render_from_its_boxes() {
        let scene = Scene::new(Shape::Triangle, 3, Color::Yellow, Background::Black);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let r = render(&scene, &mut rng);
        // The same draws as render's: background, then object color.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let bg = jittered(scene.background.rgb(), &mut rng);
        let fg = jittered(scene.color.rgb(), &mut rng);
        assert_eq!(paint(scene.shape, &r.boxes, fg, bg), r.pixels);
        // A box past the edge is clipped, not a panic.
        let edge = BBox {
            x: SIZE - 3,
            y: SIZE - 2,
            w: 8,
            h: 8,
        };
        let px = paint(Shape::Square, &[edge], [255.0; 3], [0.0; 3]);
        assert_eq!(px.len(), SIZE * SIZE * 3);
        assert_eq!(px[((SIZE - 1) * SIZE + SIZE - 1) * 3], 255);
    }

    #[test]
    fn masks_have_expected_areas() {
        let area = |s| shape_mask(s, 40, 40).iter().filter(|&&m| m).count() as f32 / 1600.0;
        assert!((area(Shape::Square) - 1.0).abs() < 1e-6);
        assert!((area(Shape::Circle) - std::f32::consts::FRAC_PI_4).abs() < 0.02);
        assert!((area(Shape::Triangle) - 0.5).abs() < 0.02);
        assert!((area(Shape::Diamond) - 0.5).abs() < 0.03);
        let bar = CROSS_BAR;
        assert!((area(Shape::Cross) - (2.0 * bar - bar * bar)).abs() < 0.05);
        // Triangle points up: the top row is narrower than the bottom row.
        let m = shape_mask(Shape::Triangle, 10, 10);
        let row = |j: usize| m[j * 10..(j + 1) * 10].iter().filter(|&&x| x).count();
        assert!(row(0) < row(9));
    }
}
