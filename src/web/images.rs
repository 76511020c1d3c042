//! Images served by id only. The table is built once at start-up from manifests; a request's
//! id is only ever a key into it, so no part of a URL reaches the file system. Every path is
//! resolved (symlinks included) at start-up and must stay inside its manifest's folder.

use super::http::Response;
use super::{ok, ApiError};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Public id → resolved file.
#[derive(Debug, Default)]
pub struct ImageTable {
    files: HashMap<String, PathBuf>,
}

impl ImageTable {
    /// Add `rel` (a manifest path, relative to `root`) under the public `id`.
    pub fn insert(&mut self, id: &str, root: &Path, rel: &str) -> Result<()> {
        let rel_path = Path::new(rel);
        if rel_path.is_absolute()
            || rel_path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            bail!(
                "image `{id}`: path {rel:?} must be relative and stay inside {}",
                root.display()
            );
        }
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        let file = root
            .join(rel_path)
            .canonicalize()
            .with_context(|| format!("image `{id}`: {} is missing", root.join(rel).display()))?;
        if !file.starts_with(&root) {
            bail!(
                "image `{id}`: {rel:?} resolves to {}, outside {} (a symlink?); refusing to serve it",
                file.display(),
                root.display()
            );
        }
        if !file.is_file() {
            bail!("image `{id}`: {} is not a file", file.display());
        }
        if self.files.insert(id.to_string(), file).is_some() {
            bail!("image id `{id}` appears twice");
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The response for `GET /image/<id>`: the file's bytes, or 404 for any unknown id.
    pub fn respond(&self, id: &str) -> Result<Response, ApiError> {
        let file = self.files.get(id).ok_or_else(ApiError::not_found)?;
        let bytes = std::fs::read(file)
            .with_context(|| format!("reading {}", file.display()))
            .map_err(ApiError::internal)?;
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let kind = match ext.as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "webp" => "image/webp",
            _ => "image/png",
        };
        Ok(ok(kind, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_ids_inside_the_root() {
        let dir = tempfile_dir("images");
        let root = dir.join("set");
        std::fs::create_dir_all(root.join("images")).unwrap();
        std::fs::write(root.join("images/a.png"), b"png").unwrap();
        std::fs::write(dir.join("secret.txt"), b"secret").unwrap();
        let mut t = ImageTable::default();
        t.insert("a", &root, "images/a.png").unwrap();
        assert!(
            t.insert("a", &root, "images/a.png").is_err(),
            "duplicate id"
        );
        for bad in ["../secret.txt", "/etc/passwd", "images/../../secret.txt"] {
            assert!(t.insert("x", &root, bad).is_err(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("images/link.png"))
                .unwrap();
            let err = t.insert("l", &root, "images/link.png").unwrap_err();
            assert!(format!("{err:#}").contains("outside"), "{err:#}");
        }
        assert_eq!(t.respond("a").unwrap().status, 200);
        for id in [
            "../secret.txt",
            "images/a.png",
            "a/../a",
            "%2e%2e%2fsecret.txt",
            "",
        ] {
            assert_eq!(t.respond(id).err().map(|e| e.status), Some(404), "{id}");
        }
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rlhf-web-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
