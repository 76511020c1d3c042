//! CLIP's BPE tokenizer through the `tokenizers` crate: the text side of SD's text encoder and of
//! the reward embedder.
//!
//! A model folder's `tokenizer/tokenizer.json` is used when present. SD1.5's hub folder ships only
//! `vocab.json` + `merges.txt`; those are poured into the built-in CLIP `tokenizer.json` (the
//! same normaliser, pre-tokeniser and post-processor) so both layouts tokenise identically.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use tokenizers::Tokenizer;

/// The CLIP BPE tokenizer built from open_clip's `bpe_simple_vocab_16e6.txt.gz` (MIT; see
/// `assets/clip-tokenizer/`).
pub const BUILTIN_TOKENIZER_JSON: &str = include_str!("../assets/clip-tokenizer/tokenizer.json");

pub const START_OF_TEXT: &str = "<|startoftext|>";
pub const END_OF_TEXT: &str = "<|endoftext|>";

#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
    max_len: usize,
}

impl ClipTokenizer {
    pub fn builtin() -> Result<Self> {
        Self::from_json_str(BUILTIN_TOKENIZER_JSON, "the built-in CLIP tokenizer")
    }

    fn from_json_str(json: &str, origin: &str) -> Result<Self> {
        let inner = Tokenizer::from_bytes(json.as_bytes())
            .map_err(|e| anyhow!("{origin}: not a valid tokenizer.json: {e}"))?;
        Self::from_tokenizer(inner, origin)
    }

    fn from_tokenizer(inner: Tokenizer, origin: &str) -> Result<Self> {
        let id = |t: &str| {
            inner
                .token_to_id(t)
                .ok_or_else(|| anyhow!("{origin}: the vocabulary has no `{t}` token"))
        };
        let (bos, eos) = (id(START_OF_TEXT)?, id(END_OF_TEXT)?);
        Ok(Self {
            inner,
            bos,
            eos,
            pad: eos,
            max_len: 77,
        })
    }

    /// A `tokenizer.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        Self::from_json_str(&json, &path.display().to_string())
    }

    /// `vocab.json` + `merges.txt` (the layout of SD1.5's `tokenizer/` folder).
    pub fn from_vocab_merges(vocab: &Path, merges: &Path) -> Result<Self> {
        let vocab_v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(vocab)
                .with_context(|| format!("could not read {}", vocab.display()))?,
        )
        .with_context(|| format!("{} is not valid JSON", vocab.display()))?;
        let merges_text = std::fs::read_to_string(merges)
            .with_context(|| format!("could not read {}", merges.display()))?;
        let merges_v: Vec<serde_json::Value> = merges_text
            .lines()
            .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
            .map(|l| serde_json::Value::String(l.to_string()))
            .collect();
        let mut template: serde_json::Value = serde_json::from_str(BUILTIN_TOKENIZER_JSON)?;
        let model = template
            .get_mut("model")
            .ok_or_else(|| anyhow!("built-in tokenizer.json has no model"))?;
        model["vocab"] = vocab_v;
        model["merges"] = serde_json::Value::Array(merges_v);
        Self::from_json_str(&template.to_string(), &vocab.display().to_string())
    }

    /// From a component folder holding either file layout.
    pub fn from_dir_files(
        tokenizer_json: Option<&Path>,
        vocab_merges: Option<(&Path, &Path)>,
    ) -> Result<Self> {
        match (tokenizer_json, vocab_merges) {
            (Some(t), _) => Self::from_file(t),
            (None, Some((v, m))) => Self::from_vocab_merges(v, m),
            (None, None) => bail!("no tokenizer.json and no vocab.json + merges.txt"),
        }
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// Token ids with start and end tokens, unpadded and untruncated.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("could not tokenise {text:?}: {e}"))?;
        let mut ids = Vec::with_capacity(enc.get_ids().len() + 2);
        ids.push(self.bos);
        ids.extend_from_slice(enc.get_ids());
        ids.push(self.eos);
        Ok(ids)
    }

    /// Ids truncated to 77 (keeping the end token) and padded with the pad token, as SD's
    /// pipelines call the tokenizer (`padding="max_length", truncation=True`).
    pub fn encode_padded(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode_raw(text)?;
        if ids.len() > self.max_len {
            ids.truncate(self.max_len - 1);
            ids.push(self.eos);
        }
        ids.resize(self.max_len, self.pad);
        Ok(ids)
    }

    /// A `(B, 77)` u32 tensor for a batch of texts.
    pub fn batch_tensor(
        &self,
        texts: &[&str],
        device: &candle_core::Device,
    ) -> Result<candle_core::Tensor> {
        let mut all = Vec::with_capacity(texts.len() * self.max_len);
        for t in texts {
            all.extend(self.encode_padded(t)?);
        }
        Ok(candle_core::Tensor::from_vec(
            all,
            (texts.len(), self.max_len),
            device,
        )?)
    }
}
