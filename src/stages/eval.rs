//! `rlhf-t2i eval`: the paper's evaluation of one or more models on the same prompts and seeds:
//! average reward and CLIP score (overall, per category, per split, with standard errors), FID
//! against a reference image set (pytorch-fid compatible, with the sample counts), the Table 3
//! comparison, and a self-contained HTML report with the images side by side.

use super::generate::{self, GenerateOptions};
use super::score;
use crate::diffusion::sampler::SampleSettings;
use crate::embed::embedder::ClipEmbedder;
use crate::eval::fid::{image_files, load_stats, save_stats, FidExtractor};
use crate::eval::frechet::{frechet_distance, Stats};
use crate::eval::results::{summary, EvalReport, Fid, ModelEval, Summary};
use crate::io::atomic::write_atomic;
use crate::io::image_source::ImageSource;
use crate::io::scores::ScoreRecord;
use crate::pipeline::StableDiffusion;
use crate::weights::{Mode, ModelSource};
use anyhow::{bail, Result};
use candle_core::{DType, Device};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct EvalInputs {
    /// (name, model spec); the first is the baseline when there are several.
    pub models: Vec<(String, String)>,
    pub prompts: PathBuf,
    pub images_per_prompt: u32,
    pub seed: u64,
    pub sampling: SampleSettings,
    pub batch_size: usize,
    pub dtype: DType,
    pub reward: PathBuf,
    pub embeddings: PathBuf,
    /// FID reference: a folder of images, or a statistics file from an earlier run.
    pub reference: Option<PathBuf>,
    /// pytorch-fid's Inception weights as safetensors (see `eval::fid`).
    pub inception: Option<PathBuf>,
    /// Votes from `compare`, summarised into the report.
    pub human_votes: Option<PathBuf>,
    pub out: PathBuf,
}

fn grouped(
    scores: &[ScoreRecord],
    key: impl Fn(&ScoreRecord) -> String,
    value: impl Fn(&ScoreRecord) -> f64,
) -> BTreeMap<String, Summary> {
    let mut g: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in scores {
        g.entry(key(s)).or_default().push(value(s));
    }
    g.into_iter().map(|(k, v)| (k, summary(&v))).collect()
}

/// Reference statistics: loaded from a statistics file, or computed from a folder of images and
/// cached beside the report (reused when the folder's listing is unchanged).
fn reference_stats(
    extractor: &FidExtractor,
    reference: &Path,
    out: &Path,
    batch: usize,
) -> Result<Stats> {
    if reference.is_file() {
        return load_stats(reference);
    }
    let files = image_files(reference)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        for b in f.describe().bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let cache = out.join(format!("fid_reference_{h:016x}.safetensors"));
    if cache.is_file() {
        return load_stats(&cache);
    }
    let stats = Stats::from_features(&extractor.features(&files, batch, |_| {})?)?;
    save_stats(&stats, &cache)?;
    Ok(stats)
}

pub fn run(inputs: &EvalInputs, embedder: &ClipEmbedder, device: &Device) -> Result<EvalReport> {
    if inputs.models.is_empty() {
        bail!("no model to evaluate");
    }
    let fid = match (&inputs.inception, &inputs.reference) {
        (Some(w), Some(r)) => {
            let extractor = FidExtractor::load(w, device)?;
            let stats = reference_stats(&extractor, r, &inputs.out, 16)?;
            Some((extractor, stats))
        }
        (None, None) => None,
        _ => bail!("FID needs both --inception (weights) and --reference (images or statistics)"),
    };
    let mut models = Vec::new();
    for (name, spec) in &inputs.models {
        let dir = inputs.out.join("samples").join(name);
        let manifest = {
            let sd = StableDiffusion::load(
                &ModelSource::parse(spec)?,
                Mode::Frozen,
                inputs.dtype,
                device,
            )?;
            let opts = GenerateOptions {
                prompts: inputs.prompts.clone(),
                out: dir.clone(),
                images_per_prompt: Some(inputs.images_per_prompt),
                seed: inputs.seed,
                sampling: inputs.sampling.clone(),
                batch_size: inputs.batch_size,
                size: None,
                model_name: spec.clone(),
            };
            generate::run(&sd, &opts)?.manifest
        };
        let scores = score::run(
            embedder,
            &inputs.reward,
            &manifest,
            &inputs.embeddings,
            64,
            &dir.join("scores.jsonl"),
        )?;
        let fid = match &fid {
            Some((extractor, reference)) => {
                let files: Vec<ImageSource> = scores
                    .iter()
                    .map(|s| ImageSource::File(dir.join(&s.path)))
                    .collect();
                let stats = Stats::from_features(&extractor.features(&files, 16, |_| {})?)?;
                Some(Fid {
                    value: frechet_distance(&stats, reference)?,
                    model_images: stats.n,
                    reference_images: reference.n,
                })
            }
            None => None,
        };
        let rewards: Vec<f64> = scores.iter().map(|s| s.reward as f64).collect();
        let clips: Vec<f64> = scores.iter().map(|s| s.clip_score as f64).collect();
        models.push(ModelEval {
            name: name.clone(),
            model: spec.clone(),
            reward: summary(&rewards),
            clip_score: summary(&clips),
            reward_by_category: grouped(
                &scores,
                |s| s.prompt.category.as_str().into(),
                |s| s.reward as f64,
            ),
            reward_by_split: grouped(
                &scores,
                |s| s.prompt.split.as_str().into(),
                |s| s.reward as f64,
            ),
            clip_by_category: grouped(
                &scores,
                |s| s.prompt.category.as_str().into(),
                |s| s.clip_score as f64,
            ),
            clip_by_split: grouped(
                &scores,
                |s| s.prompt.split.as_str().into(),
                |s| s.clip_score as f64,
            ),
            fid,
            scores,
        });
    }
    let report = EvalReport {
        prompts: inputs.prompts.display().to_string(),
        images_per_prompt: inputs.images_per_prompt,
        sampling: inputs.sampling.clone(),
        models,
        human: match &inputs.human_votes {
            Some(v) => Some(crate::compare::summary::summarize(
                &crate::compare::read_votes(v)?,
            )),
            None => None,
        },
    };
    write_atomic(
        &inputs.out.join("eval.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(
        &inputs.out.join("report.html"),
        crate::report::html::eval_report(&report).as_bytes(),
    )?;
    Ok(report)
}
