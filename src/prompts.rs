//! The prompt set of Lee et al. 2023 (Section 3.1, Appendix B, Table 4).
//!
//! Owns: the vocabulary (`prompts/vocabulary.json`: colors, counts, backgrounds, objects with
//! plurals/articles and the seen/unseen split, templates, images per prompt, combination
//! sampling), the prompt grammar (`Vocabulary::render`, the only place prompt texts are built),
//! the generated training prompts (seen objects only), the 120 evaluation prompts of Table 4
//! (`prompts/eval_table4.jsonl`) and the prompts JSONL format (read, atomic write, summary).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Count,
    Color,
    Background,
    Combination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Seen,
    Unseen,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Count,
        Category::Color,
        Category::Background,
        Category::Combination,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Count => "count",
            Category::Color => "color",
            Category::Background => "background",
            Category::Combination => "combination",
        }
    }
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Seen => "seen",
            Split::Unseen => "unseen",
        }
    }
}

/// One prompt with the structured fields it was rendered from. `category` is the attribute under
/// test; a single-attribute category may carry a fixed extra attribute (Table 4's "Two brown
/// bears." is a count prompt with color "brown"); `combination` carries two or more attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptRecord {
    pub id: String,
    pub text: String,
    pub category: Category,
    /// Singular form, as in the vocabulary.
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Background name ("forest", "San Francisco"), not its phrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    pub split: Split,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_per_prompt: Option<u32>,
    /// True where the text was not in the (truncated) paper text but follows its visible pattern.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconstructed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountWord {
    pub value: u32,
    pub word: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackgroundEntry {
    pub name: String,
    pub phrase: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectEntry {
    pub name: String,
    pub plural: String,
    pub article: String,
    pub seen: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesPerPrompt {
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub comment: serde_json::Value,
    pub count: u32,
    pub color: u32,
    pub background: u32,
    pub combination: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combinations {
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub comment: serde_json::Value,
    /// Template keys of the combination kinds to generate, e.g. "count+color".
    pub kinds: Vec<String>,
    /// Total combination prompts to sample; `None` = the full cross product.
    pub max_prompts: Option<usize>,
}

/// The contents of `prompts/vocabulary.json`. Fields are public so callers can override the
/// defaults (e.g. `images_per_prompt`); call `validate` after editing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub comment: serde_json::Value,
    pub colors: Vec<String>,
    pub counts: Vec<CountWord>,
    pub backgrounds: Vec<BackgroundEntry>,
    pub objects: Vec<ObjectEntry>,
    /// Keyed by the attributes present, in the order count, color, background ("count+color").
    pub templates: BTreeMap<String, String>,
    pub images_per_prompt: ImagesPerPrompt,
    pub combinations: Combinations,
}

const FIELDS: [&str; 9] = [
    "Count",
    "count",
    "A",
    "a",
    "object",
    "plural",
    "noun",
    "color",
    "background",
];
const KINDS: [&str; 7] = [
    "count",
    "color",
    "background",
    "count+color",
    "color+background",
    "count+background",
    "count+color+background",
];

enum Seg<'t> {
    Lit(&'t str),
    Field(&'t str),
}

fn parse_template(t: &str) -> Result<Vec<Seg<'_>>> {
    let mut segs = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            bail!("unmatched '}}' in {t:?}");
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| anyhow!("unclosed '{{' in {t:?}"))?
            + open;
        let name = &rest[open + 1..close];
        if !FIELDS.contains(&name) {
            bail!(
                "unknown template field {{{name}}} in {t:?} (known: {})",
                FIELDS.join(", ")
            );
        }
        if open > 0 {
            segs.push(Seg::Lit(&rest[..open]));
        }
        segs.push(Seg::Field(name));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        segs.push(Seg::Lit(rest));
    }
    Ok(segs)
}

