//! `rlhf-t2i finetune`: reward-weighted fine-tuning of the UNet with the pre-training loss.
//! Writes `metrics.jsonl`, `curves.svg`, checkpoints, and the fine-tuned model in diffusers
//! layout under `OUT/model`.

use crate::finetune::config::FinetuneConfig;
use crate::finetune::data::{model_dataset, pretrain_dataset, Weights};
use crate::finetune::output::write_model_folder;
use crate::finetune::trainer::{load_base, StepLog, Trainer};
use crate::io::atomic::write_atomic;
use crate::report::plot::{line_chart, Series};
use crate::weights::ModelSource;
use anyhow::Result;
use candle_core::{DType, Device};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

pub struct FinetuneInputs {
    pub model: String,
    pub manifest: PathBuf,
    pub weights: Weights,
    pub pretrain: Option<PathBuf>,
    pub out: PathBuf,
    pub resume: bool,
}

pub struct FinetuneReport {
    pub steps: Vec<StepLog>,
    pub model_dir: PathBuf,
}

pub fn run(
    inputs: &FinetuneInputs,
    config: &FinetuneConfig,
    device: &Device,
    show_progress: bool,
) -> Result<FinetuneReport> {
    let source = ModelSource::parse(&inputs.model)?;
    let model_data = model_dataset(&inputs.manifest, &inputs.weights)?;
    let pre_data = match &inputs.pretrain {
        Some(p) if config.beta > 0.0 => pretrain_dataset(p)?,
        _ => Vec::new(),
    };
    let sd = load_base(&source, config.trainable.as_deref(), device)?;
    let mut trainer = Trainer::new(
        &sd,
        config.clone(),
        model_data,
        pre_data,
        &inputs.out,
        inputs.resume,
    )?;
    let bar = if show_progress {
        ProgressBar::new(config.steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("finetune [{bar:30}] {pos}/{len} {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(trainer.step);
    let steps = trainer.run(|l| {
        bar.set_position(l.step);
        bar.set_message(format!(
            "loss {:.4} (model {:.4}, pre {:.4}) {:.1} img/s",
            l.loss, l.loss_model, l.loss_pre, l.images_per_s
        ));
    })?;
    bar.finish_and_clear();
    let model_dir = inputs.out.join("model");
    write_model_folder(&source, &trainer.final_weights(), DType::F32, &model_dir)?;
    write_curves(&inputs.out)?;
    Ok(FinetuneReport { steps, model_dir })
}

/// `curves.svg` from the whole `metrics.jsonl` (across resumes).
fn write_curves(out: &Path) -> Result<()> {
    let logs: Vec<StepLog> = crate::io::jsonl::read_jsonl(&out.join("metrics.jsonl"))?;
    let s = |name: &'static str, f: fn(&StepLog) -> f64| Series {
        name,
        points: logs.iter().map(|l| (l.step as f64, f(l))).collect(),
    };
    let svg = line_chart(
        "fine-tuning",
        "optimizer step",
        "loss",
        &[
            s("loss", |l| l.loss),
            s("reward-weighted", |l| l.loss_model),
            s("pre-training", |l| l.loss_pre),
        ],
    );
    write_atomic(&out.join("curves.svg"), svg.as_bytes())
}
