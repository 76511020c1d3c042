//! `rlhf-t2i bench`: the workloads of `../shared/gpu/pytorch-anchor/bench.py`, timed the same
//! way (warm-up, then the median of synchronised repeats) and printed as one JSON line per
//! measurement under the same names, so the two line up side by side.
//!
//! On a GPU it builds the full-size SD1.5 UNet and VAE and CLIP ViT-L/14 from their built-in
//! configs (`configs/sd15/`) with random weights; on the CPU it runs the same code on the tiny
//! models (`configs/tiny/`), so CI exercises every workload.

use crate::diffusion::sampler::{sample, SampleSettings, SchedulerKind};
use crate::diffusion::schedule::{NoiseSchedule, SchedulerConfig};
use crate::models::clip::{ClipConfig, ClipModel};
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::models::vae::{AutoencoderKL, VaeConfig};
use crate::runtime::{dtype_name, rng};
use crate::train::optim::{AdamW, AdamWConfig};
use crate::weights::{Mode, ParamStore};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};
use std::time::Instant;

/// Which models and how many repeats.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Full-size SD1.5 / CLIP ViT-L/14 (else the tiny models).
    pub full_size: bool,
    pub warmup: usize,
    pub repeats: usize,
    /// Only measurements whose name contains this.
    pub filter: Option<String>,
}

impl BenchOptions {
    pub fn for_device(device: &Device) -> BenchOptions {
        let gpu = !device.is_cpu();
        BenchOptions {
            full_size: gpu,
            warmup: if gpu { 3 } else { 1 },
            repeats: if gpu { 10 } else { 3 },
            filter: None,
        }
    }
}

struct Configs {
    unet: UNetConfig,
    vae: VaeConfig,
    clip: ClipConfig,
}

fn configs(full: bool) -> Result<Configs> {
    let (u, v, c) = if full {
        (
            include_str!("../configs/sd15/unet.json"),
            include_str!("../configs/sd15/vae.json"),
            include_str!("../configs/sd15/clip.json"),
        )
    } else {
        (
            include_str!("../configs/tiny/unet.json"),
            include_str!("../configs/tiny/vae.json"),
            include_str!("../configs/tiny/clip.json"),
        )
    };
    Ok(Configs {
        unet: serde_json::from_str(u)?,
        vae: serde_json::from_str(v)?,
        clip: serde_json::from_str(c)?,
    })
}

fn sync(device: &Device) -> Result<()> {
    device.synchronize()?;
    Ok(())
}

/// Median, min and max of `repeats` synchronised calls after `warmup` ones, in seconds.
fn time(device: &Device, o: &BenchOptions, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..o.warmup {
        f()?;
    }
    sync(device)?;
    let mut ts = Vec::with_capacity(o.repeats);
    for _ in 0..o.repeats.max(1) {
        let t = Instant::now();
        f()?;
        sync(device)?;
        ts.push(t.elapsed().as_secs_f64());
    }
    Ok(ts)
}

fn record(
    name: &str,
    section: &str,
    ts: &[f64],
    items: Option<(usize, &str)>,
    extra: Value,
) -> Value {
    let mut s = ts.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let med = s[s.len() / 2];
    let mut rec = json!({
        "name": name,
        "section": section,
        "median_ms": (med * 1e6).round() / 1e3,
        "min_ms": (s[0] * 1e6).round() / 1e3,
        "max_ms": (s[s.len() - 1] * 1e6).round() / 1e3,
        "n": s.len(),
        "wall_median_ms": (med * 1e6).round() / 1e3,
    });
    if let Some((n, what)) = items {
        rec[format!("{what}_per_s")] = json!((n as f64 / med * 1e3).round() / 1e3);
    }
    if let (Value::Object(r), Value::Object(e)) = (&mut rec, extra) {
        r.extend(e);
    }
    rec
}

/// The dtypes to measure on this device: bf16 and f16 on a GPU, f32 on the CPU (candle has no
/// CPU bf16 matmul), each with the tag bench.py uses.
fn dtypes(device: &Device) -> Vec<(&'static str, DType)> {
    if device.is_cpu() {
        vec![("f32", DType::F32)]
    } else {
        vec![("fp16", DType::F16), ("bf16", DType::BF16)]
    }
}

