//! rlhf-t2i: align a text-to-image diffusion model with human feedback (Lee et al., 2023) on
//! candle. Layout: `models/` (networks), `diffusion/` (schedules and samplers), `weights`
//! (checkpoint loading and saving), `pipeline` (SD/CLIP assembled from a model source), `io/`
//! (atomic files, JSONL, PNG metadata, manifests), `prompts` (the prompt grammar), `stages/` (one
//! per subcommand), `labeling` and `compare` (the human-facing pages, served by `web`) and `cli`
//! (argument parsing only).

pub mod bench;
pub mod cli;
pub mod compare;
pub mod config;
pub mod diffusion;
pub mod embed;
pub mod eval;
pub mod feedback;
pub mod finetune;
pub mod io;
pub mod labeling;
pub mod models;
pub mod pipeline;
pub mod prompts;
pub mod report;
pub mod reward;
pub mod runtime;
pub mod stages;
pub mod stats;
pub mod tokenizer;
pub mod train;
pub mod web;
pub mod weights;
pub mod world;
