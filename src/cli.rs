//! Command-line parsing and dispatch: flags become stage options here, and nothing else happens
//! here.

use crate::diffusion::sampler::{SampleSettings, SchedulerKind};
use crate::pipeline::StableDiffusion;
use crate::runtime::{parse_dtype, select_device};
use crate::stages::{demo, generate, init_tiny, prompts};
use crate::weights::{Mode, ModelSource};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const DEFAULT_MODEL: &str = "stable-diffusion-v1-5/stable-diffusion-v1-5";
pub const DEFAULT_CLIP: &str = "openai/clip-vit-large-patch14";

#[derive(Parser)]
#[command(
    name = "rlhf-t2i",
    version,
    about = "Align a text-to-image diffusion model with human feedback (Lee et al., 2023)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct DeviceArgs {
    /// auto (CUDA when built with it and present), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Compute dtype: f32, f16 or bf16 (weights of any of the three are converted)
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the pipeline on the embedded tiny model (init-tiny, prompts, generate)
    Demo {
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        #[arg(long, default_value_t = 2)]
        images_per_prompt: u32,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Write a tiny random-initialised SD (diffusers layout) and CLIP, seeded
    InitTiny {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Write the paper's prompt set as JSONL and print a summary by category
    Prompts {
        /// train: count/color/background/combination prompts over seen objects; eval: Table 4
        #[arg(long, value_enum, default_value = "train")]
        set: prompts::PromptSet,
        #[arg(long)]
        out: PathBuf,
        /// A vocabulary JSON (objects, colors, counts, backgrounds, templates); default: built in
        #[arg(long)]
        vocabulary: Option<PathBuf>,
        /// Seed for the sampled combination prompts
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Keep N prompts spread evenly over the set
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Sample images for a prompts file (resumable), writing PNGs and a JSONL manifest
    Generate {
        #[arg(long)]
        prompts: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Hub repo id (owner/name[@revision]) or local diffusers-layout folder
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: String,
        /// Images per prompt (default: each record's images_per_prompt, else 1)
        #[arg(long)]
        images_per_prompt: Option<u32>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "ddim")]
        scheduler: SchedulerKind,
        #[arg(long, default_value_t = 50)]
        steps: usize,
        #[arg(long, default_value_t = 7.5)]
        guidance: f64,
        /// DDIM eta (0 = deterministic)
        #[arg(long, default_value_t = 0.0)]
        eta: f64,
        #[arg(long, default_value_t = 4)]
        batch_size: usize,
        /// Image side in pixels (default: the model's)
        #[arg(long)]
        size: Option<usize>,
        #[command(flatten)]
        device: DeviceArgs,
    },
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            out,
            images_per_prompt,
            steps,
            device,
        } => demo::run(&out, &select_device(&device)?, images_per_prompt, steps),
        Command::InitTiny { out, seed } => {
            let paths = init_tiny::write_tiny_models(&out, seed)?;
            println!(
                "tiny Stable Diffusion: {}\ntiny CLIP:             {}",
                paths.sd.display(),
                paths.clip.display()
            );
            Ok(())
        }
        Command::Prompts {
            set,
            out,
            vocabulary,
            seed,
            limit,
        } => {
            let (records, table) = prompts::run(set, vocabulary.as_deref(), seed, limit, &out)?;
            println!("{} prompts -> {}\n{table}", records.len(), out.display());
            Ok(())
        }
        Command::Generate {
            prompts,
            out,
            model,
            images_per_prompt,
            seed,
            scheduler,
            steps,
            guidance,
            eta,
            batch_size,
            size,
            device,
        } => {
            let dev = select_device(&device.device)?;
            let dtype = parse_dtype(&device.dtype)?;
            let sd =
                StableDiffusion::load(&ModelSource::parse(&model)?, Mode::Frozen, dtype, &dev)?;
            let opts = generate::GenerateOptions {
                prompts,
                out,
                images_per_prompt,
                seed,
                sampling: SampleSettings {
                    scheduler,
                    steps,
                    guidance,
                    eta,
                },
                batch_size,
                size,
                model_name: model,
            };
            let r = generate::run(&sd, &opts)?;
            println!(
                "{} images generated ({} already done), {:.2} images/s; manifest: {}",
                r.generated,
                r.already_done,
                r.images_per_second,
                r.manifest.display()
            );
            Ok(())
        }
    }
}
