//! `rlhf-t2i compare`: the paper's blind human evaluation. For each prompt a rater sees two
//! anonymised sets of images (A and B in a left/right order drawn per prompt and rater, and
//! recorded), and answers "which is better aligned with the text?" and "which has better image
//! quality?" with left / right / tie. Votes are appended (fsynced) to a JSONL file that is also
//! the server's state.

pub mod summary;

use crate::io::atomic::AppendLog;
use crate::io::jsonl::read_jsonl;
use crate::io::manifest::ImageRecord;
use crate::prompts::PromptRecord;
use crate::web::http::Method;
use crate::web::{self, request::person_name, ApiError, ImageTable, Req};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The page served at `/`.
pub const PAGE: &str = include_str!("page.html");

/// A vote, in terms of the two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    A,
    B,
    Tie,
}

/// Where A was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Left,
    Right,
}

/// One rater's answers about one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteRecord {
    pub prompt: PromptRecord,
    pub rater: String,
    /// The folders compared (as given on the command line).
    pub a: String,
    pub b: String,
    /// Where set A was shown to this rater.
    pub a_side: Side,
    pub alignment: Choice,
    pub quality: Choice,
    /// The image ids shown from each set.
    pub a_images: Vec<String>,
    pub b_images: Vec<String>,
    pub timestamp: String,
}

/// One prompt with its images from both sets.
#[derive(Debug, Clone)]
pub struct Pair {
    pub prompt: PromptRecord,
    pub a: Vec<ImageRecord>,
    pub b: Vec<ImageRecord>,
}

/// Match two manifests by prompt id (A's order), keeping the first `n` images of each by index.
pub fn pair_manifests(a: &[ImageRecord], b: &[ImageRecord], n: usize) -> Result<Vec<Pair>> {
    let group = |m: &[ImageRecord]| {
        let mut order = Vec::new();
        let mut by: HashMap<String, Vec<ImageRecord>> = HashMap::new();
        for r in m {
            by.entry(r.prompt.id.clone())
                .or_insert_with(|| {
                    order.push(r.prompt.id.clone());
                    Vec::new()
                })
                .push(r.clone());
        }
        (order, by)
    };
    let (order, mut by_a) = group(a);
    let (_, mut by_b) = group(b);
    let mut pairs = Vec::new();
    for id in order {
        let (Some(mut ia), Some(mut ib)) = (by_a.remove(&id), by_b.remove(&id)) else {
            continue;
        };
        if ia[0].prompt.text != ib[0].prompt.text {
            bail!(
                "prompt `{id}` reads {:?} in A but {:?} in B: were both sets generated from the same prompts file?",
                ia[0].prompt.text,
                ib[0].prompt.text
            );
        }
        for list in [&mut ia, &mut ib] {
            list.sort_by_key(|r| r.index);
            list.truncate(n);
        }
        pairs.push(Pair {
            prompt: ia[0].prompt.clone(),
            a: ia,
            b: ib,
        });
    }
    if pairs.is_empty() {
        bail!("the two manifests share no prompt ids");
    }
    Ok(pairs)
}

/// Which side A is on for this prompt and rater: a hash of (seed, prompt, rater), so a reload
/// shows the same layout and nobody can tell A from its position.
pub fn a_side(seed: u64, prompt_id: &str, rater: &str) -> Side {
    let h = Sha256::digest(format!("{seed}\u{0}{prompt_id}\u{0}{rater}").as_bytes());
    if h[0] & 1 == 0 {
        Side::Left
    } else {
        Side::Right
    }
}

