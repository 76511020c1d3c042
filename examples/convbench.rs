//! Times the CPU convolution paths of `src/models/fast_grad.rs` on the world UNet's shapes, in
//! one process: candle's `conv2d` against the im2col one, and the weight gradient both ways.
//! `cargo run --release --example convbench` (see docs/performance.md).
use candle_core::{Device, Tensor};
use rlhf_t2i::models::fast_grad::{im2col_conv2d, weight_grad};
use std::time::Instant;

/// The median time of seven calls of `f` after one warm-up (the result is dropped).
fn median_ms(mut f: impl FnMut() -> candle_core::Result<Tensor>) -> anyhow::Result<f64> {
    f()?;
    let mut t = Vec::new();
    for _ in 0..7 {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[3])
}

fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads();
    let d = Device::Cpu;
    println!("shape (B, Cin -> Cout, HxW, stride): candle fwd / im2col fwd, candle dW / im2col dW (ms, median of 7)");
    for (b, ci, co, hw, s) in [
        (32, 32, 32, 16, 1),
        (32, 96, 32, 16, 1),
        (32, 64, 64, 16, 1),
        (32, 128, 64, 16, 1),
        (32, 64, 64, 16, 2),
        (32, 64, 64, 8, 1),
        (32, 64, 64, 4, 1),
    ] {
        let x = Tensor::randn(0f32, 1., (b, ci, hw, hw), &d)?;
        let w = Tensor::randn(0f32, 1., (co, ci, 3, 3), &d)?;
        let g = Tensor::randn(0f32, 1., (b, co, hw / s, hw / s), &d)?;
        let cf = median_ms(|| x.conv2d(&w, 1, s, 1, 1))?;
        let of = median_ms(|| im2col_conv2d(&x, &w, 1, s))?;
        let cw = median_ms(|| {
            x.transpose(0, 1)?
                .conv2d(&g.transpose(0, 1)?, 1, 1, s, 1)?
                .transpose(0, 1)?
                .narrow(2, 0, 3)?
                .narrow(3, 0, 3)?
                .contiguous()
        })?;
        let ow = median_ms(|| weight_grad(&x, &g, (co, ci, 3, 3), 1, s))?;
        println!("({b}, {ci} -> {co}, {hw}x{hw}, {s}): {cf:.2} / {of:.2}, {cw:.2} / {ow:.2}");
    }
    Ok(())
}
