//! How washed out a set of 32 px world images is: `contrastprobe MANIFEST...` (a generate
//! manifest, or a captions.jsonl of renders such as a `world reproduce` folder's
//! `world-data/captions.jsonl`). Per image, the distance of each pixel's colour from the image's
//! median colour (the background), in RGB units of 0..1; printed: the mean share of pixels
//! farther than 0.25 (the objects' area) and the mean 98th percentile (the objects' contrast).
//! A model trained on its own low-contrast samples loses objects; this measures it.
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

fn files(manifest: &Path) -> Result<Vec<PathBuf>> {
    let base = manifest.parent().unwrap_or(Path::new("."));
    rlhf_t2i::io::jsonl::read_jsonl::<serde_json::Value>(manifest)?
        .iter()
        .map(|v| {
            let rel = v["path"].as_str().or(v["file"].as_str()).with_context(|| {
                format!(
                    "{}: a line with neither `path` nor `file`",
                    manifest.display()
                )
            })?;
            Ok(base.join(rel))
        })
        .collect()
}

/// (share of pixels farther than 0.25 from the median colour, 98th percentile distance).
fn contrast(img: &image::RgbImage) -> (f64, f64) {
    let px: Vec<[f64; 3]> = img
        .pixels()
        .map(|p| p.0.map(|c| c as f64 / 255.0))
        .collect();
    let median = |ch: usize| {
        let mut v: Vec<f64> = px.iter().map(|p| p[ch]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let bg = [median(0), median(1), median(2)];
    let mut d: Vec<f64> = px
        .iter()
        .map(|p| (0..3).map(|c| (p[c] - bg[c]).powi(2)).sum::<f64>().sqrt())
        .collect();
    let far = d.iter().filter(|&&x| x > 0.25).count() as f64 / d.len() as f64;
    d.sort_by(f64::total_cmp);
    (far, d[((d.len() - 1) as f64 * 0.98).round() as usize])
}

fn main() -> Result<()> {
    for m in std::env::args().skip(1) {
        let fs = files(Path::new(&m))?;
        let (mut far, mut p98) = (0.0, 0.0);
        for f in &fs {
            let img = image::open(f)
                .with_context(|| format!("reading {}", f.display()))?
                .to_rgb8();
            let (a, b) = contrast(&img);
            far += a;
            p98 += b;
        }
        let n = fs.len().max(1) as f64;
        println!(
            "{m}: {} images, object area {:.3}, object contrast (p98) {:.3}",
            fs.len(),
            far / n,
            p98 / n
        );
    }
    Ok(())
}
