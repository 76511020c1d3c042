//! Shared helpers: fixture paths and tensor comparison.

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `RLHF_T2I_FIXTURES` overrides the folder, for a test binary run away from its source tree (the
/// GPU machine).
pub fn fixtures() -> PathBuf {
    match std::env::var_os("RLHF_T2I_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
}

/// The device the parity and gradient tests run on: `RLHF_T2I_TEST_DEVICE` (`cpu` by default;
/// `cuda` on a GPU machine with a CUDA build of the test binary).
pub fn dev() -> Device {
    let spec = std::env::var("RLHF_T2I_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    rlhf_t2i::runtime::select_device(&spec).unwrap()
}

/// The compute dtype of the parity tests: `RLHF_T2I_TEST_DTYPE` (`f32` by default).
pub fn dt() -> DType {
    let spec = std::env::var("RLHF_T2I_TEST_DTYPE").unwrap_or_else(|_| "f32".into());
    rlhf_t2i::runtime::parse_dtype(&spec).unwrap()
}

/// The parity bound for the test dtype: `f32_tol` in f32, 2e-2 in f16/bf16 (the bound).
pub fn tol(f32_tol: f64) -> f64 {
    if dt() == DType::F32 {
        f32_tol
    } else {
        2e-2
    }
}

/// A reference input on the test device, floats in the test dtype.
pub fn input(t: &Tensor) -> Tensor {
    let t = t.to_device(&dev()).unwrap();
    if t.dtype().is_float() {
        t.to_dtype(dt()).unwrap()
    } else {
        t
    }
}

pub fn reference(name: &str) -> HashMap<String, Tensor> {
    let path = fixtures()
        .join("reference")
        .join(format!("{name}.safetensors"));
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// max |a - b| / max |b|, the relative error the parity tests bound.
pub fn rel_err(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.dims(), expected.dims(), "shape mismatch");
    let a = actual
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let b = expected
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max).max(1e-12);
    diff / scale
}

pub fn assert_close(what: &str, actual: &Tensor, expected: &Tensor, tol: f64) {
    let e = rel_err(actual, expected);
    println!("parity {what}: relative error {e:.3e}");
    assert!(e < tol, "{what}: relative error {e:.3e} >= {tol:.0e}");
}

/// Token ids as u32 on the test device.
pub fn ids_u32(t: &Tensor) -> Tensor {
    t.to_dtype(DType::U32).unwrap().to_device(&dev()).unwrap()
}

/// Copy a folder (a model folder, say) with every file under it.
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walk(from) {
        let rel = e.strip_prefix(from).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&e, to.join(rel)).unwrap();
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
