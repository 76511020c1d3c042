//! feedback import -> embed -> train-reward -> score -> rejection-sample -> eval-reward on the
//! tiny models, from `generate`'s output, as a user would chain them.

use candle_core::{DType, Device};
use rlhf_t2i::embed::embedder::ClipEmbedder;
use rlhf_t2i::feedback::Policy;
use rlhf_t2i::io::jsonl::read_jsonl;
use rlhf_t2i::io::manifest::ImageRecord;
use rlhf_t2i::prompts::Vocabulary;
use rlhf_t2i::reward::train::RewardTrainOptions;
use rlhf_t2i::stages::{embed, eval_reward, feedback_import, rejection, score, train_reward};
use std::fmt::Write as _;

fn redness(path: &std::path::Path) -> f64 {
    let img = image::open(path).unwrap().to_rgb8();
    img.pixels()
        .map(|p| p[0] as f64 - (p[1] as f64 + p[2] as f64) / 2.0)
        .sum::<f64>()
        / (img.width() * img.height()) as f64
}

#[test]
fn reward_stages_chain_on_tiny_models() {
    // The tiny models and 12 prompts x 4 generated images, shared with the fine-tuning tests.
    let setup = super::finetune::setup(4, 12);
    let d = setup.dir.path();
    let manifest = setup.manifest.clone();
    let records: Vec<ImageRecord> = read_jsonl(&manifest).unwrap();
    assert_eq!(records.len(), 48);

    // Two labelers who like red images; the second skips some.
    let reds: Vec<f64> = records
        .iter()
        .map(|r| redness(&d.join("gen").join(&r.path)))
        .collect();
    let mut sorted = reds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let mut csv = String::from("image,label,labeler\n");
    for (i, (r, red)) in records.iter().zip(&reds).enumerate() {
        let label = if *red >= median { "good" } else { "bad" };
        let _ = writeln!(csv, "{},{label},ann", r.id);
        let _ = writeln!(
            csv,
            "{},{},bob",
            r.id,
            if i % 7 == 0 { "skip" } else { label }
        );
    }
    std::fs::write(d.join("feedback.csv"), csv).unwrap();
    let imported = feedback_import::run(
        &manifest,
        &[d.join("feedback.csv")],
        Policy::Majority,
        false,
        0,
        &d.join("labels.jsonl"),
    )
    .unwrap();
    assert_eq!(imported.answers, 96);
    assert_eq!(imported.labels.len(), 48);
    assert!(imported.table.contains("count"));

    let clip_name = setup.clip.display().to_string();
    let embedder = ClipEmbedder::load(&clip_name, DType::F32, &Device::Cpu).unwrap();
    let vocab = Vocabulary::builtin();
    let cache = d.join("emb.safetensors");
    let e = embed::run(&embedder, &manifest, &cache, &vocab, 16).unwrap();
    assert_eq!(e.new_images, 48);
    assert!(e.new_texts > 12, "perturbations are embedded too");
    let again = embed::run(&embedder, &manifest, &cache, &vocab, 16).unwrap();
    assert_eq!(
        (again.new_images, again.new_texts, again.cached_images),
        (0, 0, 48)
    );

    let opts = RewardTrainOptions {
        hidden: vec![32, 32],
        epochs: 40,
        patience: 40,
        val_fraction: 0.25,
        batch_size: 16,
        ..Default::default()
    };
    let inputs = train_reward::TrainRewardInputs {
        labels: &d.join("labels.jsonl"),
        manifest: &manifest,
        embeddings: &cache,
        clip: &clip_name,
        vocab: &vocab,
        out: &d.join("reward"),
    };
    let report = train_reward::run(
        &inputs,
        &RewardTrainOptions {
            optim: rlhf_t2i::train::optim::AdamWConfig {
                lr: 1e-3,
                ..Default::default()
            },
            ..opts
        },
        &Device::Cpu,
        |_| {},
    )
    .unwrap();
    assert!(
        report
            .epochs
            .iter()
            .map(|e| e.train_mse)
            .next_back()
            .unwrap()
            < report.epochs[0].train_mse
    );
    for f in [
        "reward.safetensors",
        "reward_config.json",
        "metrics.json",
        "train_log.jsonl",
        "curves.svg",
    ] {
        assert!(d.join("reward").join(f).is_file(), "{f}");
    }

    let scores = score::run(
        &embedder,
        &d.join("reward"),
        &manifest,
        &cache,
        16,
        &d.join("scores.jsonl"),
    )
    .unwrap();
    assert_eq!(scores.len(), 48);
    assert!(scores
        .iter()
        .all(|s| (0.0..=1.0).contains(&s.reward) && (-100.0..=100.0).contains(&s.clip_score)));

    let rej = rejection::run(
        &manifest,
        &d.join("scores.jsonl"),
        2,
        0,
        &d.join("gen/selected.jsonl"),
    )
    .unwrap();
    assert_eq!(rej.prompts, 12);
    assert!(rej.top_k.mean >= rej.random_k.mean);
    let kept: Vec<ImageRecord> = read_jsonl(&d.join("gen/selected.jsonl")).unwrap();
    assert_eq!(kept.len(), 24);
    assert!(d.join("gen").join(&kept[0].path).is_file());

    let ev = eval_reward::run(&d.join("labels.jsonl"), &d.join("scores.jsonl"), 0).unwrap();
    assert!(ev.reward.contains_key("all") && ev.clip_score.contains_key("all"));
    println!(
        "tiny chain: reward preference accuracy {:.3}, CLIP {:.3}\n{}",
        ev.reward["all"].value,
        ev.clip_score["all"].value,
        ev.table()
    );

    // A reward model is tied to its embedder.
    let other = ClipEmbedder {
        name: "another/clip".into(),
        ..embedder
    };
    let msg = format!(
        "{:#}",
        score::run(
            &other,
            &d.join("reward"),
            &manifest,
            &cache,
            16,
            &d.join("s2.jsonl")
        )
        .err()
        .unwrap()
    );
    assert!(msg.contains("--clip"), "{msg}");
}
