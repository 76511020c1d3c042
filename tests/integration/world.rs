//! The shape world: the committed pre-trained checkpoints load through the ordinary loading
//! code (a pixel-space model: no VAE), the quick reproduction runs end to end (the real stages,
//! the oracle as labeler) and writes its report, an output folder of other models is refused,
//! and `world pretrain --continue-from` goes on from trained models.
//!
//! Asserted of the committed model: it is imperfect the way the issue asks (on the training
//! prompts the oracle judges some but far from all of its samples good). Asserted of the run:
//! claim 2, the learned reward ranks the held-out pairs better than the CLIP score (52.4%
//! against 35.7% on 42 pairs, 2026-11-27).
//! Not asserted: the direction of claim 1, because it does not hold (fine-tuning on its own
//! good samples lowers the world model's alignment, even samples as sharp as its renders; why
//! is open: README, "The shape world", and docs/world-generator.md). Assert
//! `report::claim1_holds` here once it does.

use candle_core::{DType, Device};
use rlhf_t2i::embed::embedder::ClipEmbedder;
use rlhf_t2i::models::image_space::ImageSpace;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::weights::{Mode, ModelSource};
use rlhf_t2i::world::reproduce::{self, report, ReproducePlan};

#[test]
fn committed_world_models_load_and_the_quick_reproduction_runs() {
    let models = rlhf_t2i::world::committed_models();
    let sd = StableDiffusion::load(
        &ModelSource::Local(models.join("sd")),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .expect("the committed world SD loads");
    assert_eq!(sd.image_size(), 32);
    assert!(matches!(sd.image_space, ImageSpace::Pixel { patch: 2 }));
    ClipEmbedder::load(
        &models.join("clip").display().to_string(),
        DType::F32,
        &Device::Cpu,
    )
    .expect("the committed world CLIP loads");

    let out = std::env::temp_dir().join(format!("rlhf-world-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let t0 = std::time::Instant::now();
    let r = reproduce::run(&models, &out, &ReproducePlan::quick(), &Device::Cpu, |l| {
        println!("[{:6.1} s] {l}", t0.elapsed().as_secs_f64())
    })
    .unwrap();
    println!(
        "{}",
        std::fs::read_to_string(out.join("report.md")).unwrap()
    );
    assert!(out.join("eval/report.html").is_file() && out.join("alignment.svg").is_file());
    assert!(
        r.oracle_on_roundtrips > 0.8,
        "the oracle on round trips through the {} space: {}",
        r.image_space,
        r.oracle_on_roundtrips
    );
    // Every image of every stage was judged, and every number of the report is there.
    assert_eq!(r.models.len(), 2);
    for m in &r.models {
        for g in [
            "all",
            "count",
            "color",
            "background",
            "combination",
            "seen",
            "unseen",
        ] {
            assert!(m.alignment.contains_key(g), "{} lacks {g}", m.name);
            // Right apart from shapes includes every good image.
            assert!(
                m.right_but_shape[g].value >= m.alignment[g].value,
                "{} {g}: right but for shapes below alignment",
                m.name
            );
        }
        assert!(m.fid_clip.is_finite() && m.fid_clip >= 0.0);
        // 0.692 for the original in the quick run (2026-11-28); renders score about 0.98.
        let (fidelity, _) = m.shape_fidelity.expect("some images have objects");
        assert!((0.3..1.0).contains(&fidelity), "{}: {fidelity}", m.name);
        assert_eq!(
            m.alignment["all"].n, 240,
            "80 evaluation prompts x 3 images"
        );
    }
    assert_eq!(r.training_labels["all"].n, 480);
    // Imperfect, not useless: 15.6% of the 480 (DDIM 10, guidance 5; counts 4.2%) with the
    // stage-3 model (2026-11-27, eighth session); stage 2 gave 10.8% of 240, the model before
    // it about 1%.
    let good = r.training_labels["all"].value;
    assert!(
        (0.05..0.6).contains(&good),
        "share of the training prompts' samples judged good: {good}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## 1. Alignment") && md.contains("## 4. Fidelity"));
    assert!(
        md.contains("right on everything but their objects' shapes")
            && md.contains("| shape fidelity |")
    );
    // Said, not hidden: the report names each claim's verdict.
    assert!(md.contains("reproduced"));
    let acc = |name: &str| r.reward_accuracy[name]["all"].value;
    assert!(
        report::claim2_holds(&r),
        "claim 2: the reward ranks {:.1}% of the held-out pairs right, the CLIP score {:.1}%",
        100.0 * acc("reward"),
        100.0 * acc("CLIP score")
    );
}

/// A copy of the committed world SD whose `model_index.json` went through `edit`.
fn world_sd_with_index(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> ModelSource {
    super::common::copy_dir(&rlhf_t2i::world::committed_models().join("sd"), dir);
    let path = dir.join("model_index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut index);
    std::fs::write(&path, index.to_string()).unwrap();
    ModelSource::Local(dir.to_path_buf())
}

fn load(source: &ModelSource) -> anyhow::Result<StableDiffusion> {
    StableDiffusion::load(source, Mode::Frozen, DType::F32, &Device::Cpu)
}

/// The error of a load that must fail, with its causes.
fn load_error(source: &ModelSource, why: &str) -> String {
    load(source)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_else(|| panic!("{why}"))
}

#[test]
fn a_model_without_a_vae_is_pixel_space_and_mismatches_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    // diffusers writes an absent component as [null, null]: the same as no entry.
    let sd = load(&world_sd_with_index(&dir.path().join("a"), |i| {
        i["vae"] = serde_json::json!([null, null])
    }))
    .unwrap();
    assert!(matches!(sd.image_space, ImageSpace::Pixel { patch: 2 }));
    // Patch 1 would need a 3-channel UNet: the error gives both numbers.
    let err = load_error(
        &world_sd_with_index(&dir.path().join("b"), |i| {
            i["pixel_patch_size"] = serde_json::json!(1)
        }),
        "a 12-channel UNet in 3-channel pixel space must not load",
    );
    assert!(
        err.contains("12") && err.contains("pixel space has 3"),
        "{err}"
    );
    let err = load_error(
        &world_sd_with_index(&dir.path().join("c"), |i| {
            i["pixel_patch_size"] = serde_json::json!(0)
        }),
        "patch 0 must not load",
    );
    assert!(
        err.contains("pixel_patch_size must be a positive integer"),
        "{err}"
    );
    // A model index that names a VAE needs its folder.
    let err = load_error(
        &world_sd_with_index(&dir.path().join("d"), |i| {
            i["vae"] = serde_json::json!(["diffusers", "AutoencoderKL"])
        }),
        "a missing vae folder must not load",
    );
    assert!(err.contains("vae/config.json"), "{err}");
}

#[test]
fn reproduce_refuses_an_output_folder_of_other_models_or_settings() {
    let out = tempfile::tempdir().unwrap();
    std::fs::write(
        out.path().join("run-key.json"),
        r#"{"plan": {}, "files": {"sd/unet/diffusion_pytorch_model.safetensors": "0"}}"#,
    )
    .unwrap();
    let err = reproduce::run(
        &rlhf_t2i::world::committed_models(),
        out.path(),
        &ReproducePlan::quick(),
        &Device::Cpu,
        |_| {},
    )
    .err()
    .map(|e| format!("{e:#}"))
    .expect("another run's folder must be refused");
    assert!(err.contains("other models or settings"), "{err}");
    // Nothing of the other run was touched or added.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
}

/// Three UNet steps of 8 going on from `models`, over 48 images; no CLIP or VAE training.
fn three_steps_from(models: &std::path::Path) -> rlhf_t2i::world::pretrain::PretrainPlan {
    rlhf_t2i::world::pretrain::PretrainPlan {
        images: 48,
        vae_steps: 0,
        clip_steps: 0,
        unet_steps: 3,
        unet_batch: 8,
        unet_lr: 1e-5,
        seed: 0,
        unet_config: None,
        continue_from: Some(models.to_path_buf()),
        unet_minutes: None,
        unet_timesteps: None,
        unet_snr_gamma: None,
        unet_input_perturbation: 0.0,
        decoder_steps: 0,
        latent: false,
    }
}

/// Each of `files` is byte for byte the same under `out` as under the initial `models`.
fn assert_same_files(out: &std::path::Path, models: &std::path::Path, files: &[&str]) {
    for f in files {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(models.join(f)).unwrap(),
            "{f} is the initial models'"
        );
    }
}

#[test]
fn pretraining_goes_on_from_trained_models() {
    use rlhf_t2i::world::pretrain::pretrain;
    let models = rlhf_t2i::world::committed_models();
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    let plan = three_steps_from(&models);
    let r = pretrain(o, &plan, &Device::Cpu, |_| {}).unwrap();
    // A fresh UNet starts near a loss of 1 (see pretrain.json); the trained one far below it.
    assert!(
        r.unet_loss_first_last.0 < 0.4,
        "first loss {} is a fresh UNet's",
        r.unet_loss_first_last.0
    );
    // The CLIP stage was not rerun: CLIP, the text encoder and the UNet's config are the
    // committed ones.
    assert_same_files(
        o,
        &models,
        &[
            "clip/model.safetensors",
            "sd/text_encoder/model.safetensors",
            "sd/model_index.json",
            "sd/scheduler/scheduler_config.json",
            "sd/unet/config.json",
        ],
    );
    load(&ModelSource::Local(o.join("sd"))).expect("the result loads");
}

#[test]
fn another_unet_config_trains_fresh_beside_the_kept_clip() {
    use rlhf_t2i::world::pretrain::pretrain;
    let models = rlhf_t2i::world::committed_models();
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    let wide =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/world/unet-wide.json");
    let plan = rlhf_t2i::world::pretrain::PretrainPlan {
        unet_config: Some(wide.clone()),
        unet_timesteps: Some([0, 300]),
        ..three_steps_from(&models)
    };
    let r = pretrain(o, &plan, &Device::Cpu, |_| {}).unwrap();
    // A fresh UNet (see pretrain_goes_on_from_trained_models for the committed one's loss).
    assert!(
        r.unet_loss_first_last.0 > 0.4,
        "first loss {} is a trained UNet's",
        r.unet_loss_first_last.0
    );
    assert_same_files(
        o,
        &models,
        &[
            "clip/model.safetensors",
            "sd/text_encoder/model.safetensors",
        ],
    );
    assert_eq!(
        std::fs::read(o.join("sd/unet/config.json")).unwrap(),
        std::fs::read(&wide).unwrap()
    );
    load(&ModelSource::Local(o.join("sd"))).expect("the result loads");
}
