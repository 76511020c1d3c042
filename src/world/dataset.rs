//! The world's captioned image sets and prompts: the pre-training set (a LAION-style folder of
//! rendered images with true captions in the paper's grammar, also the fine-tuning's D_pre), the
//! evaluation prompts over seen and unseen shapes, and the claim a prompt makes for the oracle.

use super::oracle::Claim;
use super::render::{render, SIZE};
use super::scene::{Background, Color, Scene, Shape};
use crate::io::atomic::write_atomic;
use crate::io::jsonl::write_jsonl;
use crate::prompts::{Category, PromptRecord, Vocabulary};
use anyhow::{anyhow, Context, Result};
use candle_core::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One pre-training image: its file (relative to the set's folder), true caption and scene.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptionedImage {
    pub file: String,
    pub caption: String,
    pub shape: String,
    pub count: u32,
    pub color: String,
    pub background: String,
}

/// The captions' file (the fine-tuning's D_pre format: `{"file", "caption"}` per line).
pub const CAPTIONS: &str = "captions.jsonl";
/// The ground truth of each image.
pub const SCENES: &str = "scenes.jsonl";

/// A caption that is true of `scene`, in a template kind drawn at random among those that fit:
/// the count alone always fits; color or background alone say "A ..." and need one object.
pub fn true_caption(scene: &Scene, vocab: &Vocabulary, rng: &mut impl Rng) -> Result<String> {
    let one = scene.count == 1;
    let mut kinds: Vec<(Category, bool, bool, bool)> = vec![
        (Category::Count, true, false, false),
        (Category::Combination, true, true, false),
        (Category::Combination, true, false, true),
        (Category::Combination, true, true, true),
    ];
    if one {
        kinds.push((Category::Color, false, true, false));
        kinds.push((Category::Background, false, false, true));
        kinds.push((Category::Combination, false, true, true));
    }
    let (cat, n, c, b) = kinds[rng.random_range(0..kinds.len())];
    vocab.render(
        cat,
        scene.shape.name(),
        n.then_some(scene.count),
        c.then_some(scene.color.name()),
        b.then_some(scene.background.name()),
    )
}

/// Render `n` scenes over every shape (the base model knows unseen shapes, as SD knows tigers)
/// into `dir`: `images/NNNNNN.png`, `captions.jsonl` and `scenes.jsonl`. Deterministic in `seed`.
pub fn write_pretraining_set(dir: &Path, n: usize, seed: u64) -> Result<Vec<CaptionedImage>> {
    let vocab = super::vocabulary();
    let mut rng = crate::runtime::rng(seed);
    std::fs::create_dir_all(dir.join("images"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let scene = Scene::random(&mut rng, &Shape::ALL);
        let img = render(&scene, &mut rng);
        let caption = true_caption(&scene, &vocab, &mut rng)?;
        let file = format!("images/{i:06}.png");
        let rgb = image::RgbImage::from_raw(SIZE as u32, SIZE as u32, img.pixels)
            .ok_or_else(|| anyhow!("renderer returned a wrong-sized buffer"))?;
        let mut png = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        write_atomic(&dir.join(&file), &png)?;
        out.push(CaptionedImage {
            file,
            caption,
            shape: scene.shape.name().into(),
            count: scene.count,
            color: scene.color.name().into(),
            background: scene.background.name().into(),
        });
    }
    #[derive(Serialize)]
    struct Line<'a> {
        file: &'a str,
        caption: &'a str,
    }
    let lines: Vec<Line> = out
        .iter()
        .map(|c| Line {
            file: &c.file,
            caption: &c.caption,
        })
        .collect();
    write_jsonl(&dir.join(CAPTIONS), &lines)?;
    write_jsonl(&dir.join(SCENES), &out)?;
    Ok(out)
}

/// The images of a set as one `(N, 3, 32, 32)` tensor in [-1, 1].
pub fn load_images(dir: &Path, set: &[CaptionedImage], device: &Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(set.len() * 3 * SIZE * SIZE);
    for c in set {
        let img = crate::io::png_meta::load_rgb(&dir.join(&c.file))?;
        for ch in 0..3 {
            data.extend(img.pixels().map(|p| p[ch] as f32 / 127.5 - 1.0));
        }
    }
    Ok(Tensor::from_vec(data, (set.len(), 3, SIZE, SIZE), device)?)
}

