//! The fine-tuning loop. Minimises, over the UNet only,
//!   L = mean_{D_model} [ r(x, z) ||eps - eps_theta(x_t, t, z)||^2 ] + beta mean_{D_pre} [ ||...||^2 ]
//! with per-sample uniform timesteps on the model's own noise schedule (epsilon or v target).
//!
//! Every random draw (data order, timesteps, noise, VAE posterior samples) comes from a stream
//! derived from the seed and the micro-step, so a run resumed from a checkpoint draws exactly
//! what an uninterrupted one would: on the CPU the result is bitwise the same.

use super::config::{FinetuneConfig, Precision};
use super::data::{load_square, to_tensor, Item};
use crate::diffusion::NoiseSchedule;
use crate::io::atomic::AppendLog;
use crate::models::unet::UNet2DConditionModel;
use crate::pipeline::{load_unet, StableDiffusion};
use crate::runtime::{check_dtype_on_device, derive_seed, randn, rng};
use crate::train::checkpoint;
use crate::train::optim::AdamW;
use crate::train::schedule::lr_at;
use crate::weights::{Mode, ModelSource, ParamStore};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepLog {
    pub step: u64,
    pub loss: f64,
    pub loss_model: f64,
    pub loss_pre: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub images_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    step: u64,
    config: FinetuneConfig,
}

/// The per-sample loss weights of one micro-batch: `r_i / n_model` for generated images,
/// `beta / n_pre` for pre-training images, so that the sum is the paper's objective.
pub fn sample_weights(rewards: &[f32], n_pre: usize, beta: f64) -> Vec<f32> {
    let mut w: Vec<f32> = rewards
        .iter()
        .map(|r| r / rewards.len().max(1) as f32)
        .collect();
    w.extend(std::iter::repeat_n(
        (beta / n_pre.max(1) as f64) as f32,
        n_pre,
    ));
    w
}

/// sum_i w_i * mean_{c,h,w} (pred_i - target_i)^2 for a batch at per-sample timesteps, and the
/// per-sample squared errors (for the log). With `input_extra` (DDPM-IP) the input is noised
/// with `noise + input_extra` while the target is that of `noise`.
#[allow(clippy::too_many_arguments)]
pub fn weighted_denoising_loss(
    unet: &UNet2DConditionModel,
    schedule: &NoiseSchedule,
    x0: &Tensor,
    noise: &Tensor,
    timesteps: &[u32],
    context: &Tensor,
    weights: &[f32],
    input_extra: Option<&Tensor>,
) -> Result<(Tensor, Vec<f32>)> {
    let x_t = match input_extra {
        Some(extra) => schedule.add_noise(x0, &(noise + extra)?, timesteps)?,
        None => schedule.add_noise(x0, noise, timesteps)?,
    };
    let target = schedule.target(x0, noise, timesteps)?;
    let t = crate::diffusion::schedule::timestep_tensor(timesteps, x0.device())?;
    let pred = unet.forward(&x_t, &t, context)?;
    let per_sample = (pred.to_dtype(DType::F32)? - target.to_dtype(DType::F32)?)?
        .sqr()?
        .flatten_from(1)?
        .mean(D::Minus1)?;
    let w = Tensor::from_slice(weights, weights.len(), x0.device())?;
    let loss = (&per_sample * w)?.sum_all()?;
    Ok((loss, per_sample.to_vec1()?))
}

pub struct Trainer<'a> {
    pub config: FinetuneConfig,
    sd: &'a StableDiffusion,
    /// f32 master weights: what AdamW updates and what is saved.
    master: ParamStore,
    /// A half-precision copy the forward and backward run on, when precision is not f32.
    half: Option<(UNet2DConditionModel, ParamStore)>,
    opt: AdamW,
    ema: Option<HashMap<String, Tensor>>,
    model_data: Vec<Item>,
    pre_data: Vec<Item>,
    image_size: u32,
    /// Text-encoder states of the model data's captions, one row each in `text_table`, so a
    /// batch's context is one gather (not a stack of one copy per image).
    text_rows: HashMap<String, usize>,
    text_table: Option<Tensor>,
    /// Per data stream: the epoch and its permutation.
    permutations: HashMap<u64, (u64, Vec<usize>)>,
    latent_cache: HashMap<(bool, usize), (Tensor, Option<Tensor>)>,
    /// Every model item's posterior mean (and std, latent models) stacked in item order, once
    /// `cache_all_latents` has run: a batch is then one gather.
    model_stack: Option<(Tensor, Option<Tensor>)>,
    pub step: u64,
    out: PathBuf,
    /// Fit the run into this wall time: at the end of the warm-up, `config.steps` is set to what
    /// the speed measured over the warm-up's second half allows (the warm-up does not depend on
    /// it, so a rerun with the resulting step count follows the same schedule).
    pub time_budget: Option<std::time::Duration>,
}

