//! `rlhf-t2i demo`: the pipeline so far on the embedded tiny models, start to end on a CPU:
//! init-tiny, prompts, generate, feedback (from a scripted stand-in labeler), embed,
//! train-reward, score, rejection sampling, the reward's preference accuracy, reward-weighted
//! fine-tuning, and the mean reward of fresh samples before and after.
//!
//! The tiny models are random, so their pictures are noise: the demo shows the machinery and
//! the file formats, not alignment. The stand-in labeler prefers redder images, a property the
//! reward could learn, though the random tiny CLIP keeps little of it; real runs use human
//! feedback (`feedback import`).

use super::generate::{self, GenerateOptions};
use super::init_tiny::write_tiny_models;
use super::prompts::{self as prompt_stage, PromptSet};
use super::{embed, eval_reward, feedback_import, rejection, score, train_reward};
use crate::diffusion::sampler::{SampleSettings, SchedulerKind};
use crate::embed::embedder::ClipEmbedder;
use crate::feedback::{now_rfc3339, FeedbackRecord, Label, Policy};
use crate::io::atomic::AppendLog;
use crate::io::jsonl::read_jsonl;
use crate::io::manifest::ImageRecord;
use crate::pipeline::StableDiffusion;
use crate::prompts::Vocabulary;
use crate::reward::train::RewardTrainOptions;
use crate::weights::{Mode, ModelSource};
use anyhow::Result;
use candle_core::{DType, Device};
use std::path::Path;

/// Mean of red minus the other two channels: what the stand-in labeler likes.
pub fn redness(path: &Path) -> Result<f64> {
    let img = crate::io::png_meta::load_rgb(path)?;
    let n = (img.width() * img.height()).max(1) as f64;
    Ok(img
        .pixels()
        .map(|p| p[0] as f64 - (p[1] as f64 + p[2] as f64) / 2.0)
        .sum::<f64>()
        / n)
}

/// Two scripted labelers who call an image good when it is redder than about half of all the
/// images; they disagree near the threshold, and the second skips one image in eleven.
fn scripted_feedback(records: &[ImageRecord], root: &Path, out: &Path) -> Result<()> {
    let reds = records
        .iter()
        .map(|r| redness(&root.join(&r.path)))
        .collect::<Result<Vec<_>>>()?;
    let mut sorted = reds.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (
        sorted[sorted.len() * 45 / 100],
        sorted[sorted.len() * 55 / 100],
    );
    let (mut log, _) = AppendLog::open(out)?;
    for (i, (r, red)) in records.iter().zip(&reds).enumerate() {
        for (labeler, threshold) in [("scripted-a", lo), ("scripted-b", hi)] {
            let label = if labeler == "scripted-b" && i % 11 == 0 {
                Label::Skip
            } else if *red >= threshold {
                Label::Good
            } else {
                Label::Bad
            };
            log.append(&FeedbackRecord {
                image_id: r.id.clone(),
                prompt: r.prompt.clone(),
                labeler: labeler.into(),
                label,
                timestamp: now_rfc3339(),
            })?;
        }
    }
    Ok(())
}

/// The demo's sampler everywhere: DDIM, `steps` steps, guidance 7.5.
fn demo_sampling(steps: usize) -> SampleSettings {
    SampleSettings {
        scheduler: SchedulerKind::Ddim,
        steps,
        guidance: 7.5,
        eta: 0.0,
    }
}

/// `n` images per prompt from the model in `model` (DDIM, guidance 7.5), into `out`.
fn sample(
    model: &Path,
    prompts: &Path,
    out: &Path,
    n: u32,
    seed: u64,
    steps: usize,
    device: &Device,
) -> Result<generate::GenerateReport> {
    let sd = StableDiffusion::load(
        &ModelSource::Local(model.to_path_buf()),
        Mode::Frozen,
        DType::F32,
        device,
    )?;
    let opts = GenerateOptions {
        prompts: prompts.to_path_buf(),
        out: out.to_path_buf(),
        images_per_prompt: Some(n),
        seed,
        sampling: demo_sampling(steps),
        batch_size: 16,
        size: None,
        model_name: model.display().to_string(),
    };
    generate::run(&sd, &opts)
}

