//! Small statistics used by the evaluations: means with standard errors, and confidence
//! intervals that respect clustering (bootstrap over prompts).

use rand::Rng;

/// Mean and standard error of the mean.
pub fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

/// A proportion with a 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proportion {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    /// How many items (pairs, images) it is computed over.
    pub n: usize,
}

/// Ratio of sums over clusters (`(successes, trials)` per cluster, e.g. per prompt) with a 95%
/// percentile-bootstrap interval from `resamples` draws of whole clusters, seeded.
pub fn clustered_proportion(clusters: &[(f64, f64)], resamples: usize, seed: u64) -> Proportion {
    let total: f64 = clusters.iter().map(|c| c.1).sum();
    let n = total as usize;
    if clusters.is_empty() || total == 0.0 {
        return Proportion {
            value: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
            n: 0,
        };
    }
    let value = clusters.iter().map(|c| c.0).sum::<f64>() / total;
    let mut rng = crate::runtime::rng(seed);
    let mut stats: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let (mut s, mut t) = (0.0, 0.0);
            for _ in 0..clusters.len() {
                let c = clusters[rng.random_range(0..clusters.len())];
                s += c.0;
                t += c.1;
            }
            (t > 0.0).then_some(s / t)
        })
        .collect();
    stats.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| stats[((stats.len() - 1) as f64 * p).round() as usize];
    Proportion {
        value,
        lo: q(0.025),
        hi: q(0.975),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_interval() {
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert!(
            (m - 2.5).abs() < 1e-12 && (se - (1.6666666666666667f64 / 4.0).sqrt()).abs() < 1e-12
        );
        let clusters: Vec<(f64, f64)> = (0..100)
            .map(|i| (if i % 4 == 0 { 0.0 } else { 2.0 }, 2.0))
            .collect();
        let p = clustered_proportion(&clusters, 500, 0);
        assert!((p.value - 0.75).abs() < 1e-12);
        assert!(p.lo < 0.75 && p.hi > 0.75 && p.hi - p.lo < 0.25, "{p:?}");
        assert_eq!(p.n, 200);
    }
}
