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
use measure::{record, time, Runner};
use serde_json::{json, Value};
use std::time::Instant;

mod measure;

/// Which models and how many repeats.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Full-size SD1.5 / CLIP ViT-L/14 (else the tiny models).
    pub full_size: bool,
    pub warmup: usize,
    pub repeats: usize,
    /// Only measurements whose name contains this.
    pub filter: Option<String>,
    /// Measurements that would start after this many seconds are reported as skipped.
    pub budget_s: Option<f64>,
}

impl BenchOptions {
    pub fn for_device(device: &Device) -> BenchOptions {
        let gpu = !device.is_cpu();
        BenchOptions {
            full_size: gpu,
            warmup: if gpu { 2 } else { 1 },
            repeats: if gpu { 5 } else { 3 },
            filter: None,
            budget_s: None,
        }
    }

    /// Sampling and training steps take seconds each at full size: fewer repeats (as bench.py).
    fn heavy(&self) -> BenchOptions {
        BenchOptions {
            warmup: self.warmup.min(1),
            repeats: self.repeats.min(3),
            ..self.clone()
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
            include_str!("../../configs/sd15/unet.json"),
            include_str!("../../configs/sd15/vae.json"),
            include_str!("../../configs/sd15/clip.json"),
        )
    } else {
        (
            include_str!("../../configs/tiny/unet.json"),
            include_str!("../../configs/tiny/vae.json"),
            include_str!("../../configs/tiny/clip.json"),
        )
    };
    Ok(Configs {
        unet: serde_json::from_str(u)?,
        vae: serde_json::from_str(v)?,
        clip: serde_json::from_str(c)?,
    })
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

/// Run every measurement; `emit` receives each record as it is made. A measurement that fails is
/// reported as an `error` record rather than ending the run.
pub fn run(device: &Device, o: &BenchOptions, mut emit: impl FnMut(&Value)) -> Result<Vec<Value>> {
    let c = configs(o.full_size)?;
    let mut r = Runner {
        o,
        started: Instant::now(),
        out: Vec::new(),
        emit: &mut emit,
    };
    let lat = c.unet.sample_size;
    let ctx_dim = c.unet.cross_attention_dim;
    let half = dtypes(device);
    // The dtype bench.py uses for each workload (f32 everywhere on the CPU).
    let pick = |tag: &'static str| -> (&'static str, DType) {
        *half.iter().find(|(t, _)| *t == tag).unwrap_or(&half[0])
    };
    let (main_tag, main_dt) = pick("fp16");
    let (train_tag, train_dt) = pick("bf16");
    let heavy = o.heavy();

    // Two full-size UNets in all (random initialisation of 860M weights takes seconds): a frozen
    // one in the sampling dtype and a trainable one in the training dtype, each also timed for
    // its forward. On the CPU both dtypes are f32 and the trainable one serves everything.
    let fwd_names = |tag: &str| -> Vec<String> {
        [2, 8]
            .iter()
            .map(|b| format!("unet_fwd_{tag}_b{b}"))
            .collect()
    };
    let sample_name = format!("sample_ddim50_cfg_{main_tag}_p4");
    let train_names: Vec<String> = [8, 32]
        .iter()
        .map(|b| format!("train_pure_{train_tag}_b{b}"))
        .collect();
    let separate = main_dt != train_dt;
    let frozen = if separate {
        let mut names = fwd_names(main_tag);
        names.push(sample_name.clone());
        r.build(&names, || {
            build_unet(&c.unet, Mode::Frozen, main_dt, device)
        })
    } else {
        None
    };
    let mut names = fwd_names(train_tag);
    names.extend(train_names.iter().cloned());
    if !separate {
        names.push(sample_name.clone());
    }
    let trainable = r.build(&names, || {
        build_unet(&c.unet, Mode::Trainable, train_dt, device)
    });

    for &(tag, dt) in &half {
        let unet = if dt == train_dt { &trainable } else { &frozen };
        let Some((unet, _)) = unet else { continue };
        for (b, name) in [2usize, 8].into_iter().zip(&fwd_names(tag)) {
            r.measure(name, "a_unet_fwd", || {
                let x = Tensor::randn(0f32, 1., (b, 4, lat, lat), device)?.to_dtype(dt)?;
                let ctx = Tensor::randn(0f32, 1., (b, 77, ctx_dim), device)?.to_dtype(dt)?;
                let t = Tensor::full(500f32, b, device)?;
                let ts = time(device, o, || {
                    unet.forward(&x, &t, &ctx)?;
                    Ok(())
                })?;
                Ok(record(
                    name,
                    "a_unet_fwd",
                    &ts,
                    Some((b, "samples")),
                    json!({"dtype": tag, "batch": b}),
                ))
            });
        }
    }

