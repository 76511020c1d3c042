//! Look at a world VAE's latents: the posterior's mean and std over rendered images, and what
//! decoding the mean vs a posterior sample gives (PNG grid for the eye).
//! `cargo run --release --example latentprobe -- MODEL_SD_DIR DATA_DIR OUT.png`
use candle_core::{DType, Device, Tensor, D};
use rlhf_t2i::pipeline::load_vae;
use rlhf_t2i::weights::{Mode, ModelSource};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let d = Device::Cpu;
    let (vae, _) = load_vae(&ModelSource::parse(&a[1])?, Mode::Frozen, DType::F32, &d)?;
    let set: Vec<rlhf_t2i::world::dataset::CaptionedImage> =
        rlhf_t2i::io::jsonl::read_jsonl(&std::path::Path::new(&a[2]).join("scenes.jsonl"))?;
    let set = &set[..8];
    let x = rlhf_t2i::world::dataset::load_images(std::path::Path::new(&a[2]), set, &d)?;
    let dist = vae.encode(&x)?;
    let sf = vae.config.scaling_factor;
    let m = (&dist.mean * sf)?;
    let s = (&dist.std * sf)?;
    println!(
        "scaled mean: mean {:.3} std {:.3} | posterior std (scaled): mean {:.4} max {:.4}",
        m.mean_all()?.to_scalar::<f32>()?,
        m.flatten_all()?
            .var(D::Minus1)?
            .sqrt()?
            .to_scalar::<f32>()?,
        s.mean_all()?.to_scalar::<f32>()?,
        s.flatten_all()?.max(D::Minus1)?.to_scalar::<f32>()?
    );
    // Spatial roughness: mean |z[i,j] - z[i,j+1]| of the scaled mean vs the image's.
    let dz = (m.narrow(3, 1, 15)? - m.narrow(3, 0, 15)?)?
        .abs()?
        .mean_all()?
        .to_scalar::<f32>()?;
    let dx = (x.narrow(3, 1, 31)? - x.narrow(3, 0, 31)?)?
        .abs()?
        .mean_all()?
        .to_scalar::<f32>()?;
    println!("neighbour difference: latent {dz:.3}, image {dx:.3}");
    let eps = Tensor::randn(0f32, 1., m.dims(), &d)?;
    let rows = [
        x.clone(),
        vae.decode(&dist.mean)?,
        vae.decode(&(&dist.mean + (&dist.std * &eps)?)?)?,
        vae.decode(&(&dist.mean + (eps * (0.1 / sf))?)?)?,
    ];
    let grid = Tensor::cat(
        &rows
            .iter()
            .map(|r| Tensor::cat(&r.chunk(8, 0)?, 3))
            .collect::<candle_core::Result<Vec<_>>>()?,
        2,
    )?;
    let img = ((grid.squeeze(0)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?.to_dtype(DType::U8)?;
    let (c, h, w) = img.dims3()?;
    let data = img.permute((1, 2, 0))?.flatten_all()?.to_vec1::<u8>()?;
    image::RgbImage::from_raw(w as u32, h as u32, data)
        .unwrap()
        .save(&a[3])?;
    let _ = c;
    Ok(())
}
