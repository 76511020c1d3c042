//! `rlhf-t2i feedback import`: human feedback files (JSONL or CSV) checked against the manifest,
//! aggregated over labelers, optionally class-balanced, written as training labels (JSONL).

use crate::feedback::{aggregate, balance, read_feedback, summary, Policy, TrainingLabel};
use crate::io::jsonl::{read_jsonl, write_jsonl};
use crate::io::manifest::ImageRecord;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub struct ImportReport {
    pub labels: Vec<TrainingLabel>,
    pub dropped: usize,
    pub answers: usize,
    pub table: String,
}

pub fn run(
    manifest: &Path,
    files: &[PathBuf],
    policy: Policy,
    balanced: bool,
    seed: u64,
    out: &Path,
) -> Result<ImportReport> {
    if files.is_empty() {
        bail!("no feedback files given");
    }
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let feedback = read_feedback(&refs, &records)?;
    let (mut labels, dropped) = aggregate(&feedback, &records, policy);
    if balanced {
        labels = balance(labels, seed);
    }
    if labels.is_empty() {
        bail!("no training labels: {} answers, {dropped} images dropped by the {policy:?} policy or skipped", feedback.len());
    }
    write_jsonl(out, &labels)?;
    let table = summary(&feedback, &labels);
    Ok(ImportReport {
        labels,
        dropped,
        answers: feedback.len(),
        table,
    })
}
