//! `rlhf-t2i prompts`: the paper's prompt sets as JSONL, with a summary by category.

use crate::prompts::{
    eval_prompts_builtin, summary, try_training_prompts, write_prompts_jsonl, PromptRecord,
    Vocabulary,
};
use anyhow::Result;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PromptSet {
    /// Count / color / background / combination prompts over the seen objects (feedback data).
    Train,
    /// The 120 evaluation prompts of the paper's Table 4 (60 seen, 60 unseen).
    Eval,
}

/// `n` records spread evenly over the whole list (so every category stays represented).
pub fn spread_subset(prompts: Vec<PromptRecord>, n: usize) -> Vec<PromptRecord> {
    let len = prompts.len();
    if n >= len {
        return prompts;
    }
    let keep: std::collections::HashSet<usize> = (0..n).map(|i| i * len / n).collect();
    prompts
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, p)| p)
        .collect()
}

/// Build the set, write it to `out`, and return the records and the printed summary.
pub fn run(
    set: PromptSet,
    vocabulary: Option<&Path>,
    seed: u64,
    limit: Option<usize>,
    out: &Path,
) -> Result<(Vec<PromptRecord>, String)> {
    let mut prompts = match set {
        PromptSet::Train => {
            let vocab = match vocabulary {
                Some(p) => Vocabulary::load(p)?,
                None => Vocabulary::builtin(),
            };
            try_training_prompts(&vocab, seed)?
        }
        PromptSet::Eval => eval_prompts_builtin(),
    };
    if let Some(n) = limit {
        prompts = spread_subset(prompts, n);
    }
    write_prompts_jsonl(out, &prompts)?;
    let table = summary(&prompts);
    Ok((prompts, table))
}
