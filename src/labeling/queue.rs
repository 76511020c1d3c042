//! Who labels what next. Queries are three images of one prompt; each image needs `k` answers
//! from different labelers. The state is rebuilt from the feedback log alone, so a restarted
//! server resumes exactly; only the short-lived "who is looking at what" leases live in memory.

use crate::feedback::{FeedbackRecord, Label};
use crate::io::manifest::ImageRecord;
use crate::prompts::{Category, PromptRecord};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long a query handed out stays reserved for its labeler without an answer.
pub const LEASE: Duration = Duration::from_secs(15 * 60);

/// Up to `per_query` images of one prompt, shown together.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: String,
    pub prompt: PromptRecord,
    pub images: Vec<String>,
}

/// Group the manifest's images by prompt (in manifest order, images by index) into queries.
pub fn build_queries(manifest: &[ImageRecord], per_query: usize) -> Vec<Query> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_prompt: HashMap<&str, Vec<&ImageRecord>> = HashMap::new();
    for r in manifest {
        let list = by_prompt.entry(r.prompt.id.as_str()).or_insert_with(|| {
            order.push(r.prompt.id.as_str());
            Vec::new()
        });
        list.push(r);
    }
    let mut queries = Vec::new();
    for pid in order {
        let mut imgs = by_prompt.remove(pid).unwrap_or_default();
        imgs.sort_by_key(|r| r.index);
        for (k, chunk) in imgs.chunks(per_query.max(1)).enumerate() {
            queries.push(Query {
                id: format!("{pid}#{k}"),
                prompt: chunk[0].prompt.clone(),
                images: chunk.iter().map(|r| r.id.clone()).collect(),
            });
        }
    }
    queries
}

/// Progress of one category (or of everything), in queries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategoryProgress {
    pub category: String,
    pub done: usize,
    pub left: usize,
}

/// What the page shows under the images.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Progress {
    /// This labeler's standing answers.
    pub mine: usize,
    pub total: CategoryProgress,
    pub per_category: Vec<CategoryProgress>,
}

/// The labeling state: standing answers and leases.
#[derive(Debug)]
pub struct LabelState {
    pub queries: Vec<Query>,
    k: usize,
    query_of: HashMap<String, usize>,
    /// image id → labeler → standing answer.
    answers: HashMap<String, BTreeMap<String, Label>>,
    /// labeler → image ids of their standing answers, oldest first (the undo stack).
    history: HashMap<String, Vec<String>>,
    /// query index → labeler → when it was handed out.
    leases: HashMap<usize, HashMap<String, Instant>>,
}

impl LabelState {
    pub fn new(queries: Vec<Query>, k: usize) -> LabelState {
        let query_of = queries
            .iter()
            .enumerate()
            .flat_map(|(q, query)| query.images.iter().map(move |i| (i.clone(), q)))
            .collect();
        LabelState {
            queries,
            k: k.max(1),
            query_of,
            answers: HashMap::new(),
            history: HashMap::new(),
            leases: HashMap::new(),
        }
    }

    pub fn query_of(&self, image: &str) -> Option<usize> {
        self.query_of.get(image).copied()
    }

    /// Apply one logged record (an answer, a corrected answer, or an undo).
    pub fn apply(&mut self, rec: &FeedbackRecord) {
        let stack = self.history.entry(rec.labeler.clone()).or_default();
        if let Some(pos) = stack.iter().rposition(|i| *i == rec.image_id) {
            stack.remove(pos);
        }
        let per_image = self.answers.entry(rec.image_id.clone()).or_default();
        if rec.label == Label::Undo {
            per_image.remove(&rec.labeler);
        } else {
            per_image.insert(rec.labeler.clone(), rec.label);
            stack.push(rec.image_id.clone());
        }
    }

    /// The labeler's most recent standing answer, which an undo withdraws.
    pub fn last_answer(&self, labeler: &str) -> Option<&str> {
        self.history.get(labeler)?.last().map(String::as_str)
    }

    pub fn answer(&self, image: &str, labeler: &str) -> Option<Label> {
        self.answers.get(image)?.get(labeler).copied()
    }

    fn labels_on(&self, image: &str) -> usize {
        self.answers.get(image).map_or(0, BTreeMap::len)
    }