/// What a prompt claims, for the oracle.
pub fn claim_of(p: &PromptRecord) -> Result<Claim> {
    let bad =
        |what: &str, v: &str| anyhow!("prompt `{}`: {what} {v:?} is not in the shape world", p.id);
    Ok(Claim {
        shape: Shape::from_name(&p.object).ok_or_else(|| bad("object", &p.object))?,
        count: p.count,
        color: match &p.color {
            Some(c) => Some(Color::from_name(c).ok_or_else(|| bad("color", c))?),
            None => None,
        },
        background: match &p.background {
            Some(b) => Some(Background::from_name(b).ok_or_else(|| bad("background", b))?),
            None => None,
        },
    })
}

/// The world's evaluation prompts (its Table 4): for every shape, seen and unseen, each count,
/// each color, each background, and four combinations (one per kind, drawn with `seed`).
pub fn eval_prompts(seed: u64) -> Result<Vec<PromptRecord>> {
    let vocab = super::vocabulary();
    let mut rng = crate::runtime::rng(seed);
    let mut out = Vec::new();
    for o in &vocab.objects {
        let name = o.name.as_str();
        for c in &vocab.counts {
            out.push(vocab.record(
                format!("eval-count-{name}-{}", c.value),
                Category::Count,
                name,
                Some(c.value),
                None,
                None,
            )?);
        }
        for c in &vocab.colors {
            out.push(vocab.record(
                format!("eval-color-{name}-{c}"),
                Category::Color,
                name,
                None,
                Some(c),
                None,
            )?);
        }
        for b in &vocab.backgrounds {
            out.push(vocab.record(
                format!("eval-background-{name}-{}", b.name),
                Category::Background,
                name,
                None,
                None,
                Some(&b.name),
            )?);
        }
        for kind in &vocab.combinations.kinds {
            let has = |a: &str| kind.split('+').any(|k| k == a);
            let n =
                has("count").then(|| vocab.counts[rng.random_range(0..vocab.counts.len())].value);
            let c =
                has("color").then(|| vocab.colors[rng.random_range(0..vocab.colors.len())].clone());
            let b = has("background").then(|| {
                vocab.backgrounds[rng.random_range(0..vocab.backgrounds.len())]
                    .name
                    .clone()
            });
            out.push(vocab.record(
                format!("eval-combo-{name}-{}", kind.replace('+', "-")),
                Category::Combination,
                name,
                n,
                c.as_deref(),
                b.as_deref(),
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::oracle::{judge, observe};

    #[test]
    fn captions_are_true_of_their_images() {
        let vocab = crate::world::vocabulary();
        let mut rng = crate::runtime::rng(3);
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let scene = Scene::random(&mut rng, &Shape::ALL);
            let cap = true_caption(&scene, &vocab, &mut rng).unwrap();
            kinds.insert(cap.split_whitespace().count());
            // Parse the caption back through the prompt grammar's fields via the oracle.
            let img = render(&scene, &mut rng);
            let obs = observe(&img.pixels, SIZE, SIZE).unwrap();
            assert!(judge(&obs, &scene.claim_all()).good, "{cap}");
            if scene.count > 1 {
                assert!(
                    cap.starts_with(['T', 'F']),
                    "a count word for {} objects: {cap}",
                    scene.count
                );
            }
        }
        assert!(kinds.len() >= 4, "several template kinds: {kinds:?}");
    }

    #[test]
    fn a_smaller_set_is_the_larger_sets_first_images() {
        // `world reproduce --quick` renders the first N of the models' pre-training set.
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let small = write_pretraining_set(a.path(), 4, 11).unwrap();
        let large = write_pretraining_set(b.path(), 10, 11).unwrap();
        assert_eq!(small[..], large[..4]);
        for c in &small {
            let bytes = |d: &Path| std::fs::read(d.join(&c.file)).unwrap();
            assert_eq!(bytes(a.path()), bytes(b.path()), "{}", c.file);
        }
    }

    #[test]
    fn eval_prompts_cover_seen_and_unseen() {
        let p = eval_prompts(0).unwrap();
        assert_eq!(p.len(), 5 * (4 + 5 + 3 + 4));
        let unseen = p
            .iter()
            .filter(|p| p.split == crate::prompts::Split::Unseen)
            .count();
        assert_eq!(unseen, 2 * 16);
        for r in &p {
            let c = claim_of(r).unwrap();
            assert_eq!(c.shape.name(), r.object);
        }
        assert_eq!(p[0].text, "One circle.");
        assert!(p.iter().any(|r| r.text == "A purple colored diamond."));
        assert!(p.iter().any(|r| r.text == "A cross on a gray background."));
    }
}
