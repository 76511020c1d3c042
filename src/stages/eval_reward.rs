//! `rlhf-t2i eval-reward`: does the learned reward rank a labeled-good image above a labeled-bad
//! image of the same prompt more often than the CLIP score does? (The paper's Figure 3.)

use crate::feedback::TrainingLabel;
use crate::io::jsonl::read_jsonl;
use crate::io::scores::ScoreRecord;
use crate::reward::metrics::{preference_accuracy, Judged};
use crate::stats::Proportion;
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct RewardEval {
    pub reward: BTreeMap<String, Proportion>,
    pub clip_score: BTreeMap<String, Proportion>,
    pub labeled_images: usize,
}

impl RewardEval {
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<8} {:>26} {:>26} {:>7}\n",
            "split", "learned reward", "CLIP score", "pairs"
        );
        for (k, r) in &self.reward {
            let c = &self.clip_score[k];
            let _ = writeln!(
                s,
                "{k:<8} {:>8.3} [{:.3}, {:.3}]     {:>8.3} [{:.3}, {:.3}]     {:>7}",
                r.value, r.lo, r.hi, c.value, c.lo, c.hi, r.n
            );
        }
        s
    }
}

pub fn run(labels: &Path, scores: &Path, seed: u64) -> Result<RewardEval> {
    let labels: Vec<TrainingLabel> = read_jsonl(labels)?;
    let scored: Vec<ScoreRecord> = read_jsonl(scores)?;
    let by_id: HashMap<&str, &ScoreRecord> =
        scored.iter().map(|s| (s.image_id.as_str(), s)).collect();
    let mut reward = Vec::new();
    let mut clip = Vec::new();
    for l in &labels {
        let Some(s) = by_id.get(l.image_id.as_str()) else {
            bail!(
                "{}: labeled image `{}` has no score (score the same manifest)",
                scores.display(),
                l.image_id
            )
        };
        let j = |score| Judged {
            prompt: &l.prompt.id,
            split: l.prompt.split,
            target: l.target,
            score,
        };
        reward.push(j(s.reward));
        clip.push(j(s.clip_score));
    }
    let out = RewardEval {
        reward: preference_accuracy(&reward, seed),
        clip_score: preference_accuracy(&clip, seed),
        labeled_images: labels.len(),
    };
    if out.reward.is_empty() {
        bail!(
            "no (good, bad) pairs of the same prompt among {} labeled images",
            labels.len()
        );
    }
    Ok(out)
}
