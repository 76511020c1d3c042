//! Command-line parsing and dispatch: flags become stage options here, and nothing else happens
//! here.

use crate::diffusion::sampler::{SampleSettings, SchedulerKind};
use crate::embed::embedder::ClipEmbedder;
use crate::feedback::Policy;
use crate::pipeline::StableDiffusion;
use crate::prompts::Vocabulary;
use crate::reward::train::RewardTrainOptions;
use crate::runtime::{parse_dtype, select_device};
use crate::stages::{
    compare, demo, embed, eval_reward, feedback_import, generate, init_tiny, label, prompts,
    rejection, score, train_reward,
};
use crate::weights::{Mode, ModelSource};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const DEFAULT_MODEL: &str = "stable-diffusion-v1-5/stable-diffusion-v1-5";
pub const DEFAULT_CLIP: &str = "openai/clip-vit-large-patch14";
/// The reward-training defaults, with the reasons for each value.
pub const DEFAULT_REWARD_CONFIG: &str = include_str!("../configs/reward.json");
/// The paper's fine-tuning settings, with the assumptions marked.
pub const PAPER_CONFIG: &str = include_str!("../configs/paper.json");

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

/// How big `world reproduce` is and how it samples: the full or the quick plan, with the flags
/// given over it.
#[derive(Args, Clone, Debug)]
pub struct ReproduceArgs {
    /// The CI-sized run (< 5 minutes): claims 1 and 2
    #[arg(long)]
    quick: bool,
    /// The sampler of every generated image (default: DDIM, 10 steps, guidance 5, the
    /// fastest; DDPM 50 steps at guidance 3 is the committed model's best, 5x slower)
    #[arg(long, value_enum)]
    scheduler: Option<SchedulerKind>,
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    guidance: Option<f64>,
    /// DDIM eta (default 0, deterministic; 1 was right on 37 of 160 evaluation samples against
    /// 25 at the same cost, with the committed model)
    #[arg(long)]
    eta: Option<f64>,
    /// Multiply the training images per prompt (default 4, 1 with --quick)
    #[arg(long)]
    train_images_scale: Option<f64>,
    /// Evaluation images per prompt (default 4, 3 with --quick)
    #[arg(long)]
    eval_images: Option<u32>,
    /// Fine-tuning steps of every Table 3 variant (default 300, 50 with --quick)
    #[arg(long)]
    finetune_steps: Option<u64>,
}

