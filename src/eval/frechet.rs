//! Feature statistics and the Fréchet distance between two Gaussians, as pytorch-fid's
//! `calculate_frechet_distance` defines it:
//!   d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)).
//! The trace of the matrix square root is computed as the sum of the square roots of the
//! eigenvalues of S1^(1/2) S2 S1^(1/2), a symmetric positive semi-definite matrix with the same
//! spectrum as S1 S2, so no non-symmetric square root (and no complex round-off) is needed.
//! When a set has fewer samples than dimensions (480 generated images against 2048 features),
//! S1 = A^T A with A the scaled, centred features, and the non-zero spectrum of S1 S2 is that of
//! the small matrix A S2 A^T: the distance then costs O(n d^2) instead of O(d^3).

use anyhow::{bail, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance (unbiased, rows are samples) of a feature matrix.
#[derive(Debug, Clone)]
pub struct Stats {
    pub mu: DVector<f64>,
    pub sigma: DMatrix<f64>,
    pub n: usize,
    /// The centred features divided by sqrt(n - 1) (so that sigma = A^T A), when known.
    pub centred: Option<DMatrix<f64>>,
}

impl Stats {
    pub fn from_features(rows: &[Vec<f32>]) -> Result<Self> {
        let n = rows.len();
        if n < 2 {
            bail!("FID needs at least 2 images per set, got {n}");
        }
        let d = rows[0].len();
        let x = DMatrix::from_fn(n, d, |i, j| rows[i][j] as f64);
        let mu = DVector::from_fn(d, |j, _| x.column(j).sum() / n as f64);
        let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mu[j]) / (n as f64 - 1.0).sqrt();
        let sigma = centred.transpose() * &centred;
        Ok(Self {
            mu,
            sigma,
            n,
            centred: Some(centred),
        })
    }
}

/// Symmetric square root by eigendecomposition, negative round-off eigenvalues clamped to 0.
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let e = SymmetricEigen::new(sym);
    let vals = e.eigenvalues.map(|v| v.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&vals) * e.eigenvectors.transpose()
}

/// Tr((S1 S2)^(1/2)) via the eigenvalues of S1^(1/2) S2 S1^(1/2).
pub fn trace_sqrt_product(s1: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    let r = sqrt_psd(s1);
    let m = &r * s2 * &r;
    let sym = (&m + m.transpose()) * 0.5;
    sym.symmetric_eigenvalues()
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum()
}

/// Tr((A^T A S2)^(1/2)) from the eigenvalues of the small symmetric matrix A S2 A^T.
fn trace_sqrt_low_rank(a: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    let m = a * s2 * a.transpose();
    let sym = (&m + m.transpose()) * 0.5;
    sym.symmetric_eigenvalues()
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum()
}

pub fn frechet_distance(a: &Stats, b: &Stats) -> Result<f64> {
    let d = a.mu.len();
    if d != b.mu.len() {
        bail!("feature dimensions differ: {} and {}", d, b.mu.len());
    }
    let diff = &a.mu - &b.mu;
    fn low_rank(s: &Stats, d: usize) -> Option<&DMatrix<f64>> {
        s.centred.as_ref().filter(|c| c.nrows() < d)
    }
    let tr = match (low_rank(a, d), low_rank(b, d)) {
        (Some(ca), Some(cb)) if cb.nrows() < ca.nrows() => trace_sqrt_low_rank(cb, &a.sigma),
        (Some(ca), _) => trace_sqrt_low_rank(ca, &b.sigma),
        (None, Some(cb)) => trace_sqrt_low_rank(cb, &a.sigma),
        (None, None) => trace_sqrt_product(&a.sigma, &b.sigma),
    };
    Ok(diff.dot(&diff) + a.sigma.trace() + b.sigma.trace() - 2.0 * tr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(n: usize, d: usize, shift: f32, seed: u64) -> Vec<Vec<f32>> {
        use rand::Rng;
        let mut r = crate::runtime::rng(seed);
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|j| r.random_range(-1.0f32..1.0) * (1.0 + j as f32 * 0.1) + shift)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn properties() {
        let a = Stats::from_features(&feats(300, 8, 0.0, 1)).unwrap();
        let b = Stats::from_features(&feats(300, 8, 0.5, 2)).unwrap();
        assert!(
            frechet_distance(&a, &a).unwrap().abs() < 1e-9,
            "a set against itself is 0"
        );
        let (ab, ba) = (
            frechet_distance(&a, &b).unwrap(),
            frechet_distance(&b, &a).unwrap(),
        );
        assert!((ab - ba).abs() < 1e-9 * ab.max(1.0), "symmetric");
        // The low-rank route (fewer samples than dimensions) agrees with the full one, up to the
        // square roots of round-off eigenvalues (about 1e-16) that the full route adds.
        let few = Stats::from_features(&feats(5, 8, 0.2, 3)).unwrap();
        let full = Stats {
            centred: None,
            ..few.clone()
        };
        let (x, y) = (
            frechet_distance(&few, &b).unwrap(),
            frechet_distance(&full, &b).unwrap(),
        );
        assert!((x - y).abs() < 1e-6 * y, "{x} vs {y}");
        let z = frechet_distance(&b, &few).unwrap();
        assert!((z - y).abs() < 1e-6 * y, "{z} vs {y}");
        // A pure shift of identical covariances adds exactly ||shift||^2.
        let mut c = a.clone();
        c.mu.add_scalar_mut(0.5);
        assert!((frechet_distance(&a, &c).unwrap() - 8.0 * 0.25).abs() < 1e-9);
    }
}
