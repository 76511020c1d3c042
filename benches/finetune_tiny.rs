//! Fine-tuning throughput on the tiny model (training images/s, forward + backward + AdamW),
//! with the frozen VAE encode per image and with latents cached, side by side.
//! Run: `cargo bench --bench finetune_tiny`.

use candle_core::{DType, Device};
use rlhf_t2i::finetune::config::{FinetuneConfig, Precision};
use rlhf_t2i::finetune::data::{model_dataset, Weights};
use rlhf_t2i::finetune::trainer::{load_base, Trainer};
use rlhf_t2i::io::jsonl::{read_jsonl, write_jsonl};
use rlhf_t2i::io::manifest::ImageRecord;
use rlhf_t2i::io::scores::ScoreRecord;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::stages::{generate, init_tiny, prompts};
use rlhf_t2i::train::optim::AdamWConfig;
use rlhf_t2i::train::schedule::Decay;
use rlhf_t2i::weights::{Mode, ModelSource};

fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads(); // as the binary does
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let tiny = init_tiny::write_tiny_models(&d.join("models"), 0)?;
    prompts::run(
        prompts::PromptSet::Train,
        None,
        0,
        Some(16),
        &d.join("p.jsonl"),
    )?;
    let sd = StableDiffusion::load(
        &ModelSource::Local(tiny.sd.clone()),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )?;
    let gen = generate::run(
        &sd,
        &generate::GenerateOptions {
            prompts: d.join("p.jsonl"),
            out: d.join("gen"),
            images_per_prompt: Some(2),
            seed: 0,
            sampling: Default::default(),
            batch_size: 16,
            size: None,
            model_name: "tiny".into(),
        },
    )?;
    let recs: Vec<ImageRecord> = read_jsonl(&gen.manifest)?;
    let scores: Vec<ScoreRecord> = recs
        .iter()
        .map(|r| ScoreRecord {
            image_id: r.id.clone(),
            path: r.path.clone(),
            prompt: r.prompt.clone(),
            reward: 0.5,
            clip_score: 0.0,
        })
        .collect();
    write_jsonl(&d.join("s.jsonl"), &scores)?;
    let base = load_base(&ModelSource::Local(tiny.sd), None, &Device::Cpu)?;
    let mut rows = Vec::new();
    for cache in [false, true] {
        let config = FinetuneConfig {
            optim: AdamWConfig::default(),
            warmup_steps: 0,
            decay: Decay::Constant,
            steps: 12,
            model_batch: 16,
            pre_batch: 0,
            grad_accum: 1,
            max_grad_norm: 1.0,
            beta: 0.0,
            precision: Precision::F32,
            ema_decay: None,
            seed: 0,
            checkpoint_every: 0,
            keep_checkpoints: 1,
            cache_latents: cache,
            caption_dropout: 0.0,
            timestep_range: None,
            snr_gamma: None,
            input_perturbation: 0.0,
            trainable: None,
        };
        let data = model_dataset(&gen.manifest, &Weights::Scores(d.join("s.jsonl")))?;
        let mut t = Trainer::new(
            &base,
            config,
            data,
            vec![],
            &d.join(format!("ft-{cache}")),
            false,
        )?;
        let logs = t.run(|_| {})?;
        let mut ips: Vec<f64> = logs.iter().skip(2).map(|l| l.images_per_s).collect();
        ips.sort_by(f64::total_cmp);
        let median = ips[ips.len() / 2];
        let name = if cache {
            "latents cached"
        } else {
            "VAE encode per image"
        };
        println!("{{\"name\":\"tiny_finetune_f32_b16\",\"variant\":\"{name}\",\"images_per_s\":{median:.1}}}");
        rows.push((name, median));
    }
    println!("\n{:<24} {:>10}", "variant", "images/s");
    for (n, v) in &rows {
        println!("{n:<24} {v:>10.1}");
    }
    println!(
        "ratio (cached / per-image encode): {:.2}",
        rows[1].1 / rows[0].1
    );
    Ok(())
}
