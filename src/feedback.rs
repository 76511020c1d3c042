//! Human feedback: the per-answer record format, reading it (JSONL, or a plain CSV
//! `image,label[,labeler]`), and aggregating several labelers' answers into training labels.
//!
//! One [`FeedbackRecord`] per (image, labeler) answer, appended by the labeling server or written
//! by hand. Skips never become training data. How several labelers' answers combine is a
//! [`Policy`]; class balancing is optional and seeded.

use crate::io::manifest::ImageRecord;
use crate::prompts::{Category, PromptRecord, Split};
use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Good,
    Bad,
    Skip,
    /// Withdraws this labeler's earlier answer about this image (the labeling page's undo).
    Undo,
}

impl Label {
    pub fn parse(s: &str) -> Option<Label> {
        match s.trim().to_ascii_lowercase().as_str() {
            "good" | "1" | "yes" => Some(Label::Good),
            "bad" | "0" | "no" => Some(Label::Bad),
            "skip" => Some(Label::Skip),
            "undo" => Some(Label::Undo),
            _ => None,
        }
    }
}

/// One labeler's answer about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRecord {
    /// The image's id in its manifest.
    pub image_id: String,
    pub prompt: PromptRecord,
    pub labeler: String,
    pub label: Label,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

/// How several labelers' answers about one image become one training label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// More good than bad answers: good; more bad: bad; a tie is dropped.
    Majority,
    /// Good only when every non-skip answer is good; any bad answer makes it bad.
    UnanimousGood,
    /// Only images whose non-skip answers all agree; the others are dropped.
    DropDisagreements,
}

/// One image's aggregated label, the reward model's training target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingLabel {
    pub image_id: String,
    /// Image path relative to the manifest's folder.
    pub path: String,
    pub prompt: PromptRecord,
    /// 1 = good, 0 = bad.
    pub target: f32,
    pub votes_good: u32,
    pub votes_bad: u32,
    pub votes_skip: u32,
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-26T08:32:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Read feedback files: `.csv` as `image,label[,labeler]` (a header line is allowed), anything else
/// as JSONL of [`FeedbackRecord`]. Every image id must be in `manifest`; errors name file and line.
pub fn read_feedback(files: &[&Path], manifest: &[ImageRecord]) -> Result<Vec<FeedbackRecord>> {
    let by_id: HashMap<&str, &ImageRecord> = manifest.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("could not read {}", file.display()))?;
        let csv = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        for (i, line) in text.lines().enumerate() {
            let at = || format!("{}:{}", file.display(), i + 1);
            if line.trim().is_empty() {
                continue;
            }
            let rec = if csv {
                let cols: Vec<&str> = line.split(',').map(str::trim).collect();
                if i == 0
                    && cols
                        .first()
                        .is_some_and(|c| c.eq_ignore_ascii_case("image"))
                {
                    continue;
                }
                if !(2..=3).contains(&cols.len()) {
                    bail!(
                        "{}: expected `image,label[,labeler]`, got {} columns",
                        at(),
                        cols.len()
                    );
                }
                let image = by_id.get(cols[0]).ok_or_else(|| {
                    anyhow!("{}: image id `{}` is not in the manifest", at(), cols[0])
                })?;
                let label = Label::parse(cols[1]).ok_or_else(|| {
                    anyhow!("{}: label `{}` is not good, bad or skip", at(), cols[1])
                })?;
                FeedbackRecord {
                    image_id: image.id.clone(),
                    prompt: image.prompt.clone(),
                    labeler: cols
                        .get(2)
                        .filter(|s| !s.is_empty())
                        .map_or_else(|| "unknown".to_string(), |s| s.to_string()),
                    label,
                    timestamp: String::new(),
                }
            } else {
                let rec: FeedbackRecord =
                    serde_json::from_str(line).map_err(|e| anyhow!("{}: {e}", at()))?;
                let image = by_id.get(rec.image_id.as_str()).ok_or_else(|| {
                    anyhow!(
                        "{}: image id `{}` is not in the manifest",
                        at(),
                        rec.image_id
                    )
                })?;
                if image.prompt.text != rec.prompt.text {
                    bail!(
                        "{}: image `{}` has prompt {:?} in the manifest but {:?} here",
                        at(),
                        rec.image_id,
                        image.prompt.text,
                        rec.prompt.text
                    );
                }
                rec
            };
            if rec.labeler.trim().is_empty() {
                bail!("{}: empty labeler name", at());
            }
            out.push(rec);
        }
    }
    Ok(out)
}

