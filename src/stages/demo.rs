//! `rlhf-t2i demo`: the pipeline so far on the embedded tiny model, start to end on a CPU:
//! init-tiny, prompts (the 120 evaluation prompts), generate.

use super::generate::{self, GenerateOptions};
use super::init_tiny::write_tiny_models;
use super::prompts::{self as prompt_stage, PromptSet};
use crate::diffusion::sampler::{SampleSettings, SchedulerKind};
use crate::pipeline::StableDiffusion;
use crate::weights::{Mode, ModelSource};
use anyhow::Result;
use candle_core::{DType, Device};
use std::path::Path;

pub fn run(out: &Path, device: &Device, images_per_prompt: u32, steps: usize) -> Result<()> {
    let t0 = std::time::Instant::now();
    println!(
        "[1/3] init-tiny: writing a seeded tiny SD + CLIP to {}",
        out.join("models").display()
    );
    let tiny = write_tiny_models(&out.join("models"), 0)?;

    let prompts_path = out.join("prompts/eval.jsonl");
    let (prompts, table) = prompt_stage::run(PromptSet::Eval, None, 0, None, &prompts_path)?;
    println!(
        "[2/3] prompts: {} evaluation prompts (Table 4) -> {}\n{table}",
        prompts.len(),
        prompts_path.display()
    );

    let sd = StableDiffusion::load(
        &ModelSource::Local(tiny.sd.clone()),
        Mode::Frozen,
        DType::F32,
        device,
    )?;
    let opts = GenerateOptions {
        prompts: prompts_path,
        out: out.join("generated"),
        images_per_prompt: Some(images_per_prompt),
        seed: 0,
        sampling: SampleSettings {
            scheduler: SchedulerKind::Ddim,
            steps,
            guidance: 7.5,
            eta: 0.0,
        },
        batch_size: 16,
        size: None,
        model_name: tiny.sd.display().to_string(),
    };
    let report = generate::run(&sd, &opts)?;
    println!(
        "[3/3] generate: {} new images ({} already there), {:.1} images/s, {} DDIM steps, guidance 7.5",
        report.generated, report.already_done, report.images_per_second, steps
    );
    println!("\nimages:   {}", out.join("generated/images").display());
    println!("manifest: {}", report.manifest.display());
    println!("done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
