//! Device and dtype selection, and the seeded random numbers every stage draws from.
//!
//! candle's own CPU generator cannot be seeded, so all noise and initialisation in this crate come
//! from ChaCha8 streams created here; they are drawn on the CPU and moved to the device, so a seed
//! gives the same numbers on every device.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Fixes the CPU thread count for the process: candle asks for it before every parallel CPU
/// kernel, and without `RAYON_NUM_THREADS` each ask reads `/proc/cpuinfo` (9,254 reads in one
/// training step of the world UNet, about 11% of its time on a 2-core machine). Call first
/// thing in `main`; a value the user set is kept.
pub fn fix_cpu_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        // At the start of `main`, before any other thread exists to read the environment.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// `auto` (CUDA when built with it and present, else CPU), `cpu`, `cuda` or `cuda:N`.
pub fn select_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            if candle_core::utils::cuda_is_available() {
                Device::new_cuda(0).context("CUDA is compiled in but device 0 could not be opened")
            } else {
                Ok(Device::Cpu)
            }
        }
        s if s == "cuda" || s.starts_with("cuda:") => {
            if !candle_core::utils::cuda_is_available() {
                bail!(
                    "device `{s}` was asked for, but this binary was built without CUDA: \
                     rebuild with `cargo build --release --features cuda` (see README, GPU section)"
                );
            }
            let ordinal: usize = match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .with_context(|| format!("bad CUDA ordinal in `{s}`"))?,
                None => 0,
            };
            Device::new_cuda(ordinal)
                .with_context(|| format!("could not open CUDA device {ordinal}"))
        }
        other => bail!("unknown device `{other}`: use auto, cpu, cuda or cuda:N"),
    }
}

/// `f32`, `f16`/`fp16` or `bf16`.
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "fp32" | "float32" => Ok(DType::F32),
        "f16" | "fp16" | "float16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        other => bail!("unknown dtype `{other}`: use f32, f16 or bf16"),
    }
}

/// candle's CPU matmul has no bf16 kernel: refuse that pairing up front with the fix.
pub fn check_dtype_on_device(dtype: DType, device: &Device) -> Result<()> {
    if dtype == DType::BF16 && device.is_cpu() {
        bail!("bf16 compute is not supported on the CPU (candle has no CPU bf16 matmul): use --dtype f32 or f16 there, bf16 on CUDA");
    }
    Ok(())
}

pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F64 => "f64",
        _ => "other",
    }
}

/// The crate's one seeded generator type.
pub type Rng64 = ChaCha8Rng;

pub fn rng(seed: u64) -> Rng64 {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A seed for one named stream of a run (e.g. the noise of micro-step 412), derived from the run
/// seed by SplitMix64 mixing: streams are independent of each other and of the order in which
/// they are drawn, so a resumed run draws exactly what an uninterrupted one would.
pub fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut z = seed;
    for &p in parts {
        z = z
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(p.wrapping_mul(0xd1b5_4a32_d192_ed03));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
    }
    z
}

/// Standard-normal tensor drawn from `rng` on the CPU (f32), then moved to `device` in `dtype`.
pub fn randn(rng: &mut Rng64, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?)
}

/// Uniform integers in `[0, hi)` as a u32 tensor, e.g. training timesteps.
pub fn rand_index(rng: &mut Rng64, n: usize, hi: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<u32> = (0..n).map(|_| rng.random_range(0..hi as u32)).collect();
    Ok(Tensor::from_vec(data, n, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise() {
        let a = randn(&mut rng(7), &[2, 3], DType::F32, &Device::Cpu).unwrap();
        let b = randn(&mut rng(7), &[2, 3], DType::F32, &Device::Cpu).unwrap();
        let c = randn(&mut rng(8), &[2, 3], DType::F32, &Device::Cpu).unwrap();
        let (a, b, c) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            c.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn dtype_names_parse() {
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("FP16").unwrap(), DType::F16);
        assert!(parse_dtype("int8").is_err());
        assert!(select_device("tpu").is_err());
    }
}
