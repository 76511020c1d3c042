//! Parity with diffusers / transformers on identical random weights (fixtures made by
//! `scripts/make_fixtures.py`): every component in f32 to a relative error under 1e-4.
//! `RLHF_T2I_TEST_DEVICE=cuda` runs them on a GPU, and `RLHF_T2I_TEST_DTYPE=bf16` (or f16) in
//! half precision, within 2e-2.

use super::common::*;
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::diffusion::ddim::{ddim_step, ddpm_step};
use rlhf_t2i::diffusion::sampler::{sample, SampleSettings, SchedulerKind};
use rlhf_t2i::diffusion::NoiseSchedule;
use rlhf_t2i::pipeline::{load_clip, load_text_encoder, load_unet, load_vae, StableDiffusion};
use rlhf_t2i::runtime::rng;
use rlhf_t2i::weights::{Mode, ModelSource};

const TOL: f64 = 1e-4;

fn tiny_sd() -> ModelSource {
    ModelSource::Local(fixtures().join("tiny-sd"))
}

/// The UNet in `fixtures/FOLDER` on the reference's `sample`, `timestep` and
/// `encoder_hidden_states` agrees with its `out`.
fn assert_unet_matches(folder: &str, r: &std::collections::HashMap<String, Tensor>, what: &str) {
    let source = ModelSource::Local(fixtures().join(folder));
    let (unet, _) = load_unet(&source, Mode::Frozen, dt(), &dev()).unwrap();
    let t = input(&r["timestep"].to_dtype(DType::F32).unwrap());
    let out = unet
        .forward(
            &input(&r["sample"]),
            &t,
            &input(&r["encoder_hidden_states"]),
        )
        .unwrap();
    assert_close(what, &out, &r["out"], tol(TOL));
}

#[test]
fn unet_matches_diffusers() {
    assert_unet_matches("tiny-sd", &reference("unet"), "unet");
}

/// A UNet whose resnets take the time embedding as a scale and shift after their second GroupNorm
/// (`resnet_time_scale_shift = "scale_shift"`, configs/world/unet.json), at the world UNet's
/// shape, against `scripts/make_scale_shift_fixture.py`.
#[test]
fn scale_shift_unet_matches_diffusers() {
    let r = reference("unet_scale_shift");
    assert_unet_matches("tiny-world-unet", &r, "unet (scale_shift)");
}

#[test]
fn vae_matches_diffusers() {
    let r = reference("vae");
    let (vae, _) = load_vae(&tiny_sd(), Mode::Frozen, dt(), &dev()).unwrap();
    let dec = vae.decode(&input(&r["latent"])).unwrap();
    assert_close("vae decode", &dec, &r["decoded"], tol(TOL));
    let dist = vae.encode(&input(&r["image"])).unwrap();
    assert_close(
        "vae encode mean",
        &dist.mean,
        &r["posterior_mean"],
        tol(TOL),
    );
    assert_close("vae encode std", &dist.std, &r["posterior_std"], tol(TOL));
}

#[test]
fn clip_text_encoder_matches_transformers() {
    let r = reference("clip_text");
    let (te, _) = load_text_encoder(&tiny_sd(), Mode::Frozen, dt(), &dev()).unwrap();
    let out = te.forward(&ids_u32(&r["input_ids"])).unwrap();
    assert_close(
        "clip text last_hidden_state",
        &out.last_hidden_state,
        &r["last_hidden_state"],
        tol(TOL),
    );
    assert_close(
        "clip text pooled",
        &out.pooled,
        &r["pooler_output"],
        tol(TOL),
    );
}

