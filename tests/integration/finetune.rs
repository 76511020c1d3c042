//! Fine-tuning on the tiny model: the loss falls, zero-reward images contribute nothing,
//! beta = 0 ignores D_pre, a resumed run equals an uninterrupted one bitwise, a diverging run
//! stops with its step, the output folder loads as a model, a time budget fixes the step
//! count so the schedule ends in time, a checkpoint of another model is refused by name, and
//! `trainable` leaves every other parameter as it was.

use candle_core::{DType, Device, Tensor};
use rlhf_t2i::diffusion::sampler::{SampleSettings, SchedulerKind};
use rlhf_t2i::finetune::config::{FinetuneConfig, Precision};
use rlhf_t2i::finetune::data::Weights;
use rlhf_t2i::finetune::trainer::{load_base, weighted_denoising_loss};
use rlhf_t2i::io::jsonl::{read_jsonl, write_jsonl};
use rlhf_t2i::io::manifest::ImageRecord;
use rlhf_t2i::io::scores::ScoreRecord;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::runtime::{randn, rng};
use rlhf_t2i::stages::finetune::{run, FinetuneInputs};
use rlhf_t2i::stages::{generate, init_tiny, prompts};
use rlhf_t2i::train::optim::{AdamW, AdamWConfig};
use rlhf_t2i::train::schedule::Decay;
use rlhf_t2i::weights::{read_safetensors, Mode, ModelSource};
use std::path::{Path, PathBuf};

/// Tiny models, 8 generated images with scores (rewards 0.9 / 0.1 alternating), and a small
/// pre-training folder (images + captions.jsonl).
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub sd: PathBuf,
    pub clip: PathBuf,
    pub manifest: PathBuf,
    pub scores: PathBuf,
    pub pretrain: PathBuf,
}

pub fn setup(images_per_prompt: u32, prompt_count: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = init_tiny::write_tiny_models(&d.join("models"), 0).unwrap();
    prompts::run(
        prompts::PromptSet::Train,
        None,
        0,
        Some(prompt_count),
        &d.join("prompts.jsonl"),
    )
    .unwrap();
    let sd = StableDiffusion::load(
        &ModelSource::Local(tiny.sd.clone()),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let gen = generate::run(
        &sd,
        &generate::GenerateOptions {
            prompts: d.join("prompts.jsonl"),
            out: d.join("gen"),
            images_per_prompt: Some(images_per_prompt),
            seed: 0,
            sampling: SampleSettings {
                scheduler: SchedulerKind::Ddim,
                steps: 2,
                guidance: 7.5,
                eta: 0.0,
            },
            batch_size: 16,
            size: None,
            model_name: "tiny".into(),
        },
    )
    .unwrap();
    let records: Vec<ImageRecord> = read_jsonl(&gen.manifest).unwrap();
    let scores: Vec<ScoreRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| ScoreRecord {
            image_id: r.id.clone(),
            path: r.path.clone(),
            prompt: r.prompt.clone(),
            reward: if i % 2 == 0 { 0.9 } else { 0.1 },
            clip_score: 0.0,
        })
        .collect();
    write_jsonl(&d.join("scores.jsonl"), &scores).unwrap();
    let pre = d.join("pre");
    std::fs::create_dir_all(&pre).unwrap();
    let mut captions = String::new();
    for i in 0..4u8 {
        let img = image::RgbImage::from_fn(40, 32, |x, y| {
            image::Rgb([20 * i, (x * 6) as u8, (y * 7) as u8])
        });
        img.save(pre.join(format!("{i}.png"))).unwrap();
        captions.push_str(&format!(
            "{{\"file\":\"{i}.png\",\"caption\":\"a picture number {i}\"}}\n"
        ));
    }
    std::fs::write(pre.join("captions.jsonl"), captions).unwrap();
    Setup {
        sd: tiny.sd,
        clip: tiny.clip,
        manifest: gen.manifest,
        scores: d.join("scores.jsonl"),
        pretrain: pre,
        dir,
    }
}

pub fn config(steps: u64, beta: f64) -> FinetuneConfig {
    FinetuneConfig {
        optim: AdamWConfig {
            lr: 1e-4,
            ..Default::default()
        },
        warmup_steps: 0,
        decay: Decay::Constant,
        steps,
        model_batch: 2,
        pre_batch: 2,
        grad_accum: 2,
        max_grad_norm: 1.0,
        beta,
        precision: Precision::F32,
        ema_decay: None,
        seed: 3,
        checkpoint_every: 0,
        keep_checkpoints: 2,
        cache_latents: false,
        caption_dropout: 0.0,
        timestep_range: None,
        snr_gamma: None,
        input_perturbation: 0.0,
        trainable: None,
    }
}