/// Run every measurement; `emit` receives each record as it is made.
pub fn run(device: &Device, o: &BenchOptions, mut emit: impl FnMut(&Value)) -> Result<Vec<Value>> {
    let c = configs(o.full_size)?;
    let mut out = Vec::new();
    let mut push = |rec: Value, out: &mut Vec<Value>| {
        emit(&rec);
        out.push(rec);
    };
    let want = |name: &str| o.filter.as_deref().is_none_or(|f| name.contains(f));
    let lat = c.unet.sample_size;
    let ctx_dim = c.unet.cross_attention_dim;
    let half = dtypes(device);
    let (main_tag, main_dt) = half[0];

    for &(tag, dt) in &half {
        let unet = build_unet(&c.unet, Mode::Frozen, dt, device)?.0;
        for b in [2usize, 8] {
            let name = format!("unet_fwd_{tag}_b{b}");
            if !want(&name) {
                continue;
            }
            let x = Tensor::randn(0f32, 1., (b, 4, lat, lat), device)?.to_dtype(dt)?;
            let ctx = Tensor::randn(0f32, 1., (b, 77, ctx_dim), device)?.to_dtype(dt)?;
            let t = Tensor::full(500f32, b, device)?;
            let ts = time(device, o, || {
                unet.forward(&x, &t, &ctx)?;
                Ok(())
            })?;
            push(
                record(
                    &name,
                    "a_unet_fwd",
                    &ts,
                    Some((b, "samples")),
                    json!({"dtype": tag, "batch": b}),
                ),
                &mut out,
            );
        }
    }

    let steps = 50;
    let name = format!("sample_ddim{steps}_cfg_{main_tag}_p4");
    if want(&name) {
        let (unet, _) = build_unet(&c.unet, Mode::Frozen, main_dt, device)?;
        let vae = build_vae(&c.vae, main_dt, device)?;
        let schedule = NoiseSchedule::new(&serde_json::from_str::<SchedulerConfig>(
            include_str!("../configs/tiny/scheduler.json"),
        )?)?;
        let settings = SampleSettings {
            scheduler: SchedulerKind::Ddim,
            steps,
            guidance: 7.5,
            eta: 0.0,
        };
        let cond = Tensor::randn(0f32, 1., (4, 77, ctx_dim), device)?.to_dtype(main_dt)?;
        let uncond = Tensor::randn(0f32, 1., (4, 77, ctx_dim), device)?.to_dtype(main_dt)?;
        let ts = time(device, o, || {
            let latents = Tensor::randn(0f32, 1., (4, 4, lat, lat), device)?.to_dtype(main_dt)?;
            let mut rngs: Vec<_> = (0..4).map(|i| rng(i as u64)).collect();
            let z = sample(
                &unet,
                &schedule,
                &settings,
                &cond,
                &uncond,
                latents,
                &mut rngs,
                |_| {},
            )?;
            vae.decode(&(z / c.vae.scaling_factor)?)?;
            Ok(())
        })?;
        push(
            record(
                &name,
                "b_sample",
                &ts,
                Some((4, "images")),
                json!({"steps": steps}),
            ),
            &mut out,
        );
    }

    for b in [8usize, 32] {
        let name = format!("train_pure_{main_tag}_b{b}");
        if !want(&name) {
            continue;
        }
        let (unet, store) = build_unet(&c.unet, Mode::Trainable, main_dt, device)?;
        let mut opt = AdamW::new(store.named_vars(), AdamWConfig::default())?;
        let x = Tensor::randn(0f32, 1., (b, 4, lat, lat), device)?.to_dtype(main_dt)?;
        let target = Tensor::randn(0f32, 1., (b, 4, lat, lat), device)?.to_dtype(main_dt)?;
        let ctx = Tensor::randn(0f32, 1., (b, 77, ctx_dim), device)?.to_dtype(main_dt)?;
        let t = Tensor::full(500f32, b, device)?;
        let ts = time(device, o, || {
            let pred = unet.forward(&x, &t, &ctx)?;
            let loss = (pred - &target)?.sqr()?.to_dtype(DType::F32)?.mean_all()?;
            let grads = loss.backward()?;
            opt.step(&grads, 1e-5, 1.0)?;
            Ok(())
        })?;
        push(
            record(
                &name,
                "c_train",
                &ts,
                Some((b, "images")),
                json!({"dtype": main_tag, "batch": b}),
            ),
            &mut out,
        );
    }

    let img = c.vae.sample_size;
    let vae = build_vae(&c.vae, main_dt, device)?;
    let name = format!("vae_encode_{main_tag}_b8_{img}px");
    if want(&name) {
        let x = Tensor::randn(0f32, 1., (8, 3, img, img), device)?.to_dtype(main_dt)?;
        let ts = time(device, o, || {
            vae.encode(&x)?;
            Ok(())
        })?;
        push(
            record(&name, "d_vae", &ts, Some((8, "images")), json!({})),
            &mut out,
        );
    }
    let name = format!("vae_decode_{main_tag}_b4_{img}px");
    if want(&name) {
        let f = c.vae.scale_factor();
        let z = Tensor::randn(0f32, 1., (4, 4, img / f, img / f), device)?.to_dtype(main_dt)?;
        let ts = time(device, o, || {
            vae.decode(&z)?;
            Ok(())
        })?;
        push(
            record(&name, "d_vae", &ts, Some((4, "images")), json!({})),
            &mut out,
        );
    }

    let clip = build_clip(&c.clip, main_dt, device)?;
    let name = format!("clip_vision_{main_tag}_b64");
    if want(&name) {
        let s = c.clip.vision_config.image_size;
        let px = Tensor::randn(0f32, 1., (64, 3, s, s), device)?.to_dtype(main_dt)?;
        let ts = time(device, o, || {
            clip.image_features(&px)?;
            Ok(())
        })?;
        push(
            record(&name, "e_clip", &ts, Some((64, "images")), json!({})),
            &mut out,
        );
    }
    let name = format!("clip_text_{main_tag}_b256");
    if want(&name) {
        let vocab = c.clip.text_config.vocab_size as u32;
        let ids: Vec<u32> = (0..256 * 77)
            .map(|i| (i as u32 * 7919) % (vocab - 2))
            .collect();
        let ids = Tensor::from_vec(ids, (256, 77), device)?;
        let ts = time(device, o, || {
            clip.text_features(&ids)?;
            Ok(())
        })?;
        push(
            record(&name, "e_clip", &ts, Some((256, "prompts")), json!({})),
            &mut out,
        );
    }
    Ok(out)
}

