//! pytorch-fid parity: the FID Inception-v3 on integer-hash weights (regenerated here bit for
//! bit, so no 48 MB weight file is committed), its input resize, and the Fréchet distance
//! against `calculate_frechet_distance` (fixtures: `scripts/make_inception_fixtures.py`).

use super::common::*;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rlhf_t2i::eval::frechet::{frechet_distance, Stats};
use rlhf_t2i::models::inception::{fid_input, FidInception};
use std::sync::Mutex;

/// The fixture's weight recipe (tests/fixtures/inception/README.md, "integer hash").
fn hash_values(name: &str, shape: &[usize]) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        seed = (seed ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let numel: usize = shape.iter().product();
    let bit_length = |x: u64| 64 - x.leading_zeros() as u64;
    let (offset, e, shift) = if name.ends_with(".conv.weight") {
        (
            0.0,
            bit_length(150_000 * (shape[1] * shape[2] * shape[3]) as u64) / 2,
            0,
        )
    } else if name == "fc.weight" {
        (0.0, bit_length(150_000 * 2048) / 2, 0)
    } else if name.ends_with(".bn.weight") {
        (1.0, 13, 0)
    } else if name.ends_with(".bn.running_var") {
        (1.0, 14, 1024)
    } else {
        (0.0, 13, 0)
    };
    let scale = (2f64).powi(-(e as i32)) as f32;
    (0..numel as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let r = ((z >> 40) % 2049) as i64 - 1024 + shift;
            offset + r as f32 * scale
        })
        .collect()
}

struct HashWeights(Mutex<Vec<(String, Vec<f32>)>>);

impl candle_nn::var_builder::SimpleBackend for HashWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let v = hash_values(name, s.dims());
        self.0.lock().unwrap().push((name.to_string(), v.clone()));
        Tensor::from_vec(v, s, dev)?.to_dtype(dtype)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: no shape")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

#[test]
fn inception_features_match_pytorch_fid() {
    let r = candle_core::safetensors::load(
        fixtures().join("inception/reference_hashinit.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let backend = std::sync::Arc::new(HashWeights(Mutex::new(Vec::new())));
    struct Shared(std::sync::Arc<HashWeights>);
    impl candle_nn::var_builder::SimpleBackend for Shared {
        fn get(
            &self,
            s: Shape,
            name: &str,
            h: Init,
            dtype: DType,
            dev: &Device,
        ) -> candle_core::Result<Tensor> {
            self.0.get(s, name, h, dtype, dev)
        }
        fn get_unchecked(
            &self,
            name: &str,
            dtype: DType,
            dev: &Device,
        ) -> candle_core::Result<Tensor> {
            self.0.get_unchecked(name, dtype, dev)
        }
        fn contains_tensor(&self, name: &str) -> bool {
            self.0.contains_tensor(name)
        }
    }
    let vb = VarBuilder::from_backend(Box::new(Shared(backend.clone())), DType::F32, Device::Cpu);
    let model = FidInception::new(vb).unwrap();
    // The generator reproduces the fixture's weights exactly (every tensor's exact sum).
    let made = backend.0.lock().unwrap();
    assert!(made.len() > 400);
    for (name, v) in made.iter() {
        let expected = r[&format!("sum.{name}")].to_vec1::<f64>().unwrap()[0];
        let sum: f64 = v.iter().map(|x| *x as f64).sum();
        assert_eq!(sum, expected, "{name}");
    }
    let x = fid_input(&r["images"]).unwrap();
    assert_close("fid input resize", &x.get(0).unwrap(), &r["resized"], 1e-5);
    let feats = model.forward(&x).unwrap();
    assert_close("inception pool3", &feats, &r["pool3"], 1e-4);
}

#[test]
fn frechet_distance_matches_pytorch_fid() {
    let r = candle_core::safetensors::load(
        fixtures().join("inception/frechet.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let rows = |k: &str| -> Vec<Vec<f32>> {
        r[k].to_dtype(DType::F64)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap()
            .into_iter()
            .map(|row| row.into_iter().map(|v| v as f32).collect())
            .collect()
    };
    let stats = |k: &str, mu: &str, sigma: &str| {
        // Use the stored float64 statistics (features above are also checked to give them).
        let s = Stats::from_features(&rows(k)).unwrap();
        let m = r[mu].to_vec1::<f64>().unwrap();
        let sg = r[sigma].to_vec2::<f64>().unwrap();
        let d = m.len();
        let stored = Stats {
            mu: nalgebra::DVector::from_vec(m),
            sigma: nalgebra::DMatrix::from_fn(d, d, |i, j| sg[i][j]),
            n: s.n,
        };
        assert!(
            (&s.mu - &stored.mu).amax() < 1e-5 && (&s.sigma - &stored.sigma).amax() < 1e-4,
            "{k}: statistics"
        );
        stored
    };
    let (a, b) = (
        stats("feats_a", "mu_a", "sigma_a"),
        stats("feats_b", "mu_b", "sigma_b"),
    );
    let fid = frechet_distance(&a, &b).unwrap();
    let expected = r["fid"].to_vec1::<f64>().unwrap()[0];
    println!(
        "parity frechet: ours {fid:.12}, pytorch-fid {expected:.12}, relative {:.2e}",
        (fid - expected).abs() / expected
    );
    assert!((fid - expected).abs() / expected < 1e-6);
    let (c, d) = (
        stats("feats_c", "mu_c", "sigma_c"),
        stats("feats_d", "mu_d", "sigma_d"),
    );
    let fid = frechet_distance(&c, &d).unwrap();
    let expected = r["fid_singular"].to_vec1::<f64>().unwrap()[0];
    println!(
        "parity frechet (singular covariances): relative {:.2e}",
        (fid - expected).abs() / expected
    );
    assert!((fid - expected).abs() / expected < 1e-5);
    assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-8);
}
