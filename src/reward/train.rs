//! Training the reward model: L = L_MSE + λ L_pc (Section 3.2). L_pc is the cross-entropy of
//! picking a good image's own prompt among its rule-based perturbations, with
//! P(i | x) = softmax_j(r(x, z_j) / T). Train / validation split by prompt, AdamW, seeded order,
//! early stopping on the validation loss (the best epoch's weights are kept).

use super::metrics::{preference_accuracy, Judged};
use super::model::{RewardConfig, RewardModel};
use crate::prompts::{Category, Split};
use crate::stats::Proportion;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::weights::{Mode, ParamStore};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One labeled image with its prompt, as rows of the embedding tables.
#[derive(Debug, Clone)]
pub struct Example {
    pub image: u32,
    pub text: u32,
    /// 1 good, 0 bad.
    pub target: f32,
    /// Text rows of the prompt's perturbations (wrong prompts for this image).
    pub negatives: Vec<u32>,
    pub prompt_id: String,
    pub split: Split,
    pub category: Category,
}

/// Embedding tables on the training device and the labeled examples indexing them.
pub struct RewardData {
    pub images: Tensor,
    pub texts: Tensor,
    pub examples: Vec<Example>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RewardTrainOptions {
    pub hidden: Vec<usize>,
    /// Weight λ of the prompt-classification loss (0 turns it off).
    pub lambda: f64,
    /// Temperature T of softmax(r / T).
    pub temperature: f64,
    pub optim: AdamWConfig,
    pub batch_size: usize,
    pub epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    pub patience: usize,
    pub val_fraction: f64,
    /// At most this many perturbed prompts per good image in L_pc.
    pub max_negatives: usize,
    /// Keep half of each prompt's training images (the paper's data ablation).
    pub half_data: bool,
    pub seed: u64,
}

impl Default for RewardTrainOptions {
    fn default() -> Self {
        Self {
            hidden: vec![1024, 1024],
            lambda: 0.5,
            temperature: 0.1,
            optim: AdamWConfig {
                lr: 1e-4,
                weight_decay: 1e-2,
                ..Default::default()
            },
            batch_size: 256,
            epochs: 10,
            patience: 3,
            val_fraction: 0.1,
            max_negatives: 8,
            half_data: false,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_mse: f64,
    pub train_pc: f64,
    pub val_mse: f64,
    pub val_pc: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    pub mse: f64,
    pub pc_loss: f64,
    /// Fraction of images whose reward is on the right side of 0.5.
    pub accuracy: f64,
    pub n: usize,
    /// Preference accuracy on (good, bad) pairs of the same prompt, by split.
    pub preference: BTreeMap<String, Proportion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    pub train_examples: usize,
    pub val_examples: usize,
    pub val: Evaluation,
    pub seconds: f64,
}

/// Split example indices by prompt: a prompt's images are all in train or all in validation.
pub fn split_by_prompt(
    examples: &[Example],
    val_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut prompts: Vec<&str> = examples
        .iter()
        .map(|e| e.prompt_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    prompts.shuffle(&mut crate::runtime::rng(seed));
    let n_val = ((prompts.len() as f64) * val_fraction).round() as usize;
    let val: HashSet<&str> = prompts.into_iter().take(n_val).collect();
    (0..examples.len()).partition(|&i| !val.contains(examples[i].prompt_id.as_str()))
}

/// Keep half of each prompt's images (rounded up), seeded.
pub fn halve_per_prompt(examples: &[Example], idx: &[usize], seed: u64) -> Vec<usize> {
    let mut by_prompt: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in idx {
        by_prompt
            .entry(examples[i].prompt_id.as_str())
            .or_default()
            .push(i);
    }
    let mut rng = crate::runtime::rng(seed);
    let mut out = Vec::new();
    for (_, mut v) in by_prompt {
        v.shuffle(&mut rng);
        v.truncate(v.len().div_ceil(2));
        out.extend(v);
    }
    out.sort_unstable();
    out
}

struct Losses {
    mse: Tensor,
    pc: Option<Tensor>,
}

fn u32_tensor(v: Vec<u32>, device: &Device) -> Result<Tensor> {
    let n = v.len();
    Ok(Tensor::from_vec(v, n, device)?)
}

/// L_MSE and L_pc of a batch. Negatives are the first `max_negatives` of each good example's list
/// after a seeded shuffle; shorter lists are padded and masked out of the softmax.
fn batch_losses(
    model: &RewardModel,
    data: &RewardData,
    batch: &[usize],
    opts: &RewardTrainOptions,
    rng: &mut crate::runtime::Rng64,
) -> Result<Losses> {
    let dev = data.images.device();
    let ex: Vec<&Example> = batch.iter().map(|&i| &data.examples[i]).collect();
    let img = data
        .images
        .index_select(&u32_tensor(ex.iter().map(|e| e.image).collect(), dev)?, 0)?;
    let txt = data
        .texts
        .index_select(&u32_tensor(ex.iter().map(|e| e.text).collect(), dev)?, 0)?;
    let y = Tensor::from_vec(
        ex.iter().map(|e| e.target).collect::<Vec<f32>>(),
        ex.len(),
        dev,
    )?;
    let r = model.score(&img, &txt)?;
    let mse = (r - y)?.sqr()?.mean_all()?;
    if opts.lambda == 0.0 {
        return Ok(Losses { mse, pc: None });
    }
    let good: Vec<&Example> = ex
        .iter()
        .copied()
        .filter(|e| e.target > 0.5 && !e.negatives.is_empty())
        .collect();
    if good.is_empty() {
        return Ok(Losses { mse, pc: None });
    }
    let k = 1 + good
        .iter()
        .map(|e| e.negatives.len())
        .max()
        .unwrap_or(0)
        .min(opts.max_negatives);
    let mut cand = Vec::with_capacity(good.len() * k);
    let mut mask = Vec::with_capacity(good.len() * k);
    for e in &good {
        let mut neg = e.negatives.clone();
        neg.shuffle(rng);
        neg.truncate(k - 1);
        cand.push(e.text);
        mask.push(0f32);
        for j in 0..k - 1 {
            cand.push(*neg.get(j).unwrap_or(&e.text));
            mask.push(if j < neg.len() { 0.0 } else { -1e4 });
        }
    }
    let g = good.len();
    let gimg = data
        .images
        .index_select(&u32_tensor(good.iter().map(|e| e.image).collect(), dev)?, 0)?;
    let ctxt = data
        .texts
        .index_select(&u32_tensor(cand, dev)?, 0)?
        .reshape((g, k, ()))?;
    let scores = model.score_candidates(&gimg, &ctxt)?;
    let pc = prompt_classification_loss(
        &scores,
        &Tensor::from_vec(mask, (g, k), dev)?,
        opts.temperature,
    )?;
    Ok(Losses { mse, pc: Some(pc) })
}

/// L_pc: mean over images of -log softmax_j(r(x, z_j) / T) at j = 0, the image's own prompt.
/// `scores` (G, K) are rewards against [own prompt, perturbations...]; `mask` (G, K) is 0 for
/// real candidates and a large negative number for padding.
pub fn prompt_classification_loss(
    scores: &Tensor,
    mask: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let logits = ((scores / temperature)? + mask)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    Ok(logp.narrow(1, 0, 1)?.mean_all()?.neg()?)
}

/// Rewards for the examples `idx`, in order.
pub fn predict(model: &RewardModel, data: &RewardData, idx: &[usize]) -> Result<Vec<f32>> {
    let dev = data.images.device();
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(4096) {
        let img = data.images.index_select(
            &u32_tensor(chunk.iter().map(|&i| data.examples[i].image).collect(), dev)?,
            0,
        )?;
        let txt = data.texts.index_select(
            &u32_tensor(chunk.iter().map(|&i| data.examples[i].text).collect(), dev)?,
            0,
        )?;
        out.extend(
            model
                .score(&img, &txt)?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?,
        );
    }
    Ok(out)
}

pub fn evaluate(
    model: &RewardModel,
    data: &RewardData,
    idx: &[usize],
    opts: &RewardTrainOptions,
) -> Result<Evaluation> {
    let scores = predict(model, data, idx)?;
    let ex: Vec<&Example> = idx.iter().map(|&i| &data.examples[i]).collect();
    let n = ex.len().max(1) as f64;
    let mse = ex
        .iter()
        .zip(&scores)
        .map(|(e, s)| ((s - e.target) as f64).powi(2))
        .sum::<f64>()
        / n;
    let accuracy = ex
        .iter()
        .zip(&scores)
        .filter(|(e, s)| (**s > 0.5) == (e.target > 0.5))
        .count() as f64
        / n;
    let mut pc_sum = 0.0;
    let mut pc_n = 0.0;
    let mut rng = crate::runtime::rng(opts.seed ^ 0x5eed);
    for chunk in idx.chunks(opts.batch_size.max(1)) {
        if let Some(pc) = batch_losses(
            model,
            data,
            chunk,
            &RewardTrainOptions {
                lambda: opts.lambda.max(1.0),
                ..opts.clone()
            },
            &mut rng,
        )?
        .pc
        {
            pc_sum += pc.to_scalar::<f32>()? as f64 * chunk.len() as f64;
            pc_n += chunk.len() as f64;
        }
    }
    Ok(Evaluation {
        mse,
        pc_loss: if pc_n > 0.0 { pc_sum / pc_n } else { f64::NAN },
        accuracy,
        n: ex.len(),
        preference: preference_accuracy(
            &ex.iter()
                .zip(&scores)
                .map(|(e, s)| Judged {
                    prompt: &e.prompt_id,
                    split: e.split,
                    target: e.target,
                    score: *s,
                })
                .collect::<Vec<_>>(),
            opts.seed,
        ),
    })
}

/// Train a fresh reward model; `on_epoch` sees each epoch's log (for progress output).
pub fn train(
    data: &RewardData,
    opts: &RewardTrainOptions,
    mut on_epoch: impl FnMut(&EpochLog),
) -> Result<(RewardModel, ParamStore, TrainReport)> {
    let started = std::time::Instant::now();
    if data.examples.is_empty() {
        bail!("no labeled examples to train the reward model on");
    }
    let device = data.images.device().clone();
    let config = RewardConfig {
        image_dim: data.images.dim(1)?,
        text_dim: data.texts.dim(1)?,
        hidden: opts.hidden.clone(),
    };
    let params = ParamStore::random(
        opts.seed,
        "reward model",
        Mode::Trainable,
        DType::F32,
        &device,
    );
    let model = RewardModel::new(params.var_builder(), &config)?;
    let (mut train_idx, val_idx) = split_by_prompt(&data.examples, opts.val_fraction, opts.seed);
    if opts.half_data {
        train_idx = halve_per_prompt(&data.examples, &train_idx, opts.seed);
    }
    if train_idx.is_empty() {
        bail!(
            "the train split is empty ({} examples, val fraction {})",
            data.examples.len(),
            opts.val_fraction
        );
    }
    let mut opt = AdamW::new(params.named_vars(), opts.optim)?;
    let mut rng = crate::runtime::rng(opts.seed.wrapping_add(1));
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    for epoch in 1..=opts.epochs {
        let mut order = train_idx.clone();
        order.shuffle(&mut rng);
        let (mut mse_sum, mut pc_sum, mut n_sum) = (0.0, 0.0, 0.0);
        for batch in order.chunks(opts.batch_size.max(1)) {
            let l = batch_losses(&model, data, batch, opts, &mut rng)?;
            let loss = match &l.pc {
                Some(pc) => (&l.mse + (pc * opts.lambda)?)?,
                None => l.mse.clone(),
            };
            let grads = loss.backward()?;
            opt.step(&grads, opts.optim.lr, 1.0)?;
            let w = batch.len() as f64;
            mse_sum += l.mse.to_scalar::<f32>()? as f64 * w;
            pc_sum +=
                l.pc.map(|p| p.to_scalar::<f32>().map(|v| v as f64))
                    .transpose()?
                    .unwrap_or(0.0)
                    * w;
            n_sum += w;
        }
        let val = if val_idx.is_empty() {
            None
        } else {
            Some(evaluate(&model, data, &val_idx, opts)?)
        };
        let (val_mse, val_pc, val_acc) = val.as_ref().map_or((f64::NAN, f64::NAN, f64::NAN), |v| {
            (v.mse, v.pc_loss, v.accuracy)
        });
        let pc_term = if opts.lambda > 0.0 && val_pc.is_finite() {
            opts.lambda * val_pc
        } else {
            0.0
        };
        let val_loss = if val.is_some() {
            val_mse + pc_term
        } else {
            mse_sum / n_sum + opts.lambda * pc_sum / n_sum
        };
        let log = EpochLog {
            epoch,
            train_mse: mse_sum / n_sum,
            train_pc: pc_sum / n_sum,
            val_mse,
            val_pc,
            val_loss,
            val_accuracy: val_acc,
        };
        on_epoch(&log);
        epochs.push(log);
        if best.as_ref().is_none_or(|b| val_loss < b.0) {
            let snapshot = params
                .named_vars()
                .iter()
                .map(|(_, v)| v.as_tensor().copy())
                .collect::<candle_core::Result<Vec<_>>>()?;
            best = Some((val_loss, epoch, snapshot));
        } else if best.as_ref().is_some_and(|b| epoch - b.1 >= opts.patience) {
            break;
        }
    }
    let Some((_, best_epoch, snapshot)) = best else {
        bail!(
            "the reward model needs at least one epoch (epochs = {})",
            opts.epochs
        )
    };
    for ((_, var), t) in params.named_vars().iter().zip(snapshot) {
        var.set(&t)?;
    }
    let val = evaluate(
        &model,
        data,
        if val_idx.is_empty() {
            &train_idx
        } else {
            &val_idx
        },
        opts,
    )?;
    let report = TrainReport {
        epochs,
        best_epoch,
        train_examples: train_idx.len(),
        val_examples: val_idx.len(),
        val,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, params, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_classification_loss_by_hand() {
        // One good image scored against its prompt and two perturbations: r = 0.9, 0.5, 0.1;
        // T = 0.1 gives logits 9, 5, 1 and L_pc = log(1 + e^-4 + e^-8) = 0.0184795...
        // A second image has one real perturbation and one padded slot.
        let dev = Device::Cpu;
        let scores = Tensor::new(&[[0.9f32, 0.5, 0.1], [0.6, 0.8, 0.0]], &dev).unwrap();
        let mask = Tensor::new(&[[0f32, 0.0, 0.0], [0.0, 0.0, -1e4]], &dev).unwrap();
        let l = prompt_classification_loss(&scores, &mask, 0.1)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let first = (1.0 + (-4f64).exp() + (-8f64).exp()).ln();
        let second = (1.0 + 2f64.exp()).ln(); // logits 6, 8: -log(e^6 / (e^6 + e^8))
        assert!((l - (first + second) / 2.0).abs() < 1e-5, "{l}");
        let only_first = prompt_classification_loss(
            &scores.narrow(0, 0, 1).unwrap(),
            &mask.narrow(0, 0, 1).unwrap(),
            0.1,
        )
        .unwrap();
        assert!((only_first.to_scalar::<f32>().unwrap() as f64 - 0.018_479_5).abs() < 1e-6);
    }
}
