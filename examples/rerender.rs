//! The good images of a generated set, redrawn with exact shapes: `rerender MANIFEST LABELS OUT`.
//!
//! For every image LABELS marks good (`target` 1), the oracle's observation of it (each object's
//! box, its color, the background's estimated color) is drawn again with the caption's shape by
//! the world's renderer: the model's own layouts, counts and sizes, with render-clean outlines.
//! Writes OUT/images/*.png, OUT/manifest.jsonl (the same records, new paths) and OUT/labels.jsonl
//! (the good ones), ready for `finetune --manifest OUT/manifest.jsonl --labels OUT/labels.jsonl`.
//! Fine-tuning on these against the samples themselves separates what the samples' shapes teach
//! from what their layouts do.
use anyhow::{Context, Result};
use rlhf_t2i::io::jsonl::{read_jsonl, write_jsonl};
use rlhf_t2i::world::dataset::claim_of;
use rlhf_t2i::world::render::paint;
use rlhf_t2i::world::{observe, SIZE};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(a.len() == 3, "usage: rerender MANIFEST LABELS OUT");
    let (manifest, out) = (Path::new(&a[0]), Path::new(&a[2]));
    let base = manifest.parent().unwrap_or(Path::new("."));
    let good: HashMap<String, Value> = read_jsonl::<Value>(Path::new(&a[1]))?
        .into_iter()
        .filter(|l| l["target"].as_f64() == Some(1.0))
        .map(|l| {
            Ok((
                l["image_id"]
                    .as_str()
                    .context("a label without `image_id`")?
                    .to_string(),
                l,
            ))
        })
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(out.join("images"))?;
    let (mut records, mut labels) = (Vec::new(), Vec::new());
    for mut r in read_jsonl::<Value>(manifest)? {
        let id = r["id"]
            .as_str()
            .context("a manifest line without `id`")?
            .to_string();
        let Some(mut label) = good.get(&id).cloned() else {
            continue;
        };
        let rel = r["path"]
            .as_str()
            .context("a manifest line without `path`")?;
        let img = rlhf_t2i::io::png_meta::load_rgb(&base.join(rel))?;
        anyhow::ensure!(
            (img.width() as usize, img.height() as usize) == (SIZE, SIZE),
            "{rel}: not a {SIZE} px world image"
        );
        let obs = observe(img.as_raw(), SIZE, SIZE)?;
        let claim = claim_of(&serde_json::from_value(r["prompt"].clone())?)?;
        let boxes: Vec<_> = obs.objects.iter().map(|o| o.bbox).collect();
        let fg = obs
            .objects
            .first()
            .map_or([0.0; 3], |o| o.color.rgb().map(f32::from));
        let pixels = paint(claim.shape, &boxes, fg, obs.background_rgb.map(f32::from));
        let path = format!("images/{id}.png");
        image::RgbImage::from_raw(SIZE as u32, SIZE as u32, pixels)
            .context("image size")?
            .save(out.join(&path))?;
        r["path"] = path.clone().into();
        label["path"] = path.into();
        records.push(r);
        labels.push(label);
    }
    write_jsonl(&out.join("manifest.jsonl"), &records)?;
    write_jsonl(&out.join("labels.jsonl"), &labels)?;
    println!("{}: {} good images redrawn", out.display(), records.len());
    Ok(())
}
