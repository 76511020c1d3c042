//! File-system plumbing shared by every pipeline stage.
//!
//! This module owns *how bytes reach the disk*, so that no stage re-implements it:
//!
//! - [`atomic`]: crash-safe whole-file writes (temp file + fsync + rename + directory
//!   fsync) and [`atomic::AppendLog`], a durable JSONL append log that repairs a torn
//!   last line left by a killed process.
//! - [`jsonl`]: reading and writing JSON-lines files with `PATH:LINE:` error messages,
//!   plus a lenient reader for resumable manifests whose last line may be torn.
//! - [`png_meta`]: saving PNGs with `tEXt`/`iTXt` metadata (prompt, seed, model, ...),
//!   reading that metadata back, and loading RGB images with errors that name the file.
//!
//! - [`image_source`]: image bytes in a file or a tar shard member, decoded alike.
//! - [`manifest`], [`scores`]: the per-image records that stages exchange.
//!
//! Nothing here knows about models or tensors; errors are `anyhow` and always name the path.

pub mod atomic;
pub mod image_source;
pub mod jsonl;
pub mod manifest;
pub mod npy;
pub mod png_meta;
pub mod scores;
