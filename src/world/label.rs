//! The oracle as a labeler: it looks at every image of a manifest, judges it against its prompt,
//! and writes the same feedback JSONL a person would through `rlhf-t2i label`.

use super::dataset::claim_of;
use super::oracle::{judge, observe, Claim, Observation, Verdict};
use super::scene::{Background, Color, Shape};
use crate::feedback::{FeedbackRecord, Label};
use crate::io::jsonl::{read_jsonl, write_jsonl};
use crate::io::manifest::ImageRecord;
use crate::stats::{clustered_proportion, Proportion};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The labeler name in the feedback file.
pub const ORACLE: &str = "oracle";

/// One image's verdict.
#[derive(Debug, Clone)]
pub struct Judged {
    pub record: ImageRecord,
    pub good: bool,
    /// Right on everything but the objects' shapes ([`Verdict::right_but_shape`]).
    pub right_but_shape: bool,
    /// How well the worst-drawn object matches its closest shape (soft IoU, 0..=1; clean renders
    /// about 0.98): a fidelity measure in the world's own terms. `None` without objects.
    pub shape_fidelity: Option<f32>,
    pub reasons: Vec<String>,
}

/// Judge every image of `manifest` against its own prompt.
pub fn judge_manifest(manifest: &Path) -> Result<Vec<Judged>> {
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    let root = manifest.parent().unwrap_or(Path::new("."));
    records
        .into_iter()
        .map(|r| {
            let img = crate::io::png_meta::load_rgb(&root.join(&r.path))?;
            let obs = observe(img.as_raw(), img.width() as usize, img.height() as usize)
                .with_context(|| format!("image `{}`", r.id))?;
            let v = judge(&obs, &claim_of(&r.prompt)?);
            Ok(Judged {
                record: r,
                good: v.good,
                right_but_shape: v.right_but_shape,
                shape_fidelity: obs
                    .objects
                    .iter()
                    .map(|o| o.shape_iou)
                    .min_by(f32::total_cmp),
                reasons: v.reasons,
            })
        })
        .collect()
}

/// Write the oracle's answers (good / bad) for `judged` as feedback JSONL.
pub fn write_feedback(judged: &[Judged], out: &Path) -> Result<()> {
    let recs: Vec<FeedbackRecord> = judged
        .iter()
        .map(|j| FeedbackRecord {
            image_id: j.record.id.clone(),
            prompt: j.record.prompt.clone(),
            labeler: ORACLE.into(),
            label: if j.good { Label::Good } else { Label::Bad },
            timestamp: String::new(),
        })
        .collect();
    write_jsonl(out, &recs)
}

/// Share of good images with a 95% interval from a bootstrap over prompts, overall ("all"), per
/// category and per split.
pub fn alignment(judged: &[&Judged], seed: u64) -> BTreeMap<String, Proportion> {
    share(judged, seed, |j| j.good)
}

/// Mean and standard error of [`Judged::shape_fidelity`] over the images with objects; `None`
/// when none has any.
pub fn shape_fidelity(judged: &[&Judged]) -> Option<(f64, f64)> {
    let v: Vec<f64> = judged
        .iter()
        .filter_map(|j| j.shape_fidelity.map(f64::from))
        .collect();
    (!v.is_empty()).then(|| crate::stats::mean_se(&v))
}

/// Share of images right on everything but their objects' shapes, grouped as [`alignment`].
pub fn right_but_shape(judged: &[&Judged], seed: u64) -> BTreeMap<String, Proportion> {
    share(judged, seed, |j| j.right_but_shape)
}

fn share(judged: &[&Judged], seed: u64, hit: fn(&Judged) -> bool) -> BTreeMap<String, Proportion> {
    let mut groups: BTreeMap<String, BTreeMap<&str, (f64, f64)>> = BTreeMap::new();
    for j in judged {
        let p = &j.record.prompt;
        for g in ["all", p.category.as_str(), p.split.as_str()] {
            let c = groups
                .entry(g.to_string())
                .or_default()
                .entry(&p.id)
                .or_default();
            c.0 += f64::from(u8::from(hit(j)));
            c.1 += 1.0;
        }
    }
    groups
        .into_iter()
        .map(|(g, clusters)| {
            let c: Vec<(f64, f64)> = clusters.into_values().collect();
            (g, clustered_proportion(&c, 2000, seed))
        })
        .collect()
}

/// Images per row of a labeled grid (as `examples/strengthprobe.rs` writes them).
pub const GRID_COLUMNS: usize = 16;

/// One image of a labeled grid: the scene it was rendered from and a person's label (`good`,
/// `bad`, or `skip` where they could not tell).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PersonLabel {
    pub index: usize,
    pub shape: String,
    pub count: u32,
    pub color: String,
    pub background: String,
    pub person: String,
}

/// The oracle against a person's labels on a grid of generated images.
#[derive(Debug)]
pub struct Agreement {
    /// Images per (person's label, oracle says good).
    pub table: BTreeMap<(String, bool), usize>,
    /// Images the person labeled good or bad.
    pub judged: usize,
    /// Of those, the ones the oracle judged the same.
    pub agreed: usize,
    /// The others: the person's label, what the oracle saw and its verdict.
    pub disagreements: Vec<(PersonLabel, Observation, Verdict)>,
}

/// Judges every tile of `grid` (32 px images, [`GRID_COLUMNS`] per row, in the order of `labels`' indices)
/// against its scene and compares with the person's label. The labels are JSONL of
/// [`PersonLabel`]; `tests/fixtures/world-labels/` has two such grids.
pub fn person_agreement(grid: &Path, labels: &Path) -> Result<Agreement> {
    use super::render::SIZE;
    let img = crate::io::png_meta::load_rgb(grid)?;
    let labels: Vec<PersonLabel> = read_jsonl(labels)?;
    let mut a = Agreement {
        table: BTreeMap::new(),
        judged: 0,
        agreed: 0,
        disagreements: Vec::new(),
    };
    for l in labels {
        let bad = |what: &str| anyhow::anyhow!("{}: image {}: {what}", grid.display(), l.index);
        let (col, row) = (l.index % GRID_COLUMNS, l.index / GRID_COLUMNS);
        let (x, y) = ((col * SIZE) as u32, (row * SIZE) as u32);
        if x + SIZE as u32 > img.width() || y + SIZE as u32 > img.height() {
            return Err(bad("outside the grid"));
        }
        let tile = image::imageops::crop_imm(&img, x, y, SIZE as u32, SIZE as u32).to_image();
        let claim = Claim {
            shape: Shape::from_name(&l.shape).ok_or_else(|| bad("unknown shape"))?,
            count: Some(l.count),
            color: Some(Color::from_name(&l.color).ok_or_else(|| bad("unknown color"))?),
            background: Some(
                Background::from_name(&l.background).ok_or_else(|| bad("unknown background"))?,
            ),
        };
        let obs = observe(tile.as_raw(), SIZE, SIZE)?;
        let v = judge(&obs, &claim);
        *a.table.entry((l.person.clone(), v.good)).or_default() += 1;
        match l.person.as_str() {
            "skip" => continue,
            "good" | "bad" => a.judged += 1,
            other => return Err(bad(&format!("label `{other}` is not good, bad or skip"))),
        }
        if (l.person == "good") == v.good {
            a.agreed += 1;
        } else {
            a.disagreements.push((l, obs, v));
        }
    }
    Ok(a)
}