impl<'a> Trainer<'a> {
    /// `sd` must have been loaded with a trainable f32 UNet. Resumes from the newest checkpoint
    /// under `out/checkpoints` when `resume` is set.
    pub fn new(
        sd: &'a StableDiffusion,
        config: FinetuneConfig,
        model_data: Vec<Item>,
        pre_data: Vec<Item>,
        out: &Path,
        resume: bool,
    ) -> Result<Self> {
        if config.model_batch == 0 || config.grad_accum == 0 {
            bail!("model_batch and grad_accum must be at least 1");
        }
        if config.beta > 0.0 && config.pre_batch > 0 && pre_data.is_empty() {
            bail!(
                "beta = {} needs a pre-training data set (--pretrain)",
                config.beta
            );
        }
        let total = sd.schedule.num_train_timesteps() as u32;
        if let Some([lo, hi]) = config.timestep_range {
            if lo >= hi || hi > total {
                bail!("timestep_range [{lo}, {hi}] must satisfy lo < hi <= {total} (the schedule's training timesteps)");
            }
        }
        if let Some(pats) = &config.trainable {
            let names: Vec<String> = sd
                .unet_params
                .named_tensors()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            for p in pats {
                if !names.iter().any(|n| n.contains(p.as_str())) {
                    bail!("trainable: `{p}` is in no UNet parameter's name (e.g. `attn2` for the cross-attention layers, `up_blocks` for the decoder half)");
                }
            }
        }
        if matches!(config.snr_gamma, Some(g) if !(g > 0.0 && g.is_finite())) {
            bail!(
                "snr_gamma must be a positive number, got {:?}",
                config.snr_gamma
            );
        }
        if !(config.input_perturbation >= 0.0 && config.input_perturbation.is_finite()) {
            bail!(
                "input_perturbation must be a number >= 0, got {}",
                config.input_perturbation
            );
        }
        let master = sd.unet_params.clone();
        if master.dtype() != DType::F32 || master.named_vars().is_empty() {
            bail!("fine-tuning needs the UNet loaded trainable in f32 (master weights)");
        }
        // The load decides what trains (frozen parameters get no gradients), so it must be the
        // config's choice: a UNet loaded with every parameter trainable would train them all.
        let wanted = Mode::trainable(config.trainable.as_deref());
        let vars: std::collections::HashSet<String> =
            master.named_vars().into_iter().map(|(n, _)| n).collect();
        if let Some((name, _)) = master
            .named_tensors()
            .into_iter()
            .find(|(n, _)| wanted.trains(n) != vars.contains(n))
        {
            bail!(
                "the UNet was not loaded with the config's trainable parameters ({:?}): `{name}` is {}; load it with finetune::trainer::load_base(source, config.trainable, device)",
                config.trainable,
                if vars.contains(&name) { "trainable" } else { "frozen" }
            );
        }
        let half = match config.precision {
            Precision::F32 => None,
            p => {
                let dtype = if p == Precision::Bf16 {
                    DType::BF16
                } else {
                    DType::F16
                };
                check_dtype_on_device(dtype, &sd.device).context(
                    "fine-tuning precision bf16: use --precision f32 (or f16) on the CPU",
                )?;
                let mode = Mode::trainable(config.trainable.as_deref());
                let (unet, store) = load_unet(&sd.source, mode, dtype, &sd.device)?;
                Some((unet, store))
            }
        };
        let opt = AdamW::new(master.named_vars(), config.optim)?;
        // Of the trainable parameters only: the frozen ones never move.
        let ema = match config.ema_decay {
            Some(_) => Some(
                master
                    .named_vars()
                    .into_iter()
                    .map(|(k, v)| Ok((k, v.as_tensor().copy()?)))
                    .collect::<Result<_>>()?,
            ),
            None => None,
        };
        let image_size = sd.image_size() as u32;
        let mut t = Self {
            config,
            sd,
            master,
            half,
            opt,
            ema,
            model_data,
            pre_data,
            image_size,
            text_rows: HashMap::new(),
            text_table: None,
            permutations: HashMap::new(),
            latent_cache: HashMap::new(),
            model_stack: None,
            step: 0,
            out: out.to_path_buf(),
            time_budget: None,
        };
        if resume {
            t.resume()?;
        }
        t.sync_half()?;
        Ok(t)
    }

