//! JSON-lines files: one serde value per line.
//!
//! Errors read `PATH:LINE: <serde message>` (serde's message names unknown fields, missing
//! fields, bad types, ...). Blank lines are skipped. [`read_jsonl_lenient_tail`] is for
//! resumable manifests written by [`super::atomic::AppendLog`], whose last line may be torn.

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Read every non-blank line of `path` as a `T`.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    Ok(read_impl(path, false)?.0)
}

/// Like [`read_jsonl`], but a final line with no trailing newline that fails to parse is a
/// torn write, not an error: it is skipped and the returned flag is `true`. A malformed line
/// anywhere else (or a newline-terminated last line) is still an error.
pub fn read_jsonl_lenient_tail<T: DeserializeOwned>(path: &Path) -> Result<(Vec<T>, bool)> {
    read_impl(path, true)
}

fn read_impl<T: DeserializeOwned>(path: &Path, lenient_tail: bool) -> Result<(Vec<T>, bool)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let terminated = bytes.last().is_none_or(|&b| b == b'\n');
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len() - 1; // `split` always yields at least one piece
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(v) => out.push(v),
            Err(_) if lenient_tail && i == last && !terminated => return Ok((out, true)),
            Err(e) => return Err(anyhow!("{}:{}: {}", path.display(), i + 1, e)),
        }
    }
    Ok((out, false))
}

/// Atomically write `items` to `path`, one compact JSON value per line, each ending in `\n`.
pub fn write_jsonl<'a, T, I>(path: &Path, items: I) -> Result<()>
where
    T: Serialize + 'a,
    I: IntoIterator<Item = &'a T>,
{
    super::atomic::write_atomic_with(path, |w| {
        for item in items {
            serde_json::to_writer(&mut *w, item)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::fs;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: u32,
        prompt: String,
    }

    fn item(id: u32) -> Item {
        Item {
            id,
            prompt: format!("p{id}"),
        }
    }

    #[test]
    fn round_trip_skips_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("items.jsonl");
        write_jsonl(&p, &[item(1), item(2)]).unwrap();
        assert_eq!(read_jsonl::<Item>(&p).unwrap(), vec![item(1), item(2)]);
        fs::write(
            &p,
            "\n{\"id\":1,\"prompt\":\"p1\"}\r\n   \n{\"id\":2,\"prompt\":\"p2\"}",
        )
        .unwrap();
        assert_eq!(read_jsonl::<Item>(&p).unwrap(), vec![item(1), item(2)]);
        write_jsonl::<Item, _>(&p, &Vec::new()).unwrap();
        assert!(read_jsonl::<Item>(&p).unwrap().is_empty());
    }

    #[test]
    fn malformed_line_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl");
        fs::write(&p, "{\"id\":1,\"prompt\":\"a\"}\n\n{\"id\":2,\"prompt\":\n").unwrap();
        let msg = read_jsonl::<Item>(&p).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}:3: ", p.display())), "{msg}");
    }

    #[test]
    fn unknown_field_error_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("extra.jsonl");
        fs::write(
            &p,
            "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"prompt\":\"b\",\"sead\":7}\n",
        )
        .unwrap();
        let msg = read_jsonl::<Item>(&p).unwrap_err().to_string();
        assert!(msg.contains("extra.jsonl:2: "), "{msg}");
        assert!(msg.contains("unknown field `sead`"), "{msg}");
    }

    #[test]
    fn missing_file_error_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope.jsonl");
        let msg = format!("{:#}", read_jsonl::<Item>(&p).unwrap_err());
        assert!(msg.contains("nope.jsonl"), "{msg}");
    }

    #[test]
    fn lenient_tail_skips_only_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.jsonl");
        fs::write(&p, "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"pro").unwrap();
        let (v, torn) = read_jsonl_lenient_tail::<Item>(&p).unwrap();
        assert_eq!((v.len(), torn), (1, true));
        // The strict reader reports it.
        assert!(read_jsonl::<Item>(&p)
            .unwrap_err()
            .to_string()
            .contains(":2: "));
        // An unterminated last line that parses is kept.
        fs::write(
            &p,
            "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"prompt\":\"b\"}",
        )
        .unwrap();
        assert_eq!(
            read_jsonl_lenient_tail::<Item>(&p).unwrap(),
            (
                vec![
                    Item {
                        id: 1,
                        prompt: "a".into()
                    },
                    Item {
                        id: 2,
                        prompt: "b".into()
                    }
                ],
                false
            )
        );
        // A bad newline-terminated last line, or a bad middle line, is still an error.
        fs::write(&p, "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"pro\n").unwrap();
        assert!(read_jsonl_lenient_tail::<Item>(&p).is_err());
        fs::write(&p, "{\"id\":1,\"pro\n{\"id\":2,\"prompt\":\"b\"}").unwrap();
        let msg = read_jsonl_lenient_tail::<Item>(&p).unwrap_err().to_string();
        assert!(msg.contains("manifest.jsonl:1: "), "{msg}");
    }
}