pub fn run(out: &Path, device: &Device, images_per_prompt: u32, steps: usize) -> Result<()> {
    let t0 = std::time::Instant::now();
    let step =
        |n: usize, what: &str| println!("\n[{n}/10] {what} ({:.0} s)", t0.elapsed().as_secs_f64());
    step(1, "init-tiny: a seeded tiny SD + CLIP");
    let tiny = write_tiny_models(&out.join("models"), 0)?;
    println!("  {}\n  {}", tiny.sd.display(), tiny.clip.display());

    step(2, "prompts: 48 training prompts spread over the categories");
    let prompts_path = out.join("prompts/train.jsonl");
    let (_, table) = prompt_stage::run(PromptSet::Train, None, 0, Some(48), &prompts_path)?;
    print!("{table}");

    step(
        3,
        &format!(
            "generate: {images_per_prompt} images per prompt, {steps} DDIM steps, guidance 7.5"
        ),
    );
    let gen = sample(
        &tiny.sd,
        &prompts_path,
        &out.join("generated"),
        images_per_prompt,
        0,
        steps,
        device,
    )?;
    println!(
        "  {} new images ({} already there), {:.1} images/s -> {}",
        gen.generated,
        gen.already_done,
        gen.images_per_second,
        gen.manifest.display()
    );

    step(
        4,
        "feedback: two scripted stand-in labelers (they prefer redder images), then import",
    );
    let manifest = gen.manifest.clone();
    let records: Vec<ImageRecord> = read_jsonl(&manifest)?;
    let feedback = out.join("feedback/answers.jsonl");
    if feedback.exists() {
        std::fs::remove_file(&feedback)?;
    }
    scripted_feedback(&records, &out.join("generated"), &feedback)?;
    let labels = out.join("feedback/labels.jsonl");
    let imported =
        feedback_import::run(&manifest, &[feedback], Policy::Majority, false, 0, &labels)?;
    print!(
        "  {} answers -> {} labels ({} dropped)\n{}",
        imported.answers,
        imported.labels.len(),
        imported.dropped,
        imported.table
    );

    step(
        5,
        "embed: tiny-CLIP embeddings of images, prompts and perturbed prompts",
    );
    let clip_name = tiny.clip.display().to_string();
    let embedder = ClipEmbedder::load(&clip_name, DType::F32, device)?;
    let cache = out.join("embeddings.safetensors");
    let vocab = Vocabulary::builtin();
    let e = embed::run(&embedder, &manifest, &cache, &vocab, 64)?;
    println!(
        "  {} images, {} texts -> {}",
        e.new_images + e.cached_images,
        e.new_texts + e.cached_texts,
        cache.display()
    );

    step(
        6,
        "train-reward: MLP on the embeddings, MSE + 0.5 x prompt classification",
    );
    let reward_dir = out.join("reward");
    let opts = RewardTrainOptions {
        hidden: vec![256, 256],
        epochs: 30,
        patience: 30,
        batch_size: 32,
        val_fraction: 0.2,
        ..Default::default()
    };
    let inputs = train_reward::TrainRewardInputs {
        labels: &labels,
        manifest: &manifest,
        embeddings: &cache,
        clip: &clip_name,
        vocab: &vocab,
        out: &reward_dir,
    };
    let r = train_reward::run(&inputs, &opts, device, |_| {})?;
    println!(
        "  best epoch {} of {}: val MSE {:.4}, val accuracy {:.3} -> {}",
        r.best_epoch,
        r.epochs.len(),
        r.val.mse,
        r.val.accuracy,
        reward_dir.display()
    );

    step(
        7,
        "score + rejection sampling: keep the best half of each prompt's images by reward",
    );
    let scores = out.join("scores.jsonl");
    score::run(&embedder, &reward_dir, &manifest, &cache, 64, &scores)?;
    let keep = (images_per_prompt as usize / 2).max(1);
    let rej = rejection::run(
        &manifest,
        &scores,
        keep,
        0,
        &out.join("generated/selected.jsonl"),
    )?;
    println!(
        "  mean reward: top-{keep} {:.3} ± {:.3}, random-{keep} {:.3} ± {:.3}",
        rej.top_k.mean, rej.top_k.se, rej.random_k.mean, rej.random_k.se
    );

    step(
        8,
        "eval-reward: preference accuracy of the reward vs the CLIP score on labeled pairs",
    );
    let ev = eval_reward::run(&labels, &scores, 0)?;
    print!("{}", ev.table());
    println!(
        "  (train and validation pairs together; see {} for the held-out figures)",
        reward_dir.join("metrics.json").display()
    );

    step(
        9,
        "finetune: 30 steps of reward-weighted denoising loss on the scored images (UNet only)",
    );
    let mut ft = crate::finetune::config::FinetuneConfig {
        steps: 30,
        model_batch: 8,
        pre_batch: 0,
        grad_accum: 1,
        beta: 0.0,
        precision: crate::finetune::config::Precision::F32,
        checkpoint_every: 10,
        cache_latents: true,
        caption_dropout: 0.0,
        ..crate::config::parse(crate::cli::PAPER_CONFIG, "configs/paper.json")?
    };
    ft.optim.lr = 1e-3;
    let ft_inputs = super::finetune::FinetuneInputs {
        model: tiny.sd.display().to_string(),
        manifest: manifest.clone(),
        weights: crate::finetune::data::Weights::Scores(scores.clone()),
        pretrain: None,
        out: out.join("finetuned"),
        resume: false,
    };
    let ft_report = super::finetune::run(&ft_inputs, &ft, device, false)?;
    if let (Some(first), Some(last)) = (ft_report.steps.first(), ft_report.steps.last()) {
        println!(
            "  loss {:.4} -> {:.4}, {:.1} images/s -> {}",
            first.loss,
            last.loss,
            last.images_per_s,
            ft_report.model_dir.display()
        );
    }

    step(10, "eval: the same fresh seeds from the original and the fine-tuned model, scored, with an HTML report");
    let eval_inputs = super::eval::EvalInputs {
        models: vec![
            ("original".into(), tiny.sd.display().to_string()),
            (
                "fine-tuned".into(),
                ft_report.model_dir.display().to_string(),
            ),
        ],
        prompts: out.join("prompts/train.jsonl"),
        images_per_prompt: 2,
        seed: 1000,
        sampling: demo_sampling(steps),
        batch_size: 16,
        dtype: DType::F32,
        reward: reward_dir.clone(),
        embeddings: cache.clone(),
        reference: None,
        inception: None,
        human_votes: None,
        out: out.join("eval"),
    };
    let report = super::eval::run(&eval_inputs, &embedder, device)?;
    print!("{}", report.table());
    for m in &report.models {
        let red: Vec<f64> = m
            .scores
            .iter()
            .map(|r| redness(&out.join("eval/samples").join(&m.name).join(&r.path)))
            .collect::<Result<_>>()?;
        let (rm, rse) = crate::stats::mean_se(&red);
        println!(
            "  {:<10} mean redness (what the stand-in labelers prefer) {rm:.2} ± {rse:.2}",
            m.name
        );
    }
    println!(
        "  FID is left out here: it needs pytorch-fid's Inception weights (`eval --inception`)."
    );

    println!("\nreport:   {}", out.join("eval/report.html").display());
    println!("images:   {}", out.join("generated/images").display());
    println!("manifest: {}", manifest.display());
    println!(
        "reward:   {} (curves.svg, metrics.json)",
        reward_dir.display()
    );
    println!(
        "model:    {} (fine-tuned; metrics.jsonl and curves.svg beside it)",
        ft_report.model_dir.display()
    );
    println!("done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
