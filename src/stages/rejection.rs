//! `rlhf-t2i rejection-sample`: of the n images drawn per prompt, keep the k with the highest
//! reward (the paper keeps 4 of 16), beside k drawn at random as the comparison. Writes the kept
//! images as a manifest and reports mean reward of both selections.

use crate::io::jsonl::{read_jsonl, write_jsonl};
use crate::io::manifest::ImageRecord;
use crate::io::scores::ScoreRecord;
use crate::stats::mean_se;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    pub mean: f64,
    pub se: f64,
    pub n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectionReport {
    pub keep: usize,
    pub prompts: usize,
    /// Mean reward of the kept (top-k) images, and of k random ones per prompt.
    pub top_k: Selection,
    pub random_k: Selection,
    pub by_category: BTreeMap<String, (Selection, Selection)>,
}

fn selection(xs: &[f64]) -> Selection {
    let (mean, se) = mean_se(xs);
    Selection {
        mean,
        se,
        n: xs.len(),
    }
}

pub fn run(
    manifest: &Path,
    scores: &Path,
    keep: usize,
    seed: u64,
    out: &Path,
) -> Result<RejectionReport> {
    if keep == 0 {
        bail!("--keep must be at least 1");
    }
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    let scored: Vec<ScoreRecord> = read_jsonl(scores)?;
    let reward: HashMap<&str, f32> = scored
        .iter()
        .map(|s| (s.image_id.as_str(), s.reward))
        .collect();
    let mut by_prompt: BTreeMap<&str, Vec<(&ImageRecord, f32)>> = BTreeMap::new();
    for r in &records {
        let Some(&s) = reward.get(r.id.as_str()) else {
            bail!(
                "{}: image `{}` of {} has no score",
                scores.display(),
                r.id,
                manifest.display()
            )
        };
        by_prompt
            .entry(r.prompt.id.as_str())
            .or_default()
            .push((r, s));
    }
    let mut rng = crate::runtime::rng(seed);
    let (mut kept, mut top, mut rand_sel) = (Vec::new(), Vec::new(), Vec::new());
    let mut cats: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let same_dir = out.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    }) == manifest.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    let root = std::fs::canonicalize(manifest.parent().unwrap_or(Path::new(".")))?;
    for (_, mut imgs) in by_prompt {
        if imgs.len() < keep {
            bail!(
                "prompt {:?} has {} images, fewer than --keep {keep}",
                imgs[0].0.prompt.text,
                imgs.len()
            );
        }
        let mut shuffled = imgs.clone();
        shuffled.shuffle(&mut rng);
        imgs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
        let cat = imgs[0].0.prompt.category.as_str().to_string();
        for (r, s) in &imgs[..keep] {
            top.push(*s as f64);
            cats.entry(cat.clone()).or_default().0.push(*s as f64);
            let mut rec = (*r).clone();
            if !same_dir {
                rec.path = root.join(&rec.path).display().to_string();
            }
            kept.push(rec);
        }
        for (_, s) in &shuffled[..keep] {
            rand_sel.push(*s as f64);
            cats.entry(cat.clone()).or_default().1.push(*s as f64);
        }
    }
    write_jsonl(out, &kept)?;
    Ok(RejectionReport {
        keep,
        prompts: kept.len() / keep,
        top_k: selection(&top),
        random_k: selection(&rand_sel),
        by_category: cats
            .into_iter()
            .map(|(k, (t, r))| (k, (selection(&t), selection(&r))))
            .collect(),
    })
}
