//! Learning-rate schedules: linear warm-up, then constant or cosine decay to zero.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    Constant,
    Cosine,
}

/// Learning rate at optimiser step `step` (1-based) of `total`.
pub fn lr_at(base: f64, step: u64, warmup: u64, total: u64, decay: Decay) -> f64 {
    if warmup > 0 && step <= warmup {
        return base * step as f64 / warmup as f64;
    }
    match decay {
        Decay::Constant => base,
        Decay::Cosine => {
            let span = total.saturating_sub(warmup).max(1) as f64;
            let p = ((step - warmup.min(step)) as f64 / span).min(1.0);
            base * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        assert!((lr_at(1.0, 5, 10, 100, Decay::Constant) - 0.5).abs() < 1e-12);
        assert_eq!(lr_at(1.0, 50, 10, 100, Decay::Constant), 1.0);
        assert!((lr_at(1.0, 10, 10, 110, Decay::Cosine) - 1.0).abs() < 1e-12);
        assert!((lr_at(1.0, 60, 10, 110, Decay::Cosine) - 0.5).abs() < 1e-12);
        assert!(lr_at(1.0, 110, 10, 110, Decay::Cosine).abs() < 1e-12);
    }
}
