//! Crash-safe writes.
//!
//! [`write_atomic`] / [`write_atomic_with`] replace a file so that readers (and a machine that
//! loses power) see either the old contents or the complete new contents, never a mix: the
//! data goes to `.<name>.tmp-<pid>-<counter>` in the same directory, is fsynced, renamed over
//! the target, and the directory is fsynced so the rename itself is durable.
//!
//! [`AppendLog`] is a JSONL file that grows one record at a time; each `append` is on disk
//! (`sync_data`) before it returns, and opening it repairs a line torn by a kill mid-write.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Directory that holds `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Create the parent directories of `path` if needed.
fn ensure_parent(path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))
}

/// fsync a directory so that a rename or file creation inside it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = dir; // directories cannot be opened for fsync on this platform
    Ok(())
}

/// Atomically replace `path` with `bytes` (see the module docs). Creates parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Atomically replace `path` with whatever `write` streams into the (buffered) writer it is
/// given. If `write` fails, the target is left untouched and the temp file is removed.
pub fn write_atomic_with<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    let Some(name) = path.file_name() else {
        bail!("cannot write {}: path has no file name", path.display());
    };
    ensure_parent(path)?;
    let dir = parent_dir(path);
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        n
    ));
    let result = (|| -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating temp file {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp); // best effort; may already be gone after a rename
        return Err(e.context(format!("writing {}", path.display())));
    }
    sync_dir(dir).with_context(|| format!("writing {}", path.display()))
}

/// A JSONL file opened for durable appends; one record per line.
///
/// Single writer per file. Resumable stages should open the log *before* reading it for
/// resume, so that the torn-tail repair and what they read agree.
#[derive(Debug)]
pub struct AppendLog {
    file: File,
    path: PathBuf,
    /// Length of the file up to the last complete record.
    len: u64,
}

impl AppendLog {
    /// Open (creating it and its parent directories if needed) the log at `path`.
    ///
    /// If the file does not end with a newline, its last line was torn by a kill mid-write:
    /// that partial line is truncated away (and synced) and the number of bytes dropped is
    /// returned alongside the log (0 when the file was clean). Callers should report a
    /// non-zero count.
    pub fn open(path: &Path) -> Result<(AppendLog, u64)> {
        ensure_parent(path)?;
        let ctx = || format!("opening append log {}", path.display());
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(ctx)?;
        let len = file.metadata().with_context(ctx)?.len();
        let keep = complete_prefix_len(&mut file, len).with_context(ctx)?;
        if keep < len {
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("truncating torn last line of {}", path.display()))?;
        }
        if !existed {
            sync_dir(parent_dir(path))?;
        }
        let log = AppendLog {
            file,
            path: path.to_path_buf(),
            len: keep,
        };
        Ok((log, len - keep))
    }

    /// Append `rec` as one JSON line; it is flushed and `sync_data`ed before this returns.
    /// On a failed write the partial line is cut off again, so the file stays well-formed.
    pub fn append<T: Serialize>(&mut self, rec: &T) -> Result<()> {
        let mut line = serde_json::to_vec(rec)
            .with_context(|| format!("serializing record for {}", self.path.display()))?;
        line.push(b'\n');
        let res = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = res {
            let _ = self.file.set_len(self.len); // best effort: drop the partial line
            return Err(
                anyhow::Error::new(e).context(format!("appending to {}", self.path.display()))
            );
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Length of the longest prefix of `file` (of length `len`) that ends in `\n`, i.e. that
/// holds only complete lines. Scans backwards from the end in blocks.
fn complete_prefix_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dir/out.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(entries(p.parent().unwrap()), vec!["out.json"]);
    }

    #[test]
    fn failed_streaming_write_keeps_old_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"partial")?;
            bail!("generator failed")
        })
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("out.txt") && msg.contains("generator failed"),
            "{msg}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(dir.path()), vec!["out.txt"]);
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Rec {
        i: u32,
        s: String,
    }

    #[test]
    fn append_log_appends_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let (mut log, dropped) = AppendLog::open(&p).unwrap();
        assert_eq!(dropped, 0);
        log.append(&Rec {
            i: 1,
            s: "a\nb".into(),
        })
        .unwrap();
        drop(log);
        let (mut log, dropped) = AppendLog::open(&p).unwrap();
        assert_eq!(dropped, 0);
        log.append(&Rec {
            i: 2,
            s: "c".into(),
        })
        .unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text, "{\"i\":1,\"s\":\"a\\nb\"}\n{\"i\":2,\"s\":\"c\"}\n");
    }

    #[test]
    fn append_log_repairs_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let torn = "{\"i\":2,\"s\":\"c";
        fs::write(&p, format!("{{\"i\":1,\"s\":\"a\"}}\n{torn}")).unwrap();
        let (mut log, dropped) = AppendLog::open(&p).unwrap();
        assert_eq!(dropped, torn.len() as u64);
        log.append(&Rec {
            i: 3,
            s: "d".into(),
        })
        .unwrap();
        let recs: Vec<Rec> = super::super::jsonl::read_jsonl(&p).unwrap();
        assert_eq!(
            recs,
            vec![
                Rec {
                    i: 1,
                    s: "a".into()
                },
                Rec {
                    i: 3,
                    s: "d".into()
                }
            ]
        );

        // A file holding only a torn line is emptied.
        fs::write(&p, "{\"i\":").unwrap();
        let (_log, dropped) = AppendLog::open(&p).unwrap();
        assert_eq!(dropped, 5);
        assert_eq!(fs::metadata(&p).unwrap().len(), 0);
    }

    #[test]
    fn append_log_repairs_torn_tail_longer_than_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let tail = "x".repeat(200_000);
        fs::write(&p, format!("{{\"i\":1,\"s\":\"a\"}}\n{tail}")).unwrap();
        let (_log, dropped) = AppendLog::open(&p).unwrap();
        assert_eq!(dropped, 200_000);
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"i\":1,\"s\":\"a\"}\n");
    }
}