/// A stable, meaningless public id for an image (so URLs do not reveal A or B).
fn public_id(salt: &str, set: &str, image: &str) -> String {
    let h = Sha256::digest(format!("{salt}\u{0}{set}\u{0}{image}").as_bytes());
    h[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// What the server needs.
pub struct CompareSetup<'a> {
    pub a_dir: &'a Path,
    pub b_dir: &'a Path,
    pub out: &'a Path,
    pub images_per_set: usize,
    pub seed: u64,
}

/// The server's shared state.
pub struct CompareSession {
    pairs: Vec<Pair>,
    a_name: String,
    b_name: String,
    seed: u64,
    /// (set, image id) → public id.
    public: HashMap<(bool, String), String>,
    voted: HashSet<(String, String)>,
    votes_by_rater: HashMap<String, usize>,
    log: AppendLog,
    total_votes: usize,
}

/// Read both manifests, index the images under anonymous ids and replay the votes file.
pub fn open_session(setup: &CompareSetup) -> Result<(CompareSession, ImageTable, String)> {
    let read = |dir: &Path| -> Result<Vec<ImageRecord>> {
        read_jsonl(&dir.join(crate::io::manifest::MANIFEST))
            .with_context(|| format!("{} is not a `generate` output folder", dir.display()))
    };
    let (ma, mb) = (read(setup.a_dir)?, read(setup.b_dir)?);
    let pairs = pair_manifests(&ma, &mb, setup.images_per_set)?;
    let salt = {
        use rand::Rng;
        format!("{:032x}", rand::rng().random::<u128>())
    };
    let mut images = ImageTable::default();
    let mut public = HashMap::new();
    for p in &pairs {
        for (is_a, list, dir) in [(true, &p.a, setup.a_dir), (false, &p.b, setup.b_dir)] {
            for r in list {
                let id = public_id(&salt, if is_a { "a" } else { "b" }, &r.id);
                images.insert(&id, dir, &r.path)?;
                public.insert((is_a, r.id.clone()), id);
            }
        }
    }
    let (log, torn) = AppendLog::open(setup.out)?;
    let past: Vec<VoteRecord> = read_jsonl(setup.out)?;
    let mut session = CompareSession {
        pairs,
        a_name: setup.a_dir.display().to_string(),
        b_name: setup.b_dir.display().to_string(),
        seed: setup.seed,
        public,
        voted: HashSet::new(),
        votes_by_rater: HashMap::new(),
        log,
        total_votes: 0,
    };
    for v in &past {
        session.count(v);
    }
    let mut note = format!(
        "{} prompts, up to {} images per set; {} votes already in {}",
        session.pairs.len(),
        setup.images_per_set,
        past.len(),
        setup.out.display()
    );
    if torn > 0 {
        note.push_str(&format!(" (dropped a torn last line of {torn} bytes)"));
    }
    Ok((session, images, note))
}

#[derive(Serialize)]
struct RaterProgress {
    mine: usize,
    prompts: usize,
    votes: usize,
}

#[derive(Serialize)]
struct QueryView {
    id: String,
    prompt: String,
    left: Vec<String>,
    right: Vec<String>,
}

#[derive(Serialize)]
struct NextView {
    query: Option<QueryView>,
    progress: RaterProgress,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    rater: String,
    prompt_id: String,
    alignment: String,
    quality: String,
}

impl CompareSession {
    fn count(&mut self, v: &VoteRecord) {
        if self.voted.insert((v.prompt.id.clone(), v.rater.clone())) {
            *self.votes_by_rater.entry(v.rater.clone()).or_default() += 1;
        }
        self.total_votes += 1;
    }

    fn progress(&self, rater: &str) -> RaterProgress {
        RaterProgress {
            mine: self.votes_by_rater.get(rater).copied().unwrap_or(0),
            prompts: self.pairs.len(),
            votes: self.total_votes,
        }
    }

    /// The next prompt this rater has not voted on, in an order shuffled per rater.
    fn next(&self, rater: &str) -> NextView {
        let mut order: Vec<usize> = (0..self.pairs.len()).collect();
        order.sort_by_key(|&i| {
            Sha256::digest(format!("{}\u{0}{rater}\u{0}{i}", self.seed).as_bytes())
        });
        let query = order
            .into_iter()
            .map(|i| &self.pairs[i])
            .find(|p| {
                !self
                    .voted
                    .contains(&(p.prompt.id.clone(), rater.to_string()))
            })
            .map(|p| {
                let url = |is_a: bool, r: &ImageRecord| {
                    format!("/image/{}", self.public[&(is_a, r.id.clone())])
                };
                let a: Vec<String> = p.a.iter().map(|r| url(true, r)).collect();
                let b: Vec<String> = p.b.iter().map(|r| url(false, r)).collect();
                let (left, right) = match a_side(self.seed, &p.prompt.id, rater) {
                    Side::Left => (a, b),
                    Side::Right => (b, a),
                };
                QueryView {
                    id: p.prompt.id.clone(),
                    prompt: p.prompt.text.clone(),
                    left,
                    right,
                }
            });
        NextView {
            query,
            progress: self.progress(rater),
        }
    }

    fn vote(&mut self, body: VoteBody) -> Result<String, ApiError> {
        let rater = person_name(&body.rater)?;
        let pair = self
            .pairs
            .iter()
            .find(|p| p.prompt.id == body.prompt_id)
            .ok_or_else(|| ApiError::bad_request(format!("unknown prompt `{}`", body.prompt_id)))?;
        if self
            .voted
            .contains(&(pair.prompt.id.clone(), rater.clone()))
        {
            return Err(ApiError::bad_request(
                "you have already voted on this prompt",
            ));
        }
        let side = a_side(self.seed, &pair.prompt.id, &rater);
        let choice = |answer: &str| -> Result<Choice, ApiError> {
            Ok(match (answer, side) {
                ("tie", _) => Choice::Tie,
                ("left", Side::Left) | ("right", Side::Right) => Choice::A,
                ("left", Side::Right) | ("right", Side::Left) => Choice::B,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "answers are left, right or tie, not {answer:?}"
                    )))
                }
            })
        };
        let rec = VoteRecord {
            prompt: pair.prompt.clone(),
            rater: rater.clone(),
            a: self.a_name.clone(),
            b: self.b_name.clone(),
            a_side: side,
            alignment: choice(&body.alignment)?,
            quality: choice(&body.quality)?,
            a_images: pair.a.iter().map(|r| r.id.clone()).collect(),
            b_images: pair.b.iter().map(|r| r.id.clone()).collect(),
            timestamp: crate::feedback::now_rfc3339(),
        };
        self.log.append(&rec).map_err(ApiError::internal)?;
        self.count(&rec);
        Ok(rater)
    }
}

