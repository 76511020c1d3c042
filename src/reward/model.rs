//! The reward model r(x, z) = sigmoid(MLP([image_emb, text_emb])) over frozen CLIP embeddings
//! (the paper's Section 3.2: two hidden layers of 1024 with ReLU). Inputs are L2-normalised.

use crate::models::nn::{linear, Linear};
use anyhow::{Context, Result};
use candle_core::{Module, Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    pub image_dim: usize,
    pub text_dim: usize,
    pub hidden: Vec<usize>,
}

impl RewardConfig {
    pub fn paper(image_dim: usize, text_dim: usize) -> Self {
        Self {
            image_dim,
            text_dim,
            hidden: vec![1024, 1024],
        }
    }
}

#[derive(Debug, Clone)]
pub struct RewardModel {
    pub config: RewardConfig,
    layers: Vec<Linear>,
}

fn normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&(x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()? + 1e-12)?)
}

impl RewardModel {
    /// Parameters `layers.N.{weight,bias}`.
    pub fn new(vb: VarBuilder, config: &RewardConfig) -> Result<Self> {
        let mut dims = vec![config.image_dim + config.text_dim];
        dims.extend(&config.hidden);
        dims.push(1);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(w[0], w[1], true, vb.pp("layers").pp(i)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            layers,
        })
    }

    /// Rewards in (0, 1) for every image against each of its candidate texts: `image` (B, Di),
    /// `texts` (B, K, Dt) -> (B, K). The image's half of the first layer is computed once.
    pub fn score_candidates(&self, image: &Tensor, texts: &Tensor) -> Result<Tensor> {
        let (b, k, _) = texts.dims3()?;
        let first = &self.layers[0];
        let w = first.weight();
        let di = self.config.image_dim;
        // Column slices of the weight, transposed: contiguous copies, as CUDA's matmul takes
        // no operand whose row stride is not its width.
        let w_img = w.narrow(1, 0, di)?.t()?.contiguous()?;
        let w_txt = w.narrow(1, di, self.config.text_dim)?.t()?.contiguous()?;
        let hi = normalize(image)?.matmul(&w_img)?; // (B, H)
        let ht = normalize(&texts.reshape((b * k, ()))?)?
            .matmul(&w_txt)?
            .reshape((b, k, ()))?;
        let bias = first
            .bias()
            .context("the reward model's first layer has no bias")?;
        let mut h = ht
            .broadcast_add(&hi.unsqueeze(1)?)?
            .broadcast_add(bias)?
            .relu()?;
        for (i, layer) in self.layers.iter().enumerate().skip(1) {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(candle_nn::ops::sigmoid(&h.squeeze(D::Minus1)?)?)
    }

    /// Rewards for matched (image, text) rows: (B, Di), (B, Dt) -> (B,). One matmul per layer
    /// on the concatenated input (the same function as `score_candidates` with one candidate).
    pub fn score(&self, image: &Tensor, text: &Tensor) -> Result<Tensor> {
        let mut h = Tensor::cat(&[normalize(image)?, normalize(text)?], 1)?;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(candle_nn::ops::sigmoid(&h.squeeze(D::Minus1)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{Mode, ParamStore};
    use candle_core::{DType, Device};

    #[test]
    fn both_scoring_paths_agree() {
        let store = ParamStore::random(0, "r", Mode::Frozen, DType::F32, &Device::Cpu);
        let m = RewardModel::new(
            store.var_builder(),
            &RewardConfig {
                image_dim: 6,
                text_dim: 5,
                hidden: vec![8, 4],
            },
        )
        .unwrap();
        let img = Tensor::randn(0f32, 1., (3, 6), &Device::Cpu).unwrap();
        let txt = Tensor::randn(0f32, 1., (3, 2, 5), &Device::Cpu).unwrap();
        let many = m.score_candidates(&img, &txt).unwrap();
        let one = m
            .score(&img, &txt.narrow(1, 1, 1).unwrap().squeeze(1).unwrap())
            .unwrap();
        let d = (many.narrow(1, 1, 1).unwrap().squeeze(1).unwrap() - one)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
    }
}
