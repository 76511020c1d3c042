//! Profile a VAE config on the CPU (encode, decode, backward at batch 32 of 32 px images):
//! `cargo run --release --example vaeprof -- configs/world/vae.json`.
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::models::vae::{AutoencoderKL, VaeConfig};
use rlhf_t2i::weights::{Mode, ParamStore};
fn main() -> anyhow::Result<()> {
    let d = Device::Cpu;
    let cfg: VaeConfig =
        serde_json::from_str(&std::fs::read_to_string(std::env::args().nth(1).unwrap())?)?;
    let store = ParamStore::random(0, "v", Mode::Trainable, DType::F32, &d);
    let vae = AutoencoderKL::new(store.var_builder(), &cfg)?;
    let x = Tensor::randn(0f32, 1., (32, 3, 32, 32), &d)?;
    for _ in 0..2 {
        let s = std::time::Instant::now();
        let z = vae.encode(&x)?.mean;
        let e = s.elapsed().as_secs_f64();
        let y = vae.decode(&z)?;
        let f = s.elapsed().as_secs_f64();
        y.sqr()?.mean_all()?.backward()?;
        println!(
            "enc {:.0} ms dec {:.0} ms bwd {:.0} ms",
            e * 1e3,
            (f - e) * 1e3,
            (s.elapsed().as_secs_f64() - f) * 1e3
        );
    }
    Ok(())
}
