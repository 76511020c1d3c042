//! Run configurations in `configs/` (JSON). Keys starting with `_` are comments (`_comment`,
//! `_assumption`), so a config can say where each number comes from; every other key must be a
//! known field.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

fn strip_comments(v: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = v {
        map.retain(|k, _| !k.starts_with('_'));
        for child in map.values_mut() {
            strip_comments(child);
        }
    }
}

pub fn parse<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T> {
    let mut v: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{origin} is not valid JSON"))?;
    strip_comments(&mut v);
    serde_json::from_value(v).with_context(|| format!("{origin}: not a valid configuration"))
}

pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_are_ignored_and_unknown_keys_are_not() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct C {
            a: u32,
        }
        let c: C = super::parse(r#"{"_comment": "x", "a": 3}"#, "t").unwrap();
        assert_eq!(c.a, 3);
        assert!(super::parse::<C>(r#"{"a": 3, "b": 1}"#, "t").is_err());
    }
}