    fn checkpoints_dir(&self) -> PathBuf {
        self.out.join("checkpoints")
    }

    fn resume(&mut self) -> Result<()> {
        let Some(&last) = checkpoint::list(&self.checkpoints_dir())?.last() else {
            // Worth saying only when an earlier run left something behind (metrics without a
            // checkpoint: killed before its first one); a fresh folder just starts.
            if self.out.join("metrics.jsonl").exists() {
                eprintln!(
                    "note: --resume given but {} has no checkpoint; starting at step 0",
                    self.checkpoints_dir().display()
                );
            }
            return Ok(());
        };
        let dir = self.checkpoints_dir().join(checkpoint::dir_name(last));
        let mut names = vec!["unet", "optimizer"];
        if self.ema.is_some() {
            names.push("ema");
        }
        let (files, state): (_, CheckpointState) = checkpoint::load(&dir, &names)?;
        if state.config.resume_key() != self.config.resume_key() {
            bail!("{} was made with other settings ({:?}) than this run ({:?}): resume with the same settings or use another --out", dir.display(), state.config, self.config);
        }
        for (name, var) in self.master.named_vars() {
            let t = files["unet"]
                .get(&name)
                .with_context(|| format!("{}: no weights for `{name}`", dir.display()))?;
            if t.dims() != var.dims() {
                bail!(
                    "{} holds `{name}` of shape {:?}, but the base model's is {:?}: the \
                     checkpoint belongs to another model; use another --out or remove {}",
                    dir.display(),
                    t.dims(),
                    var.dims(),
                    self.out.display()
                );
            }
            var.set(&t.to_device(&self.sd.device)?)?;
        }
        self.opt.load_state(&files["optimizer"])?;
        if let Some(ema) = &mut self.ema {
            for (k, v) in ema.iter_mut() {
                *v = files["ema"]
                    .get(k)
                    .with_context(|| format!("{}: no EMA weights for `{k}`", dir.display()))?
                    .to_device(&self.sd.device)?;
            }
        }
        self.step = state.step;
        eprintln!("resumed from {} at step {}", dir.display(), self.step);
        Ok(())
    }

    fn sync_half(&self) -> Result<()> {
        if let Some((_, store)) = &self.half {
            let master: HashMap<String, candle_core::Var> =
                self.master.named_vars().into_iter().collect();
            for (name, var) in store.named_vars() {
                var.set(&master[&name].as_tensor().to_dtype(var.dtype())?)?;
            }
        }
        Ok(())
    }

    fn unet(&self) -> &UNet2DConditionModel {
        self.half.as_ref().map_or(&self.sd.unet, |(u, _)| u)
    }

    fn compute_dtype(&self) -> DType {
        self.half.as_ref().map_or(DType::F32, |(_, s)| s.dtype())
    }

    /// The indices of `n` items of a data set for micro-step `micro`, from seeded per-epoch
    /// permutations (the current one of each stream is kept, not redrawn per item).
    fn pick(&mut self, len: usize, n: usize, micro: u64, stream: u64) -> Vec<usize> {
        let seed = self.config.seed;
        (0..n as u64)
            .map(|j| {
                let global = micro * n as u64 + j;
                let (epoch, pos) = (global / len as u64, (global % len as u64) as usize);
                let perm = self
                    .permutations
                    .entry(stream)
                    .or_insert((u64::MAX, Vec::new()));
                if perm.0 != epoch {
                    let mut p: Vec<usize> = (0..len).collect();
                    p.shuffle(&mut rng(derive_seed(seed, &[stream, epoch])));
                    *perm = (epoch, p);
                }
                perm.1[pos]
            })
            .collect()
    }

