//! Pre-training the world's CLIP contrastively (InfoNCE over the batch, both directions, learned
//! temperature). Captions repeat in this small world, so every image in the batch with the same
//! caption counts as a positive (soft targets) rather than as a false negative.

use super::Curve;
use crate::models::clip::{l2_normalize, ClipConfig, ClipModel};
use crate::runtime::{rand_index, rng};
use crate::tokenizer::ClipTokenizer;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::weights::{Mode, ParamStore};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, D};

/// Settings of one CLIP pre-training run.
#[derive(Debug, Clone)]
pub struct ClipTraining {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

pub struct TrainedClip {
    pub store: ParamStore,
    pub model: ClipModel,
    pub curve: Curve,
}

/// Train on `pixels` `(N, 3, S, S)` (already CLIP-normalised) and their captions.
pub fn train_clip(
    pixels: &Tensor,
    captions: &[String],
    tokenizer: &ClipTokenizer,
    config: &ClipConfig,
    opts: &ClipTraining,
    device: &Device,
    mut progress: impl FnMut(usize, f64),
) -> Result<TrainedClip> {
    let n = pixels.dim(0)?;
    if n != captions.len() || n < 2 {
        bail!(
            "CLIP pre-training needs at least 2 images, one caption each ({n} images, {} captions)",
            captions.len()
        );
    }
    let store = ParamStore::random(opts.seed, "world clip", Mode::Trainable, DType::F32, device);
    let model = ClipModel::new(store.var_builder(), config)?;
    let mut optim = AdamW::new(
        store.named_vars(),
        AdamWConfig {
            lr: opts.lr,
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
    )?;
    let mut r = rng(opts.seed ^ 0xC11B);
    let mut curve = Curve::default();
    let batch = opts.batch.min(n);
    for step in 0..opts.steps {
        let idx = rand_index(&mut r, batch, n, device)?;
        let picked: Vec<u32> = idx.to_vec1()?;
        let texts: Vec<&str> = picked
            .iter()
            .map(|&i| captions[i as usize].as_str())
            .collect();
        let ids = tokenizer.batch_tensor(&texts, device)?;
        let img = l2_normalize(&model.image_features(&pixels.index_select(&idx, 0)?)?)?;
        let txt = l2_normalize(&model.text_features(&ids)?)?;
        // As CLIP: the temperature is learned in log space and capped at 100.
        let scale = model.logit_scale.clamp(0f32, 4.6052f32)?.exp()?;
        let logits = img.matmul(&txt.t()?)?.broadcast_mul(&scale)?;
        let targets = same_caption_targets(&texts, device)?;
        let loss = ((soft_ce(&logits, &targets)? + soft_ce(&logits.t()?, &targets)?)? * 0.5)?;
        let grads = loss.backward()?;
        let warm = ((step + 1) as f64 / 100.0).min(1.0);
        optim.step(&grads, opts.lr * warm, 1.0)?;
        let l = loss.to_scalar::<f32>()? as f64;
        curve.push(step, l);
        progress(step, l);
    }
    Ok(TrainedClip {
        store,
        model,
        curve,
    })
}

/// `T[i][j]` = 1 / (number of captions equal to caption i) where captions i and j are equal.
fn same_caption_targets(texts: &[&str], device: &Device) -> Result<Tensor> {
    let b = texts.len();
    let mut t = vec![0f32; b * b];
    for i in 0..b {
        let same: Vec<usize> = (0..b).filter(|&j| texts[j] == texts[i]).collect();
        for &j in &same {
            t[i * b + j] = 1.0 / same.len() as f32;
        }
    }
    Ok(Tensor::from_vec(t, (b, b), device)?)
}

/// Cross-entropy of row-wise softmax(`logits`) against soft `targets`, averaged over rows.
fn soft_ce(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = shifted.broadcast_sub(&lse)?;
    Ok((targets * logp)?.sum(D::Minus1)?.neg()?.mean_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_targets_and_loss() {
        let d = Device::Cpu;
        let t = same_caption_targets(&["a", "b", "a"], &d).unwrap();
        let v: Vec<Vec<f32>> = t.to_vec2().unwrap();
        assert_eq!(
            v,
            vec![
                vec![0.5, 0.0, 0.5],
                vec![0.0, 1.0, 0.0],
                vec![0.5, 0.0, 0.5]
            ]
        );
        // Uniform logits: the loss is log(B) whatever the targets.
        let logits = Tensor::zeros((3, 3), DType::F32, &d).unwrap();
        let l = soft_ce(&logits, &t).unwrap().to_scalar::<f32>().unwrap();
        assert!((l - 3f32.ln()).abs() < 1e-6, "{l}");
        // Confident and right: near zero.
        let eye = (Tensor::eye(2, DType::F32, &d).unwrap() * 50.0).unwrap();
        let t2 = same_caption_targets(&["x", "y"], &d).unwrap();
        assert!(soft_ce(&eye, &t2).unwrap().to_scalar::<f32>().unwrap() < 1e-6);
    }
}