pub fn finetune(
    s: &Setup,
    out: &str,
    c: &FinetuneConfig,
    pretrain: Option<&Path>,
    resume: bool,
) -> anyhow::Result<rlhf_t2i::stages::finetune::FinetuneReport> {
    let inputs = FinetuneInputs {
        model: s.sd.display().to_string(),
        manifest: s.manifest.clone(),
        weights: Weights::Scores(s.scores.clone()),
        pretrain: pretrain.map(Path::to_path_buf),
        out: s.dir.path().join(out),
        resume,
    };
    run(&inputs, c, &Device::Cpu, false)
}

pub fn unet_weights(s: &Setup, out: &str) -> Vec<(String, Vec<f32>)> {
    let t = read_safetensors(
        &s.dir
            .path()
            .join(out)
            .join("model/unet/diffusion_pytorch_model.safetensors"),
    )
    .unwrap();
    let mut v: Vec<(String, Vec<f32>)> = t
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The loss over 15 AdamW steps on one fixed batch, its inputs noised with `noise + p * xi`
/// (DDPM-IP) where `perturbation` is `Some(p)`.
fn fixed_batch_losses(perturbation: Option<f64>) -> Vec<f32> {
    let s = setup(1, 2);
    let sd = load_base(&ModelSource::Local(s.sd.clone()), None, &Device::Cpu).unwrap();
    let mut r = rng(1);
    let x0 = randn(&mut r, &[2, 4, 8, 8], DType::F32, &Device::Cpu).unwrap();
    let noise = randn(&mut r, &[2, 4, 8, 8], DType::F32, &Device::Cpu).unwrap();
    let extra = perturbation
        .map(|p| (randn(&mut r, &[2, 4, 8, 8], DType::F32, &Device::Cpu).unwrap() * p).unwrap());
    let ctx = sd.encode_prompts(&["One dog.", "Two cats."]).unwrap();
    let mut opt = AdamW::new(
        sd.unet_params.named_vars(),
        AdamWConfig {
            lr: 1e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..15 {
        let (loss, _) = weighted_denoising_loss(
            &sd.unet,
            &sd.schedule,
            &x0,
            &noise,
            &[300, 700],
            &ctx,
            &[0.5, 0.5],
            extra.as_ref(),
        )
        .unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        opt.step(&loss.backward().unwrap(), 1e-3, 1.0).unwrap();
    }
    losses
}

#[test]
fn loss_falls_on_a_fixed_batch() {
    let losses = fixed_batch_losses(None);
    println!("fixed-batch loss: {:.4} -> {:.4}", losses[0], losses[14]);
    assert!(losses[14] < 0.5 * losses[0], "{losses:?}");
}

/// With DDPM-IP the input differs from the target's noised image, so the first loss differs,
/// and training still brings it down.
#[test]
fn loss_falls_on_a_fixed_batch_with_perturbed_inputs() {
    let plain = fixed_batch_losses(None);
    let losses = fixed_batch_losses(Some(0.5));
    println!(
        "perturbed fixed-batch loss: {:.4} -> {:.4}",
        losses[0], losses[14]
    );
    assert!(
        (losses[0] - plain[0]).abs() > 1e-3 * plain[0],
        "{losses:?} vs {plain:?}"
    );
    assert!(losses[14] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn an_image_of_reward_zero_contributes_nothing() {
    let s = setup(1, 2);
    let sd = load_base(&ModelSource::Local(s.sd.clone()), None, &Device::Cpu).unwrap();
    let mut r = rng(2);
    let dev = Device::Cpu;
    let a = randn(&mut r, &[1, 4, 8, 8], DType::F32, &dev).unwrap();
    let (b, c) = (
        randn(&mut r, &[1, 4, 8, 8], DType::F32, &dev).unwrap(),
        (randn(&mut r, &[1, 4, 8, 8], DType::F32, &dev).unwrap() * 3.0).unwrap(),
    );
    let noise = randn(&mut r, &[2, 4, 8, 8], DType::F32, &dev).unwrap();
    let grads = |other: &Tensor, prompt: &str| {
        let x0 = Tensor::cat(&[&a, other], 0).unwrap();
        let ctx = sd.encode_prompts(&["One dog.", prompt]).unwrap();
        let (loss, _) = weighted_denoising_loss(
            &sd.unet,
            &sd.schedule,
            &x0,
            &noise,
            &[500, 100],
            &ctx,
            &[0.5, 0.0],
            None,
        )
        .unwrap();
        let g = loss.backward().unwrap();
        sd.unet_params
            .named_vars()
            .into_iter()
            .map(|(n, v)| {
                (
                    n,
                    g.get(v.as_tensor())
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (g1, g2) = (
        grads(&b, "Two cats."),
        grads(&c, "A blue colored car on the moon."),
    );
    let mut nonzero = 0;
    for ((n, x), (_, y)) in g1.iter().zip(&g2) {
        assert_eq!(x, y, "{n}: a zero-reward image changed the gradient");
        nonzero += x.iter().any(|v| *v != 0.0) as usize;
    }
    assert!(
        nonzero > g1.len() / 2,
        "the reward-0.5 image must still give gradients"
    );
}

#[test]
fn beta_zero_ignores_the_pretraining_set() {
    let s = setup(2, 4);
    let c = config(2, 0.0);
    finetune(&s, "a", &c, Some(&s.pretrain), false).unwrap();
    finetune(&s, "b", &c, None, false).unwrap();
    assert_eq!(unet_weights(&s, "a"), unet_weights(&s, "b"));
    // ... while beta > 0 uses it.
    finetune(&s, "c", &config(2, 1.0), Some(&s.pretrain), false).unwrap();
    assert_ne!(unet_weights(&s, "a"), unet_weights(&s, "c"));
    let logs: Vec<rlhf_t2i::finetune::trainer::StepLog> =
        read_jsonl(&s.dir.path().join("c/metrics.jsonl")).unwrap();
    assert!(logs
        .iter()
        .all(|l| l.loss_pre > 0.0 && l.loss_model > 0.0 && l.grad_norm > 0.0));
}

#[test]
fn resume_equals_an_uninterrupted_run_bitwise() {
    let s = setup(2, 4);
    let mut c = config(4, 1.0);
    c.checkpoint_every = 2;
    c.ema_decay = Some(0.9);
    finetune(&s, "full", &c, Some(&s.pretrain), false).unwrap();
    // The same run killed after step 2 (its checkpoint written), then resumed.
    let mut first = c.clone();
    first.steps = 2;
    finetune(&s, "resumed", &first, Some(&s.pretrain), false).unwrap();
    finetune(&s, "resumed", &c, Some(&s.pretrain), true).unwrap();
    assert_eq!(unet_weights(&s, "full"), unet_weights(&s, "resumed"));
    let logs: Vec<rlhf_t2i::finetune::trainer::StepLog> =
        read_jsonl(&s.dir.path().join("resumed/metrics.jsonl")).unwrap();
    assert_eq!(
        logs.iter().map(|l| l.step).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let full: Vec<rlhf_t2i::finetune::trainer::StepLog> =
        read_jsonl(&s.dir.path().join("full/metrics.jsonl")).unwrap();
    assert_eq!(
        logs.iter().map(|l| l.loss).collect::<Vec<_>>(),
        full.iter().map(|l| l.loss).collect::<Vec<_>>()
    );
    // Other settings cannot resume this run.
    let mut other = c.clone();
    other.optim.lr = 1e-3;
    let msg = format!(
        "{:#}",
        finetune(&s, "resumed", &other, Some(&s.pretrain), true)
            .err()
            .unwrap()
    );
    assert!(msg.contains("other settings"), "{msg}");
}

#[test]
fn a_diverging_run_stops_with_its_step_and_saves_nothing_corrupt() {
    let s = setup(2, 2);
    let mut c = config(5, 0.0);
    c.optim.lr = 1e12;
    c.max_grad_norm = 0.0;
    c.checkpoint_every = 1;
    let msg = format!("{:#}", finetune(&s, "nan", &c, None, false).err().unwrap());
    assert!(msg.contains("step"), "{msg}");
    println!("diverging run: {msg}");
    for step in rlhf_t2i::train::checkpoint::list(&s.dir.path().join("nan/checkpoints")).unwrap() {
        let dir = s
            .dir
            .path()
            .join("nan/checkpoints")
            .join(rlhf_t2i::train::checkpoint::dir_name(step));
        for (_, t) in read_safetensors(&dir.join("unet.safetensors")).unwrap() {
            assert!(t
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .is_finite());
        }
    }
}

#[test]
fn the_output_folder_is_a_loadable_model() {
    let s = setup(2, 2);
    let r = finetune(&s, "out", &config(1, 0.0), None, false).unwrap();
    let sd = StableDiffusion::load(
        &ModelSource::Local(r.model_dir.clone()),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let img = sd
        .decode_to_images(&randn(&mut rng(0), &[1, 4, 8, 8], DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(img[0].dimensions(), (32, 32));
    for f in [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "vae/config.json",
        "text_encoder/model.safetensors",
        "tokenizer/tokenizer.json",
        "unet/config.json",
    ] {
        assert!(r.model_dir.join(f).is_file(), "{f}");
    }
    assert!(s.dir.path().join("out/curves.svg").is_file());
}

#[test]
fn a_time_budget_fixes_the_step_count_so_the_schedule_ends_in_time() {
    use rlhf_t2i::finetune::trainer::Trainer;
    let s = setup(2, 2);
    let sd = load_base(&ModelSource::Local(s.sd.clone()), None, &Device::Cpu).unwrap();
    let items =
        rlhf_t2i::finetune::data::pretrain_dataset(&s.pretrain.join("captions.jsonl")).unwrap();
    let mut c = config(1_000_000, 0.0);
    c.warmup_steps = 4;
    c.grad_accum = 1;
    c.decay = Decay::Cosine;
    let mut t = Trainer::new(&sd, c, items, Vec::new(), &s.dir.path().join("tb"), false).unwrap();
    t.time_budget = Some(std::time::Duration::from_secs(8));
    let logs = t.run(|_| {}).unwrap();
    // The total was fixed after step 20 (the warm-up, at least 20 steps, measured over its second
    // half) and the run stopped exactly there, its cosine schedule run down.
    assert!(logs.len() > 20, "{} steps", logs.len());
    assert_eq!(t.config.steps, logs.len() as u64);
    let last = logs.last().unwrap();
    assert_eq!(last.step, t.config.steps);
    assert!(last.lr < 0.01 * 1e-4, "lr at the end {}", last.lr);
    println!("time budget 8 s: {} steps", logs.len());
}

#[test]
fn the_trainer_refuses_a_unet_loaded_with_other_trainable_parameters() {
    use rlhf_t2i::finetune::trainer::Trainer;
    let s = setup(1, 2);
    let source = ModelSource::Local(s.sd.clone());
    let items =
        rlhf_t2i::finetune::data::pretrain_dataset(&s.pretrain.join("captions.jsonl")).unwrap();
    let mut c = config(1, 0.0);
    c.trainable = Some(vec!["attn2".into()]);
    // Loaded with every parameter trainable, the config's attn2 alone would not hold.
    let all = load_base(&source, None, &Device::Cpu).unwrap();
    let out = s.dir.path().join("t");
    let e = Trainer::new(&all, c.clone(), items.clone(), Vec::new(), &out, false)
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("is trainable"), "{e:#}");
    let some = load_base(&source, c.trainable.as_deref(), &Device::Cpu).unwrap();
    let e = Trainer::new(
        &some,
        config(1, 0.0),
        items.clone(),
        Vec::new(),
        &out,
        false,
    )
    .err()
    .expect("refused");
    assert!(format!("{e:#}").contains("is frozen"), "{e:#}");
    assert!(Trainer::new(&some, c, items, Vec::new(), &out, false).is_ok());
}

#[test]
fn resuming_into_a_checkpoint_of_another_model_says_so() {
    use rlhf_t2i::models::unet::{UNet2DConditionModel, UNetConfig};
    use rlhf_t2i::weights::ParamStore;
    let s = setup(1, 2);
    let mut c = config(1, 0.0);
    c.checkpoint_every = 1;
    finetune(&s, "out", &c, None, false).unwrap();
    // The same architecture at another width: same tensor names, other shapes.
    let other = s.dir.path().join("other-sd");
    super::common::copy_dir(&s.sd, &other);
    let path = other.join("unet/config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["block_out_channels"] = serde_json::json!([64, 64]);
    std::fs::write(&path, cfg.to_string()).unwrap();
    let store = ParamStore::random(9, "wider", Mode::Frozen, DType::F32, &Device::Cpu);
    let parsed: UNetConfig = serde_json::from_value(cfg).unwrap();
    UNet2DConditionModel::new(store.var_builder(), &parsed).unwrap();
    store
        .save(
            &other.join("unet/diffusion_pytorch_model.safetensors"),
            DType::F32,
        )
        .unwrap();
    let inputs = FinetuneInputs {
        model: other.display().to_string(),
        manifest: s.manifest.clone(),
        weights: Weights::Scores(s.scores.clone()),
        pretrain: None,
        out: s.dir.path().join("out"),
        resume: true,
    };
    let err = run(&inputs, &c, &Device::Cpu, false)
        .err()
        .map(|e| format!("{e:#}"))
        .expect("resuming another model's checkpoint must fail");
    assert!(
        err.contains("belongs to another model") && err.contains("of shape"),
        "{err}"
    );
}

#[test]
fn a_timestep_range_is_used_and_checked() {
    let s = setup(1, 2);
    // Same seed, so the same draws of data and noise: only the timesteps differ. (That the
    // range holds exactly is checked through min-SNR weighting in the next test.)
    let loss_in = |range: [u32; 2], out: &str| {
        let mut c = config(1, 0.0);
        c.timestep_range = Some(range);
        finetune(&s, out, &c, None, false).unwrap().steps[0].loss
    };
    let (low, high) = (loss_in([0, 10], "low"), loss_in([990, 1000], "high"));
    println!("first-step loss: t in 0..10 {low:.4}, t in 990..1000 {high:.4}");
    assert_ne!(low, high);
    assert_eq!(loss_in([0, 10], "low2"), low);
    let mut c = config(1, 0.0);
    c.timestep_range = Some([500, 1001]);
    let e = finetune(&s, "bad", &c, None, false).err().expect("refused");
    assert!(format!("{e:#}").contains("timestep_range"), "{e:#}");
}

#[test]
fn bf16_on_the_cpu_is_refused_with_the_fix() {
    let s = setup(1, 2);
    let mut c = config(1, 0.0);
    c.precision = Precision::Bf16;
    let e = finetune(&s, "bf16", &c, None, false)
        .err()
        .expect("refused");
    let msg = format!("{e:#}");
    assert!(msg.contains("--precision f32"), "{msg}");
    assert!(!s.dir.path().join("bf16/model").exists());
}

#[test]
fn only_the_trainable_parameters_change() {
    let s = setup(1, 2);
    let mut c = config(2, 0.0);
    c.trainable = Some(vec!["attn2".into()]);
    finetune(&s, "x", &c, None, false).unwrap();
    let base = read_safetensors(&s.sd.join("unet/diffusion_pytorch_model.safetensors")).unwrap();
    let (mut moved, mut kept) = (0, 0);
    for (name, after) in unet_weights(&s, "x") {
        let before = base[&name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        if name.contains("attn2") {
            moved += usize::from(before != after);
        } else {
            assert_eq!(before, after, "{name} is not trainable but changed");
            kept += 1;
        }
    }
    assert!(moved > 0 && kept > moved, "moved {moved}, kept {kept}");
    // The frozen parameters (plain tensors, no gradients) are saved too, with an EMA as well
    // (it averages the trainable ones only).
    let attn2 = base.keys().filter(|k| k.contains("attn2")).count();
    assert_eq!((moved <= attn2, kept), (true, base.len() - attn2));
    c.ema_decay = Some(0.9);
    finetune(&s, "ema", &c, None, false).unwrap();
    let ema = unet_weights(&s, "ema");
    assert_eq!(ema.len(), base.len());
    for (name, after) in ema {
        let before = base[&name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(name.contains("attn2") || before == after, "{name} changed");
    }
    c.ema_decay = None;
    c.trainable = Some(vec!["attn9".into()]);
    let e = finetune(&s, "bad", &c, None, false).err().expect("refused");
    assert!(
        format!("{e:#}").contains("`attn9` is in no UNet parameter"),
        "{e:#}"
    );
}

#[test]
fn min_snr_weighting_leaves_noisy_timesteps_and_damps_clean_ones() {
    let s = setup(1, 2);
    let loss_with = |range: [u32; 2], gamma: Option<f64>, out: &str| {
        let mut c = config(1, 0.0);
        c.timestep_range = Some(range);
        c.snr_gamma = gamma;
        finetune(&s, out, &c, None, false).unwrap().steps[0].loss
    };
    // The tiny model predicts epsilon, where the weight is min(SNR, 5) / SNR: 1 where the
    // SNR is below 5 (every t >= 990), and under 5 / SNR(10) where t < 10.
    let (noisy, noisy_w) = (
        loss_with([990, 1000], None, "n"),
        loss_with([990, 1000], Some(5.0), "nw"),
    );
    assert_eq!(noisy, noisy_w);
    let (clean, clean_w) = (
        loss_with([0, 10], None, "c"),
        loss_with([0, 10], Some(5.0), "cw"),
    );
    println!("t < 10: loss {clean:.4}, min-SNR-5 weighted {clean_w:.6}");
    assert!(clean_w < 0.05 * clean, "{clean_w} vs {clean}");
    let mut c = config(1, 0.0);
    c.snr_gamma = Some(0.0);
    let e = finetune(&s, "bad", &c, None, false).err().expect("refused");
    assert!(format!("{e:#}").contains("snr_gamma"), "{e:#}");
}
