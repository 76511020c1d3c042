//! How far back from noise can the world model carry a true image? Renders are noised to
//! t_start and sampled back to t = 0 (DDPM 50-step grid, guidance G, their own captions), then
//! judged by the oracle against every attribute of the rendered scene.
//! `strengthprobe MODEL_SD_DIR [N] [GUIDANCE] [T,T,..] [GRID_PREFIX]` prints the share judged good
//! per t_start (default 0, 99, 199, ..., 999); with a prefix it writes a PNG grid (`world::label::GRID_COLUMNS` per row) and
//! the oracle's verdict on each image (JSONL) per t_start.
//! `STEPS=S` samples on the S-step grid instead of 50, `DDIM=1` with DDIM (eta 0) instead of
//! DDPM, and `PROBE_SEED=0` probes the first renders of the world's training set (seed 0)
//! instead of fresh ones (seed 4242).
use candle_core::{DType, Device};
use rlhf_t2i::diffusion::ddim::ddpm_step;
use rlhf_t2i::diffusion::schedule::timestep_tensor;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::runtime::{randn, rng};
use rlhf_t2i::weights::{Mode, ModelSource};
use rlhf_t2i::world::oracle::{judge, observe, Claim};
use rlhf_t2i::world::scene::{Background, Color, Shape};
use std::collections::BTreeMap;
fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads();
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a.get(2).map_or(Ok(64), |s| s.parse())?;
    let g: f64 = a.get(3).map_or(Ok(3.0), |s| s.parse())?;
    let d = Device::Cpu;
    let seed: u64 = std::env::var("PROBE_SEED").map_or(Ok(4242), |s| s.parse())?;
    let sd = StableDiffusion::load(&ModelSource::parse(&a[1])?, Mode::Frozen, DType::F32, &d)?;
    let dir = std::env::temp_dir().join(format!("strengthprobe-{}", std::process::id()));
    let set = rlhf_t2i::world::dataset::write_pretraining_set(&dir, n, seed)?;
    let x = rlhf_t2i::world::dataset::load_images(&dir, &set, &d)?;
    let z0 = sd.image_space.encode_mean(&x)?;
    let caps: Vec<&str> = set.iter().map(|c| c.caption.as_str()).collect();
    let empty = vec![""; n];
    let ctx =
        candle_core::Tensor::cat(&[sd.encode_prompts(&empty)?, sd.encode_prompts(&caps)?], 0)?;
    let claims: Vec<Claim> = set
        .iter()
        .map(|c| Claim {
            shape: Shape::from_name(&c.shape).unwrap(),
            count: Some(c.count),
            color: Color::from_name(&c.color),
            background: Background::from_name(&c.background),
        })
        .collect();
    let steps: usize = std::env::var("STEPS").map_or(Ok(50), |s| s.parse())?;
    let ddim = std::env::var("DDIM").is_ok();
    let grid = sd.schedule.inference_timesteps(steps)?;
    let stride = sd.schedule.step_stride(steps);
    let starts: Vec<usize> = match a.get(4) {
        Some(l) => l.split(',').map(|v| v.parse()).collect::<Result<_, _>>()?,
        None => vec![0, 99, 199, 299, 399, 499, 599, 699, 799, 899, 999],
    };
    for t_start in starts {
        let mut z = if t_start == 0 {
            z0.clone()
        } else {
            let noise = randn(&mut rng(t_start as u64), z0.dims(), DType::F32, &d)?;
            sd.schedule
                .add_noise(&z0, &noise, &vec![t_start as u32; n])?
        };
        let mut r = rng(1000 + t_start as u64);
        for &t in grid.iter().filter(|&&t| t <= t_start && t_start > 0) {
            let input = candle_core::Tensor::cat(&[&z, &z], 0)?;
            let out =
                sd.unet
                    .forward(&input, &timestep_tensor(&vec![t as u32; 2 * n], &d)?, &ctx)?;
            let (u, c) = (out.narrow(0, 0, n)?, out.narrow(0, n, n)?);
            let v = (&u + ((c - &u)? * g)?)?;
            let noise = randn(&mut r, z0.dims(), DType::F32, &d)?;
            z = if ddim {
                rlhf_t2i::diffusion::ddim::ddim_step(&sd.schedule, &v, t, stride, &z, 0.0, None)?
            } else {
                ddpm_step(&sd.schedule, &v, t, stride, &z, &noise)?
            };
        }
        let imgs = sd.decode_to_images(&z)?;
        let mut good = 0;
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut verdicts = String::new();
        for ((im, cl), c) in imgs.iter().zip(&claims).zip(&set) {
            let v = judge(&observe(im.as_raw(), 32, 32)?, cl);
            good += v.good as usize;
            verdicts += &serde_json::json!({"caption": c.caption, "scene": c, "good": v.good, "reasons": v.reasons})
                .to_string();
            verdicts.push('\n');
            for r in v.reasons {
                *reasons.entry(r.chars().take(30).collect()).or_default() += 1;
            }
        }
        let mut rs: Vec<_> = reasons.into_iter().collect();
        rs.sort_by_key(|x| std::cmp::Reverse(x.1));
        rs.truncate(3);
        println!("t_start {t_start:4}: good {good:3}/{n}  {rs:?}");
        if let Some(p) = a.get(5) {
            use rlhf_t2i::world::label::GRID_COLUMNS as COLS;
            let mut gi = image::RgbImage::new(32 * COLS as u32, 32 * n.div_ceil(COLS) as u32);
            for (i, im) in imgs.iter().enumerate() {
                image::imageops::replace(
                    &mut gi,
                    im,
                    32 * (i % COLS) as i64,
                    32 * (i / COLS) as i64,
                );
            }
            gi.save(format!("{p}-{t_start}.png"))?;
            std::fs::write(format!("{p}-{t_start}.jsonl"), &verdicts)?;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
