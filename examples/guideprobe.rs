//! Full samples of the world model on the 80 world evaluation prompts, guided three ways, judged
//! by the oracle: `guideprobe GOOD_SD BAD_SD N_PER_PROMPT MODE[,MODE..]` where a MODE is
//! `cfg:G` (classifier-free guidance, the usual), `auto:W` (autoguidance, Karras et al. 2024:
//! the conditional output of a weaker model of the same kind, pushed towards the good model's,
//! `bad + W (good - bad)`) or `both:G:W` (the two added). DDPM 50 steps; `DDIM=1`, `STEPS=S`,
//! `HYBRID=T` (DDPM above timestep T, DDIM at and below); `EPS_SCALE=L` divides the predicted
//! noise by L at every step (epsilon scaling against exposure bias, Ning et al. 2024);
//! `TRACE=FILE.png` writes, for the first chunk's first 16 images, the clipped x0 prediction
//! every 5 steps and the final image, a row per image (4x enlarged); `TSHIFT=D` asks the model
//! about timestep (1 - D) t instead of t (a time-shifted sampler against exposure bias).
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::diffusion::ddim::{ddim_step, ddpm_step};
use rlhf_t2i::diffusion::sampler::per_sample_noise;
use rlhf_t2i::diffusion::schedule::timestep_tensor;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::runtime::{randn, rng};
use rlhf_t2i::weights::{Mode, ModelSource};
use rlhf_t2i::world::oracle::{judge, observe};
use std::collections::BTreeMap;

fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads();
    let a: Vec<String> = std::env::args().collect();
    let d = Device::Cpu;
    let load = |p: &str| {
        StableDiffusion::load(
            &ModelSource::parse(p).unwrap(),
            Mode::Frozen,
            DType::F32,
            &d,
        )
    };
    let (good, bad) = (load(&a[1])?, load(&a[2])?);
    let per: usize = a[3].parse()?;
    let steps: usize = std::env::var("STEPS").map_or(Ok(50), |s| s.parse())?;
    let ddim = std::env::var("DDIM").is_ok();
    // HYBRID=T: DDPM steps above timestep T, DDIM (eta 0) at and below it.
    let hybrid: Option<usize> = std::env::var("HYBRID")
        .ok()
        .map(|s| s.parse())
        .transpose()?;
    let trace = std::env::var("TRACE").ok();
    let tshift: f64 = std::env::var("TSHIFT").map_or(Ok(0.0), |s| s.parse())?;
    let eps_scale: f64 = std::env::var("EPS_SCALE").map_or(Ok(1.0), |s| s.parse())?;
    let prompts = rlhf_t2i::world::dataset::eval_prompts(0)?;
    let mut jobs = Vec::new();
    for p in &prompts {
        for i in 0..per {
            jobs.push((p.clone(), 7919 * i as u64 + jobs.len() as u64));
        }
    }
    let grid = good.schedule.inference_timesteps(steps)?;
    let stride = good.schedule.step_stride(steps);
    for mode in a[4].split(',') {
        let parts: Vec<&str> = mode.split(':').collect();
        let (g, w) = match parts[0] {
            "cfg" => (parts[1].parse::<f64>()?, 1.0),
            "auto" => (1.0, parts[1].parse::<f64>()?),
            "both" => (parts[1].parse::<f64>()?, parts[2].parse::<f64>()?),
            m => anyhow::bail!("unknown mode {m}"),
        };
        let t0 = std::time::Instant::now();
        let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (ci, chunk) in jobs.chunks(40).enumerate() {
            let tracing = trace.as_deref().filter(|_| ci == 0);
            let n = chunk.len();
            let texts: Vec<&str> = chunk.iter().map(|j| j.0.text.as_str()).collect();
            let empty = vec![""; n];
            let gc = good.encode_prompts(&texts)?;
            let gu = good.encode_prompts(&empty)?;
            let bc = bad.encode_prompts(&texts)?;
            let mut rngs: Vec<_> = chunk.iter().map(|j| rng(j.1)).collect();
            let shape = [good.latent_channels(), 16, 16];
            let init: Vec<Tensor> = rngs
                .iter_mut()
                .map(|r| randn(r, &shape, DType::F32, &d))
                .collect::<Result<_, _>>()?;
            let mut z = Tensor::stack(&init, 0)?;
            let mut frames: Vec<Vec<image::RgbImage>> = Vec::new();
            for (step, &t) in grid.iter().enumerate() {
                let tm = (t as f64 * (1.0 - tshift)).round() as u32;
                let ts = |k| timestep_tensor(&vec![tm; k], &d);
                let out = good.unet.forward(
                    &Tensor::cat(&[&z, &z], 0)?,
                    &ts(2 * n)?,
                    &Tensor::cat(&[&gu, &gc], 0)?,
                )?;
                let (u, c) = (out.narrow(0, 0, n)?, out.narrow(0, n, n)?);
                let mut v = (&u + ((&c - &u)? * g)?)?;
                if w != 1.0 {
                    let b = bad.unet.forward(&z, &ts(n)?, &bc)?;
                    v = (v + ((&c - &b)? * (w - 1.0))?)?;
                }
                let ab = good.schedule.alpha_bar(t as i64);
                if eps_scale != 1.0 && ab > 1e-4 {
                    // v = a eps - s x0 with x_t = a x0 + s eps: divide eps by L, keep x_t.
                    let (al, sg) = (ab.sqrt(), (1.0 - ab).sqrt());
                    let eps = (((&z * sg)? + (&v * al)?)? / eps_scale)?;
                    let x0 = ((&z - (&eps * sg)?)? / al)?;
                    v = ((eps * al)? - (x0 * sg)?)?;
                }
                if tracing.is_some() && step % 5 == 0 {
                    let (x0, _) = good.schedule.split_prediction(&v, &z, t)?;
                    frames.push(good.decode_to_images(&x0.clamp(-1f32, 1f32)?.narrow(
                        0,
                        0,
                        n.min(16),
                    )?)?);
                }
                let noise = per_sample_noise(&mut rngs, &shape, &z)?;
                z = if ddim || hybrid.is_some_and(|h| t <= h) {
                    ddim_step(&good.schedule, &v, t, stride, &z, 0.0, None)?
                } else {
                    ddpm_step(&good.schedule, &v, t, stride, &z, &noise)?
                };
            }
            let images = good.decode_to_images(&z)?;
            if let Some(path) = tracing {
                frames.push(images.iter().take(16).cloned().collect());
                write_trace(path, &frames)?;
            }
            for (im, (p, _)) in images.iter().zip(chunk) {
                let claim = rlhf_t2i::world::dataset::claim_of(p)?;
                let v = judge(&observe(im.as_raw(), 32, 32)?, &claim);
                for k in ["all".to_string(), format!("{:?}", p.category)] {
                    let e = by.entry(k).or_default();
                    e.0 += v.good as usize;
                    e.1 += 1;
                }
                for r in v.reasons {
                    *reasons
                        .entry(r.split(':').next().unwrap_or(&r).chars().take(30).collect())
                        .or_default() += 1;
                }
            }
        }
        let mut rs: Vec<_> = reasons.into_iter().collect();
        rs.sort_by_key(|x| std::cmp::Reverse(x.1));
        rs.truncate(4);
        let cells: Vec<String> = by
            .iter()
            .map(|(k, (g, n))| format!("{k} {g}/{n}"))
            .collect();
        println!(
            "{mode:<12} {} | {rs:?} ({:.0} s)",
            cells.join(", "),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Frames (one per traced step, each a list of images) as a sheet: a row per image, a column per
/// step, each pixel 4x4.
fn write_trace(path: &str, frames: &[Vec<image::RgbImage>]) -> anyhow::Result<()> {
    let (cols, rows) = (frames.len() as u32, frames[0].len() as u32);
    let s = 4 * 32 + 4;
    let mut sheet = image::RgbImage::from_pixel(cols * s, rows * s, image::Rgb([255, 0, 255]));
    for (c, frame) in frames.iter().enumerate() {
        for (r, im) in frame.iter().enumerate() {
            let big = image::imageops::resize(im, 128, 128, image::imageops::FilterType::Nearest);
            image::imageops::replace(
                &mut sheet,
                &big,
                (c as u32 * s) as i64,
                (r as u32 * s) as i64,
            );
        }
    }
    // Atomic (temp + rename), as every image the project writes.
    rlhf_t2i::io::png_meta::save_png_with_text(std::path::Path::new(path), &sheet, &[])
}
