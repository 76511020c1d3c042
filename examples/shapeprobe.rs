//! How cleanly a set of 32 px world images draws its shapes, by the oracle's own measure:
//! `shapeprobe [--margin] MANIFEST [LABELS.jsonl [FLOOR STRICT_OUT.jsonl]]`.
//!
//! Per image, the lowest soft IoU of its objects with their best shape template (the oracle calls
//! a shape unrecognisable below 0.7; clean renders score about 0.98). With `--margin`, the lowest
//! lead of an object's best shape over its second best instead (how unambiguous the shapes are).
//! Printed: its mean and quartiles over the images (over those LABELS marks good, when given) and,
//! without LABELS, per shape the captions ask for, the objects' mean IoU with every shape's
//! templates (what the drawn shapes resemble). With FLOOR, writes LABELS again with every good
//! image below FLOOR marked bad: a stricter filter for `finetune --labels`. MANIFEST is a generate
//! manifest (`path`, `prompt.object`) or a captions.jsonl of renders (`file`).
use anyhow::{Context, Result};
use rlhf_t2i::io::jsonl::{read_jsonl, write_jsonl};
use rlhf_t2i::world::{observe, Shape};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Every object's best-template IoU with each shape, in the order of `Shape::ALL`.
fn object_scores(path: &Path) -> Result<Vec<[f32; 5]>> {
    let img = image::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .to_rgb8();
    let obs = observe(img.as_raw(), img.width() as usize, img.height() as usize)?;
    Ok(obs.objects.iter().map(|o| o.shape_scores).collect())
}

/// The image's lowest best IoU (or, with `margin`, lowest lead of best over second best);
/// `None` when it has no objects.
fn measure(objects: &[[f32; 5]], margin: bool) -> Option<f32> {
    objects
        .iter()
        .map(|s| {
            let mut s = *s;
            s.sort_by(|a, b| b.total_cmp(a));
            if margin {
                s[0] - s[1]
            } else {
                s[0]
            }
        })
        .min_by(f32::total_cmp)
}

fn quartiles(mut v: Vec<f32>) -> String {
    if v.is_empty() {
        return "no images with objects".into();
    }
    v.sort_by(f32::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    format!(
        "{} images with objects: mean {mean:.3}, quartiles {:.3} {:.3} {:.3}",
        v.len(),
        q(0.25),
        q(0.5),
        q(0.75)
    )
}

fn main() -> Result<()> {
    let mut a: Vec<String> = std::env::args().skip(1).collect();
    let margin = a.first().is_some_and(|x| x == "--margin");
    if margin {
        a.remove(0);
    }
    anyhow::ensure!(
        a.len() == 1 || a.len() == 2 || a.len() == 4,
        "usage: shapeprobe [--margin] MANIFEST [LABELS.jsonl [FLOOR STRICT_OUT.jsonl]]"
    );
    let mut text = String::new();
    let manifest = Path::new(&a[0]);
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut value: HashMap<String, Option<f32>> = HashMap::new();
    // Per asked-for shape: the sum of its objects' score vectors and their number.
    let mut resemblance: BTreeMap<String, ([f64; 5], usize)> = BTreeMap::new();
    for v in read_jsonl::<Value>(manifest)? {
        let rel = v["path"].as_str().or(v["file"].as_str()).with_context(|| {
            format!(
                "{}: a line with neither `path` nor `file`",
                manifest.display()
            )
        })?;
        let objects = object_scores(&base.join(rel))?;
        if let Some(asked) = v["prompt"]["object"].as_str() {
            let e = resemblance.entry(asked.to_string()).or_default();
            for s in &objects {
                for (sum, x) in e.0.iter_mut().zip(s) {
                    *sum += f64::from(*x);
                }
                e.1 += 1;
            }
        }
        let id = v["id"].as_str().unwrap_or(rel).to_string();
        value.insert(id, measure(&objects, margin));
    }
    let Some(labels) = a.get(1) else {
        writeln!(
            text,
            "{}: {}",
            a[0],
            quartiles(value.values().flatten().copied().collect())
        )?;
        for (asked, (sum, n)) in resemblance {
            let cells: Vec<String> = Shape::ALL
                .iter()
                .zip(sum)
                .map(|(s, x)| format!("{} {:.3}", s.name(), x / n.max(1) as f64))
                .collect();
            writeln!(
                text,
                "  asked {asked:<9} {n:>4} objects: {}",
                cells.join("  ")
            )?;
        }
        return print(&text);
    };
    let mut lines: Vec<Value> = read_jsonl(Path::new(labels))?;
    let lookup = |l: &Value| -> Result<Option<f32>> {
        let id = l["image_id"]
            .as_str()
            .context("a label without `image_id`")?;
        value
            .get(id)
            .copied()
            .with_context(|| format!("label for `{id}`, which the manifest does not have"))
    };
    let mut good = Vec::new();
    for l in &lines {
        if l["target"].as_f64() == Some(1.0) {
            good.extend(lookup(l)?);
        }
    }
    writeln!(text, "{labels} (good): {}", quartiles(good))?;
    if let (Some(floor), Some(out)) = (a.get(2), a.get(3)) {
        let floor: f32 = floor.parse().context("FLOOR is not a number")?;
        let mut demoted = 0;
        for l in &mut lines {
            if l["target"].as_f64() == Some(1.0) && lookup(l)?.is_none_or(|x| x < floor) {
                l["target"] = 0.0.into();
                l["votes_good"] = 0.into();
                l["votes_bad"] = 1.into();
                demoted += 1;
            }
        }
        write_jsonl(Path::new(out), &lines)?;
        writeln!(
            text,
            "{out}: {demoted} good images below {floor} marked bad"
        )?;
    }
    print(&text)
}

/// One write; a reader that stops early (`| head`) is not an error.
fn print(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
