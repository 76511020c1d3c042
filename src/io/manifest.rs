//! The image manifest: one JSONL record per generated image, the contract between `generate` and
//! every later stage (label, embed, score, finetune, eval).

use crate::prompts::PromptRecord;
use serde::{Deserialize, Serialize};

/// One generated image. `path` is relative to the manifest's folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    /// Stable id: `<prompt id>-<index>`.
    pub id: String,
    pub path: String,
    pub prompt: PromptRecord,
    /// Index of this image among its prompt's images.
    pub index: u32,
    pub seed: u64,
    pub settings: GenerationSettings,
}

/// Everything that decides an image besides its prompt and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSettings {
    pub model: String,
    pub scheduler: String,
    pub steps: usize,
    pub guidance: f64,
    pub eta: f64,
    pub width: usize,
    pub height: usize,
    pub dtype: String,
}

/// The manifest file name inside an output folder.
pub const MANIFEST: &str = "manifest.jsonl";