/// The JSON API of a session (the page and images are served by `web::Site`).
pub fn handler(session: CompareSession) -> Arc<web::Handler> {
    let session = Mutex::new(session);
    Arc::new(move |req: &mut Req| {
        let lock = || session.lock().unwrap_or_else(|p| p.into_inner());
        match (&req.method, req.path.as_str()) {
            (Method::Get, "/api/next") => {
                let rater = person_name(req.param("rater").unwrap_or(""))?;
                web::json(&lock().next(&rater))
            }
            (Method::Post, "/api/vote") => {
                let body: VoteBody = req.json_body()?;
                let mut s = lock();
                let rater = s.vote(body)?;
                web::json(&serde_json::json!({ "saved": true, "next": s.next(&rater) }))
            }
            _ => Err(ApiError::not_found()),
        }
    })
}

/// Read a votes file for summarising.
pub fn read_votes(path: &Path) -> Result<Vec<VoteRecord>> {
    let votes: Vec<VoteRecord> = read_jsonl(path)?;
    if votes.is_empty() {
        bail!("{} holds no votes yet", path.display());
    }
    Ok(votes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_balanced_and_stable() {
        let left = (0..400)
            .filter(|i| a_side(0, &format!("p{i}"), "kim") == Side::Left)
            .count();
        assert!((160..240).contains(&left), "{left} of 400 on the left");
        assert_eq!(a_side(3, "p1", "kim"), a_side(3, "p1", "kim"));
        let differs = (0..64).any(|i| a_side(0, "p", &format!("r{i}")) != a_side(0, "p", "r0"));
        assert!(differs, "the side depends on the rater too");
        assert_ne!(public_id("s", "a", "x"), public_id("s", "b", "x"));
    }
}
