//! `eval` end to end on the tiny models: two models on the same prompts and seeds, reward and
//! CLIP score by category, FID against a reference folder with synthetic Inception weights, the
//! HTML report, and a rerun that reuses everything.

use super::finetune::setup;
use candle_core::{DType, Device};
use rlhf_t2i::diffusion::sampler::{SampleSettings, SchedulerKind};
use rlhf_t2i::embed::embedder::ClipEmbedder;
use rlhf_t2i::models::inception::{synthetic_weight, FidInception};
use rlhf_t2i::reward::model::{RewardConfig, RewardModel};
use rlhf_t2i::reward::saved::{save, SavedRewardConfig};
use rlhf_t2i::stages::eval::{run, EvalInputs};
use rlhf_t2i::stages::{init_tiny, prompts};
use rlhf_t2i::weights::{save_safetensors, Mode, ParamStore};
use std::collections::HashMap;

#[test]
fn eval_compares_models_and_writes_a_report() {
    let s = setup(1, 1);
    let d = s.dir.path();
    let other = init_tiny::write_tiny_models(&d.join("other"), 1).unwrap();
    prompts::run(
        prompts::PromptSet::Eval,
        None,
        0,
        Some(3),
        &d.join("eval-prompts.jsonl"),
    )
    .unwrap();
    // A reward model on the tiny CLIP's 32-d embeddings (random weights: this tests the plumbing).
    let clip = s.clip.display().to_string();
    let store = ParamStore::random(0, "reward", Mode::Frozen, DType::F32, &Device::Cpu);
    let config = RewardConfig {
        image_dim: 32,
        text_dim: 32,
        hidden: vec![16],
    };
    RewardModel::new(store.var_builder(), &config).unwrap();
    save(
        &d.join("reward"),
        &store,
        &SavedRewardConfig {
            model: config,
            clip: clip.clone(),
            train: Default::default(),
        },
    )
    .unwrap();
    // Synthetic Inception weights and a reference folder.
    let (_, made) = FidInception::synthetic(&Device::Cpu).unwrap();
    let weights: HashMap<String, candle_core::Tensor> = made
        .made
        .lock()
        .unwrap()
        .iter()
        .map(|(n, shape)| {
            (
                n.clone(),
                candle_core::Tensor::from_vec(
                    synthetic_weight(n, shape),
                    shape.as_slice(),
                    &Device::Cpu,
                )
                .unwrap(),
            )
        })
        .collect();
    save_safetensors(&weights, &d.join("inception.safetensors")).unwrap();
    std::fs::create_dir_all(d.join("reference")).unwrap();
    for i in 0..4u8 {
        image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 8) as u8, 60 * i])
        })
        .save(d.join(format!("reference/{i}.png")))
        .unwrap();
    }
    let inputs = EvalInputs {
        models: vec![
            ("baseline".into(), s.sd.display().to_string()),
            ("other".into(), other.sd.display().to_string()),
        ],
        prompts: d.join("eval-prompts.jsonl"),
        images_per_prompt: 2,
        seed: 0,
        sampling: SampleSettings {
            scheduler: SchedulerKind::Ddim,
            steps: 3,
            guidance: 7.5,
            eta: 0.0,
        },
        batch_size: 8,
        dtype: DType::F32,
        reward: d.join("reward"),
        embeddings: d.join("emb.safetensors"),
        reference: Some(d.join("reference")),
        inception: Some(d.join("inception.safetensors")),
        human_votes: Some(votes_file(d)),
        out: d.join("eval"),
    };
    let embedder = ClipEmbedder::load(&clip, DType::F32, &Device::Cpu).unwrap();
    let r = run(&inputs, &embedder, &Device::Cpu).unwrap();
    println!("{}", r.table());
    assert_eq!(r.models.len(), 2);
    for m in &r.models {
        assert_eq!(m.reward.n, 6);
        let fid = m.fid.as_ref().unwrap();
        assert!(fid.value.is_finite() && fid.value > 0.0);
        assert_eq!((fid.model_images, fid.reference_images), (6, 4));
        assert!(
            m.reward_by_category.contains_key("count") && m.reward_by_split.contains_key("seen")
        );
    }
    let human = r.human.as_ref().expect("the votes are summarised");
    assert_eq!((human.votes, human.alignment.groups[0].win), (2, 1));
    let html = std::fs::read_to_string(d.join("eval/report.html")).unwrap();
    assert!(html.contains("Human evaluation (blind A/B)") && html.contains("50.0%"));
    assert!(
        html.contains("Table 3")
            && html.contains("baseline")
            && html.contains("other")
            && html.contains("<svg")
    );
    let srcs: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|t| t.split('"').next().unwrap())
        .collect();
    assert_eq!(srcs.len(), 12);
    for src in srcs {
        assert!(d.join("eval").join(src).is_file(), "{src}");
    }
    // A rerun reuses the images, the cached reference statistics and the embeddings: the same
    // rewards, and the same FID up to the order of the low-rank arithmetic (1e-9 relative).
    let again = run(&inputs, &embedder, &Device::Cpu).unwrap();
    let (f1, f2) = (
        again.models[1].fid.as_ref().unwrap().value,
        r.models[1].fid.as_ref().unwrap().value,
    );
    assert!((f1 - f2).abs() < 1e-9 * f2, "{f1} vs {f2}");
    assert_eq!(again.models[0].reward.mean, r.models[0].reward.mean);
}

/// Two raters' votes on one prompt (one prefers A, one B), as `compare` writes them.
fn votes_file(d: &std::path::Path) -> std::path::PathBuf {
    use rlhf_t2i::compare::{Choice, Side, VoteRecord};
    let prompt = rlhf_t2i::prompts::eval_prompts_builtin()[0].clone();
    let vote = |rater: &str, c| VoteRecord {
        prompt: prompt.clone(),
        rater: rater.into(),
        a: "tuned".into(),
        b: "base".into(),
        a_side: Side::Left,
        alignment: c,
        quality: Choice::Tie,
        a_images: vec![],
        b_images: vec![],
        timestamp: String::new(),
    };
    let path = d.join("votes.jsonl");
    rlhf_t2i::io::jsonl::write_jsonl(&path, &[vote("r1", Choice::A), vote("r2", Choice::B)])
        .unwrap();
    path
}
