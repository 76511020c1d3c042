//! Checkpoints as folders `step-NNNNNNNN/` holding named tensor files and a JSON state, written
//! to a temporary folder and renamed into place, so a kill never leaves a half-written one.
//! Keeping only the newest N is a pure function of the folder names.

use crate::weights::{read_safetensors, save_safetensors};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The named tensors of one file of a checkpoint.
pub type TensorFile = HashMap<String, Tensor>;

pub fn dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// Steps of the complete checkpoints under `root`, ascending.
pub fn list(root: &Path) -> Result<Vec<u64>> {
    if !root.exists() {
        return Ok(vec![]);
    }
    let mut steps: Vec<u64> = std::fs::read_dir(root)
        .with_context(|| format!("could not list {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("step-"))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    steps.sort_unstable();
    Ok(steps)
}

/// Which checkpoints to delete so that the newest `keep` remain.
pub fn to_delete(steps: &[u64], keep: usize) -> Vec<u64> {
    let n = steps.len().saturating_sub(keep.max(1));
    steps[..n].to_vec()
}

/// Write `files` (name -> tensors) and `state` as checkpoint `step`, then prune to `keep`.
pub fn save<S: Serialize>(
    root: &Path,
    step: u64,
    files: &[(&str, &HashMap<String, Tensor>)],
    state: &S,
    keep: usize,
) -> Result<PathBuf> {
    let final_dir = root.join(dir_name(step));
    let tmp = root.join(format!(".{}.tmp-{}", dir_name(step), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("could not create {}", tmp.display()))?;
    for (name, tensors) in files {
        save_safetensors(tensors, &tmp.join(format!("{name}.safetensors")))?;
    }
    crate::io::atomic::write_atomic(
        &tmp.join("state.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    std::fs::rename(&tmp, &final_dir)
        .with_context(|| format!("could not move checkpoint into {}", final_dir.display()))?;
    for old in to_delete(&list(root)?, keep) {
        std::fs::remove_dir_all(root.join(dir_name(old)))?;
    }
    Ok(final_dir)
}

/// Read checkpoint folder `dir`: the named tensor files and the state.
pub fn load<S: DeserializeOwned>(
    dir: &Path,
    names: &[&str],
) -> Result<(HashMap<String, TensorFile>, S)> {
    let state_path = dir.join("state.json");
    if !state_path.is_file() {
        bail!("{} is not a checkpoint (no state.json)", dir.display());
    }
    let state: S = crate::weights::read_config(&state_path)?;
    let mut files = HashMap::new();
    for n in names {
        files.insert(
            n.to_string(),
            read_safetensors(&dir.join(format!("{n}.safetensors")))?,
        );
    }
    Ok((files, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_newest() {
        assert_eq!(to_delete(&[10, 20, 30, 40], 2), vec![10, 20]);
        assert!(to_delete(&[10], 3).is_empty());
    }

    #[test]
    fn save_list_load_prune() {
        let dir = tempfile::tempdir().unwrap();
        let t: HashMap<String, Tensor> = HashMap::from([(
            "w".to_string(),
            Tensor::new(&[1f32, 2.], &candle_core::Device::Cpu).unwrap(),
        )]);
        for step in [5, 10, 15] {
            save(
                dir.path(),
                step,
                &[("model", &t)],
                &serde_json::json!({ "step": step }),
                2,
            )
            .unwrap();
        }
        assert_eq!(list(dir.path()).unwrap(), vec![10, 15]);
        let (files, state): (_, serde_json::Value) =
            load(&dir.path().join(dir_name(15)), &["model"]).unwrap();
        assert_eq!(state["step"], 15);
        assert_eq!(
            files["model"]["w"].to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')));
    }
}
