//! Per-image scores (`rlhf-t2i score` writes them; rejection sampling, reward evaluation and
//! fine-tuning read them).

use crate::prompts::PromptRecord;
use serde::{Deserialize, Serialize};

/// One image's learned reward and CLIP score against its prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRecord {
    pub image_id: String,
    /// Relative to the manifest's folder.
    pub path: String,
    pub prompt: PromptRecord,
    pub reward: f32,
    pub clip_score: f32,
}
