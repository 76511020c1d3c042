//! The method works on the tiny model: with a synthetic reward that prefers redder images,
//! reward-weighted fine-tuning moves fresh samples toward red, and the pre-training loss
//! (beta > 0) keeps them closer to the pre-training images than beta = 0 does.

use super::finetune::{config, finetune, setup};
use candle_core::{DType, Device};
use rlhf_t2i::diffusion::sampler::{SampleSettings, SchedulerKind};
use rlhf_t2i::io::jsonl::{read_jsonl, write_jsonl};
use rlhf_t2i::io::manifest::ImageRecord;
use rlhf_t2i::io::scores::ScoreRecord;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::stages::demo::redness;
use rlhf_t2i::stages::generate;
use rlhf_t2i::weights::{Mode, ModelSource};
use std::path::Path;

/// Redness of each fresh sample (seed 1000, unseen in training; in manifest order, so samples
/// of two models pair up by seed) and the mean RGB of all of them.
fn sample_stats(model: &Path, prompts: &Path, out: &Path) -> (Vec<f64>, [f64; 3]) {
    let sd = StableDiffusion::load(
        &ModelSource::Local(model.to_path_buf()),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let r = generate::run(
        &sd,
        &generate::GenerateOptions {
            prompts: prompts.to_path_buf(),
            out: out.to_path_buf(),
            images_per_prompt: Some(4),
            seed: 1000,
            sampling: SampleSettings {
                scheduler: SchedulerKind::Ddim,
                steps: 4,
                guidance: 7.5,
                eta: 0.0,
            },
            batch_size: 16,
            size: None,
            model_name: "m".into(),
        },
    )
    .unwrap();
    let recs: Vec<ImageRecord> = read_jsonl(&r.manifest).unwrap();
    let mut red = Vec::new();
    let mut rgb = [0.0; 3];
    for rec in &recs {
        let p = out.join(&rec.path);
        red.push(redness(&p).unwrap());
        let img = image::open(&p).unwrap().to_rgb8();
        for px in img.pixels() {
            for c in 0..3 {
                rgb[c] += px[c] as f64 / (img.width() * img.height()) as f64;
            }
        }
    }
    let n = recs.len() as f64;
    (red, rgb.map(|v| v / n))
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn reward_weighted_finetuning_moves_samples_toward_the_reward() {
    let s = setup(4, 8);
    let d = s.dir.path();
    // The synthetic reward: redness scaled to [0, 1] over the generated images, squared.
    let recs: Vec<ImageRecord> = read_jsonl(&s.manifest).unwrap();
    let root = s.manifest.parent().unwrap();
    let reds: Vec<f64> = recs
        .iter()
        .map(|r| redness(&root.join(&r.path)).unwrap())
        .collect();
    let (lo, hi) = reds
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let scores: Vec<ScoreRecord> = recs
        .iter()
        .zip(&reds)
        .map(|(r, red)| ScoreRecord {
            image_id: r.id.clone(),
            path: r.path.clone(),
            prompt: r.prompt.clone(),
            reward: ((red - lo) / (hi - lo)).powi(2) as f32,
            clip_score: 0.0,
        })
        .collect();
    write_jsonl(&s.scores, &scores).unwrap();
    // Pre-training images: the original model's own pictures of the same prompts (another seed).
    let pre_stats = sample_stats(&s.sd, &d.join("prompts.jsonl"), &d.join("pre-samples"));
    let pre_dir = d.join("pre-samples");
    let pre_recs: Vec<ImageRecord> = read_jsonl(&pre_dir.join("manifest.jsonl")).unwrap();
    let captions: String = pre_recs
        .iter()
        .map(|r| {
            format!(
                "{{\"file\":\"{}\",\"caption\":{:?}}}\n",
                r.path, r.prompt.text
            )
        })
        .collect();
    std::fs::write(pre_dir.join("captions.jsonl"), captions).unwrap();

    let mut c = config(40, 0.0);
    c.optim.lr = 2e-3;
    c.model_batch = 4;
    c.pre_batch = 4;
    c.grad_accum = 1;
    finetune(&s, "beta0", &c, None, false).unwrap();
    c.beta = 1.0;
    finetune(&s, "beta1", &c, Some(&pre_dir), false).unwrap();

    let prompts = d.join("prompts.jsonl");
    let (red0, rgb0) = pre_stats;
    let (red_b0, rgb_b0) = sample_stats(&d.join("beta0/model"), &prompts, &d.join("s-b0"));
    let (red_b1, rgb_b1) = sample_stats(&d.join("beta1/model"), &prompts, &d.join("s-b1"));
    // Paired by seed: each fresh sample against the original model's sample from the same noise.
    let paired = |a: &[f64]| {
        rlhf_t2i::stats::mean_se(&a.iter().zip(&red0).map(|(x, y)| x - y).collect::<Vec<_>>())
    };
    let ((gain0, se0), (gain1, se1)) = (paired(&red_b0), paired(&red_b1));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "fresh samples' mean redness: original {:.2}, fine-tuned beta=0 {:.2} (paired gain {gain0:.2} ± {se0:.2}), beta=1 {:.2} ({gain1:.2} ± {se1:.2}); \
         RGB distance to the pre-training images: beta=0 {:.2}, beta=1 {:.2}",
        mean(&red0),
        mean(&red_b0),
        mean(&red_b1),
        dist(rgb_b0, rgb0),
        dist(rgb_b1, rgb0)
    );
    assert!(
        gain0 > 3.0 * se0,
        "fine-tuning did not move samples toward the reward: gain {gain0:.2} ± {se0:.2}"
    );
    assert!(
        dist(rgb_b1, rgb0) < dist(rgb_b0, rgb0),
        "beta > 0 did not keep samples closer to the pre-training images"
    );
}
