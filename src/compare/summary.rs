//! The blind A/B votes summarised like the paper's Figure 4 and Appendix C: win / lose / tie
//! shares of A against B per question, per category and per seen/unseen split, and the share of
//! prompts by how many raters preferred A.

use super::{Choice, VoteRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Win / lose / tie counts of A against B for one group of votes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WinLoseTie {
    pub group: String,
    pub votes: usize,
    pub win: usize,
    pub lose: usize,
    pub tie: usize,
}

impl WinLoseTie {
    fn add(&mut self, c: Choice) {
        self.votes += 1;
        match c {
            Choice::A => self.win += 1,
            Choice::B => self.lose += 1,
            Choice::Tie => self.tie += 1,
        }
    }
    fn pct(&self, n: usize) -> f64 {
        if self.votes == 0 {
            0.0
        } else {
            100.0 * n as f64 / self.votes as f64
        }
    }
    pub fn win_pct(&self) -> f64 {
        self.pct(self.win)
    }
    pub fn lose_pct(&self) -> f64 {
        self.pct(self.lose)
    }
    pub fn tie_pct(&self) -> f64 {
        self.pct(self.tie)
    }
}

/// One question's results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuestionSummary {
    pub question: String,
    /// "all", then each category, then "seen" / "unseen".
    pub groups: Vec<WinLoseTie>,
    /// `positive_votes[v]` = share of prompts (in %) on which exactly `v` raters preferred A.
    pub positive_votes: Vec<f64>,
}

/// The whole human evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub a: String,
    pub b: String,
    pub prompts: usize,
    pub raters: usize,
    pub votes: usize,
    pub alignment: QuestionSummary,
    pub quality: QuestionSummary,
}

/// The votes that stand: each rater's latest vote per prompt.
fn standing(votes: &[VoteRecord]) -> Vec<&VoteRecord> {
    let mut latest: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, v) in votes.iter().enumerate() {
        latest.insert((v.prompt.id.as_str(), v.rater.as_str()), i);
    }
    let mut keep: Vec<usize> = latest.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &votes[i]).collect()
}

fn question(votes: &[&VoteRecord], name: &str, pick: fn(&VoteRecord) -> Choice) -> QuestionSummary {
    let mut groups: BTreeMap<(u8, String), WinLoseTie> = BTreeMap::new();
    let mut per_prompt: BTreeMap<&str, usize> = BTreeMap::new();
    let mut max_raters: BTreeMap<&str, usize> = BTreeMap::new();
    for v in votes {
        let c = pick(v);
        for key in [
            (0, "all".to_string()),
            (1, v.prompt.category.as_str().to_string()),
            (2, v.prompt.split.as_str().to_string()),
        ] {
            let g = groups.entry(key.clone()).or_default();
            g.group = key.1;
            g.add(c);
        }
        *per_prompt.entry(&v.prompt.id).or_default() += usize::from(c == Choice::A);
        *max_raters.entry(&v.prompt.id).or_default() += 1;
    }
    let most = max_raters.values().copied().max().unwrap_or(0);
    let mut hist = vec![0usize; most + 1];
    for n in per_prompt.values() {
        hist[*n] += 1;
    }
    let prompts = per_prompt.len().max(1) as f64;
    QuestionSummary {
        question: name.to_string(),
        groups: groups.into_values().collect(),
        positive_votes: hist.iter().map(|&h| 100.0 * h as f64 / prompts).collect(),
    }
}

/// Summarise a votes file's records.
pub fn summarize(votes: &[VoteRecord]) -> Summary {
    let stand = standing(votes);
    let raters: std::collections::BTreeSet<&str> = stand.iter().map(|v| v.rater.as_str()).collect();
    let prompts: std::collections::BTreeSet<&str> =
        stand.iter().map(|v| v.prompt.id.as_str()).collect();
    Summary {
        a: votes.first().map(|v| v.a.clone()).unwrap_or_default(),
        b: votes.first().map(|v| v.b.clone()).unwrap_or_default(),
        prompts: prompts.len(),
        raters: raters.len(),
        votes: stand.len(),
        alignment: question(&stand, "image-text alignment", |v| v.alignment),
        quality: question(&stand, "image quality", |v| v.quality),
    }
}

impl Summary {
    /// The printed form.
    pub fn table(&self) -> String {
        let mut s = format!(
            "A = {}, B = {}: {} votes on {} prompts by {} raters\n",
            self.a, self.b, self.votes, self.prompts, self.raters
        );
        for q in [&self.alignment, &self.quality] {
            let _ = writeln!(s, "\n{} (A win / lose / tie, % of votes)", q.question);
            for g in &q.groups {
                let _ = writeln!(
                    s,
                    "  {:<12} {:>5} votes  win {:>5.1}%  lose {:>5.1}%  tie {:>5.1}%",
                    g.group,
                    g.votes,
                    g.win_pct(),
                    g.lose_pct(),
                    g.tie_pct()
                );
            }
            let dist: Vec<String> = q
                .positive_votes
                .iter()
                .enumerate()
                .map(|(v, p)| format!("{v}: {p:.1}%"))
                .collect();
            let _ = writeln!(
                s,
                "  prompts by number of raters preferring A: {}",
                dist.join(", ")
            );
        }
        s
    }
}
