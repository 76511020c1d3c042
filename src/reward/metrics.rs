//! How well a scorer agrees with human labels: preference accuracy over (good, bad) image pairs
//! of the same prompt (the paper's Figure 3), by seen / unseen split.

use crate::prompts::Split;
use crate::stats::{clustered_proportion, Proportion};
use std::collections::BTreeMap;

/// One labeled image and the score some scorer (reward, CLIP score) gave it.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    pub prompt: &'a str,
    pub split: Split,
    /// 1 good, 0 bad.
    pub target: f32,
    pub score: f32,
}

/// For every prompt, every (good, bad) pair of its images: is the good one scored higher? Ties
/// count one half. Keys `all`, `seen`, `unseen`, each with a 95% bootstrap interval over prompts.
pub fn preference_accuracy(items: &[Judged], seed: u64) -> BTreeMap<String, Proportion> {
    let mut by_prompt: BTreeMap<(&str, Split), Vec<(f32, f32)>> = BTreeMap::new();
    for j in items {
        by_prompt
            .entry((j.prompt, j.split))
            .or_default()
            .push((j.target, j.score));
    }
    let mut clusters: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for ((_, split), scored) in by_prompt {
        let (mut right, mut total) = (0.0, 0.0);
        for (_, good) in scored.iter().filter(|i| i.0 > 0.5) {
            for (_, bad) in scored.iter().filter(|i| i.0 <= 0.5) {
                total += 1.0;
                right += if good > bad {
                    1.0
                } else if good == bad {
                    0.5
                } else {
                    0.0
                };
            }
        }
        if total > 0.0 {
            clusters
                .entry(split.as_str().to_string())
                .or_default()
                .push((right, total));
            clusters
                .entry("all".to_string())
                .or_default()
                .push((right, total));
        }
    }
    clusters
        .into_iter()
        .map(|(k, c)| (k, clustered_proportion(&c, 1000, seed)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs_within_prompts_only() {
        let j = |prompt, split, target, score| Judged {
            prompt,
            split,
            target,
            score,
        };
        let items = [
            j("a", Split::Seen, 1.0, 0.9),
            j("a", Split::Seen, 0.0, 0.1),
            j("a", Split::Seen, 0.0, 0.95),
            j("b", Split::Unseen, 1.0, 0.5),
            j("b", Split::Unseen, 0.0, 0.5),
            // A good image of another prompt with a low score forms no pair with "a".
            j("c", Split::Seen, 1.0, 0.0),
        ];
        let acc = preference_accuracy(&items, 0);
        assert_eq!(acc["seen"].n, 2);
        assert!((acc["seen"].value - 0.5).abs() < 1e-12);
        assert!((acc["unseen"].value - 0.5).abs() < 1e-12);
        assert_eq!(acc["all"].n, 3);
    }
}