fn kind_key(count: bool, color: bool, background: bool) -> String {
    let parts: Vec<&str> = [
        (count, "count"),
        (color, "color"),
        (background, "background"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| *n)
    .collect();
    parts.join("+")
}

fn check_unique<'v>(what: &str, names: impl Iterator<Item = &'v str>) -> Result<()> {
    let mut seen = HashMap::new();
    for (i, n) in names.enumerate() {
        if n.trim().is_empty() {
            bail!("{what}[{i}]: empty name");
        }
        if let Some(j) = seen.insert(n, i) {
            bail!("{what}[{i}]: duplicate {n:?} (also {what}[{j}])");
        }
    }
    Ok(())
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl Vocabulary {
    /// Load and validate a vocabulary file; errors name the file and the offending entry.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("{}: invalid vocabulary", path.display()))
    }

    /// The vocabulary shipped with the crate (`prompts/vocabulary.json`).
    pub fn builtin() -> Self {
        Self::from_json(include_str!("../prompts/vocabulary.json"))
            .unwrap_or_else(|e| panic!("built-in prompts/vocabulary.json is invalid: {e:#}"))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let v: Vocabulary = serde_json::from_str(text)?;
        v.validate()?;
        Ok(v)
    }

    /// Check for duplicates, bad articles and templates with unknown or missing fields.
    pub fn validate(&self) -> Result<()> {
        check_unique("colors", self.colors.iter().map(String::as_str))?;
        check_unique("counts", self.counts.iter().map(|c| c.word.as_str()))?;
        let mut values = HashSet::new();
        for (i, c) in self.counts.iter().enumerate() {
            if c.value == 0 || !values.insert(c.value) {
                bail!("counts[{i}]: value {} is zero or duplicate", c.value);
            }
        }
        check_unique(
            "backgrounds",
            self.backgrounds.iter().map(|b| b.name.as_str()),
        )?;
        check_unique("objects", self.objects.iter().map(|o| o.name.as_str()))?;
        for (i, o) in self.objects.iter().enumerate() {
            if o.article != "a" && o.article != "an" {
                bail!(
                    "objects[{i}] ({}): article must be \"a\" or \"an\", not {:?}",
                    o.name,
                    o.article
                );
            }
            if o.plural.trim().is_empty() {
                bail!("objects[{i}] ({}): empty plural", o.name);
            }
        }
        for (i, b) in self.backgrounds.iter().enumerate() {
            if b.phrase.trim().is_empty() {
                bail!("backgrounds[{i}] ({}): empty phrase", b.name);
            }
        }
        for key in self.templates.keys() {
            if !KINDS.contains(&key.as_str()) {
                bail!(
                    "templates.{key}: unknown template kind (known: {})",
                    KINDS.join(", ")
                );
            }
        }
        for key in KINDS {
            let t = self
                .templates
                .get(key)
                .ok_or_else(|| anyhow!("templates.{key}: missing"))?;
            let segs = parse_template(t).with_context(|| format!("templates.{key}"))?;
            let has = |names: &[&str]| {
                segs.iter()
                    .any(|s| matches!(s, Seg::Field(f) if names.contains(f)))
            };
            let need = [
                ("count", &["Count", "count"][..]),
                ("color", &["color"][..]),
                ("background", &["background"][..]),
            ];
            for (attr, names) in need {
                if key.split('+').any(|k| k == attr) != has(names) {
                    bail!(
                        "templates.{key}: {{{}}} must appear exactly when the kind has {attr}",
                        names[0]
                    );
                }
            }
            if !has(&["object", "plural", "noun"]) {
                bail!("templates.{key}: no {{object}}, {{plural}} or {{noun}}");
            }
        }
        for (i, k) in self.combinations.kinds.iter().enumerate() {
            if !KINDS.contains(&k.as_str()) || !k.contains('+') {
                bail!("combinations.kinds[{i}]: {k:?} is not a combination kind");
            }
        }
        check_unique(
            "combinations.kinds",
            self.combinations.kinds.iter().map(String::as_str),
        )?;
        let ipp = &self.images_per_prompt;
        if [ipp.count, ipp.color, ipp.background, ipp.combination].contains(&0) {
            bail!("images_per_prompt: values must be > 0");
        }
        Ok(())
    }

    pub fn object(&self, name: &str) -> Option<&ObjectEntry> {
        self.objects.iter().find(|o| o.name == name)
    }

    pub fn images_per_prompt(&self, category: Category) -> u32 {
        let ipp = &self.images_per_prompt;
        match category {
            Category::Count => ipp.count,
            Category::Color => ipp.color,
            Category::Background => ipp.background,
            Category::Combination => ipp.combination,
        }
    }

    /// Render the text for structured fields (the one place the grammar lives). All values must
    /// be in the vocabulary; `category` must be consistent with the attributes given.
    pub fn render(
        &self,
        category: Category,
        object: &str,
        count: Option<u32>,
        color: Option<&str>,
        background: Option<&str>,
    ) -> Result<String> {
        let obj = self
            .object(object)
            .ok_or_else(|| anyhow!("unknown object {object:?}"))?;
        let n_attrs = [count.is_some(), color.is_some(), background.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        let ok = match category {
            Category::Count => count.is_some(),
            Category::Color => color.is_some(),
            Category::Background => background.is_some(),
            Category::Combination => n_attrs >= 2,
        };
        if !ok {
            bail!("category {} does not fit the fields (count {count:?}, color {color:?}, background {background:?})", category.as_str());
        }
        let count_word = match count {
            Some(n) => Some(
                self.counts
                    .iter()
                    .find(|c| c.value == n)
                    .map(|c| c.word.as_str())
                    .ok_or_else(|| anyhow!("unknown count {n}"))?,
            ),
            None => None,
        };
        if let Some(c) = color {
            if !self.colors.iter().any(|x| x == c) {
                bail!("unknown color {c:?}");
            }
        }
        let phrase = match background {
            Some(b) => Some(
                self.backgrounds
                    .iter()
                    .find(|x| x.name == b)
                    .map(|x| x.phrase.as_str())
                    .ok_or_else(|| anyhow!("unknown background {b:?}"))?,
            ),
            None => None,
        };
        let key = kind_key(count.is_some(), color.is_some(), background.is_some());
        let template = self
            .templates
            .get(&key)
            .ok_or_else(|| anyhow!("no template for {key}"))?;
        // Articles are resolved after the other fields, from the word that follows them.
        let mut pieces: Vec<(String, Option<bool>)> = Vec::new();
        for seg in parse_template(template)? {
            let text = match seg {
                Seg::Lit(s) => s.to_string(),
                Seg::Field("A") => {
                    pieces.push((String::new(), Some(true)));
                    continue;
                }
                Seg::Field("a") => {
                    pieces.push((String::new(), Some(false)));
                    continue;
                }
                Seg::Field("Count") => capitalize(count_word.unwrap_or_default()),
                Seg::Field("count") => count_word.unwrap_or_default().to_lowercase(),
                Seg::Field("object") => obj.name.clone(),
                Seg::Field("plural") => obj.plural.clone(),
                Seg::Field("noun") => {
                    if count.is_some_and(|n| n != 1) {
                        obj.plural.clone()
                    } else {
                        obj.name.clone()
                    }
                }
                Seg::Field("color") => color.unwrap_or_default().to_string(),
                Seg::Field("background") => phrase.unwrap_or_default().to_string(),
                Seg::Field(f) => bail!("unknown template field {{{f}}}"),
            };
            pieces.push((text, None));
        }
        let mut out = String::new();
        for i in 0..pieces.len() {
            let Some(cap) = pieces[i].1 else {
                out.push_str(&pieces[i].0);
                continue;
            };
            let rest: String = pieces[i + 1..].iter().map(|p| p.0.as_str()).collect();
            let next = rest.split_whitespace().next().unwrap_or("");
            let art = if next == obj.name {
                obj.article.as_str()
            } else if next.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
                "an"
            } else {
                "a"
            };
            out.push_str(&if cap {
                capitalize(art)
            } else {
                art.to_string()
            });
        }
        Ok(out)
    }

    /// A prompt record with its text rendered and its split taken from the object's `seen` flag.
    pub fn record(
        &self,
        id: String,
        category: Category,
        object: &str,
        count: Option<u32>,
        color: Option<&str>,
        background: Option<&str>,
    ) -> Result<PromptRecord> {
        Ok(PromptRecord {
            id,
            category,
            object: object.to_string(),
            count,
            text: self.render(category, object, count, color, background)?,
            color: color.map(str::to_string),
            background: background.map(str::to_string),
            split: if self.object(object).is_some_and(|o| o.seen) {
                Split::Seen
            } else {
                Split::Unseen
            },
            images_per_prompt: Some(self.images_per_prompt(category)),
            reconstructed: false,
        })
    }
}

