//! CLIP embeddings for the reward model: the image preprocessing, the embedding cache (keyed by
//! image content hash and prompt text) and the batched embedder.

pub mod cache;
pub mod embedder;
pub mod preprocess;
