//! A trained reward model on disk: `reward.safetensors` (`layers.N.*`) and `reward_config.json`
//! (architecture, the CLIP model whose embeddings it reads, and the training options).

use super::model::{RewardConfig, RewardModel};
use super::train::RewardTrainOptions;
use crate::weights::{read_config, Mode, ParamStore};
use anyhow::{bail, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const WEIGHTS: &str = "reward.safetensors";
pub const CONFIG: &str = "reward_config.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedRewardConfig {
    pub model: RewardConfig,
    /// The CLIP model (as named on the command line) whose embeddings the reward reads.
    pub clip: String,
    pub train: RewardTrainOptions,
}

pub fn save(dir: &Path, params: &ParamStore, config: &SavedRewardConfig) -> Result<()> {
    params.save(&dir.join(WEIGHTS), DType::F32)?;
    crate::io::atomic::write_atomic(
        &dir.join(CONFIG),
        serde_json::to_string_pretty(config)?.as_bytes(),
    )
}

/// Load a reward model; `clip` must name the same embedder it was trained on.
pub fn load(dir: &Path, clip: &str, device: &Device) -> Result<(RewardModel, SavedRewardConfig)> {
    let config: SavedRewardConfig = read_config(&dir.join(CONFIG))?;
    if config.clip != clip {
        bail!(
            "the reward model in {} was trained on embeddings of `{}`, not `{clip}`: pass --clip {}",
            dir.display(),
            config.clip,
            config.clip
        );
    }
    let params = ParamStore::from_file(
        &dir.join(WEIGHTS),
        "reward model",
        Mode::Frozen,
        DType::F32,
        device,
    )?;
    let model = RewardModel::new(params.var_builder(), &config.model)?;
    Ok((model, config))
}