impl ReproduceArgs {
    fn plan(&self) -> Result<crate::world::reproduce::ReproducePlan> {
        use crate::world::reproduce::ReproducePlan;
        let mut plan = if self.quick {
            ReproducePlan::quick()
        } else {
            ReproducePlan::full()
        };
        plan.scheduler = self.scheduler.unwrap_or(plan.scheduler);
        plan.steps = self.steps.unwrap_or(plan.steps);
        plan.guidance = self.guidance.unwrap_or(plan.guidance);
        plan.eta = self.eta.unwrap_or(plan.eta);
        plan.train_images_scale = self.train_images_scale.unwrap_or(plan.train_images_scale);
        plan.eval_images_per_prompt = self.eval_images.unwrap_or(plan.eval_images_per_prompt);
        plan.finetune_steps = self.finetune_steps.unwrap_or(plan.finetune_steps);
        anyhow::ensure!(
            plan.train_images_scale > 0.0 && plan.eval_images_per_prompt > 0,
            "--train-images-scale and --eval-images must be positive"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&plan.eta),
            "--eta must be in [0, 1], got {}",
            plan.eta
        );
        Ok(plan)
    }
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs --token (one is generated if absent)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one)
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Access token required on every request (letters, digits, '-', '_'; 16+ characters)
    #[arg(long)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the pipeline on the embedded tiny models: prompts to generate to reward to scores
    Demo {
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        #[arg(long, default_value_t = 4)]
        images_per_prompt: u32,
        #[arg(long, default_value_t = 10)]
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
    /// Serve the labeling page: three images of a prompt at a time, good / bad / skip, appended
    /// to a feedback JSONL (resumes from it)
    Label {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Answers each image needs, from different labelers (the paper: 2)
        #[arg(long, default_value_t = 2)]
        labels_per_image: usize,
        #[arg(long, default_value_t = 3)]
        images_per_query: usize,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve the blind A/B comparison page for two `generate` folders (votes appended to --out),
    /// or summarise a votes file with --summarize
    Compare {
        #[arg(long, required_unless_present = "summarize")]
        a: Option<PathBuf>,
        #[arg(long, required_unless_present = "summarize")]
        b: Option<PathBuf>,
        #[arg(long, required_unless_present = "summarize")]
        out: Option<PathBuf>,
        /// Images shown per set (the paper: 4)
        #[arg(long, default_value_t = 4)]
        images: usize,
        /// Seed of the per-prompt, per-rater left/right order
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the win / lose / tie summary of a votes file instead of serving
        #[arg(long, conflicts_with_all = ["a", "b", "out"])]
        summarize: Option<PathBuf>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Time the workloads of the PyTorch reference benchmark (full-size SD1.5 and CLIP ViT-L/14
    /// with random weights on a GPU; the tiny models on the CPU); one JSON line each
    Bench {
        /// auto (CUDA when built with it and present), cpu, cuda or cuda:N
        #[arg(long, default_value = "auto")]
        device: String,
        /// Full-size models even on the CPU (slow: ~40 s per UNet forward)
        #[arg(long)]
        full_size: bool,
        /// Only measurements whose name contains this
        #[arg(long)]
        filter: Option<String>,
        #[arg(long)]
        repeats: Option<usize>,
        /// Measurements that would start after this many seconds are reported as skipped
        #[arg(long)]
        budget_s: Option<f64>,
        /// Also write the records as JSON here
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The shape world: pre-train its models, or reproduce the paper's claims in it
    World {
        #[command(subcommand)]
        command: WorldCommand,
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
    /// Human feedback files: check, aggregate over labelers, write training labels
    Feedback {
        #[command(subcommand)]
        command: FeedbackCommand,
    },
    /// CLIP embeddings of a manifest's images and prompts (and their perturbations), cached
    Embed {
        #[arg(long)]
        manifest: PathBuf,
        /// Embedding cache file (safetensors); reruns add only what is new
        #[arg(long)]
        cache: PathBuf,
        /// Hub repo id or local folder of a CLIP model
        #[arg(long, default_value = DEFAULT_CLIP)]
        clip: String,
        #[arg(long)]
        vocabulary: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Train the reward model (MSE + lambda * prompt classification) on labels and embeddings
    TrainReward {
        /// Training labels from `feedback import`
        #[arg(long)]
        labels: PathBuf,
        /// The manifest the labels' image paths are relative to
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        embeddings: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = DEFAULT_CLIP)]
        clip: String,
        /// Training options (JSON); default: the built-in configs/reward.json
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        vocabulary: Option<PathBuf>,
        #[arg(long)]
        lambda: Option<f64>,
        #[arg(long)]
        temperature: Option<f64>,
        /// Ablation: no auxiliary prompt-classification loss (lambda = 0)
        #[arg(long)]
        no_aux: bool,
        /// Ablation: half of each prompt's training images
        #[arg(long)]
        half_data: bool,
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Reward and CLIP score of every image of a manifest, as JSONL
    Score {
        #[arg(long)]
        manifest: PathBuf,
        /// A folder written by train-reward
        #[arg(long)]
        reward: PathBuf,
        #[arg(long)]
        embeddings: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = DEFAULT_CLIP)]
        clip: String,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Keep the k best images per prompt by reward (the paper: 4 of 16), beside k random ones
    RejectionSample {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        scores: PathBuf,
        #[arg(long, default_value_t = 4)]
        keep: usize,
        /// Manifest of the kept images
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Preference accuracy of the learned reward and of the CLIP score on labeled pairs
    EvalReward {
        #[arg(long)]
        labels: PathBuf,
        #[arg(long)]
        scores: PathBuf,
        /// Also write the figures as JSON
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Fine-tune the UNet: reward-weighted denoising loss on generated images + beta x pre-training loss
    Finetune {
        /// The base model: hub repo id or local diffusers folder
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: String,
        /// Manifest of the generated images (D_model)
        #[arg(long)]
        manifest: PathBuf,
        /// Weights from `score` (the learned reward)
        #[arg(long, conflicts_with = "labels")]
        scores: Option<PathBuf>,
        /// Weights from `feedback import` (raw human labels; unlabeled images are left out)
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Pre-training image-text set (D_pre): webdataset .tar folder, or images + captions.jsonl
        #[arg(long)]
        pretrain: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Settings (JSON); default: the built-in configs/paper.json
        #[arg(long)]
        config: Option<PathBuf>,
        /// Continue from the newest checkpoint under OUT/checkpoints
        #[arg(long)]
        resume: bool,
        #[arg(long)]
        steps: Option<u64>,
        #[arg(long)]
        lr: Option<f64>,
        #[arg(long)]
        beta: Option<f64>,
        #[arg(long, value_enum)]
        precision: Option<crate::finetune::config::Precision>,
        #[arg(long)]
        model_batch: Option<usize>,
        #[arg(long)]
        pre_batch: Option<usize>,
        #[arg(long)]
        grad_accum: Option<usize>,
        #[arg(long)]
        ema_decay: Option<f64>,
        /// Weight each image's loss by min-SNR-gamma (diffusers' --snr_gamma; 5 is usual)
        #[arg(long)]
        snr_gamma: Option<f64>,
        /// Perturb the noised inputs, not the targets (DDPM-IP, diffusers' --input_perturbation;
        /// 0.1 is usual)
        #[arg(long)]
        input_perturbation: Option<f64>,
        /// Train only on timesteps LO..HI (default every timestep)
        #[arg(long, value_parser = parse_timestep_range)]
        timesteps: Option<[u32; 2]>,
        /// Update only the UNet parameters whose names contain one of these (comma-separated,
        /// e.g. `attn2` for the cross-attention layers); default every parameter
        #[arg(long, value_delimiter = ',')]
        trainable: Option<Vec<String>>,
        #[arg(long)]
        cache_latents: bool,
        #[arg(long)]
        checkpoint_every: Option<u64>,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Evaluate models on the same prompts and seeds: reward, CLIP score, FID, and an HTML report
    Eval {
        /// A model to evaluate, `SPEC` or `NAME=SPEC` (hub id or local folder); repeatable
        #[arg(long, required = true)]
        model: Vec<String>,
        /// The model to compare against (the original), `SPEC` or `NAME=SPEC`
        #[arg(long)]
        baseline: Option<String>,
        /// Prompts JSONL; default: the paper's 120 evaluation prompts (Table 4)
        #[arg(long)]
        prompts: Option<PathBuf>,
        #[arg(long, default_value_t = 4)]
        images_per_prompt: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 50)]
        steps: usize,
        #[arg(long, default_value_t = 7.5)]
        guidance: f64,
        #[arg(long, default_value_t = 4)]
        batch_size: usize,
        /// A folder written by train-reward
        #[arg(long)]
        reward: PathBuf,
        #[arg(long)]
        embeddings: PathBuf,
        #[arg(long, default_value = DEFAULT_CLIP)]
        clip: String,
        /// FID reference: a folder of images (e.g. MS-COCO val2014) or a statistics file
        #[arg(long)]
        reference: Option<PathBuf>,
        /// pytorch-fid's Inception weights converted to safetensors (scripts/convert_fid_inception.py)
        #[arg(long)]
        inception: Option<PathBuf>,
        /// Votes from `compare` (the human A/B evaluation) to summarise in the report
        #[arg(long)]
        human_votes: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// FID statistics (mu, sigma) of a folder of images, to reuse as `eval --reference` (pytorch-fid's --save-stats)
    FidStats {
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        inception: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value = "auto")]
        device: String,
    },
}

#[derive(Subcommand)]
pub enum FeedbackCommand {
    /// Read feedback JSONL / CSV (`image,label[,labeler]`) files into training labels
    Import {
        #[arg(long)]
        manifest: PathBuf,
        /// Training labels (JSONL)
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "majority")]
        policy: Policy,
        /// Down-sample the larger class within each category
        #[arg(long)]
        balance: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Feedback files (.jsonl or .csv)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `LO..HI` (half-open) as `[LO, HI]`.
fn parse_timestep_range(s: &str) -> Result<[u32; 2], String> {
    let (lo, hi) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected LO..HI, e.g. 0..400"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|e| format!("`{s}`: `{v}` is not a timestep ({e})"))
    };
    let (lo, hi) = (num(lo)?, num(hi)?);
    if lo >= hi {
        return Err(format!("`{s}`: LO must be below HI"));
    }
    Ok([lo, hi])
}

#[derive(Subcommand)]
pub enum WorldCommand {
    /// Train the world's SD (VAE, text encoder, UNet) and CLIP from scratch (resumable)
    Pretrain {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 6000)]
        images: usize,
        #[arg(long, default_value_t = 1500)]
        vae_steps: usize,
        #[arg(long, default_value_t = 600)]
        clip_steps: usize,
        #[arg(long, default_value_t = 700)]
        unet_steps: u64,
        #[arg(long, default_value_t = 32)]
        unet_batch: usize,
        #[arg(long, default_value_t = 1e-3)]
        unet_lr: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// A UNet config (diffusers config.json) other than configs/world/unet.json (unet-latent.json
        /// with --latent)
        #[arg(long)]
        unet_config: Option<PathBuf>,
        /// Go on from these world models (sd/ and clip/, such as assets/world): their CLIP and
        /// text encoder are kept and their UNet trains on (config, weights and schedule kept);
        /// with --unet-config, a fresh UNet of that config trains beside the kept CLIP
        #[arg(long)]
        continue_from: Option<PathBuf>,
        /// Fit the UNet's training into this many minutes: --unet-steps becomes what the speed
        /// measured during the warm-up allows (recorded in pretrain.json)
        #[arg(long)]
        unet_minutes: Option<f64>,
        /// Train the UNet only on timesteps LO..HI (e.g. 0..400: the low noise levels that give
        /// shapes their edges); default every timestep
        #[arg(long, value_parser = parse_timestep_range)]
        unet_timesteps: Option<[u32; 2]>,
        /// Weight the UNet's loss by min-SNR-gamma (e.g. 5): the noise levels where shapes form
        /// count more than the nearly clean ones; default the plain v loss
        #[arg(long)]
        unet_snr_gamma: Option<f64>,
        /// Perturb the UNet's training inputs (DDPM-IP, e.g. 0.1): noised with noise + p * xi
        /// while the target keeps the noise, against the exposure bias that erases a
        /// sampler's faint objects; default 0 (off)
        #[arg(long, default_value_t = 0.0)]
        unet_input_perturbation: f64,
        /// Then fine-tune the VAE's decoder for this many steps on noisy latents (the encoder,
        /// and so the UNet's latent space, is unchanged)
        #[arg(long, default_value_t = 0)]
        decoder_steps: usize,
        /// Denoise in the latents of a small VAE trained first (the earlier design) instead of
        /// pixels
        #[arg(long)]
        latent: bool,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Run the paper's experiments in the world (prompts -> generate -> oracle labels -> reward
    /// -> finetune -> eval) and write report.md, charts and the HTML report
    Reproduce {
        /// The pre-trained world models (`world pretrain` output); default: the committed ones
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, default_value = "world-out")]
        out: PathBuf,
        #[command(flatten)]
        plan: ReproduceArgs,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

fn server_args(s: &ServeArgs) -> label::ServerArgs<'_> {
    label::ServerArgs {
        host: &s.host,
        port: s.port,
        token: s.token.clone(),
    }
}

fn vocabulary(path: Option<&std::path::Path>) -> Result<Vocabulary> {
    match path {
        Some(p) => Vocabulary::load(p),
        None => Ok(Vocabulary::builtin()),
    }
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
        Command::Label {
            manifest,
            out,
            labels_per_image,
            images_per_query,
            serve,
        } => {
            let (server, url, note) = label::start(
                &manifest,
                &out,
                labels_per_image,
                images_per_query,
                server_args(&serve),
            )?;
            println!("{note}\nlabeling page: {url}\n(Ctrl-C stops; every saved answer is already on disk)");
            server.wait();
            Ok(())
        }
        Command::Compare {
            a,
            b,
            out,
            images,
            seed,
            summarize,
            serve,
        } => {
            if let Some(votes) = summarize {
                print!("{}", compare::summary(&votes)?.table());
                return Ok(());
            }
            let (Some(a), Some(b), Some(out)) = (a, b, out) else {
                anyhow::bail!("--a, --b and --out are required");
            };
            let (server, url, note) =
                compare::start(&a, &b, &out, images, seed, server_args(&serve))?;
            println!("{note}\ncomparison page: {url}\n(Ctrl-C stops; every saved vote is already on disk)");
            server.wait();
            Ok(())
        }
        Command::Bench {
            device,
            full_size,
            filter,
            repeats,
            budget_s,
            out,
        } => {
            let dev = select_device(&device)?;
            let mut o = crate::bench::BenchOptions::for_device(&dev);
            o.full_size |= full_size;
            o.filter = filter;
            o.budget_s = budget_s;
            if let Some(r) = repeats {
                o.repeats = r;
            }
            let records = crate::bench::run(&dev, &o, |r| println!("{r}"))?;
            print!("{}", crate::bench::table(&records, &dev));
            if let Some(out) = out {
                crate::io::atomic::write_atomic(
                    &out,
                    serde_json::to_string_pretty(&records)?.as_bytes(),
                )?;
            }
            Ok(())
        }
        Command::World { command } => match command {
            WorldCommand::Pretrain {
                out,
                images,
                vae_steps,
                clip_steps,
                unet_steps,
                unet_batch,
                unet_lr,
                seed,
                unet_config,
                continue_from,
                unet_minutes,
                unet_timesteps,
                unet_snr_gamma,
                unet_input_perturbation,
                decoder_steps,
                latent,
                device,
            } => {
                let plan = crate::world::pretrain::PretrainPlan {
                    images,
                    vae_steps,
                    clip_steps,
                    unet_steps,
                    unet_batch,
                    unet_lr,
                    seed,
                    unet_config,
                    continue_from,
                    unet_minutes,
                    unet_timesteps,
                    unet_snr_gamma,
                    unet_input_perturbation,
                    decoder_steps,
                    latent,
                };
                let t0 = std::time::Instant::now();
                let r =
                    crate::world::pretrain::pretrain(&out, &plan, &select_device(&device)?, |l| {
                        eprintln!("[{:7.1} s] {l}", t0.elapsed().as_secs_f64())
                    })?;
                println!("{}", serde_json::to_string_pretty(&r)?);
                Ok(())
            }
            WorldCommand::Reproduce {
                models,
                out,
                plan,
                device,
            } => {
                use crate::world::reproduce;
                let models = models.unwrap_or_else(crate::world::committed_models);
                let plan = plan.plan()?;
                let t0 = std::time::Instant::now();
                let r = reproduce::run(&models, &out, &plan, &select_device(&device)?, |l| {
                    println!("[{:6.1} s] {l}", t0.elapsed().as_secs_f64())
                })?;
                print!("{}", std::fs::read_to_string(out.join("report.md"))?);
                println!(
                    "\nclaim 1 (fine-tuning raises alignment): {}; claim 2 (reward beats CLIP score): {}",
                    reproduce::report::claim1_holds(&r),
                    reproduce::report::claim2_holds(&r)
                );
                println!(
                    "report: {} (and eval/report.html)",
                    out.join("report.md").display()
                );
                Ok(())
            }
        },
        Command::Feedback {
            command:
                FeedbackCommand::Import {
                    manifest,
                    out,
                    policy,
                    balance,
                    seed,
                    files,
                },
        } => {
            let r = feedback_import::run(&manifest, &files, policy, balance, seed, &out)?;
            println!(
                "{} answers -> {} training labels ({} images dropped) -> {}\n{}",
                r.answers,
                r.labels.len(),
                r.dropped,
                out.display(),
                r.table
            );
            Ok(())
        }
        Command::Embed {
            manifest,
            cache,
            clip,
            vocabulary: vocab,
            batch_size,
            device,
        } => {
            let dev = select_device(&device.device)?;
            let embedder = ClipEmbedder::load(&clip, parse_dtype(&device.dtype)?, &dev)?;
            let r = embed::run(
                &embedder,
                &manifest,
                &cache,
                &vocabulary(vocab.as_deref())?,
                batch_size,
            )?;
            println!(
                "embedded {} new images ({:.1} images/s) and {} new texts; {} images and {} texts were cached -> {}",
                r.new_images, r.images_per_second, r.new_texts, r.cached_images, r.cached_texts, cache.display()
            );
            Ok(())
        }
        Command::TrainReward {
            labels,
            manifest,
            embeddings,
            out,
            clip,
            config,
            vocabulary: vocab,
            lambda,
            temperature,
            no_aux,
            half_data,
            epochs,
            seed,
            device,
        } => {
            let mut opts: RewardTrainOptions = match &config {
                Some(p) => crate::config::load(p)?,
                None => {
                    crate::config::parse(DEFAULT_REWARD_CONFIG, "the built-in configs/reward.json")?
                }
            };
            opts.lambda = if no_aux {
                0.0
            } else {
                lambda.unwrap_or(opts.lambda)
            };
            opts.temperature = temperature.unwrap_or(opts.temperature);
            opts.half_data |= half_data;
            opts.epochs = epochs.unwrap_or(opts.epochs);
            opts.seed = seed.unwrap_or(opts.seed);
            let vocab = vocabulary(vocab.as_deref())?;
            let inputs = train_reward::TrainRewardInputs {
                labels: &labels,
                manifest: &manifest,
                embeddings: &embeddings,
                clip: &clip,
                vocab: &vocab,
                out: &out,
            };
            let r = train_reward::run(&inputs, &opts, &select_device(&device)?, |e| {
                eprintln!(
                    "epoch {:>3}: train mse {:.4} pc {:.4} | val mse {:.4} pc {:.4} acc {:.3}",
                    e.epoch, e.train_mse, e.train_pc, e.val_mse, e.val_pc, e.val_accuracy
                )
            })?;
            println!(
                "reward model -> {} (best epoch {} of {}, {:.1} s): val MSE {:.4}, accuracy {:.3}",
                out.display(),
                r.best_epoch,
                r.epochs.len(),
                r.seconds,
                r.val.mse,
                r.val.accuracy
            );
            for (split, p) in &r.val.preference {
                println!(
                    "  preference accuracy ({split}): {:.3} [{:.3}, {:.3}] over {} pairs",
                    p.value, p.lo, p.hi, p.n
                );
            }
            Ok(())
        }
        Command::Score {
            manifest,
            reward,
            embeddings,
            out,
            clip,
            batch_size,
            device,
        } => {
            let dev = select_device(&device.device)?;
            let embedder = ClipEmbedder::load(&clip, parse_dtype(&device.dtype)?, &dev)?;
            let scores = score::run(&embedder, &reward, &manifest, &embeddings, batch_size, &out)?;
            let mean =
                scores.iter().map(|s| s.reward as f64).sum::<f64>() / scores.len().max(1) as f64;
            println!(
                "{} images scored (mean reward {mean:.4}) -> {}",
                scores.len(),
                out.display()
            );
            Ok(())
        }
        Command::RejectionSample {
            manifest,
            scores,
            keep,
            out,
            seed,
        } => {
            let r = rejection::run(&manifest, &scores, keep, seed, &out)?;
            println!(
                "kept {} of each prompt's images for {} prompts -> {}\nmean reward: top-{keep} {:.4} ± {:.4}, random-{keep} {:.4} ± {:.4}",
                keep, r.prompts, out.display(), r.top_k.mean, r.top_k.se, r.random_k.mean, r.random_k.se
            );
            Ok(())
        }
        Command::EvalReward {
            labels,
            scores,
            out,
            seed,
        } => {
            let r = eval_reward::run(&labels, &scores, seed)?;
            println!("preference accuracy on {} labeled images (95% bootstrap interval over prompts)\n{}", r.labeled_images, r.table());
            if let Some(out) = out {
                crate::io::atomic::write_atomic(
                    &out,
                    serde_json::to_string_pretty(&r)?.as_bytes(),
                )?;
            }
            Ok(())
        }
        Command::Finetune {
            model,
            manifest,
            scores,
            labels,
            pretrain,
            out,
            config,
            resume,
            steps,
            lr,
            beta,
            precision,
            model_batch,
            pre_batch,
            grad_accum,
            ema_decay,
            snr_gamma,
            input_perturbation,
            timesteps,
            trainable,
            cache_latents,
            checkpoint_every,
            seed,
            device,
        } => {
            let mut c: crate::finetune::config::FinetuneConfig = match &config {
                Some(p) => crate::config::load(p)?,
                None => crate::config::parse(PAPER_CONFIG, "the built-in configs/paper.json")?,
            };
            c.steps = steps.unwrap_or(c.steps);
            c.optim.lr = lr.unwrap_or(c.optim.lr);
            c.beta = beta.unwrap_or(c.beta);
            c.precision = precision.unwrap_or(c.precision);
            c.model_batch = model_batch.unwrap_or(c.model_batch);
            c.pre_batch = pre_batch.unwrap_or(c.pre_batch);
            c.grad_accum = grad_accum.unwrap_or(c.grad_accum);
            c.ema_decay = ema_decay.or(c.ema_decay);
            c.snr_gamma = snr_gamma.or(c.snr_gamma);
            c.input_perturbation = input_perturbation.unwrap_or(c.input_perturbation);
            c.timestep_range = timesteps.or(c.timestep_range);
            c.trainable = trainable.or(c.trainable);
            c.cache_latents |= cache_latents;
            c.checkpoint_every = checkpoint_every.unwrap_or(c.checkpoint_every);
            c.seed = seed.unwrap_or(c.seed);
            let weights = match (scores, labels) {
                (Some(s), _) => crate::finetune::data::Weights::Scores(s),
                (None, Some(l)) => crate::finetune::data::Weights::Labels(l),
                (None, None) => anyhow::bail!("give --scores (learned reward) or --labels (human labels) as the images' weights"),
            };
            let inputs = crate::stages::finetune::FinetuneInputs {
                model,
                manifest,
                weights,
                pretrain,
                out,
                resume,
            };
            let r = crate::stages::finetune::run(&inputs, &c, &select_device(&device)?, true)?;
            if let Some(last) = r.steps.last() {
                println!("step {}: loss {:.4} (reward-weighted {:.4}, pre-training {:.4}), {:.1} images/s", last.step, last.loss, last.loss_model, last.loss_pre, last.images_per_s);
            }
            println!(
                "fine-tuned model -> {} (metrics.jsonl, curves.svg, checkpoints/ beside it)",
                r.model_dir.display()
            );
            Ok(())
        }
        Command::Eval {
            model,
            baseline,
            prompts,
            images_per_prompt,
            seed,
            steps,
            guidance,
            batch_size,
            reward,
            embeddings,
            clip,
            reference,
            inception,
            human_votes,
            out,
            device,
        } => {
            let named = |spec: &str, default: String| match spec.split_once('=') {
                Some((n, s)) if !n.is_empty() && !n.contains('/') => (n.to_string(), s.to_string()),
                _ => (default, spec.to_string()),
            };
            let mut models = Vec::new();
            if let Some(b) = &baseline {
                models.push(named(b, "baseline".into()));
            }
            let many = model.len() > 1;
            for (i, m) in model.iter().enumerate() {
                models.push(named(
                    m,
                    if many {
                        format!("model-{}", i + 1)
                    } else {
                        "model".into()
                    },
                ));
            }
            let prompts = match prompts {
                Some(p) => p,
                None => {
                    let p = out.join("prompts.jsonl");
                    crate::prompts::write_prompts_jsonl(
                        &p,
                        &crate::prompts::eval_prompts_builtin(),
                    )?;
                    p
                }
            };
            let dev = select_device(&device.device)?;
            let dtype = parse_dtype(&device.dtype)?;
            let embedder = ClipEmbedder::load(&clip, dtype, &dev)?;
            let inputs = crate::stages::eval::EvalInputs {
                models,
                prompts,
                images_per_prompt,
                seed,
                sampling: SampleSettings {
                    scheduler: SchedulerKind::Ddim,
                    steps,
                    guidance,
                    eta: 0.0,
                },
                batch_size,
                dtype,
                reward,
                embeddings,
                reference,
                inception,
                human_votes,
                out: out.clone(),
            };
            let r = crate::stages::eval::run(&inputs, &embedder, &dev)?;
            print!("{}", r.table());
            if let Some(h) = &r.human {
                print!("\nhuman evaluation\n{}", h.table());
            }
            println!(
                "report: {} (eval.json beside it)",
                out.join("report.html").display()
            );
            Ok(())
        }
        Command::FidStats {
            images,
            inception,
            out,
            batch_size,
            device,
        } => {
            let dev = select_device(&device)?;
            let extractor = crate::eval::fid::FidExtractor::load(&inception, &dev)?;
            let files = crate::eval::fid::image_files(&images)?;
            let started = std::time::Instant::now();
            let stats = crate::eval::frechet::Stats::from_features(&extractor.features(
                &files,
                batch_size,
                |_| {},
            )?)?;
            crate::eval::fid::save_stats(&stats, &out)?;
            println!(
                "FID statistics of {} images ({:.1} images/s) -> {}",
                stats.n,
                stats.n as f64 / started.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_timestep_range, Cli, Command, WorldCommand};
    use clap::Parser;

    #[test]
    fn reproduce_flags_size_the_plan_and_bad_sizes_are_refused() {
        let parse = |flags: &[&str]| {
            let args = ["rlhf-t2i", "world", "reproduce"].iter().chain(flags);
            match Cli::try_parse_from(args).unwrap().command {
                Command::World {
                    command: WorldCommand::Reproduce { plan, .. },
                } => plan.plan(),
                _ => panic!("not world reproduce"),
            }
        };
        let plan = parse(&[
            "--quick",
            "--train-images-scale",
            "4",
            "--eval-images",
            "3",
            "--finetune-steps",
            "400",
        ])
        .unwrap();
        assert!(plan.quick);
        assert_eq!(plan.train_images_scale, 4.0);
        assert_eq!(plan.eval_images_per_prompt, 3);
        assert_eq!(plan.finetune_steps, 400);
        // Unset flags keep the quick plan's values.
        let quick = crate::world::reproduce::ReproducePlan::quick();
        assert_eq!((plan.steps, plan.guidance), (quick.steps, quick.guidance));
        let e = parse(&["--train-images-scale", "0"]).unwrap_err();
        assert!(e.to_string().contains("must be positive"), "{e}");
        assert!(parse(&["--eval-images", "0"]).is_err());
        assert_eq!(parse(&["--eta", "1"]).unwrap().eta, 1.0);
        assert_eq!(parse(&[]).unwrap().eta, 0.0);
        let e = parse(&["--eta", "1.5"]).unwrap_err();
        assert!(e.to_string().contains("--eta must be in [0, 1]"), "{e}");
    }

    #[test]
    fn timestep_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_timestep_range("0..400"), Ok([0, 400]));
        assert_eq!(parse_timestep_range(" 100 .. 999"), Ok([100, 999]));
        for (bad, why) in [
            ("400", "expected LO..HI"),
            ("400..100", "LO must be below HI"),
            ("a..9", "`a` is not a timestep"),
        ] {
            let e = parse_timestep_range(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