    // One training step (forward, backward, AdamW) at batch `b`, on the trainable UNet.
    let measure_train = |r: &mut Runner, b: usize, name: &str| {
        let Some((unet, store)) = &trainable else {
            return;
        };
        r.measure(name, "c_train", || {
            let mut opt = AdamW::new(store.named_vars(), AdamWConfig::default())?;
            let x = Tensor::randn(0f32, 1., (b, 4, lat, lat), device)?.to_dtype(train_dt)?;
            let target = Tensor::randn(0f32, 1., (b, 4, lat, lat), device)?.to_dtype(train_dt)?;
            let ctx = Tensor::randn(0f32, 1., (b, 77, ctx_dim), device)?.to_dtype(train_dt)?;
            let t = Tensor::full(500f32, b, device)?;
            let ts = time(device, &heavy, || {
                let pred = unet.forward(&x, &t, &ctx)?;
                let loss = (pred - &target)?.sqr()?.to_dtype(DType::F32)?.mean_all()?;
                let grads = loss.backward()?;
                opt.step(&grads, 1e-5, 1.0)?;
                Ok(())
            })?;
            Ok(record(
                name,
                "c_train",
                &ts,
                Some((b, "images")),
                json!({"dtype": train_tag, "batch": b}),
            ))
        });
    };
    // Priority order, as a budget cuts the tail: forwards, the batch-8 training step, VAE and CLIP,
    // then the (long) 50-step sample and the batch-32 training step.
    measure_train(&mut r, 8, &train_names[0]);
    // As bench.py: encode in bf16, decode in fp16, each with its own copy of the VAE.
    let img = c.vae.sample_size;
    let (enc_tag, enc_dt) = pick("bf16");
    let name = format!("vae_encode_{enc_tag}_b8_{img}px");
    if let Some(vae) = r.build(std::slice::from_ref(&name), || {
        build_vae(&c.vae, enc_dt, device)
    }) {
        r.measure(&name, "d_vae", || {
            let x = Tensor::randn(0f32, 1., (8, 3, img, img), device)?.to_dtype(enc_dt)?;
            let ts = time(device, o, || {
                vae.encode(&x)?;
                Ok(())
            })?;
            Ok(record(&name, "d_vae", &ts, Some((8, "images")), json!({})))
        });
    }
    let name = format!("vae_decode_{main_tag}_b4_{img}px");
    if let Some(vae) = r.build(std::slice::from_ref(&name), || {
        build_vae(&c.vae, main_dt, device)
    }) {
        r.measure(&name, "d_vae", || {
            let f = c.vae.scale_factor();
            let z = Tensor::randn(0f32, 1., (4, 4, img / f, img / f), device)?.to_dtype(main_dt)?;
            let ts = time(device, o, || {
                vae.decode(&z)?;
                Ok(())
            })?;
            Ok(record(&name, "d_vae", &ts, Some((4, "images")), json!({})))
        });
    }

    let names = [
        format!("clip_vision_{main_tag}_b64"),
        format!("clip_text_{main_tag}_b256"),
    ];
    if let Some(clip) = r.build(&names, || build_clip(&c.clip, main_dt, device)) {
        r.measure(&names[0], "e_clip", || {
            let s = c.clip.vision_config.image_size;
            let px = Tensor::randn(0f32, 1., (64, 3, s, s), device)?.to_dtype(main_dt)?;
            let ts = time(device, o, || {
                clip.image_features(&px)?;
                Ok(())
            })?;
            Ok(record(
                &names[0],
                "e_clip",
                &ts,
                Some((64, "images")),
                json!({}),
            ))
        });
        r.measure(&names[1], "e_clip", || {
            let vocab = c.clip.text_config.vocab_size as u32;
            let ids: Vec<u32> = (0..256 * 77)
                .map(|i| (i as u32 * 7919) % (vocab - 2))
                .collect();
            let ids = Tensor::from_vec(ids, (256, 77), device)?;
            let ts = time(device, o, || {
                clip.text_features(&ids)?;
                Ok(())
            })?;
            Ok(record(
                &names[1],
                "e_clip",
                &ts,
                Some((256, "prompts")),
                json!({}),
            ))
        });
    }
    let steps = 50;
    let sampler = if separate { &frozen } else { &trainable };
    if let Some((unet, _)) = sampler {
        r.measure(&sample_name, "b_sample", || {
            let vae = build_vae(&c.vae, main_dt, device)?;
            let schedule = NoiseSchedule::new(&serde_json::from_str::<SchedulerConfig>(
                include_str!("../../configs/tiny/scheduler.json"),
            )?)?;
            let settings = SampleSettings {
                scheduler: SchedulerKind::Ddim,
                steps,
                guidance: 7.5,
                eta: 0.0,
            };
            let cond = Tensor::randn(0f32, 1., (4, 77, ctx_dim), device)?.to_dtype(main_dt)?;
            let uncond = Tensor::randn(0f32, 1., (4, 77, ctx_dim), device)?.to_dtype(main_dt)?;
            // The forwards above compiled and loaded every kernel of this dtype: no warm-up.
            let sample_opts = BenchOptions {
                warmup: 0,
                ..heavy.clone()
            };
            let ts = time(device, &sample_opts, || {
                let latents =
                    Tensor::randn(0f32, 1., (4, 4, lat, lat), device)?.to_dtype(main_dt)?;
                let mut rngs: Vec<_> = (0..4).map(|i| rng(i as u64)).collect();
                let z = sample(
                    unet,
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
            Ok(record(
                &sample_name,
                "b_sample",
                &ts,
                Some((4, "images")),
                json!({"steps": steps}),
            ))
        });
    }
    measure_train(&mut r, 32, &train_names[1]);
    drop(frozen);
    drop(trainable);
    Ok(r.out)
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
        let name = r["name"].as_str().unwrap_or("?");
        if let Some(why) = r["error"].as_str().or(r["skipped"].as_str()) {
            let what = if r["error"].is_string() {
                "error"
            } else {
                "skipped"
            };
            let short: String = why.chars().take(70).collect();
            s.push_str(&format!("{name:<34} {what}: {short}\n"));
            continue;
        }
        s.push_str(&format!(
            "{:<34} {:>12.3} {:>12.3} {:>14}\n",
            name,
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