fn build_unet(
    c: &UNetConfig,
    mode: Mode,
    dt: DType,
    device: &Device,
) -> Result<(UNet2DConditionModel, ParamStore)> {
    let store = ParamStore::random(0, "bench unet", mode, dt, device);
    let unet = UNet2DConditionModel::new(store.var_builder(), c).context("building the UNet")?;
    Ok((unet, store))
}

fn build_vae(c: &VaeConfig, dt: DType, device: &Device) -> Result<AutoencoderKL> {
    let store = ParamStore::random(1, "bench vae", Mode::Frozen, dt, device);
    AutoencoderKL::new(store.var_builder(), c)
}

fn build_clip(c: &ClipConfig, dt: DType, device: &Device) -> Result<ClipModel> {
    let store = ParamStore::random(2, "bench clip", Mode::Frozen, dt, device);
    ClipModel::new(store.var_builder(), c)
}

/// The summary table printed after the JSON lines.
pub fn table(records: &[Value], device: &Device) -> String {
    let mut s = format!(
        "{:<34} {:>12} {:>12} {:>14}   ({})\n",
        "measurement",
        "median ms",
        "min ms",
        "throughput/s",
        if device.is_cpu() {
            "cpu, tiny models"
        } else {
            "gpu, full size"
        }
    );
    for r in records {
        let per = r
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.ends_with("_per_s")))
            .map_or("-".to_string(), |(k, v)| {
                format!("{v} {}", k.trim_end_matches("_per_s"))
            });
        s.push_str(&format!(
            "{:<34} {:>12.3} {:>12.3} {:>14}\n",
            r["name"].as_str().unwrap_or("?"),
            r["median_ms"].as_f64().unwrap_or(f64::NAN),
            r["min_ms"].as_f64().unwrap_or(f64::NAN),
            per
        ));
    }
    s.push_str(&format!(
        "compute dtype tags as in bench.py; {} here\n",
        dtype_name(dtypes(device)[0].1)
    ));
    s
}
