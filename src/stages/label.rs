//! `rlhf-t2i label`: serve the labeling page for a manifest until stopped (Ctrl-C), appending
//! answers to a feedback JSONL that `feedback import` reads unchanged.

use crate::io::jsonl::read_jsonl;
use crate::io::manifest::ImageRecord;
use crate::labeling::{handler, open_session, LabelSetup};
use crate::web::{serve, RunningServer, ServeOptions, Site};
use anyhow::{bail, Result};
use std::path::Path;

/// Where to listen and who may connect.
pub struct ServerArgs<'a> {
    pub host: &'a str,
    pub port: u16,
    pub token: Option<String>,
}

/// Start the server; returns it running (tests stop it, the CLI waits on it) and the URL.
pub fn start(
    manifest: &Path,
    out: &Path,
    labels_per_image: usize,
    images_per_query: usize,
    server: ServerArgs,
) -> Result<(RunningServer, String, String)> {
    if labels_per_image == 0 || images_per_query == 0 {
        bail!("--labels-per-image and --images-per-query must be at least 1");
    }
    let records: Vec<ImageRecord> = read_jsonl(manifest)?;
    if records.is_empty() {
        bail!("{} lists no images", manifest.display());
    }
    let root = manifest.parent().unwrap_or(Path::new("."));
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let (session, images, note) = open_session(&LabelSetup {
        manifest: &records,
        root,
        out,
        labels_per_image,
        images_per_query,
    })?;
    let (opts, _) = ServeOptions::resolve(server.host, server.port, server.token)?;
    let running = serve(
        &opts,
        Site {
            page: crate::labeling::PAGE,
            images,
            api: handler(session),
        },
    )?;
    let url = opts.url(running.addr);
    Ok((running, url, note))
}