/// The answers that stand: per (image, labeler) the latest answer, unless an undo withdrew it.
/// In file order of those latest answers.
pub fn standing_answers(feedback: &[FeedbackRecord]) -> Vec<&FeedbackRecord> {
    let mut latest: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, f) in feedback.iter().enumerate() {
        let key = (f.image_id.as_str(), f.labeler.as_str());
        if f.label == Label::Undo {
            latest.remove(&key);
        } else {
            latest.insert(key, i);
        }
    }
    let mut keep: Vec<usize> = latest.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &feedback[i]).collect()
}

/// Combine answers per image under `policy`. Returns the labels (in manifest order) and how many
/// images were dropped (ties, disagreements, only skips). A labeler's later answer about the same
/// image replaces the earlier one.
pub fn aggregate(
    feedback: &[FeedbackRecord],
    manifest: &[ImageRecord],
    policy: Policy,
) -> (Vec<TrainingLabel>, usize) {
    let mut votes: HashMap<&str, [u32; 3]> = HashMap::new();
    for f in standing_answers(feedback) {
        let v = votes.entry(f.image_id.as_str()).or_default();
        v[match f.label {
            Label::Good => 0,
            Label::Bad => 1,
            Label::Skip | Label::Undo => 2,
        }] += 1;
    }
    let mut labels = Vec::new();
    let mut dropped = 0;
    for rec in manifest {
        let Some(&[good, bad, skip]) = votes.get(rec.id.as_str()) else {
            continue;
        };
        let target = match policy {
            _ if good + bad == 0 => None,
            Policy::Majority => (good != bad).then_some(if good > bad { 1.0 } else { 0.0 }),
            Policy::UnanimousGood => Some(if bad == 0 { 1.0 } else { 0.0 }),
            Policy::DropDisagreements => {
                (good == 0 || bad == 0).then_some(if bad == 0 { 1.0 } else { 0.0 })
            }
        };
        match target {
            Some(target) => labels.push(TrainingLabel {
                image_id: rec.id.clone(),
                path: rec.path.clone(),
                prompt: rec.prompt.clone(),
                target,
                votes_good: good,
                votes_bad: bad,
                votes_skip: skip,
            }),
            None => dropped += 1,
        }
    }
    (labels, dropped)
}

/// Down-sample the larger class within each category to the size of the smaller, seeded.
pub fn balance(labels: Vec<TrainingLabel>, seed: u64) -> Vec<TrainingLabel> {
    let mut rng = crate::runtime::rng(seed);
    let mut groups: BTreeMap<(usize, bool), Vec<TrainingLabel>> = BTreeMap::new();
    for l in labels {
        let cat = Category::ALL
            .iter()
            .position(|c| *c == l.prompt.category)
            .unwrap_or(0);
        groups.entry((cat, l.target > 0.5)).or_default().push(l);
    }
    let mut out = Vec::new();
    for cat in 0..Category::ALL.len() {
        let bad = groups.remove(&(cat, false)).unwrap_or_default();
        let good = groups.remove(&(cat, true)).unwrap_or_default();
        let n = bad.len().min(good.len());
        for mut g in [bad, good] {
            g.shuffle(&mut rng);
            g.truncate(n);
            out.extend(g);
        }
    }
    out
}

