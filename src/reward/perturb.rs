//! Rule-based prompt perturbations for the auxiliary prompt-classification loss (the paper's
//! Section 3.2 and Appendix E): change the count, the color or the background word of a prompt,
//! one attribute at a time, rendered through the same grammar as the prompts themselves.

use crate::prompts::{PromptRecord, Vocabulary};
use anyhow::{Context, Result};
use std::collections::HashSet;

/// Every prompt that differs from `p` in exactly one of its attributes, in a fixed order (counts,
/// colors, backgrounds as listed in the vocabulary). Never the original text, never a duplicate.
pub fn perturbations(p: &PromptRecord, vocab: &Vocabulary) -> Result<Vec<String>> {
    let mut seen: HashSet<String> = HashSet::from([p.text.clone()]);
    let mut out = Vec::new();
    let mut push = |text: String| {
        if seen.insert(text.clone()) {
            out.push(text);
        }
    };
    let render = |count: Option<u32>, color: Option<&str>, background: Option<&str>| {
        vocab
            .render(p.category, &p.object, count, color, background)
            .with_context(|| format!("perturbing prompt {:?} ({})", p.text, p.id))
    };
    let (color, background) = (p.color.as_deref(), p.background.as_deref());
    if let Some(n) = p.count {
        for c in vocab.counts.iter().filter(|c| c.value != n) {
            push(render(Some(c.value), color, background)?);
        }
    }
    if let Some(col) = color {
        for c in vocab.colors.iter().filter(|c| c.as_str() != col) {
            push(render(p.count, Some(c), background)?);
        }
    }
    if let Some(bg) = background {
        for b in vocab.backgrounds.iter().filter(|b| b.name != bg) {
            push(render(p.count, color, Some(&b.name))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::{eval_prompts_builtin, training_prompts, Category};

    fn by_text(text: &str) -> PromptRecord {
        eval_prompts_builtin()
            .into_iter()
            .find(|p| p.text == text)
            .unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn each_category_changes_its_own_attribute() {
        let v = Vocabulary::builtin();
        let count = perturbations(&by_text("Two dogs."), &v).unwrap();
        assert_eq!(count.len(), v.counts.len() - 1);
        assert!(
            count.contains(&"Three dogs.".to_string()) && count.contains(&"One dog.".to_string())
        );
        let color = perturbations(&by_text("A red colored dog."), &v).unwrap();
        assert_eq!(color.len(), v.colors.len() - 1);
        assert!(color.contains(&"A blue colored dog.".to_string()));
        let bg = perturbations(&by_text("A dog on the moon."), &v).unwrap();
        assert_eq!(bg.len(), v.backgrounds.len() - 1);
        assert!(bg.contains(&"A dog in the forest.".to_string()));
    }

    #[test]
    fn unseen_objects_and_fixed_extra_attributes() {
        let v = Vocabulary::builtin();
        // "Two brown bears." is a count prompt that also fixes the color: both may change.
        let p = perturbations(&by_text("Two brown bears."), &v).unwrap();
        assert!(p.contains(&"Three brown bears.".to_string()));
        assert!(p.contains(&"Two red bears.".to_string()));
        assert_eq!(p.len(), v.counts.len() - 1 + v.colors.len() - 1);
        let rose = perturbations(&by_text("A rose in the sea."), &v).unwrap();
        assert!(rose.iter().all(|t| t.contains("rose")));
    }

    #[test]
    fn combinations_never_repeat_the_original_or_themselves() {
        let v = Vocabulary::builtin();
        let prompts = training_prompts(&v, 0);
        let combos: Vec<_> = prompts
            .iter()
            .filter(|p| p.category == Category::Combination)
            .take(200)
            .collect();
        assert!(!combos.is_empty());
        for p in combos {
            let alts = perturbations(p, &v).unwrap();
            let attrs = [p.count.is_some(), p.color.is_some(), p.background.is_some()];
            let expected = [v.counts.len(), v.colors.len(), v.backgrounds.len()]
                .iter()
                .zip(attrs)
                .filter(|(_, on)| *on)
                .map(|(n, _)| n - 1)
                .sum::<usize>();
            assert_eq!(alts.len(), expected, "{}", p.text);
            assert!(!alts.contains(&p.text));
            let uniq: HashSet<_> = alts.iter().collect();
            assert_eq!(uniq.len(), alts.len());
        }
    }
}
