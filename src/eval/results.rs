//! What `eval` measures, per model: means with standard errors overall, per category and per
//! split, and FID with its sample counts; written to `eval.json` and the HTML report.

use crate::diffusion::sampler::SampleSettings;
use crate::io::scores::ScoreRecord;
use crate::stats::mean_se;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub se: f64,
    pub n: usize,
}

pub fn summary(xs: &[f64]) -> Summary {
    let (mean, se) = mean_se(xs);
    Summary {
        mean,
        se,
        n: xs.len(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Fid {
    pub value: f64,
    pub model_images: usize,
    /// 0 when unknown (pytorch-fid's `.npz` statistics do not record it).
    pub reference_images: usize,
}

impl Fid {
    /// The reference sample count for display (`?` when unknown).
    pub fn reference_count(&self) -> String {
        if self.reference_images == 0 {
            "?".into()
        } else {
            self.reference_images.to_string()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelEval {
    pub name: String,
    pub model: String,
    pub reward: Summary,
    pub clip_score: Summary,
    pub reward_by_category: BTreeMap<String, Summary>,
    pub reward_by_split: BTreeMap<String, Summary>,
    pub clip_by_category: BTreeMap<String, Summary>,
    pub clip_by_split: BTreeMap<String, Summary>,
    pub fid: Option<Fid>,
    #[serde(skip)]
    pub scores: Vec<ScoreRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub prompts: String,
    pub images_per_prompt: u32,
    pub sampling: SampleSettings,
    pub models: Vec<ModelEval>,
    /// The blind human A/B evaluation, when votes were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human: Option<crate::compare::summary::Summary>,
}

impl EvalReport {
    /// The Table 3 comparison as text: one row per model.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:>8} {:>22} {:>18} {:>18}\n",
            "model", "images", "FID (n model / ref)", "avg reward", "CLIP score"
        );
        for m in &self.models {
            let fid = m.fid.as_ref().map_or("-".to_string(), |f| {
                format!(
                    "{:.2} ({}/{})",
                    f.value,
                    f.model_images,
                    f.reference_count()
                )
            });
            s.push_str(&format!(
                "{:<14} {:>8} {:>22} {:>10.4} ± {:.4} {:>10.2} ± {:.2}\n",
                m.name,
                m.reward.n,
                fid,
                m.reward.mean,
                m.reward.se,
                m.clip_score.mean,
                m.clip_score.se
            ));
        }
        s
    }
}
