//! The labeler: decides from pixels alone whether an image shows what a claim says.
//!
//! Pipeline (`segment`): estimate the background from the border (per-channel
//! median), model every pixel as a blend of that background with one object
//! color and label it (object if mostly object color, background otherwise,
//! unknown if it fits no blend), find 8-connected components per object color
//! and drop specks. Then (`classify`) each component's shape is the one whose
//! renderer template, sharp or blurred, best matches its soft mask (soft IoU).

use std::fmt;

use super::classify::{best_shape, shape_scores};
use super::render::BBox;
use super::scene::{Background, Color, Shape};
use super::segment::{dist, segment, to_f32};

/// What a caption says. `count: None` means "A ..." (exactly one object);
/// `None` color or background means the caption leaves it free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    /// Shape of every object.
    pub shape: Shape,
    /// Number of objects; `None` means one.
    pub count: Option<u32>,
    /// Color of every object, if stated.
    pub color: Option<Color>,
    /// Background, if stated.
    pub background: Option<Background>,
}

impl Claim {
    /// "A <shape>": exactly one object, color and background free.
    pub fn new(shape: Shape) -> Claim {
        Claim {
            shape,
            count: None,
            color: None,
            background: None,
        }
    }

    /// The same claim with a stated number of objects.
    pub fn with_count(self, count: u32) -> Claim {
        Claim {
            count: Some(count),
            ..self
        }
    }

    /// The same claim with a stated object color.
    pub fn with_color(self, color: Color) -> Claim {
        Claim {
            color: Some(color),
            ..self
        }
    }

    /// The same claim with a stated background.
    pub fn with_background(self, background: Background) -> Claim {
        Claim {
            background: Some(background),
            ..self
        }
    }
}

/// One object found in an image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Found {
    /// Best-matching shape.
    pub shape: Shape,
    /// Soft IoU between the object's soft mask and that shape's best-fitting
    /// template (0..=1; about 0.9 or more for clean renders).
    pub shape_iou: f32,
    /// Every shape's best soft IoU, in the order of `Shape::ALL`.
    pub shape_scores: [f32; 5],
    /// Object color.
    pub color: Color,
    /// Number of pixels in the object.
    pub area: usize,
    /// Bounding box of the object's pixels.
    pub bbox: BBox,
}

/// Everything the oracle saw in an image.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The recognised flat background, `None` if the border is not uniform or
    /// its color is far from every background.
    pub background: Option<Background>,
    /// Estimated background color (per-channel median of the border).
    pub background_rgb: [u8; 3],
    /// Distance in RGB from `background_rgb` to the nearest background color.
    pub background_distance: f32,
    /// Fraction of border pixels close to `background_rgb`.
    pub border_uniformity: f32,
    /// Number of solid regions whose color is neither background nor an object color.
    pub unknown_blobs: usize,
    /// Objects in raster order of their first pixel.
    pub objects: Vec<Found>,
}

/// Why an image could not be observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObserveError {
    /// The pixel slice is not `width * height * 3` bytes long.
    LengthMismatch {
        /// `width * height * 3`.
        expected: usize,
        /// The slice length.
        got: usize,
    },
    /// `width * height * 3` overflows.
    TooLarge,
}

impl fmt::Display for ObserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObserveError::LengthMismatch { expected, got } => {
                write!(f, "pixel slice has {got} bytes, expected {expected}")
            }
            ObserveError::TooLarge => write!(f, "image dimensions overflow"),
        }
    }
}

impl std::error::Error for ObserveError {}

/// The oracle's decision and, when bad, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the image is aligned with the claim.
    pub good: bool,
    /// Whether everything but the objects' shapes holds (background, colors, the count, no stray
    /// blob): a model that draws the right scene with poorly drawn shapes is right here and wrong
    /// in `good`. True whenever `good` is.
    pub right_but_shape: bool,
    /// Human-readable reasons the image is bad; empty when good.
    pub reasons: Vec<String>,
}

/// Smallest width or height the oracle looks at; smaller images have no objects.
pub const MIN_IMAGE_SIDE: usize = 8;
/// Largest distance from the estimated background to a nominal background.
pub const BG_MAX_DISTANCE: f32 = 60.0;
/// Smallest fraction of uniform border pixels for a flat background.
pub const MIN_UNIFORMITY: f32 = 0.5;
/// Smallest object area as a fraction of the image (6 px at 32×32).
pub const MIN_AREA_FRACTION: f32 = 6.0 / 1024.0;
/// Below this soft IoU with every template a shape is unrecognisable.
pub const SHAPE_IOU_FLOOR: f32 = 0.7;

