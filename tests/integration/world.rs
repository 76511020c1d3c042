//! The shape world: the committed pre-trained checkpoints load through the ordinary loading
//! code, and the quick reproduction (the real stages, the oracle as labeler) shows the paper's
//! first two claims: fine-tuning raises alignment beyond its interval, and the learned reward
//! ranks held-out pairs better than the CLIP score.

use candle_core::{DType, Device};
use rlhf_t2i::embed::embedder::ClipEmbedder;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::weights::{Mode, ModelSource};
use rlhf_t2i::world::reproduce::{self, report, ReproducePlan};

#[test]
fn committed_world_models_reproduce_claims_one_and_two() {
    let models = rlhf_t2i::world::committed_models();
    let sd = StableDiffusion::load(
        &ModelSource::Local(models.join("sd")),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .expect("the committed world SD loads");
    assert_eq!(sd.image_size(), 32);
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
        r.oracle_on_vae_roundtrips > 0.9,
        "the oracle on VAE round trips: {}",
        r.oracle_on_vae_roundtrips
    );
    let (orig, tuned) = (&r.models[0].alignment["all"], &r.models[1].alignment["all"]);
    assert!(
        report::claim1_holds(&r),
        "claim 1: fine-tuned alignment {:.3} [{:.3}, {:.3}] vs original {:.3} [{:.3}, {:.3}]",
        tuned.value,
        tuned.lo,
        tuned.hi,
        orig.value,
        orig.lo,
        orig.hi
    );
    assert!(report::claim2_holds(&r), "claim 2: {:?}", r.reward_accuracy);
}