    /// The fewest answers any image of the query has.
    fn query_labels(&self, q: usize) -> usize {
        self.queries[q]
            .images
            .iter()
            .map(|i| self.labels_on(i))
            .min()
            .unwrap_or(0)
    }

    fn query_done(&self, q: usize) -> bool {
        self.query_labels(q) >= self.k
    }

    /// How many of the query's images this labeler has answered.
    fn answered_by(&self, q: usize, labeler: &str) -> usize {
        self.queries[q]
            .images
            .iter()
            .filter(|i| self.answer(i, labeler).is_some())
            .count()
    }

    /// Reserve `q` for `labeler` (dropping any other reservation of theirs).
    pub fn lease(&mut self, q: usize, labeler: &str, now: Instant) {
        for holders in self.leases.values_mut() {
            holders.remove(labeler);
        }
        self.leases
            .entry(q)
            .or_default()
            .insert(labeler.to_string(), now);
    }

    fn others_holding(&self, q: usize, labeler: &str, now: Instant) -> usize {
        self.leases.get(&q).map_or(0, |h| {
            h.iter()
                .filter(|(l, t)| l.as_str() != labeler && now.duration_since(**t) < LEASE)
                .count()
        })
    }

    /// The query to show `labeler` now, reserved for them; `None` when nothing is left for them.
    ///
    /// In order: a query they have half answered; the one they hold; else, among queries still
    /// short of `k` answers that they have not seen, one nobody else is looking at (or, only when
    /// every remaining one is held, one held by fewer people than it still needs), preferring
    /// queries closest to done so finished queries accumulate.
    pub fn next_for(&mut self, labeler: &str, now: Instant) -> Option<usize> {
        let partial = self.history.get(labeler).and_then(|stack| {
            stack
                .iter()
                .filter_map(|i| self.query_of(i))
                .filter(|&q| self.answered_by(q, labeler) < self.queries[q].images.len())
                .min()
        });
        let held = || {
            self.leases.iter().find_map(|(&q, h)| {
                let fresh = h
                    .get(labeler)
                    .is_some_and(|t| now.duration_since(*t) < LEASE);
                (fresh && self.answered_by(q, labeler) < self.queries[q].images.len()).then_some(q)
            })
        };
        let pick = partial.or_else(held).or_else(|| {
            (0..self.queries.len())
                .filter(|&q| !self.query_done(q) && self.answered_by(q, labeler) == 0)
                .min_by_key(|&q| {
                    let have = self.query_labels(q);
                    let need = self.k - have;
                    let others = self.others_holding(q, labeler, now);
                    (others >= need, others, std::cmp::Reverse(have), q)
                })
        })?;
        self.lease(pick, labeler, now);
        Some(pick)
    }