/// SplitMix64: a small, portable, seeded generator (the sampling must not depend on crate versions).
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, ((self.next() as u128 * (i as u128 + 1)) >> 64) as usize);
        }
    }
}

/// Training prompts: every single-attribute prompt over the seen objects, plus the combination
/// prompts (all of them, or `combinations.max_prompts` sampled with `seed`, spread as evenly as
/// possible over (kind, object) strata). Deterministic for a vocabulary and seed.
pub fn try_training_prompts(vocab: &Vocabulary, seed: u64) -> Result<Vec<PromptRecord>> {
    let seen: Vec<&str> = vocab
        .objects
        .iter()
        .filter(|o| o.seen)
        .map(|o| o.name.as_str())
        .collect();
    let mut out = Vec::new();
    for &o in &seen {
        for c in &vocab.counts {
            out.push(vocab.record(
                format!("count-{}-{}", slug(o), c.value),
                Category::Count,
                o,
                Some(c.value),
                None,
                None,
            )?);
        }
    }
    for &o in &seen {
        for c in &vocab.colors {
            out.push(vocab.record(
                format!("color-{}-{}", slug(o), slug(c)),
                Category::Color,
                o,
                None,
                Some(c),
                None,
            )?);
        }
    }
    for &o in &seen {
        for b in &vocab.backgrounds {
            out.push(vocab.record(
                format!("background-{}-{}", slug(o), slug(&b.name)),
                Category::Background,
                o,
                None,
                None,
                Some(&b.name),
            )?);
        }
    }
    // Strata (kind, object), each with its full list of attribute choices.
    type Choice<'v> = (Option<u32>, Option<&'v str>, Option<&'v str>);
    let mut strata: Vec<(&str, Vec<Choice>)> = Vec::new();
    for kind in &vocab.combinations.kinds {
        let has = |a: &str| kind.split('+').any(|k| k == a);
        let counts: Vec<Option<u32>> = if has("count") {
            vocab.counts.iter().map(|c| Some(c.value)).collect()
        } else {
            vec![None]
        };
        let colors: Vec<Option<&str>> = if has("color") {
            vocab.colors.iter().map(|c| Some(c.as_str())).collect()
        } else {
            vec![None]
        };
        let bgs: Vec<Option<&str>> = if has("background") {
            vocab
                .backgrounds
                .iter()
                .map(|b| Some(b.name.as_str()))
                .collect()
        } else {
            vec![None]
        };
        for &o in &seen {
            let mut choices = Vec::new();
            for &n in &counts {
                for &c in &colors {
                    for &b in &bgs {
                        choices.push((n, c, b));
                    }
                }
            }
            strata.push((o, choices));
        }
    }
    let caps: Vec<usize> = strata.iter().map(|s| s.1.len()).collect();
    let mut quota = caps.clone();
    if let Some(total) = vocab.combinations.max_prompts {
        quota = vec![0; strata.len()];
        let mut order: Vec<usize> = (0..strata.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        let mut left = total;
        while left > 0 {
            let before = left;
            for &i in &order {
                if left > 0 && quota[i] < caps[i] {
                    quota[i] += 1;
                    left -= 1;
                }
            }
            if left == before {
                break;
            }
        }
    }
    for (i, (o, choices)) in strata.iter().enumerate() {
        let mut idx: Vec<usize> = (0..choices.len()).collect();
        Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)).shuffle(&mut idx);
        let mut picked = idx[..quota[i]].to_vec();
        picked.sort_unstable();
        for j in picked {
            let (n, c, b) = choices[j];
            let mut id = format!("combo-{}", slug(o));
            if let Some(n) = n {
                write!(id, "-{n}")?;
            }
            if let Some(c) = c {
                write!(id, "-{}", slug(c))?;
            }
            if let Some(b) = b {
                write!(id, "-{}", slug(b))?;
            }
            out.push(vocab.record(id, Category::Combination, o, n, c, b)?);
        }
    }
    Ok(out)
}

