//! The shape world's tokenizer: one token per word of its vocabulary (a `tokenizers` WordLevel
//! model, lower-cased, split on whitespace and punctuation), with CLIP's start and end tokens, so
//! the world's text encoder needs a 48-row embedding instead of CLIP's 49,408.

use crate::prompts::Vocabulary;
use crate::tokenizer::{END_OF_TEXT, START_OF_TEXT};
use anyhow::{bail, Result};
use serde_json::json;
use std::collections::BTreeSet;

/// Rows of the world text encoder's embedding (`configs/world/*.json`: `vocab_size`).
pub const VOCAB_SIZE: usize = 48;

/// Every word the grammar can produce from `vocab`, plus the fixed template words.
fn words(vocab: &Vocabulary) -> BTreeSet<String> {
    let mut w: BTreeSet<String> = ["a", "an", "colored", "."].map(String::from).into();
    let mut add = |s: &str| {
        for t in s.split(|c: char| c.is_whitespace() || c == '.') {
            if !t.is_empty() {
                w.insert(t.to_lowercase());
            }
        }
    };
    for c in &vocab.colors {
        add(c);
    }
    for c in &vocab.counts {
        add(&c.word);
    }
    for b in &vocab.backgrounds {
        add(&b.phrase);
    }
    for o in &vocab.objects {
        add(&o.name);
        add(&o.plural);
    }
    w
}

/// The `tokenizer.json` text for `vocab`.
pub fn tokenizer_json(vocab: &Vocabulary) -> Result<String> {
    let mut ids = serde_json::Map::new();
    ids.insert(START_OF_TEXT.into(), json!(0));
    ids.insert(END_OF_TEXT.into(), json!(1));
    ids.insert("<|unk|>".into(), json!(2));
    for (i, w) in words(vocab).into_iter().enumerate() {
        ids.insert(w, json!(i + 3));
    }
    if ids.len() > VOCAB_SIZE {
        bail!(
            "the world vocabulary has {} words; the text encoder has {VOCAB_SIZE} rows",
            ids.len()
        );
    }
    let special = |id: u32, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let t = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, START_OF_TEXT), special(1, END_OF_TEXT)],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "<|unk|>"}
    });
    Ok(serde_json::to_string_pretty(&t)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::ClipTokenizer;

    #[test]
    fn every_prompt_word_has_its_own_token() {
        let vocab = crate::world::vocabulary();
        let dir = std::env::temp_dir().join(format!("rlhf-world-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, tokenizer_json(&vocab).unwrap()).unwrap();
        let tok = ClipTokenizer::from_file(&path).unwrap();
        let ids = tok
            .encode_raw("Two red circles on a white background.")
            .unwrap();
        assert_eq!(ids.len(), 10, "{ids:?}");
        assert_eq!((ids[0], ids[9]), (0, 1));
        assert!(
            ids[1..9]
                .iter()
                .all(|&i| i > 2 && (i as usize) < VOCAB_SIZE),
            "{ids:?}"
        );
        let a = tok.encode_raw("A red colored circle.").unwrap();
        let b = tok.encode_raw("A red colored square.").unwrap();
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
        let unk = tok.encode_raw("A dog.").unwrap();
        assert_eq!(unk[2], 2, "words outside the world are <|unk|>");
        let padded = tok.encode_padded("One circle.").unwrap();
        assert_eq!((padded.len(), padded[4], padded[76]), (77, 1, 1));
    }
}
