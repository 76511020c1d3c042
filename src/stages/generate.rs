//! `rlhf-t2i generate`: N images per prompt, seeded and batched, written as PNGs (prompt, seed
//! and settings in their text chunks) plus a JSONL manifest. Resumable: a rerun after a kill
//! finishes the rest, with no duplicate and no lost image.

use crate::diffusion::sampler::{sample, SampleSettings};
use crate::io::atomic::AppendLog;
use crate::io::jsonl::read_jsonl;
use crate::io::manifest::{GenerationSettings, ImageRecord, MANIFEST};
use crate::io::png_meta::{
    save_png_with_text, KEY_GUIDANCE, KEY_MODEL, KEY_PARAMETERS, KEY_PROMPT, KEY_SCHEDULER,
    KEY_SEED, KEY_STEPS,
};
use crate::pipeline::StableDiffusion;
use crate::prompts::{read_prompts_jsonl, PromptRecord};
use crate::runtime::{dtype_name, randn, rng, Rng64};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub struct GenerateOptions {
    pub prompts: PathBuf,
    pub out: PathBuf,
    /// Overrides each record's `images_per_prompt` (records without one get 1).
    pub images_per_prompt: Option<u32>,
    pub seed: u64,
    pub sampling: SampleSettings,
    pub batch_size: usize,
    /// Image side in pixels; `None` uses the model's native size.
    pub size: Option<usize>,
    /// The model as named on the command line (recorded in the manifest).
    pub model_name: String,
}

pub struct GenerateReport {
    pub manifest: PathBuf,
    pub generated: usize,
    pub already_done: usize,
    pub images_per_second: f64,
}