    /// Text-encoder states for the captions. The generated images' prompts (a few thousand) are
    /// kept after their first encoding; pre-training captions (hundreds of thousands, each state
    /// 77 x 768 floats) are encoded every time.
    fn text_states(&mut self, model_captions: &[&str], pre_captions: &[&str]) -> Result<Tensor> {
        let mut missing: Vec<&str> = Vec::new();
        for c in model_captions {
            if !self.text_rows.contains_key(*c) && !missing.contains(c) {
                missing.push(c);
            }
        }
        if !missing.is_empty() {
            let states = self.sd.encode_prompts(&missing)?;
            let start = self.text_table.as_ref().map_or(Ok(0), |t| t.dim(0))?;
            for (i, c) in missing.iter().enumerate() {
                self.text_rows.insert(c.to_string(), start + i);
            }
            self.text_table = Some(match self.text_table.take() {
                Some(table) => Tensor::cat(&[table, states], 0)?,
                None => states,
            });
        }
        let mut parts = Vec::new();
        if let Some(table) = &self.text_table {
            let rows: Vec<u32> = model_captions
                .iter()
                .map(|c| self.text_rows[*c] as u32)
                .collect();
            let rows = Tensor::from_vec(rows, model_captions.len(), table.device())?;
            parts.push(table.index_select(&rows, 0)?);
        }
        if !pre_captions.is_empty() {
            parts.push(self.sd.encode_prompts(pre_captions)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Encode every model image now (with `cache_latents`), so the first steps are not slowed
    /// by it, and stack them for one-gather batches; returns how many were encoded.
    pub fn cache_all_latents(&mut self) -> Result<usize> {
        if !self.config.cache_latents {
            return Ok(0);
        }
        let mut r = rng(0); // unused: the cache holds the posterior's mean and std, not a draw
        let before = self.latent_cache.len();
        for i in 0..self.model_data.len() {
            if !self.latent_cache.contains_key(&(false, i)) {
                self.latents(false, &[i], &mut r)?;
            }
        }
        let encoded = self.latent_cache.len() - before;
        if !self.model_data.is_empty() && self.model_stack.is_none() {
            let items: Vec<(Tensor, Option<Tensor>)> = (0..self.model_data.len())
                .map(|i| {
                    self.latent_cache
                        .remove(&(false, i))
                        .context("a latent was not cached")
                })
                .collect::<Result<_>>()?;
            let means: Vec<&Tensor> = items.iter().map(|(m, _)| m).collect();
            let stds: Option<Vec<&Tensor>> = items.iter().map(|(_, s)| s.as_ref()).collect();
            self.model_stack = Some((
                Tensor::stack(&means, 0)?,
                stds.map(|s| Tensor::stack(&s, 0)).transpose()?,
            ));
        }
        Ok(encoded)
    }

    /// Samples in the UNet's scale for the picked items: a posterior sample with noise from `r`
    /// (latent models), or the image itself (pixel space).
    fn latents(
        &mut self,
        pre: bool,
        idx: &[usize],
        r: &mut crate::runtime::Rng64,
    ) -> Result<Tensor> {
        if let (false, Some((means, stds))) = (pre, &self.model_stack) {
            // The same draws as item by item below: one normal per element, in item order.
            let rows = Tensor::from_vec(
                idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                idx.len(),
                means.device(),
            )?;
            let mean = means.index_select(&rows, 0)?;
            let x = match stds {
                Some(stds) => {
                    let eps = randn(r, mean.dims(), mean.dtype(), mean.device())?;
                    (mean + (stds.index_select(&rows, 0)? * eps)?)?
                }
                None => mean,
            };
            return Ok((x * self.sd.image_space.scaling_factor())?);
        }
        let mut out = Vec::with_capacity(idx.len());
        for &i in idx {
            let key = (pre, i);
            let (mean, std) = match self.latent_cache.get(&key) {
                Some(ms) => ms.clone(),
                None => {
                    let item = if pre {
                        &self.pre_data[i]
                    } else {
                        &self.model_data[i]
                    };
                    let img = load_square(&item.source, self.image_size).with_context(|| {
                        format!("loading training image {}", item.source.describe())
                    })?;
                    let x = to_tensor(&img, &self.sd.device)?
                        .unsqueeze(0)?
                        .to_dtype(self.sd.dtype)?;
                    let (mean, std) = self.sd.image_space.posterior(&x)?;
                    let ms = (mean.squeeze(0)?, std.map(|s| s.squeeze(0)).transpose()?);
                    if self.config.cache_latents {
                        self.latent_cache.insert(key, ms.clone());
                    }
                    ms
                }
            };
            out.push(match std {
                Some(std) => {
                    let eps = randn(r, mean.dims(), mean.dtype(), mean.device())?;
                    (mean + (std * eps)?)?
                }
                None => mean,
            });
        }
        Ok((Tensor::stack(&out, 0)? * self.sd.image_space.scaling_factor())?)
    }

    /// Forward and backward of one micro-batch; returns (loss, model part, pre part, grads).
    fn micro_step(&mut self, micro: u64) -> Result<(f64, f64, f64, HashMap<String, Tensor>)> {
        let c = self.config.clone();
        let mut r = rng(derive_seed(c.seed, &[micro, 0]));
        let mi = self.pick(self.model_data.len(), c.model_batch, micro, 1);
        let use_pre = c.beta > 0.0 && c.pre_batch > 0;
        let pi = if use_pre {
            self.pick(self.pre_data.len(), c.pre_batch, micro, 2)
        } else {
            vec![]
        };
        let mut x0 = self.latents(false, &mi, &mut r)?;
        // Its own stream, so a zero dropout leaves every other draw as it was.
        let mut drop = rng(derive_seed(c.seed, &[micro, 3]));
        let mut caption = |text: &str| -> String {
            if c.caption_dropout > 0.0 && drop.random::<f64>() < c.caption_dropout {
                String::new()
            } else {
                text.to_string()
            }
        };
        let model_caps: Vec<String> = mi
            .iter()
            .map(|&i| caption(&self.model_data[i].caption))
            .collect();
        let model_refs: Vec<&str> = model_caps.iter().map(String::as_str).collect();
        let pre_caps: Vec<String> = pi
            .iter()
            .map(|&i| caption(&self.pre_data[i].caption))
            .collect();
        let pre_refs: Vec<&str> = pre_caps.iter().map(String::as_str).collect();
        if use_pre {
            x0 = Tensor::cat(&[x0, self.latents(true, &pi, &mut r)?], 0)?;
        }
        let rewards: Vec<f32> = mi.iter().map(|&i| self.model_data[i].weight).collect();
        let mut weights = sample_weights(&rewards, pi.len(), c.beta);
        let b = x0.dim(0)?;
        let shape = x0.dims()[1..].to_vec();
        let [lo, hi] = c
            .timestep_range
            .unwrap_or([0, self.sd.schedule.num_train_timesteps() as u32]);
        let timesteps: Vec<u32> = (0..b).map(|_| r.random_range(lo..hi)).collect();
        if let Some(gamma) = c.snr_gamma {
            for (w, &t) in weights.iter_mut().zip(&timesteps) {
                *w *= self.sd.schedule.min_snr_weight(t, gamma) as f32;
            }
        }
        // One draw for the batch: the same numbers as one draw per image, in image order.
        let noise = randn(
            &mut r,
            &[&[b][..], &shape[..]].concat(),
            DType::F32,
            &self.sd.device,
        )?;
        // Its own stream too, so that without it every other draw is as it was.
        let extra = if c.input_perturbation > 0.0 {
            let mut r = rng(derive_seed(c.seed, &[micro, 4]));
            let xi = randn(&mut r, noise.dims(), DType::F32, &self.sd.device)?;
            Some((xi * c.input_perturbation)?)
        } else {
            None
        };
        let context = self.text_states(&model_refs, &pre_refs)?;
        let dtype = self.compute_dtype();
        let (x0, noise, context) = (
            x0.to_dtype(dtype)?,
            noise.to_dtype(dtype)?,
            context.to_dtype(dtype)?,
        );
        let extra = extra.map(|e| e.to_dtype(dtype)).transpose()?;
        let (loss, per_sample) = weighted_denoising_loss(
            self.unet(),
            &self.sd.schedule,
            &x0,
            &noise,
            &timesteps,
            &context,
            &weights,
            extra.as_ref(),
        )?;
        let total = loss.to_scalar::<f32>()? as f64;
        if !total.is_finite() {
            bail!("the loss is {total} at step {} (micro-batch {micro}): stopping; the last checkpoint is intact", self.step + 1);
        }
        let grads = loss.backward()?;
        let store = self.half.as_ref().map_or(&self.master, |(_, s)| s);
        let mut named = HashMap::new();
        for (name, var) in store.named_vars() {
            if !c.trains(&name) {
                continue;
            }
            if let Some(g) = grads.get(var.as_tensor()) {
                named.insert(name, g.detach().to_dtype(DType::F32)?);
            }
        }
        let n = rewards.len();
        let model_part = rewards
            .iter()
            .zip(&per_sample)
            .map(|(r, e)| (r * e) as f64)
            .sum::<f64>()
            / n as f64;
        let pre_part = if pi.is_empty() {
            0.0
        } else {
            per_sample[n..].iter().map(|e| *e as f64).sum::<f64>() / pi.len() as f64
        };
        Ok((total, model_part, pre_part, named))
    }

    /// Run until `config.steps`, checkpointing and logging; `on_step` sees each step's log.
    pub fn run(&mut self, mut on_step: impl FnMut(&StepLog)) -> Result<Vec<StepLog>> {
        std::fs::create_dir_all(&self.out)?;
        let metrics_path = self.out.join("metrics.jsonl");
        trim_metrics(&metrics_path, self.step)?;
        let (mut metrics, _) = AppendLog::open(&metrics_path)?;
        let mut logs = Vec::new();
        let mut c = self.config.clone();
        let run_started = std::time::Instant::now();
        // Under a time budget the speed is measured over the second half of the warm-up (the
        // first steps pay for compilation and caches), and the total fixed at its end.
        let fit_at = c.warmup_steps.max(self.step + 20);
        let window_from = fit_at - (fit_at - self.step) / 2;
        let mut window_start = run_started;
        while self.step < c.steps {
            if self.step == window_from {
                window_start = std::time::Instant::now();
            }
            if let (Some(budget), true) = (self.time_budget, self.step == fit_at) {
                let per_step =
                    window_start.elapsed().as_secs_f64() / (fit_at - window_from).max(1) as f64;
                let left = budget.as_secs_f64() - run_started.elapsed().as_secs_f64();
                let more = (left * 0.97 / per_step).max(0.0) as u64;
                self.config.steps = self.step + more.max(1);
                c = self.config.clone();
                eprintln!(
                    "time budget {:.0} s: {per_step:.4} s per step, so {} steps in all",
                    budget.as_secs_f64(),
                    c.steps
                );
            }
            let started = std::time::Instant::now();
            let mut acc: HashMap<String, Tensor> = HashMap::new();
            let (mut loss_sum, mut model_sum, mut pre_sum) = (0.0, 0.0, 0.0);
            for k in 0..c.grad_accum as u64 {
                let micro = self.step * c.grad_accum as u64 + k;
                let (loss, model_part, pre_part, grads) = self.micro_step(micro)?;
                loss_sum += loss;
                model_sum += model_part;
                pre_sum += pre_part;
                for (name, g) in grads {
                    let sum = match acc.remove(&name) {
                        Some(prev) => (prev + g)?,
                        None => g,
                    };
                    acc.insert(name, sum);
                }
            }
            let accum = c.grad_accum as f64;
            // One device-to-host read for the whole norm (a read per tensor stalls a GPU), summed
            // in f64 in name order so that a rerun or a resumed run is bit-identical.
            let mut names: Vec<&String> = acc.keys().collect();
            names.sort();
            let squares: Vec<Tensor> = names
                .iter()
                .map(|n| acc[*n].sqr()?.sum_all())
                .collect::<candle_core::Result<_>>()?;
            let sq: f64 = Tensor::stack(&squares, 0)?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?
                .iter()
                .sum();
            let grad_norm = sq.sqrt() / accum;
            if !grad_norm.is_finite() {
                bail!("the gradient norm is {grad_norm} at step {}: stopping; the last checkpoint is intact", self.step + 1);
            }
            let clip = if c.max_grad_norm > 0.0 && grad_norm > c.max_grad_norm {
                c.max_grad_norm / grad_norm
            } else {
                1.0
            };
            let lr = lr_at(c.optim.lr, self.step + 1, c.warmup_steps, c.steps, c.decay);
            self.opt.step_named(&acc, lr, clip / accum)?;
            self.step += 1;
            self.sync_half()?;
            if let (Some(ema), Some(d)) = (&mut self.ema, c.ema_decay) {
                for (name, var) in self.master.named_vars() {
                    let e = ema.get_mut(&name).context("EMA lost a parameter")?;
                    // Detached, or each average would hold the previous one (and its
                    // intermediates) alive: a leak of three model copies per step.
                    *e = ((&*e * d)? + (var.as_tensor().detach() * (1.0 - d))?)?.detach();
                }
            }
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let log = StepLog {
                step: self.step,
                loss: loss_sum / accum,
                loss_model: model_sum / accum,
                loss_pre: pre_sum / accum,
                lr,
                grad_norm,
                images_per_s: ((c.model_batch + if c.beta > 0.0 { c.pre_batch } else { 0 })
                    * c.grad_accum) as f64
                    / secs,
            };
            metrics.append(&log)?;
            on_step(&log);
            logs.push(log);
            if c.checkpoint_every > 0
                && (self.step.is_multiple_of(c.checkpoint_every) || self.step == c.steps)
            {
                self.save_checkpoint()?;
            }
        }
        Ok(logs)
    }

    fn save_checkpoint(&self) -> Result<PathBuf> {
        let unet: HashMap<String, Tensor> = self.master.named_tensors().into_iter().collect();
        for (name, t) in &unet {
            let s = t
                .abs()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            if !s.is_finite() {
                bail!("weight `{name}` is no longer finite at step {}: not saving a corrupt checkpoint (the previous one is intact)", self.step);
            }
        }
        let opt = self.opt.state()?;
        let mut files: Vec<(&str, &HashMap<String, Tensor>)> =
            vec![("unet", &unet), ("optimizer", &opt)];
        if let Some(ema) = &self.ema {
            files.push(("ema", ema));
        }
        let state = CheckpointState {
            step: self.step,
            config: self.config.clone(),
        };
        checkpoint::save(
            &self.checkpoints_dir(),
            self.step,
            &files,
            &state,
            self.config.keep_checkpoints,
        )
    }

    /// The weights to publish: the master weights, with the EMA of the trainable ones when kept.
    pub fn final_weights(&self) -> HashMap<String, Tensor> {
        let mut w: HashMap<String, Tensor> = self.master.named_tensors().into_iter().collect();
        if let Some(e) = &self.ema {
            w.extend(e.iter().map(|(k, t)| (k.clone(), t.clone())));
        }
        w
    }
}

/// Drop metric lines past `step` (a kill after logging but before the checkpoint).
fn trim_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let (_, _) = AppendLog::open(path)?;
    let logs: Vec<StepLog> = crate::io::jsonl::read_jsonl(path)?;
    let kept: Vec<&StepLog> = logs.iter().filter(|l| l.step <= step).collect();
    if kept.len() != logs.len() {
        crate::io::jsonl::write_jsonl(path, kept)?;
    }
    Ok(())
}

/// Load the base model for fine-tuning: the UNet trainable in f32 (only the parameters whose
/// names contain one of `trainable`, when given: the others get no gradients), the rest frozen.
pub fn load_base(
    source: &ModelSource,
    trainable: Option<&[String]>,
    device: &Device,
) -> Result<StableDiffusion> {
    StableDiffusion::load(source, Mode::trainable(trainable), DType::F32, device)
}