#[test]
fn clip_model_matches_transformers() {
    let r = reference("clip_model");
    let (clip, _) = load_clip(
        &ModelSource::Local(fixtures().join("tiny-clip")),
        dt(),
        &dev(),
    )
    .unwrap();
    let ids = ids_u32(&r["input_ids"]);
    assert_close(
        "clip text_embeds",
        &clip.text_features(&ids).unwrap(),
        &r["text_embeds"],
        tol(TOL),
    );
    let pixels = input(&r["pixel_values"]);
    assert_close(
        "clip image_embeds",
        &clip.image_features(&pixels).unwrap(),
        &r["image_embeds"],
        tol(TOL),
    );
    let vis = clip.vision.forward(&pixels).unwrap();
    assert_close(
        "clip vision pooled",
        &vis.pooled,
        &r["vision_pooler_output"],
        tol(TOL),
    );
}

#[test]
fn tokenizer_ids_match_the_fixture() {
    let r = reference("clip_text");
    let tok = rlhf_t2i::pipeline::load_tokenizer(&tiny_sd(), "tokenizer").unwrap();
    let ids = tok
        .batch_tensor(&["A red colored dog.", ""], &Device::Cpu)
        .unwrap();
    let expected = r["input_ids"].to_dtype(DType::U32).unwrap();
    assert_eq!(
        ids.to_vec2::<u32>().unwrap(),
        expected.to_vec2::<u32>().unwrap()
    );
}

#[test]
fn schedulers_match_diffusers() {
    let r = reference("scheduler");
    let s =
        NoiseSchedule::load(&fixtures().join("tiny-sd/scheduler/scheduler_config.json")).unwrap();
    let ac = Tensor::new(
        s.alphas_cumprod
            .iter()
            .map(|v| *v as f32)
            .collect::<Vec<_>>(),
        &Device::Cpu,
    )
    .unwrap();
    assert_close("alphas_cumprod", &ac, &r["alphas_cumprod"], 1e-6);
    let ts: Vec<i64> = r["ddim_timesteps"].to_vec1().unwrap();
    assert_eq!(
        s.inference_timesteps(50).unwrap(),
        ts.iter().map(|t| *t as usize).collect::<Vec<_>>()
    );

    let t = r["ddim_t"].flatten_all().unwrap().to_vec1::<i64>().unwrap()[0] as usize;
    let prev = ddim_step(
        &s,
        &input(&r["model_output"]),
        t,
        s.step_stride(50),
        &input(&r["sample"]),
        0.0,
        None,
    )
    .unwrap();
    assert_close("ddim step", &prev, &r["ddim_prev_sample"], tol(TOL));

    let t = r["ddpm_t"].flatten_all().unwrap().to_vec1::<i64>().unwrap()[0] as usize;
    let prev = ddpm_step(
        &s,
        &input(&r["ddpm_model_output"]),
        t,
        1,
        &input(&r["ddpm_sample"]),
        &input(&r["ddpm_variance_noise"]),
    )
    .unwrap();
    assert_close("ddpm step", &prev, &r["ddpm_prev_sample"], tol(TOL));

    let nt: Vec<u32> = r["noisy_t"]
        .to_vec1::<i64>()
        .unwrap()
        .iter()
        .map(|t| *t as u32)
        .collect();
    let noisy = s
        .add_noise(&input(&r["x0"]), &input(&r["noise"]), &nt)
        .unwrap();
    assert_close("add_noise", &noisy, &r["noisy"], tol(TOL));
}

