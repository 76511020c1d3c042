//! Reward-model training throughput at the paper's scale: 23,000 labeled images with 768-d image
//! and 768-d text embeddings, 10 epochs, the paper's MLP (1024, 1024), with the prompt-
//! classification loss (8 perturbed prompts per good image) and, side by side, without it.
//! Run: `cargo bench --bench reward_train`.

use candle_core::{DType, Device};
use rlhf_t2i::prompts::{Category, Split};
use rlhf_t2i::reward::train::{train, Example, RewardData, RewardTrainOptions};
use rlhf_t2i::runtime::{randn, rng};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads(); // as the binary does
    let (n_img, n_prompts, dim) = (23_000usize, 2_774usize, 768usize);
    let dev = Device::Cpu;
    let mut r = rng(0);
    let images = randn(&mut r, &[n_img, dim], DType::F32, &dev)?;
    // Each prompt has up to 8 perturbations: 9 text rows per prompt.
    let texts = randn(&mut r, &[n_prompts * 9, dim], DType::F32, &dev)?;
    let examples: Vec<Example> = (0..n_img)
        .map(|i| {
            let p = i % n_prompts;
            Example {
                image: i as u32,
                text: (p * 9) as u32,
                target: (i % 2) as f32,
                negatives: (1..9).map(|k| (p * 9 + k) as u32).collect(),
                prompt_id: format!("p{p}"),
                split: Split::Seen,
                category: Category::Count,
            }
        })
        .collect();
    let data = RewardData {
        images,
        texts,
        examples,
    };
    let mut rows = Vec::new();
    for (name, lambda) in [("with L_pc (paper)", 0.5), ("MSE only", 0.0)] {
        let opts = RewardTrainOptions {
            lambda,
            epochs: 10,
            patience: 10,
            val_fraction: 0.0,
            ..Default::default()
        };
        let t = Instant::now();
        let (_, _, report) = train(&data, &opts, |_| {})?;
        let secs = t.elapsed().as_secs_f64();
        let ips = (report.train_examples * report.epochs.len()) as f64 / secs;
        println!("{{\"name\":\"reward_train_23k_10ep\",\"variant\":\"{name}\",\"seconds\":{secs:.2},\"images_per_s\":{ips:.0}}}");
        rows.push((name, secs, ips));
    }
    println!("\n{:<20} {:>10} {:>12}", "variant", "seconds", "images/s");
    for (name, s, ips) in &rows {
        println!("{name:<20} {s:>10.2} {ips:>12.0}");
    }
    println!("ratio (with L_pc / MSE only): {:.2}", rows[0].1 / rows[1].1);
    Ok(())
}
