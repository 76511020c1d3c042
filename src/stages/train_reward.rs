//! `rlhf-t2i train-reward`: the reward model from training labels and cached CLIP embeddings.
//! Writes the weights and config, `metrics.json`, the per-epoch log and `curves.svg`.

use crate::embed::cache::EmbeddingCache;
use crate::feedback::TrainingLabel;
use crate::io::atomic::write_atomic;
use crate::io::jsonl::{read_jsonl, write_jsonl};
use crate::prompts::Vocabulary;
use crate::report::plot::{line_chart, Series};
use crate::reward::data::build;
use crate::reward::model::RewardConfig;
use crate::reward::saved::{save, SavedRewardConfig};
use crate::reward::train::{train, EpochLog, RewardTrainOptions, TrainReport};
use anyhow::Result;
use candle_core::Device;
use std::path::Path;

pub struct TrainRewardInputs<'a> {
    pub labels: &'a Path,
    /// The manifest the labels' image paths are relative to.
    pub manifest: &'a Path,
    pub embeddings: &'a Path,
    /// The CLIP model that made the embeddings, as named to `embed`.
    pub clip: &'a str,
    pub vocab: &'a Vocabulary,
    pub out: &'a Path,
}

/// Train and write everything; `on_epoch` sees each epoch's losses (the CLI prints them).
pub fn run(
    inputs: &TrainRewardInputs,
    opts: &RewardTrainOptions,
    device: &Device,
    on_epoch: impl FnMut(&EpochLog),
) -> Result<TrainReport> {
    let labels: Vec<TrainingLabel> = read_jsonl(inputs.labels)?;
    let cache = EmbeddingCache::open(inputs.embeddings, inputs.clip)?;
    let root = inputs.manifest.parent().unwrap_or(Path::new("."));
    let data = build(&labels, root, &cache, inputs.vocab, device)?;
    std::fs::create_dir_all(inputs.out)?;
    let (model, params, report) = train(&data, opts, on_epoch)?;
    let config = SavedRewardConfig {
        model: RewardConfig {
            ..model.config.clone()
        },
        clip: inputs.clip.to_string(),
        train: opts.clone(),
    };
    save(inputs.out, &params, &config)?;
    write_atomic(
        &inputs.out.join("metrics.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_jsonl(&inputs.out.join("train_log.jsonl"), &report.epochs)?;
    let series = |name: &'static str, f: fn(&EpochLog) -> f64| Series {
        name,
        points: report
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, f(e)))
            .collect(),
    };
    let svg = line_chart(
        "reward model training",
        "epoch",
        "loss",
        &[
            series("train MSE", |e| e.train_mse),
            series("val MSE", |e| e.val_mse),
            series("train L_pc", |e| e.train_pc),
            series("val L_pc", |e| e.val_pc),
        ],
    );
    write_atomic(&inputs.out.join("curves.svg"), svg.as_bytes())?;
    Ok(report)
}
