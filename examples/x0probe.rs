//! One-step denoising of rendered images: x0 predicted from x_t at several t, written as a PNG grid
//! (rows: t; columns: images) with the x0 error per t. `x0probe MODEL_SD_DIR OUT.png`
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::runtime::{randn, rng};
use rlhf_t2i::weights::{Mode, ModelSource};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let n = 8usize;
    let d = Device::Cpu;
    let sd = StableDiffusion::load(&ModelSource::parse(&a[1])?, Mode::Frozen, DType::F32, &d)?;
    let dir = std::env::temp_dir().join(format!("x0probe-{}", std::process::id()));
    let set = rlhf_t2i::world::dataset::write_pretraining_set(&dir, n, 777)?;
    let x = rlhf_t2i::world::dataset::load_images(&dir, &set, &d)?;
    let z0 = sd.image_space.encode_mean(&x)?;
    let caps: Vec<&str> = set.iter().map(|c| c.caption.as_str()).collect();
    let ctx = sd.encode_prompts(&caps)?;
    let mut rows = vec![rlhf_t2i::pipeline::tensor_to_images(&x)?];
    for t in [20u32, 100, 300, 500, 700, 900] {
        let noise = randn(&mut rng(t as u64), z0.dims(), DType::F32, &d)?;
        let ts = vec![t; n];
        let xt = sd.schedule.add_noise(&z0, &noise, &ts)?;
        let tt = Tensor::new(ts.iter().map(|&v| v as f32).collect::<Vec<_>>(), &d)?;
        let out = sd.unet.forward(&xt, &tt, &ctx)?;
        let (x0, eps) = sd.schedule.split_prediction(&out, &xt, t as usize)?;
        let x0 = x0.clamp(-1f32, 1f32)?;
        let el = (&eps - &noise)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
        let xl = (&x0 - &z0)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
        println!("t {t:4}: eps mse {el:.4}, x0 mse {xl:.5}");
        rows.push(sd.decode_to_images(&x0)?);
    }
    let mut grid = image::RgbImage::new(32 * n as u32, 32 * rows.len() as u32);
    for (r, row) in rows.iter().enumerate() {
        for (c, im) in row.iter().enumerate() {
            image::imageops::replace(&mut grid, im, 32 * c as i64, 32 * r as i64);
        }
    }
    grid.save(&a[2])?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
