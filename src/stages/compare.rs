//! `rlhf-t2i compare`: serve the blind A/B page for two `generate` folders, or summarise a votes
//! file (Figure 4 / Appendix C style).

use crate::compare::summary::{summarize, Summary};
use crate::compare::{handler, open_session, read_votes, CompareSetup};
use crate::stages::label::ServerArgs;
use crate::web::{serve, RunningServer, ServeOptions, Site};
use anyhow::{bail, Result};
use std::path::Path;

/// Start the comparison server; returns it running, the URL and a line about what was resumed.
pub fn start(
    a: &Path,
    b: &Path,
    out: &Path,
    images_per_set: usize,
    seed: u64,
    server: ServerArgs,
) -> Result<(RunningServer, String, String)> {
    if images_per_set == 0 {
        bail!("--images must be at least 1");
    }
    let (session, images, note) = open_session(&CompareSetup {
        a_dir: a,
        b_dir: b,
        out,
        images_per_set,
        seed,
    })?;
    let (opts, _) = ServeOptions::resolve(server.host, server.port, server.token)?;
    let running = serve(
        &opts,
        Site {
            page: crate::compare::PAGE,
            images,
            api: handler(session),
        },
    )?;
    let url = opts.url(running.addr);
    Ok((running, url, note))
}

/// Summarise a votes file; also written as JSON beside it (`<votes>.summary.json`).
pub fn summary(votes: &Path) -> Result<Summary> {
    let s = summarize(&read_votes(votes)?);
    let out = votes.with_extension("summary.json");
    crate::io::atomic::write_atomic(&out, serde_json::to_string_pretty(&s)?.as_bytes())?;
    Ok(s)
}
