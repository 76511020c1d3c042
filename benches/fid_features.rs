//! FID feature extraction throughput on the CPU: pytorch-fid's Inception-v3 (synthetic weights
//! of the real architecture) on 64x64 images resized to 299, batch 8, plus the Fréchet distance
//! at 2048 dimensions from 480 samples (the low-rank route) and from full-rank statistics.
//! Run: `cargo bench --bench fid_features`.

use candle_core::{DType, Device, Tensor};
use rlhf_t2i::eval::frechet::{frechet_distance, Stats};
use rlhf_t2i::models::inception::{fid_input, FidInception};
use rlhf_t2i::runtime::{randn, rng};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads(); // as the binary does
    let dev = Device::Cpu;
    let (model, _) = FidInception::synthetic(&dev)?;
    let images = Tensor::rand(0f32, 1f32, (8, 3, 64, 64), &dev)?;
    let x = fid_input(&images)?;
    model.forward(&x)?; // warm-up
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        model.forward(&fid_input(&images)?)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let ips = 8.0 / times[1];
    println!("{{\"name\":\"fid_inception_features_cpu_b8\",\"images_per_s\":{ips:.2}}}");
    let feats = |n: usize, seed: u64| -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(randn(&mut rng(seed), &[n, 2048], DType::F32, &dev)?.to_vec2()?)
    };
    let (a, b) = (
        Stats::from_features(&feats(480, 1)?)?,
        Stats::from_features(&feats(480, 2)?)?,
    );
    let t = Instant::now();
    frechet_distance(&a, &b)?;
    let low = t.elapsed().as_secs_f64();
    let full_a = Stats {
        centred: None,
        ..a.clone()
    };
    let full_b = Stats {
        centred: None,
        ..b.clone()
    };
    let t = Instant::now();
    frechet_distance(&full_a, &full_b)?;
    let full = t.elapsed().as_secs_f64();
    println!("{{\"name\":\"frechet_2048d_480_samples\",\"low_rank_s\":{low:.3},\"full_rank_s\":{full:.2},\"ratio\":{:.1}}}", full / low);
    println!(
        "\nInception features: {ips:.2} images/s on the CPU ({:.0} ms per image)",
        1000.0 / ips
    );
    println!("Frechet distance, 2048-d: {low:.3} s from 480-sample features, {full:.1} s from full statistics");
    Ok(())
}
