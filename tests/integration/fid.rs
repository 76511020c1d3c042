//! pytorch-fid parity: the FID Inception-v3 on integer-hash weights (regenerated here bit for
//! bit, so no 48 MB weight file is committed), its input resize, and the Fréchet distance
//! against `calculate_frechet_distance` (fixtures: `scripts/make_inception_fixtures.py`).

use super::common::*;
use candle_core::{DType, Device};
use rlhf_t2i::eval::frechet::{frechet_distance, Stats};
use rlhf_t2i::models::inception::{fid_input, synthetic_weight, FidInception};

#[test]
fn inception_features_match_pytorch_fid() {
    let r = candle_core::safetensors::load(
        fixtures().join("inception/reference_hashinit.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let (model, made) = FidInception::synthetic(&Device::Cpu).unwrap();
    // The generator reproduces the fixture's weights exactly (every tensor's exact sum).
    let made = made.made.lock().unwrap();
    assert!(made.len() > 400);
    for (name, shape) in made.iter() {
        let expected = r[&format!("sum.{name}")].to_vec1::<f64>().unwrap()[0];
        let sum: f64 = synthetic_weight(name, shape)
            .iter()
            .map(|x| *x as f64)
            .sum();
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
            centred: None,
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

#[test]
fn pytorch_fid_npz_statistics_load_as_references() {
    let r = candle_core::safetensors::load(
        fixtures().join("inception/frechet.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let a = rlhf_t2i::eval::fid::load_stats(&fixtures().join("inception/stats_a.npz")).unwrap();
    let b = rlhf_t2i::eval::fid::load_stats(&fixtures().join("inception/stats_b_compressed.npz"))
        .unwrap();
    assert_eq!(
        a.mu.as_slice(),
        r["mu_a"].to_vec1::<f64>().unwrap().as_slice()
    );
    let sigma_b: Vec<f64> = r["sigma_b"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(
        b.sigma.transpose().as_slice(),
        sigma_b.as_slice(),
        "row-major sigma"
    );
    let fid = frechet_distance(&a, &b).unwrap();
    let expected = r["fid"].to_vec1::<f64>().unwrap()[0];
    assert!(
        (fid - expected).abs() / expected < 1e-6,
        "{fid} vs {expected}"
    );
}