/// The shape world's scheduler (cosine schedule, v-prediction, trailing timesteps, x0 clipped),
/// against `scripts/make_world_scheduler_fixture.py`: settings SD1.5's fixture never reaches.
/// Always on the CPU in f32: these are schedule arithmetic, not kernels.
#[test]
fn world_scheduler_matches_diffusers() {
    let r = reference("world_scheduler");
    let s = NoiseSchedule::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/world/sd/scheduler/scheduler_config.json"),
    )
    .unwrap();
    let ac: Vec<f64> = r["alphas_cumprod"].to_vec1().unwrap();
    assert_eq!(ac.len(), s.alphas_cumprod.len());
    // diffusers keeps the betas and their product in f32, this crate in f64.
    for (t, (a, b)) in s.alphas_cumprod.iter().zip(&ac).enumerate() {
        assert!(
            (a - b).abs() <= 1e-10 + 1e-5 * b,
            "alphas_cumprod[{t}]: {a} vs {b}"
        );
    }
    let steps = |k: &str| -> Vec<usize> {
        let v: Vec<i64> = r[k].to_vec1().unwrap();
        v.iter().map(|t| *t as usize).collect()
    };
    assert_eq!(
        s.inference_timesteps(10).unwrap(),
        steps("ddim10_timesteps")
    );
    assert_eq!(
        s.inference_timesteps(50).unwrap(),
        steps("ddpm50_timesteps")
    );
    let t = |k: &str| &r[k];
    for (name, step) in [("first", 999), ("last", 99)] {
        let (x0, _) = s
            .split_prediction(
                t(&format!("ddim_{name}_model_output")),
                t(&format!("ddim_{name}_sample")),
                step,
            )
            .unwrap();
        assert_close(
            &format!("world ddim clipped x0 {name}"),
            &x0.clamp(-1f32, 1f32).unwrap(),
            t(&format!("ddim_{name}_x0")),
            TOL,
        );
        let prev = ddim_step(
            &s,
            t(&format!("ddim_{name}_model_output")),
            step,
            s.step_stride(10),
            t(&format!("ddim_{name}_sample")),
            0.0,
            None,
        )
        .unwrap();
        assert_close(
            &format!("world ddim step {name}"),
            &prev,
            t(&format!("ddim_{name}_prev")),
            TOL,
        );
    }
    for (name, step) in [("first", 999), ("mid", 499), ("last", 19)] {
        let prev = ddpm_step(
            &s,
            t(&format!("ddpm_{name}_model_output")),
            step,
            s.step_stride(50),
            t(&format!("ddpm_{name}_sample")),
            t(&format!("ddpm_{name}_noise")),
        )
        .unwrap();
        assert_close(
            &format!("world ddpm step {name}"),
            &prev,
            t(&format!("ddpm_{name}_prev")),
            TOL,
        );
    }
    let ts: Vec<u32> = r["t"]
        .to_vec1::<i64>()
        .unwrap()
        .iter()
        .map(|t| *t as u32)
        .collect();
    let noisy = s.add_noise(t("x0"), t("noise"), &ts).unwrap();
    assert_close("world add_noise", &noisy, t("noisy"), TOL);
    let v = s.target(t("x0"), t("noise"), &ts).unwrap();
    assert_close("world v target", &v, t("velocity"), TOL);
}

#[test]
fn guided_ddim_sample_matches_diffusers() {
    let r = reference("sample");
    let sd = StableDiffusion::load(&tiny_sd(), Mode::Frozen, dt(), &dev()).unwrap();
    let cond = sd
        .text_encoder
        .forward(&ids_u32(&r["cond_ids"]))
        .unwrap()
        .last_hidden_state;
    let uncond = sd
        .text_encoder
        .forward(&ids_u32(&r["uncond_ids"]))
        .unwrap()
        .last_hidden_state;
    assert_close("prompt embeddings", &cond, &r["cond_embeddings"], tol(TOL));
    let settings = SampleSettings {
        scheduler: SchedulerKind::Ddim,
        steps: 4,
        guidance: 7.5,
        eta: 0.0,
    };
    let out = sample(
        &sd.unet,
        &sd.schedule,
        &settings,
        &cond,
        &uncond,
        input(&r["latents"]),
        &mut [rng(0)],
        |_| {},
    )
    .unwrap();
    assert_close(
        "4-step guided DDIM latents",
        &out,
        &r["final_latents"],
        tol(TOL),
    );
    let image = sd.image_space.decode(&out).unwrap();
    assert_close("4-step guided DDIM image", &image, &r["image"], tol(TOL));
}