/// Per-category counts of the standing good / bad / skip answers (the paper's Table 2), and of
/// the labels.
pub fn summary(feedback: &[FeedbackRecord], labels: &[TrainingLabel]) -> String {
    let mut s = format!(
        "{:<12} {:>8} {:>8} {:>8} | {:>10} {:>10}\n",
        "category", "good", "bad", "skip", "label=good", "label=bad"
    );
    let standing = standing_answers(feedback);
    let mut total = [0usize; 5];
    for cat in Category::ALL {
        let mut row = [0usize; 5];
        for f in standing.iter().filter(|f| f.prompt.category == cat) {
            match f.label {
                Label::Good => row[0] += 1,
                Label::Bad => row[1] += 1,
                Label::Skip => row[2] += 1,
                Label::Undo => {}
            }
        }
        for l in labels.iter().filter(|l| l.prompt.category == cat) {
            row[if l.target > 0.5 { 3 } else { 4 }] += 1;
        }
        for k in 0..5 {
            total[k] += row[k];
        }
        let _ = writeln!(
            s,
            "{:<12} {:>8} {:>8} {:>8} | {:>10} {:>10}",
            cat.as_str(),
            row[0],
            row[1],
            row[2],
            row[3],
            row[4]
        );
    }
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>8} {:>8} | {:>10} {:>10}",
        "total", total[0], total[1], total[2], total[3], total[4]
    );
    let seen = labels
        .iter()
        .filter(|l| l.prompt.split == Split::Seen)
        .count();
    let _ = writeln!(
        s,
        "labels: {} ({} seen-object prompts, {} unseen)",
        labels.len(),
        seen,
        labels.len() - seen
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::manifest::GenerationSettings;

    fn manifest() -> Vec<ImageRecord> {
        let prompt = crate::prompts::eval_prompts_builtin()[0].clone();
        (0..3)
            .map(|i| ImageRecord {
                id: format!("img{i}"),
                path: format!("images/img{i}.png"),
                prompt: prompt.clone(),
                index: i,
                seed: i as u64,
                settings: GenerationSettings {
                    model: "m".into(),
                    scheduler: "ddim".into(),
                    steps: 1,
                    guidance: 7.5,
                    eta: 0.0,
                    width: 8,
                    height: 8,
                    dtype: "f32".into(),
                },
            })
            .collect()
    }

    fn fb(m: &[ImageRecord], i: usize, who: &str, label: Label) -> FeedbackRecord {
        FeedbackRecord {
            image_id: m[i].id.clone(),
            prompt: m[i].prompt.clone(),
            labeler: who.into(),
            label,
            timestamp: now_rfc3339(),
        }
    }

    #[test]
    fn policies_combine_votes_and_never_train_on_skips() {
        let m = manifest();
        let f = vec![
            fb(&m, 0, "a", Label::Good),
            fb(&m, 0, "b", Label::Bad),
            fb(&m, 1, "a", Label::Good),
            fb(&m, 1, "b", Label::Skip),
            fb(&m, 2, "a", Label::Skip),
        ];
        let (maj, dropped) = aggregate(&f, &m, Policy::Majority);
        assert_eq!((maj.len(), dropped), (1, 2));
        assert_eq!((maj[0].image_id.as_str(), maj[0].target), ("img1", 1.0));
        let (una, _) = aggregate(&f, &m, Policy::UnanimousGood);
        assert_eq!(
            una.iter().map(|l| l.target).collect::<Vec<_>>(),
            vec![0.0, 1.0]
        );
        let (agree, dropped) = aggregate(&f, &m, Policy::DropDisagreements);
        assert_eq!((agree.len(), dropped), (1, 2));
    }

    #[test]
    fn a_later_answer_replaces_the_earlier_one() {
        let m = manifest();
        let f = vec![fb(&m, 0, "a", Label::Bad), fb(&m, 0, "a", Label::Good)];
        let (l, _) = aggregate(&f, &m, Policy::Majority);
        assert_eq!((l[0].target, l[0].votes_bad), (1.0, 0));
    }

    #[test]
    fn csv_and_jsonl_errors_name_file_and_line() {
        let m = manifest();
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("f.csv");
        std::fs::write(&csv, "image,label,labeler\nimg0,good,ann\nimg9,bad,ann\n").unwrap();
        let e = format!("{:#}", read_feedback(&[&csv], &m).unwrap_err());
        assert!(e.contains("f.csv:3") && e.contains("img9"), "{e}");
        std::fs::write(&csv, "img0,maybe\n").unwrap();
        let e = format!("{:#}", read_feedback(&[&csv], &m).unwrap_err());
        assert!(e.contains("f.csv:1") && e.contains("maybe"), "{e}");
        let jl = dir.path().join("f.jsonl");
        let good = serde_json::to_string(&fb(&m, 1, "a", Label::Good)).unwrap();
        std::fs::write(&jl, format!("{good}\n{{\"image_id\": 3}}\n")).unwrap();
        let e = format!("{:#}", read_feedback(&[&jl], &m).unwrap_err());
        assert!(e.contains("f.jsonl:2"), "{e}");
        std::fs::write(&jl, format!("{good}\n")).unwrap();
        std::fs::write(&csv, "img0,good\n").unwrap();
        let all = read_feedback(&[&jl, &csv], &m).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].labeler, "unknown");
    }

    #[test]
    fn balancing_equalises_classes_per_category() {
        let m = manifest();
        let f = vec![
            fb(&m, 0, "a", Label::Good),
            fb(&m, 1, "a", Label::Good),
            fb(&m, 2, "a", Label::Bad),
        ];
        let (l, _) = aggregate(&f, &m, Policy::Majority);
        let b = balance(l, 0);
        assert_eq!(b.len(), 2);
        assert_eq!(b.iter().filter(|l| l.target > 0.5).count(), 1);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_682_096), "2026-11-26T08:34:56Z");
    }
}
