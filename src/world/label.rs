//! The oracle as a labeler: it looks at every image of a manifest, judges it against its prompt,
//! and writes the same feedback JSONL a person would through `rlhf-t2i label`.

use super::dataset::claim_of;
use super::oracle::{judge, observe};
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
    let mut groups: BTreeMap<String, BTreeMap<&str, (f64, f64)>> = BTreeMap::new();
    for j in judged {
        let p = &j.record.prompt;
        for g in ["all", p.category.as_str(), p.split.as_str()] {
            let c = groups
                .entry(g.to_string())
                .or_default()
                .entry(&p.id)
                .or_default();
            c.0 += f64::from(u8::from(j.good));
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
