//! Profile one training step of a UNet config on the CPU: `cargo run --release --example unetprof -- configs/world/unet.json
//! [BATCH]` (forward and forward + backward, default batch 32, random weights; see
//! docs/performance.md).
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::models::unet::{UNet2DConditionModel, UNetConfig};
use rlhf_t2i::weights::{Mode, ParamStore};
fn main() -> anyhow::Result<()> {
    let d = Device::Cpu;
    let args: Vec<String> = std::env::args().collect();
    let cfg_text = std::fs::read_to_string(&args[1])?;
    let cfg: UNetConfig = serde_json::from_str(&cfg_text)?;
    let store = ParamStore::random(0, "u", Mode::Trainable, DType::F32, &d);
    let unet = UNet2DConditionModel::new(store.var_builder(), &cfg)?;
    let n: usize = store
        .named_tensors()
        .iter()
        .map(|(_, t)| t.elem_count())
        .sum();
    println!("params {n}");
    let b: usize = args.get(2).map_or(Ok(32), |s| s.parse())?;
    let x = Tensor::randn(
        0f32,
        1.,
        (b, cfg.in_channels, cfg.sample_size, cfg.sample_size),
        &d,
    )?;
    let ctx = Tensor::randn(0f32, 1., (b, 77, cfg.cross_attention_dim), &d)?;
    let t = Tensor::full(500f32, b, &d)?;
    let s = std::time::Instant::now();
    let y = unet.forward(&x, &t, &ctx)?;
    let f = s.elapsed().as_secs_f64();
    y.sqr()?.mean_all()?.backward()?;
    let all = s.elapsed().as_secs_f64();
    println!(
        "batch {b}: fwd {:.0} ms, fwd+bwd {:.0} ms, {:.1} img/s",
        f * 1e3,
        all * 1e3,
        b as f64 / all
    );
    Ok(())
}