/// A per-image seed from the run seed, the prompt id and the image index (FNV-1a + SplitMix64):
/// independent of prompt order, batch size and which images were already done.
pub fn image_seed(base: u64, prompt_id: &str, index: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prompt_id.bytes().chain(index.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ base.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A prompt id made safe as a file name.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Job {
    prompt: PromptRecord,
    index: u32,
    seed: u64,
    id: String,
    rel_path: String,
}

pub fn run(sd: &StableDiffusion, opts: &GenerateOptions) -> Result<GenerateReport> {
    if opts.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let prompts = read_prompts_jsonl(&opts.prompts)?;
    let native = sd.image_size();
    let size = opts.size.unwrap_or(native);
    let multiple = sd.image_space.scale_factor() * sd.unet.config.downscale();
    if size == 0 || !size.is_multiple_of(multiple) {
        bail!("image size {size} must be a positive multiple of {multiple} for this model");
    }
    let settings = GenerationSettings {
        model: opts.model_name.clone(),
        scheduler: opts.sampling.scheduler.name().to_string(),
        steps: opts.sampling.steps,
        guidance: opts.sampling.guidance,
        eta: opts.sampling.eta,
        width: size,
        height: size,
        dtype: dtype_name(sd.dtype).to_string(),
    };
    std::fs::create_dir_all(opts.out.join("images"))
        .with_context(|| format!("could not create {}", opts.out.display()))?;
    let manifest_path = opts.out.join(MANIFEST);
    // Open (and repair a torn last line) before reading, so the log and the reader agree.
    let (mut log, dropped) = AppendLog::open(&manifest_path)?;
    if dropped > 0 {
        eprintln!(
            "note: dropped a torn last line ({dropped} bytes) from {}; that image is made again",
            manifest_path.display()
        );
    }
    let existing: Vec<ImageRecord> = read_jsonl(&manifest_path)?;
    let mut done = HashSet::new();
    for rec in &existing {
        if rec.settings != settings {
            bail!(
                "{} holds images made with other settings ({:?}) than this run ({:?}): use another --out or the same settings",
                manifest_path.display(),
                rec.settings,
                settings
            );
        }
        done.insert(rec.id.clone());
    }

    let mut jobs = Vec::new();
    let mut stems = HashSet::new();
    let mut total = 0usize;
    for p in &prompts {
        let n = opts.images_per_prompt.or(p.images_per_prompt).unwrap_or(1);
        let stem = file_stem(&p.id);
        if !stems.insert(stem.clone()) {
            bail!(
                "{}: prompt id {:?} collides with another id once made a file name",
                opts.prompts.display(),
                p.id
            );
        }
        for index in 0..n {
            total += 1;
            let id = format!("{}-{index:03}", p.id);
            if done.contains(&id) {
                continue;
            }
            jobs.push(Job {
                prompt: p.clone(),
                index,
                seed: image_seed(opts.seed, &p.id, index),
                rel_path: format!("images/{stem}-{index:03}.png"),
                id,
            });
        }
    }
    if total == 0 {
        bail!(
            "{}: zero images requested (images_per_prompt is 0)",
            opts.prompts.display()
        );
    }

    let steps = opts.sampling.steps as u64;
    let bar = ProgressBar::new(jobs.len() as u64 * steps);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} generate [{bar:30}] {msg} {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let latent_hw = size / sd.image_space.scale_factor();
    let latent_shape = [sd.latent_channels(), latent_hw, latent_hw];
    let uncond_one = sd.encode_prompts(&[""])?;
    let mut generated = 0usize;
    for batch in jobs.chunks(opts.batch_size) {
        let b = batch.len();
        let texts: Vec<&str> = batch.iter().map(|j| j.prompt.text.as_str()).collect();
        let cond = sd.encode_prompts(&texts)?;
        let uncond = uncond_one.repeat((b, 1, 1))?;
        let mut rngs: Vec<Rng64> = batch.iter().map(|j| rng(j.seed)).collect();
        let init = rngs
            .iter_mut()
            .map(|r| randn(r, &latent_shape, sd.dtype, &sd.device))
            .collect::<Result<Vec<_>>>()?;
        let latents = Tensor::stack(&init, 0)?;
        let out = sample(
            &sd.unet,
            &sd.schedule,
            &opts.sampling,
            &cond,
            &uncond,
            latents,
            &mut rngs,
            |_| {
                bar.inc(b as u64);
            },
        )
        .with_context(|| format!("sampling images for {:?}", texts))?;
        let images = sd.decode_to_images(&out)?;
        for (job, img) in batch.iter().zip(images) {
            let record = ImageRecord {
                id: job.id.clone(),
                path: job.rel_path.clone(),
                prompt: job.prompt.clone(),
                index: job.index,
                seed: job.seed,
                settings: settings.clone(),
            };
            let params = serde_json::to_string(&record)?;
            let (seed_s, steps_s, guid_s) = (
                job.seed.to_string(),
                settings.steps.to_string(),
                settings.guidance.to_string(),
            );
            save_png_with_text(
                &opts.out.join(&job.rel_path),
                &img,
                &[
                    (KEY_PROMPT, job.prompt.text.as_str()),
                    (KEY_SEED, &seed_s),
                    (KEY_MODEL, &settings.model),
                    (KEY_SCHEDULER, &settings.scheduler),
                    (KEY_STEPS, &steps_s),
                    (KEY_GUIDANCE, &guid_s),
                    (KEY_PARAMETERS, &params),
                ],
            )?;
            log.append(&record)?;
            generated += 1;
        }
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{}/{} images, {:.2} img/s",
            generated,
            jobs.len(),
            generated as f64 / secs
        ));
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(GenerateReport {
        manifest: manifest_path,
        generated,
        already_done: total - jobs.len(),
        images_per_second: generated as f64 / secs,
    })
}

/// The manifest's records, with paths resolved against its folder.
pub fn read_manifest(path: &Path) -> Result<Vec<(ImageRecord, PathBuf)>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(read_jsonl::<ImageRecord>(path)?
        .into_iter()
        .map(|r| {
            let p = dir.join(&r.path);
            (r, p)
        })
        .collect())
}