impl Observation {
    fn empty() -> Observation {
        Observation {
            background: None,
            background_rgb: [0; 3],
            background_distance: f32::INFINITY,
            border_uniformity: 0.0,
            unknown_blobs: 0,
            objects: Vec::new(),
        }
    }
}

/// Looks at an RGB image (row-major, `width * height * 3` bytes) and reports
/// its background and objects. Images smaller than [`MIN_IMAGE_SIDE`] on a side
/// give an empty observation; a slice of the wrong length is an error.
pub fn observe(pixels: &[u8], width: usize, height: usize) -> Result<Observation, ObserveError> {
    let n = width.checked_mul(height).ok_or(ObserveError::TooLarge)?;
    let expected = n.checked_mul(3).ok_or(ObserveError::TooLarge)?;
    if pixels.len() != expected {
        return Err(ObserveError::LengthMismatch {
            expected,
            got: pixels.len(),
        });
    }
    if width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE {
        return Ok(Observation::empty());
    }
    let min_area = ((n as f32 * MIN_AREA_FRACTION).round() as usize).max(3);
    let seg = segment(pixels, width, height, min_area);
    let bg = to_f32(seg.bg_rgb);
    let (nearest, bg_dist) = Background::ALL
        .iter()
        .map(|b| (*b, dist(bg, to_f32(b.rgb()))))
        .fold((Background::White, f32::INFINITY), |a, b| {
            if b.1 < a.1 {
                b
            } else {
                a
            }
        });
    let background =
        (bg_dist <= BG_MAX_DISTANCE && seg.uniformity >= MIN_UNIFORMITY).then_some(nearest);
    let objects = seg
        .objects
        .iter()
        .map(|o| {
            let shape_scores = shape_scores(&o.soft);
            let (shape, shape_iou) = best_shape(shape_scores);
            Found {
                shape,
                shape_iou,
                shape_scores,
                color: o.color,
                area: o.area,
                bbox: o.soft.bbox,
            }
        })
        .collect();
    Ok(Observation {
        background,
        background_rgb: seg.bg_rgb,
        background_distance: bg_dist,
        border_uniformity: seg.uniformity,
        unknown_blobs: seg.unknown_blobs,
        objects,
    })
}

fn objects_word(n: usize) -> &'static str {
    if n == 1 {
        "object"
    } else {
        "objects"
    }
}

/// Decides whether an observation matches a claim. Good means: a flat known
/// background (matching the claim if stated), no blob of unrecognised color,
/// at least one object, exactly the claimed count (one if unstated), every
/// object recognisably of the claimed shape, and of the claimed color if stated.
pub fn judge(obs: &Observation, claim: &Claim) -> Verdict {
    let mut reasons = Vec::new();
    match (obs.background, claim.background) {
        (None, _) => reasons.push(format!(
            "background is not a flat known color (estimated rgb {:?})",
            obs.background_rgb
        )),
        (Some(seen), Some(said)) if seen != said => reasons.push(format!(
            "background is {}, caption says {}",
            seen.name(),
            said.name()
        )),
        _ => {}
    }
    if obs.unknown_blobs > 0 {
        reasons.push(format!(
            "found {} region(s) of unrecognised color",
            obs.unknown_blobs
        ));
    }
    let want = claim.count.unwrap_or(1) as usize;
    let n = obs.objects.len();
    if n == 0 {
        reasons.push("no objects found".to_string());
    } else if n != want {
        reasons.push(format!(
            "found {n} {}, caption says {want}",
            objects_word(n)
        ));
    }
    for (k, o) in obs.objects.iter().enumerate() {
        let k = k + 1;
        if let Some(said) = claim.color {
            if o.color != said {
                reasons.push(format!(
                    "object {k} is {}, caption says {}",
                    o.color.name(),
                    said.name()
                ));
            }
        }
    }
    // Every reason so far is about something other than a shape.
    let other_reasons = reasons.len();
    for (k, o) in obs.objects.iter().enumerate() {
        let k = k + 1;
        if o.shape_iou < SHAPE_IOU_FLOOR {
            reasons.push(format!(
                "object {k} has an unrecognisable shape (closest: {}, IoU {:.2})",
                o.shape.name(),
                o.shape_iou
            ));
        } else if o.shape != claim.shape {
            reasons.push(format!(
                "object {k} is a {}, caption says {}",
                o.shape.name(),
                claim.shape.name()
            ));
        }
    }
    Verdict {
        good: reasons.is_empty(),
        right_but_shape: other_reasons == 0,
        reasons,
    }
}
