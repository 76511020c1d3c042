//! `rlhf-t2i label`: the labeling server. A page shows three images of one prompt; each image
//! gets good / bad / skip; every answer is appended to the feedback JSONL (fsynced before the page
//! hears "saved"), and the server's state is that file, so a restart resumes where it stopped.

pub mod queue;

use crate::feedback::{read_feedback, FeedbackRecord, Label};
use crate::io::atomic::AppendLog;
use crate::io::manifest::ImageRecord;
use crate::web::http::Method;
use crate::web::{self, request::person_name, ApiError, ImageTable, Req};
use anyhow::{Context, Result};
use queue::{build_queries, LabelState, Progress};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The page served at `/`.
pub const PAGE: &str = include_str!("page.html");

/// The server's shared state: the queue and the log it is rebuilt from.
pub struct LabelSession {
    state: LabelState,
    log: AppendLog,
    manifest: std::collections::HashMap<String, ImageRecord>,
}

/// What a labeling server needs.
pub struct LabelSetup<'a> {
    pub manifest: &'a [ImageRecord],
    /// The folder the manifest's image paths are relative to.
    pub root: &'a Path,
    pub out: &'a Path,
    pub labels_per_image: usize,
    pub images_per_query: usize,
}

/// Open the log (repairing a torn last line), replay it, and index the images.
/// Returns the session, the image table and a line about what was resumed.
pub fn open_session(setup: &LabelSetup) -> Result<(LabelSession, ImageTable, String)> {
    let mut images = ImageTable::default();
    for r in setup.manifest {
        images.insert(&r.id, setup.root, &r.path)?;
    }
    let (log, torn) = AppendLog::open(setup.out)?;
    let past = read_feedback(&[setup.out], setup.manifest)
        .with_context(|| format!("resuming from {}", setup.out.display()))?;
    let mut state = LabelState::new(
        build_queries(setup.manifest, setup.images_per_query),
        setup.labels_per_image,
    );
    for rec in &past {
        state.apply(rec);
    }
    let mut note = format!(
        "{} queries of up to {} images, {} answers each; {} records already in {}",
        state.queries.len(),
        setup.images_per_query,
        setup.labels_per_image,
        past.len(),
        setup.out.display()
    );
    if torn > 0 {
        note.push_str(&format!(" (dropped a torn last line of {torn} bytes)"));
    }
    let manifest = setup
        .manifest
        .iter()
        .map(|r| (r.id.clone(), r.clone()))
        .collect();
    Ok((
        LabelSession {
            state,
            log,
            manifest,
        },
        images,
        note,
    ))
}

#[derive(Serialize)]
struct ImageView {
    id: String,
    url: String,
    answer: Option<Label>,
}

#[derive(Serialize)]
struct QueryView {
    id: String,
    prompt: String,
    category: String,
    split: String,
    images: Vec<ImageView>,
}

#[derive(Serialize)]
struct NextView {
    query: Option<QueryView>,
    progress: Progress,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    labeler: String,
    image_id: String,
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoBody {
    labeler: String,
}

impl LabelSession {
    fn view(&self, q: usize, labeler: &str) -> QueryView {
        let query = &self.state.queries[q];
        QueryView {
            id: query.id.clone(),
            prompt: query.prompt.text.clone(),
            category: query.prompt.category.as_str().to_string(),
            split: query.prompt.split.as_str().to_string(),
            images: query
                .images
                .iter()
                .map(|i| ImageView {
                    id: i.clone(),
                    url: format!("/image/{i}"),
                    answer: self.state.answer(i, labeler),
                })
                .collect(),
        }
    }

    fn next(&mut self, labeler: &str) -> NextView {
        let q = self.state.next_for(labeler, Instant::now());
        NextView {
            query: q.map(|q| self.view(q, labeler)),
            progress: self.state.progress(labeler),
        }
    }

    /// Append and apply one record; the caller is answered only after the fsync.
    fn record(&mut self, image_id: &str, labeler: &str, label: Label) -> Result<(), ApiError> {
        let image = self.manifest.get(image_id).ok_or_else(|| {
            ApiError::bad_request(format!("image `{image_id}` is not in the manifest"))
        })?;
        let rec = FeedbackRecord {
            image_id: image_id.to_string(),
            prompt: image.prompt.clone(),
            labeler: labeler.to_string(),
            label,
            timestamp: crate::feedback::now_rfc3339(),
        };
        self.log.append(&rec).map_err(ApiError::internal)?;
        self.state.apply(&rec);
        Ok(())
    }
}

/// The JSON API of a session (the page and images are served by `web::Site`).
pub fn handler(session: LabelSession) -> Arc<web::Handler> {
    let session = Mutex::new(session);
    Arc::new(move |req: &mut Req| {
        let lock = || session.lock().unwrap_or_else(|p| p.into_inner());
        match (&req.method, req.path.as_str()) {
            (Method::Get, "/api/next") => {
                let labeler = person_name(req.param("labeler").unwrap_or(""))?;
                web::json(&lock().next(&labeler))
            }
            (Method::Post, "/api/answer") => {
                let body: AnswerBody = req.json_body()?;
                let labeler = person_name(&body.labeler)?;
                let label = match Label::parse(&body.label) {
                    Some(l @ (Label::Good | Label::Bad | Label::Skip)) => l,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "label must be good, bad or skip, not {:?}",
                            body.label
                        )))
                    }
                };
                let mut s = lock();
                s.record(&body.image_id, &labeler, label)?;
                web::json(&serde_json::json!({
                    "saved": true,
                    "image_id": body.image_id,
                    "label": label,
                    "progress": s.state.progress(&labeler),
                }))
            }
            (Method::Post, "/api/undo") => {
                let body: UndoBody = req.json_body()?;
                let labeler = person_name(&body.labeler)?;
                let mut s = lock();
                let image = s
                    .state
                    .last_answer(&labeler)
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_request("nothing to undo"))?;
                s.record(&image, &labeler, Label::Undo)?;
                let q = s.state.query_of(&image).ok_or_else(ApiError::not_found)?;
                s.state.lease(q, &labeler, Instant::now());
                let view = NextView {
                    query: Some(s.view(q, &labeler)),
                    progress: s.state.progress(&labeler),
                };
                web::json(&serde_json::json!({ "undone": image, "next": view }))
            }
            _ => Err(ApiError::not_found()),
        }
    })
}