/// `try_training_prompts` for a validated vocabulary (`load`/`builtin` validate; panics only if
/// the vocabulary was edited into an invalid state afterwards).
pub fn training_prompts(vocab: &Vocabulary, seed: u64) -> Vec<PromptRecord> {
    try_training_prompts(vocab, seed).unwrap_or_else(|e| {
        panic!("vocabulary is invalid (run Vocabulary::validate after editing it): {e:#}")
    })
}

const EVAL_TABLE4: &str = include_str!("../prompts/eval_table4.jsonl");

/// The 120 evaluation prompts of the paper's Table 4 (60 seen, 60 unseen), in the paper's order.
pub fn eval_prompts_builtin() -> Vec<PromptRecord> {
    parse_prompts_jsonl(EVAL_TABLE4, "prompts/eval_table4.jsonl")
        .unwrap_or_else(|e| panic!("built-in eval prompts are invalid: {e:#}"))
}

fn parse_prompts_jsonl(text: &str, file: &str) -> Result<Vec<PromptRecord>> {
    let mut out = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let rec: PromptRecord =
            serde_json::from_str(line).map_err(|e| anyhow!("{file}:{lineno}: {e}"))?;
        if rec.id.trim().is_empty() {
            bail!("{file}:{lineno}: empty id");
        }
        if rec.text.trim().is_empty() {
            bail!("{file}:{lineno}: empty text (id {:?})", rec.id);
        }
        if let Some(first) = ids.insert(rec.id.clone(), lineno) {
            bail!(
                "{file}:{lineno}: duplicate id {:?} (first on line {first})",
                rec.id
            );
        }
        out.push(rec);
    }
    if out.is_empty() {
        bail!("{file}: no prompts (empty file)");
    }
    Ok(out)
}

