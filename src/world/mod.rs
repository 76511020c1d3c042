//! A small world where "is this image aligned with its caption?" has an exact answer, so every
//! claim of the paper can be measured on a CPU (`rlhf-t2i world`).
//!
//! A [`Scene`] is 1–4 objects of one [`Shape`] and one [`Color`] on a flat [`Background`].
//! Circle, square and triangle are "seen" shapes; cross and diamond are held out, like the paper's
//! unseen objects. [`render()`] draws a scene into a `SIZE`×`SIZE` RGB image with random,
//! non-overlapping object positions, jittered sizes and colors, and anti-aliased edges. The
//! [`oracle`] plays the human labeler: [`observe`] reads the background and objects (shape, color,
//! count) back from pixels alone, and [`judge`] compares that with a [`Claim`] (what a caption
//! states; unstated color or background is free, unstated count means one).
//!
//! Captions use the paper's grammar through the ordinary prompt code with the world's
//! vocabulary (`prompts/world-vocabulary.json`); [`pretrain`] trains the world's own SD and CLIP
//! from scratch, and [`reproduce`] runs the paper's experiments on them with the real stages.

mod classify;
pub mod dataset;
pub mod label;
pub mod oracle;
#[cfg(test)]
mod oracle_tests;
pub mod pretrain;
pub mod render;
pub mod reproduce;
pub mod scene;
mod segment;
pub mod tokenizer;

pub use oracle::{judge, observe, Claim, Found, Observation, ObserveError, Verdict};
pub use render::{render, shape_mask, BBox, Rendered, SIZE};
pub use scene::{Background, Color, Scene, Shape};

/// The world's prompt vocabulary (`prompts/world-vocabulary.json`).
pub const VOCABULARY_JSON: &str = include_str!("../../prompts/world-vocabulary.json");

/// The world's vocabulary, parsed and validated.
pub fn vocabulary() -> crate::prompts::Vocabulary {
    crate::prompts::Vocabulary::from_json(VOCABULARY_JSON)
        .expect("the built-in world vocabulary is valid (tested)")
}

/// The committed pre-trained world models (`assets/world/`, made by `world pretrain`).
pub fn committed_models() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/world")
}
