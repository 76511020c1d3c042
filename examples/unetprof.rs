//! Profile one training step of a UNet config on the CPU: `cargo run --release --example unetprof -- configs/world/unet.json
//! [BATCH]` (forward and forward + backward, default batch 32, random weights, the median of
//! five steps after one warm-up; see
//! docs/performance.md).
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::models::unet::{UNet2DConditionModel, UNetConfig};
use rlhf_t2i::weights::{Mode, ParamStore};
fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads();
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
    // One warm-up step (first touches, caches), then the median of `REPS` steps.
    const REPS: usize = 5;
    let mut fwd = Vec::new();
    let mut all = Vec::new();
    for rep in 0..=REPS {
        let s = std::time::Instant::now();
        let y = unet.forward(&x, &t, &ctx)?;
        let f = s.elapsed().as_secs_f64();
        y.sqr()?.mean_all()?.backward()?;
        if rep > 0 {
            fwd.push(f);
            all.push(s.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (f, all) = (median(&mut fwd), median(&mut all));
    println!(
        "batch {b}: fwd {:.0} ms, fwd+bwd {:.0} ms, {:.1} img/s (median of {REPS} steps)",
        f * 1e3,
        all * 1e3,
        b as f64 / all
    );
    Ok(())
}