/// Read a prompts JSONL file (blank lines are skipped); errors read "FILE:LINE: what is wrong".
pub fn read_prompts_jsonl(path: &Path) -> Result<Vec<PromptRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_prompts_jsonl(&text, &path.display().to_string())
}

/// Write prompts as JSONL atomically (temp file + fsync + rename, via [`crate::io::jsonl`]).
pub fn write_prompts_jsonl(path: &Path, prompts: &[PromptRecord]) -> Result<()> {
    let mut ids = HashSet::new();
    if let Some(p) = prompts.iter().find(|p| !ids.insert(p.id.as_str())) {
        bail!(
            "{}: duplicate id {:?} in prompts to write",
            path.display(),
            p.id
        );
    }
    crate::io::jsonl::write_jsonl(path, prompts)
}

/// Counts by category x split with totals (and images where `images_per_prompt` is set), in the
/// shape of the paper's Table 2 rows.
pub fn summary(prompts: &[PromptRecord]) -> String {
    let mut s = format!(
        "{:<12} {:>8} {:>8} {:>8} {:>8}\n",
        "category", "seen", "unseen", "prompts", "images"
    );
    let mut tot = [0u64; 4];
    for cat in Category::ALL {
        let rows = prompts.iter().filter(|p| p.category == cat);
        let row = rows.fold([0u64; 4], |mut r, p| {
            r[if p.split == Split::Seen { 0 } else { 1 }] += 1;
            r[2] += 1;
            r[3] += u64::from(p.images_per_prompt.unwrap_or(0));
            r
        });
        for k in 0..4 {
            tot[k] += row[k];
        }
        let _ = writeln!(
            s,
            "{:<12} {:>8} {:>8} {:>8} {:>8}",
            cat.as_str(),
            row[0],
            row[1],
            row[2],
            row[3]
        );
    }
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>8} {:>8} {:>8}",
        "total", tot[0], tot[1], tot[2], tot[3]
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("rlhf-prompts-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn builtin_vocabulary_matches_appendix_b() {
        let v = Vocabulary::builtin();
        assert_eq!(
            (
                v.colors.len(),
                v.counts.len(),
                v.backgrounds.len(),
                v.objects.len()
            ),
            (9, 6, 8, 25)
        );
        let unseen: Vec<&str> = v
            .objects
            .iter()
            .filter(|o| !o.seen)
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(unseen, ["bear", "tiger", "rabbit", "rose", "wolf"]);
    }

    #[test]
    fn render_reproduces_table4() {
        let v = Vocabulary::builtin();
        let eval = eval_prompts_builtin();
        assert_eq!(eval.len(), 120);
        assert_eq!(eval.iter().filter(|p| p.split == Split::Seen).count(), 60);
        assert_eq!(eval.iter().filter(|p| p.reconstructed).count(), 10);
        for p in &eval {
            let t = v
                .render(
                    p.category,
                    &p.object,
                    p.count,
                    p.color.as_deref(),
                    p.background.as_deref(),
                )
                .unwrap();
            assert_eq!(t, p.text, "{}", p.id);
            assert_eq!(
                v.object(&p.object).unwrap().seen,
                p.split == Split::Seen,
                "{}",
                p.id
            );
        }
        for split in [Split::Seen, Split::Unseen] {
            for cat in [Category::Count, Category::Color, Category::Background] {
                assert_eq!(
                    eval.iter()
                        .filter(|p| p.split == split && p.category == cat)
                        .count(),
                    20
                );
            }
        }
        // The file is in canonical form: writing the records reproduces it byte for byte.
        let path = scratch("canon").join("eval.jsonl");
        write_prompts_jsonl(&path, &eval).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), EVAL_TABLE4);
    }

    #[test]
    fn grammar_plurals_and_articles() {
        let v = Vocabulary::builtin();
        let r = |cat, o, n, c, b| v.render(cat, o, n, c, b).unwrap();
        assert_eq!(
            r(Category::Count, "wolf", Some(2), None, None),
            "Two wolves."
        );
        assert_eq!(r(Category::Count, "box", Some(2), None, None), "Two boxes.");
        assert_eq!(r(Category::Count, "cup", Some(2), None, None), "Two cups.");
        assert_eq!(r(Category::Count, "dog", Some(1), None, None), "One dog.");
        assert_eq!(
            r(Category::Color, "apple", None, Some("green"), None),
            "A green colored apple."
        );
        assert_eq!(
            r(
                Category::Background,
                "airplane",
                None,
                None,
                Some("San Francisco")
            ),
            "An airplane in San Francisco."
        );
        assert_eq!(
            r(
                Category::Combination,
                "apple",
                None,
                Some("red"),
                Some("table")
            ),
            "A red apple on the table."
        );
        assert_eq!(
            r(
                Category::Combination,
                "dog",
                Some(2),
                Some("blue"),
                Some("forest")
            ),
            "Two blue dogs in the forest."
        );
        assert_eq!(
            r(
                Category::Combination,
                "dog",
                Some(5),
                Some("white"),
                Some("city")
            ),
            "Five white dogs in the city."
        );
        assert_eq!(
            r(Category::Combination, "orange", Some(1), None, Some("moon")),
            "One orange on the moon."
        );
        let mut v2 = v.clone();
        v2.colors.push("orange".into());
        assert_eq!(
            v2.render(
                Category::Combination,
                "dog",
                None,
                Some("orange"),
                Some("sea")
            )
            .unwrap(),
            "An orange dog in the sea."
        );
        assert_eq!(
            v2.render(Category::Color, "dog", None, Some("orange"), None)
                .unwrap(),
            "An orange colored dog."
        );
        for (cat, o, n, c) in [
            (Category::Count, "unicorn", Some(2), None),
            (Category::Count, "dog", Some(7), None),
            (Category::Color, "dog", None, Some("teal")),
            (Category::Count, "dog", None, Some("red")),
            (Category::Combination, "dog", Some(2), None),
        ] {
            assert!(
                v.render(cat, o, n, c, None).is_err(),
                "{cat:?} {o} {n:?} {c:?}"
            );
        }
    }

    #[test]
    fn training_prompts_default() {
        let v = Vocabulary::builtin();
        let ps = training_prompts(&v, 0);
        assert!(ps
            .iter()
            .all(|p| p.split == Split::Seen && v.object(&p.object).unwrap().seen));
        let ids: HashSet<_> = ps.iter().map(|p| &p.id).collect();
        let texts: HashSet<_> = ps.iter().map(|p| &p.text).collect();
        assert_eq!((ids.len(), texts.len()), (ps.len(), ps.len()));
        let by_cat = |c| ps.iter().filter(|p| p.category == c).count();
        assert_eq!(
            [
                by_cat(Category::Count),
                by_cat(Category::Color),
                by_cat(Category::Background),
                by_cat(Category::Combination)
            ],
            [120, 180, 160, 2314]
        );
        assert_eq!(ps.len(), 2774, "the paper's prompt count");
        for cat in Category::ALL {
            let objs: HashSet<_> = ps
                .iter()
                .filter(|p| p.category == cat)
                .map(|p| p.object.as_str())
                .collect();
            assert_eq!(objs.len(), 20, "{cat:?}");
        }
        for p in &ps {
            assert_eq!(
                v.render(
                    p.category,
                    &p.object,
                    p.count,
                    p.color.as_deref(),
                    p.background.as_deref()
                )
                .unwrap(),
                p.text
            );
            assert_eq!(
                p.images_per_prompt,
                Some(if p.category == Category::Combination {
                    6
                } else {
                    60
                })
            );
        }
        for kind in &v.combinations.kinds {
            let n = ps
                .iter()
                .filter(|p| {
                    p.category == Category::Combination
                        && kind_key(p.count.is_some(), p.color.is_some(), p.background.is_some())
                            == *kind
                })
                .count();
            assert!((560..=580).contains(&n), "{kind}: {n}");
        }
        assert_eq!(ps, training_prompts(&v, 0));
        assert_ne!(ps, training_prompts(&v, 1));
        assert!(!ps.iter().any(|p| p.text == "Two wolves."));
        assert!(ps.iter().any(|p| p.text == "Two boxes."));
    }

    #[test]
    fn training_prompts_full_cross_product() {
        let mut v = Vocabulary::builtin();
        v.combinations.max_prompts = None;
        v.images_per_prompt.combination = 3;
        let ps = training_prompts(&v, 7);
        assert_eq!(ps.len(), 460 + 1080 + 1440 + 960 + 8640);
        assert!(ps
            .iter()
            .filter(|p| p.category == Category::Combination)
            .all(|p| p.images_per_prompt == Some(3)));
        v.combinations.max_prompts = Some(1_000_000);
        assert_eq!(training_prompts(&v, 7).len(), ps.len());
        let s = summary(&ps);
        assert!(s.contains("total") && s.contains("12580"), "{s}");
    }

    #[test]
    fn jsonl_round_trip() {
        let path = scratch("rt").join("p.jsonl");
        let mut ps = training_prompts(&Vocabulary::builtin(), 3);
        ps.extend(eval_prompts_builtin());
        write_prompts_jsonl(&path, &ps).unwrap();
        assert_eq!(read_prompts_jsonl(&path).unwrap(), ps);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(left.is_empty());
        assert!(write_prompts_jsonl(&path, &[ps[0].clone(), ps[0].clone()]).is_err());
    }

    #[test]
    fn jsonl_errors_carry_file_and_line() {
        let dir = scratch("err");
        let good = r#"{"id":"a","text":"One dog.","category":"count","object":"dog","count":1,"split":"seen"}"#;
        let cases = [
            ("malformed.jsonl", format!("{good}\n{{\"id\": \"b\", oops\n"), ":2: "),
            ("unknown.jsonl", r#"{"id":"a","text":"x","category":"count","object":"dog","split":"seen","colour":"red"}"#.to_string(), ":1: unknown field `colour`"),
            ("dup.jsonl", format!("{good}\n\n{good}\n"), ":3: duplicate id \"a\" (first on line 1)"),
            ("badcat.jsonl", good.replace("count\",\"object", "size\",\"object"), ":1: unknown variant `size`"),
            ("empty.jsonl", "\n\n".to_string(), "no prompts"),
        ];
        for (name, body, want) in cases {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            let err = format!("{:#}", read_prompts_jsonl(&path).unwrap_err());
            assert!(
                err.starts_with(&path.display().to_string()) && err.contains(want),
                "{name}: {err}"
            );
        }
        let err = format!(
            "{:#}",
            read_prompts_jsonl(&dir.join("missing.jsonl")).unwrap_err()
        );
        assert!(err.contains("missing.jsonl"), "{err}");
    }

    #[test]
    fn vocabulary_errors_name_file_and_entry() {
        let dir = scratch("vocab");
        let base: serde_json::Value =
            serde_json::from_str(include_str!("../prompts/vocabulary.json")).unwrap();
        let mut dup = base.clone();
        dup["colors"][3] = "red".into();
        let mut field = base.clone();
        field["templates"]["count+color"] = "{Count} {colour} {noun}.".into();
        let mut missing = base.clone();
        missing["templates"]["count"] = "{noun}.".into();
        let mut extra = base.clone();
        extra["objects"][0]["plurl"] = "dogs".into();
        for (name, v, want) in [
            ("dup", dup, "colors[3]: duplicate \"red\""),
            (
                "field",
                field,
                "templates.count+color: unknown template field {colour}",
            ),
            ("missing", missing, "templates.count: {Count} must appear"),
            ("extra", extra, "unknown field `plurl`"),
        ] {
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, v.to_string()).unwrap();
            let err = format!("{:#}", Vocabulary::load(&path).unwrap_err());
            assert!(
                err.contains(&path.display().to_string()) && err.contains(want),
                "{name}: {err}"
            );
        }
    }
}
