//! One UNet forward and one guided DDIM sampling step on the tiny model, ours against candle-
//! transformers' (inference-only) stable_diffusion UNet on the same weights, side by side.
//! Run: `cargo bench --bench tiny_unet`. Prints one JSON line per measurement and a table.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::stable_diffusion::unet_2d::{
    BlockConfig, UNet2DConditionModel as StockUNet, UNet2DConditionModelConfig,
};
use rlhf_t2i::diffusion::sampler::{sample, SampleSettings, SchedulerKind};
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::runtime::{randn, rng};
use rlhf_t2i::weights::{Mode, ModelSource};
use std::path::PathBuf;
use std::time::Instant;

fn median_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

fn report(name: &str, ours: f64, baseline: Option<f64>) {
    match baseline {
        Some(b) => println!("{{\"name\":\"{name}\",\"ours_ms\":{ours:.3},\"stock_candle_ms\":{b:.3},\"ratio\":{:.3}}}", ours / b),
        None => println!("{{\"name\":\"{name}\",\"ours_ms\":{ours:.3}}}"),
    }
}

fn main() -> anyhow::Result<()> {
    rlhf_t2i::runtime::fix_cpu_threads(); // as the binary does
    let dev = Device::Cpu;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-sd");
    let sd = StableDiffusion::load(
        &ModelSource::Local(dir.clone()),
        Mode::Frozen,
        DType::F32,
        &dev,
    )?;
    let cfg = &sd.unet.config;
    let stock_cfg = UNet2DConditionModelConfig {
        blocks: cfg
            .block_out_channels
            .iter()
            .zip(&cfg.down_block_types)
            .enumerate()
            .map(|(i, (&c, kind))| BlockConfig {
                out_channels: c,
                use_cross_attn: (kind == "CrossAttnDownBlock2D").then_some(1),
                attention_head_dim: cfg.heads(i),
            })
            .collect(),
        layers_per_block: cfg.layers_per_block,
        cross_attention_dim: cfg.cross_attention_dim,
        norm_num_groups: cfg.norm_num_groups,
        use_linear_projection: cfg.use_linear_projection,
        ..Default::default()
    };
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(
            &[dir.join("unet/diffusion_pytorch_model.safetensors")],
            DType::F32,
            &dev,
        )?
    };
    let stock = StockUNet::new(vb, cfg.in_channels, cfg.out_channels, false, stock_cfg)?;
    let mut r = rng(0);
    let hw = cfg.sample_size;
    let mut rows = Vec::new();
    for batch in [2usize, 32] {
        let x = randn(&mut r, &[batch, cfg.in_channels, hw, hw], DType::F32, &dev)?;
        let ctx = randn(
            &mut r,
            &[batch, 77, cfg.cross_attention_dim],
            DType::F32,
            &dev,
        )?;
        let t = Tensor::full(500f32, batch, &dev)?;
        let ours = median_ms(20, || {
            sd.unet.forward(&x, &t, &ctx).unwrap();
        });
        let base = median_ms(20, || {
            stock.forward(&x, 500.0, &ctx).unwrap();
        });
        let name = format!("tiny_unet_forward_f32_b{batch}");
        report(&name, ours, Some(base));
        rows.push((name, ours, Some(base)));
    }
    // One guided DDIM step for 16 images (the UNet sees a batch of 32).
    let b = 16;
    let cond = sd.encode_prompts(&vec!["Two red dogs in the forest."; b])?;
    let uncond = sd.encode_prompts(&vec![""; b])?;
    let latents = randn(&mut r, &[b, cfg.in_channels, hw, hw], DType::F32, &dev)?;
    let settings = SampleSettings {
        scheduler: SchedulerKind::Ddim,
        steps: 1,
        guidance: 7.5,
        eta: 0.0,
    };
    let mut rngs: Vec<_> = (0..b as u64).map(rng).collect();
    let ours = median_ms(10, || {
        sample(
            &sd.unet,
            &sd.schedule,
            &settings,
            &cond,
            &uncond,
            latents.clone(),
            &mut rngs,
            |_| {},
        )
        .unwrap();
    });
    report("tiny_ddim_cfg_step_b16", ours, None);
    rows.push(("tiny_ddim_cfg_step_b16".into(), ours, None));

    println!(
        "\n{:<28} {:>10} {:>14} {:>7}",
        "measurement", "ours ms", "stock candle", "ratio"
    );
    for (name, o, b) in rows {
        match b {
            Some(b) => println!("{name:<28} {o:>10.2} {b:>14.2} {:>7.2}", o / b),
            None => println!("{name:<28} {o:>10.2} {:>14} {:>7}", "-", "-"),
        }
    }
    Ok(())
}