    /// Progress in queries (done = every image has `k` answers), overall and per category.
    pub fn progress(&self, labeler: &str) -> Progress {
        let mut per: BTreeMap<Category, (usize, usize)> = BTreeMap::new();
        for (q, query) in self.queries.iter().enumerate() {
            let e = per.entry(query.prompt.category).or_default();
            if self.query_done(q) {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let row = |name: &str, (done, left): (usize, usize)| CategoryProgress {
            category: name.to_string(),
            done,
            left,
        };
        let (done, left) = per
            .values()
            .fold((0, 0), |(d, l), (dd, ll)| (d + dd, l + ll));
        Progress {
            mine: self.history.get(labeler).map_or(0, Vec::len),
            total: row("all", (done, left)),
            per_category: per.iter().map(|(c, v)| row(c.as_str(), *v)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::manifest::GenerationSettings;

    fn manifest(prompts: usize, per_prompt: u32) -> Vec<ImageRecord> {
        let base = crate::prompts::eval_prompts_builtin();
        let mut out = Vec::new();
        for p in base.iter().take(prompts) {
            for i in 0..per_prompt {
                out.push(ImageRecord {
                    id: format!("{}-{i}", p.id),
                    path: format!("images/{}-{i}.png", p.id),
                    prompt: p.clone(),
                    index: i,
                    seed: i as u64,
                    settings: GenerationSettings {
                        model: "m".into(),
                        scheduler: "ddim".into(),
                        steps: 1,
                        guidance: 1.0,
                        eta: 0.0,
                        width: 8,
                        height: 8,
                        dtype: "f32".into(),
                    },
                });
            }
        }
        out
    }

    fn answer(state: &mut LabelState, q: usize, labeler: &str, label: Label) {
        for img in state.queries[q].images.clone() {
            let prompt = state.queries[q].prompt.clone();
            state.apply(&FeedbackRecord {
                image_id: img,
                prompt,
                labeler: labeler.into(),
                label,
                timestamp: String::new(),
            });
        }
    }

    #[test]
    fn queries_are_three_images_of_one_prompt() {
        let qs = build_queries(&manifest(2, 7), 3);
        assert_eq!(qs.len(), 6);
        assert_eq!(qs[0].images.len(), 3);
        assert_eq!(qs[2].images.len(), 1);
        assert!(qs[..3].iter().all(|q| q.prompt.id == qs[0].prompt.id));
    }

    #[test]
    fn two_labelers_each_see_every_query_once() {
        let mut s = LabelState::new(build_queries(&manifest(4, 3), 3), 2);
        let now = Instant::now();
        // Two labelers working at once get different queries while fresh ones exist.
        let a = s.next_for("a", now).unwrap();
        let b = s.next_for("b", now).unwrap();
        assert_ne!(a, b);
        // Asking again returns the held query (a reload).
        assert_eq!(s.next_for("a", now), Some(a));
        let mut seen: HashMap<&str, Vec<usize>> = HashMap::new();
        for who in ["a", "b"].into_iter().cycle().take(20) {
            if let Some(q) = s.next_for(who, now) {
                answer(&mut s, q, who, Label::Good);
                seen.entry(who).or_default().push(q);
            }
        }
        for who in ["a", "b"] {
            let mut v = seen[who].clone();
            v.sort();
            assert_eq!(v, vec![0, 1, 2, 3], "{who}");
        }
        assert_eq!(s.next_for("a", now), None);
        assert_eq!(s.next_for("c", now), None, "every image has k = 2 answers");
        let p = s.progress("a");
        assert_eq!((p.total.done, p.total.left, p.mine), (4, 0, 12));
    }

    #[test]
    fn shares_a_query_only_when_needed() {
        let mut s = LabelState::new(build_queries(&manifest(1, 3), 3), 2);
        let now = Instant::now();
        let a = s.next_for("a", now).unwrap();
        // The only query is held by a but still needs two answers: b may have it too.
        assert_eq!(s.next_for("b", now), Some(a));
        // A third labeler would be a wasted answer while both holders are active.
        assert_eq!(s.next_for("c", now), Some(a), "only candidate left");
        let mut s = LabelState::new(build_queries(&manifest(2, 3), 3), 1);
        let a = s.next_for("a", now).unwrap();
        let b = s.next_for("b", now).unwrap();
        assert_ne!(a, b, "k = 1: never share while another query is free");
        // Leases expire.
        let later = now + LEASE + Duration::from_secs(1);
        let c = s.next_for("c", later).unwrap();
        assert!(c == a || c == b);
    }

    #[test]
    fn half_answered_query_comes_back_and_undo_reopens() {
        let mut s = LabelState::new(build_queries(&manifest(3, 3), 3), 2);
        let now = Instant::now();
        let q = s.next_for("a", now).unwrap();
        let img = s.queries[q].images[0].clone();
        let prompt = s.queries[q].prompt.clone();
        let rec = |label| FeedbackRecord {
            image_id: img.clone(),
            prompt: prompt.clone(),
            labeler: "a".into(),
            label,
            timestamp: String::new(),
        };
        s.apply(&rec(Label::Bad));
        // A fresh state (a restarted server) replays the log and returns the same query.
        let mut fresh = LabelState::new(s.queries.clone(), 2);
        fresh.apply(&rec(Label::Bad));
        assert_eq!(fresh.next_for("a", now), Some(q));
        assert_eq!(s.last_answer("a"), Some(img.as_str()));
        s.apply(&rec(Label::Undo));
        assert_eq!(s.answer(&img, "a"), None);
        assert_eq!(s.last_answer("a"), None);
        assert_eq!(s.progress("a").mine, 0);
    }
}
