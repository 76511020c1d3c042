//! Does a world UNet use its prompt? Denoising loss (against the schedule's target: epsilon or v)
//! on rendered images with their true caption,
//! with the empty caption, and with another image's caption, at several noise levels. If the
//! three are equal the text is ignored. The last column is the root mean square of the difference
//! between the outputs with the true and the empty caption: the size of classifier-free
//! guidance's direction.
//! `cargo run --release --example condprobe -- MODEL_SD_DIR [N_IMAGES]`
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::runtime::{randn, rng};
use rlhf_t2i::weights::{Mode, ModelSource};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a.get(2).map_or(Ok(64), |s| s.parse())?;
    let d = Device::Cpu;
    let sd = StableDiffusion::load(&ModelSource::parse(&a[1])?, Mode::Frozen, DType::F32, &d)?;
    let dir = std::env::temp_dir().join(format!("condprobe-{}", std::process::id()));
    let set = rlhf_t2i::world::dataset::write_pretraining_set(&dir, n, 12345)?;
    let x = rlhf_t2i::world::dataset::load_images(&dir, &set, &d)?;
    let z0 = sd.image_space.encode_mean(&x)?;
    let caps: Vec<&str> = set.iter().map(|c| c.caption.as_str()).collect();
    let mut shifted = caps.clone();
    shifted.rotate_left(1);
    let empty = vec![""; n];
    let ctx = [
        ("true caption", sd.encode_prompts(&caps)?),
        ("empty caption", sd.encode_prompts(&empty)?),
        ("another image's caption", sd.encode_prompts(&shifted)?),
    ];
    let spread = |a: &Tensor, b: &Tensor| -> anyhow::Result<f32> {
        let diff = (a - b)?.abs()?.mean_all()?.to_scalar::<f32>()?;
        Ok(diff / a.abs()?.mean_all()?.to_scalar::<f32>()?)
    };
    println!(
        "text states: |true - another| / |true| = {:.3} over all 77 positions, {:.3} over the first 12",
        spread(&ctx[0].1, &ctx[2].1)?,
        spread(&ctx[0].1.narrow(1, 0, 12)?, &ctx[2].1.narrow(1, 0, 12)?)?
    );
    println!(
        "t      {:>14} {:>14} {:>24} {:>14}",
        ctx[0].0, ctx[1].0, ctx[2].0, "|cond - empty|"
    );
    for t in [50u32, 200, 400, 600, 800, 950] {
        let noise = randn(&mut rng(t as u64), z0.dims(), DType::F32, &d)?;
        let ts = vec![t; n];
        let xt = sd.schedule.add_noise(&z0, &noise, &ts)?;
        let tt = Tensor::new(ts.iter().map(|&v| v as f32).collect::<Vec<_>>(), &d)?;
        let target = sd.schedule.target(&z0, &noise, &ts)?;
        let mut row = format!("{t:<6}");
        let mut outs = Vec::new();
        for (_, c) in &ctx {
            let out = sd.unet.forward(&xt, &tt, c)?;
            let l = (&out - &target)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
            row.push_str(&format!(" {l:>14.5}"));
            outs.push(out);
        }
        // The guidance direction's size: RMS of (true caption - empty caption) outputs.
        let gap = (&outs[0] - &outs[1])?
            .sqr()?
            .mean_all()?
            .to_scalar::<f32>()?
            .sqrt();
        println!("{row} {gap:>14.5}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
