//! Helpers for the labeling and comparison server tests: image sets on disk and an HTTP client.

use image::{Rgb, RgbImage};
use rlhf_t2i::io::manifest::{GenerationSettings, ImageRecord};
use rlhf_t2i::prompts::eval_prompts_builtin;
use std::path::{Path, PathBuf};

pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rlhf-web-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `generate`-style folder: `prompts` eval prompts × `per_prompt` 64 px PNGs of `color` discs
/// (index + 1 of them, so images differ), and `manifest.jsonl`.
pub fn image_set(dir: &Path, prompts: usize, per_prompt: u32, color: [u8; 3]) -> Vec<ImageRecord> {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let mut records = Vec::new();
    for p in eval_prompts_builtin().into_iter().take(prompts) {
        for i in 0..per_prompt {
            let id = format!("{}-{i}", p.id);
            let path = format!("images/{id}.png");
            let mut img = RgbImage::from_pixel(64, 64, Rgb([235, 235, 235]));
            for k in 0..=(i % 4) {
                let (cx, cy) = (14 + 24 * (k % 2) as i32, 14 + 24 * (k / 2) as i32);
                for y in 0..64 {
                    for x in 0..64 {
                        if (x - cx).pow(2) + (y - cy).pow(2) <= 81 {
                            img.put_pixel(x as u32, y as u32, Rgb(color));
                        }
                    }
                }
            }
            img.save(dir.join(&path)).unwrap();
            records.push(ImageRecord {
                id,
                path,
                prompt: p.clone(),
                index: i,
                seed: i as u64,
                settings: GenerationSettings {
                    model: "test".into(),
                    scheduler: "ddim".into(),
                    steps: 1,
                    guidance: 7.5,
                    eta: 0.0,
                    width: 64,
                    height: 64,
                    dtype: "f32".into(),
                },
            });
        }
    }
    rlhf_t2i::io::jsonl::write_jsonl(&dir.join("manifest.jsonl"), &records).unwrap();
    records
}

/// An HTTP agent that returns error statuses as values instead of `Err`.
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(30))
                .build(),
            base: format!("http://{addr}"),
            token: None,
        }
    }

    fn auth(&self, r: ureq::Request) -> ureq::Request {
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Status and body of a GET of a raw path (sent as is, no normalisation).
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        finish(
            self.auth(self.agent.get(&format!("{}{path}", self.base)))
                .call(),
        )
    }

    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (s, b) = self.get(path);
        (
            s,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = self
            .auth(self.agent.post(&format!("{}{path}", self.base)))
            .set("Content-Type", "application/json")
            .send_string(body);
        let (s, b) = finish(r);
        (
            s,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }
}

fn finish(r: Result<ureq::Response, ureq::Error>) -> (u16, Vec<u8>) {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, body)
}

/// Raw request bytes over a socket, for paths an HTTP client would normalise (`..`).
pub fn raw_status(addr: std::net::SocketAddr, request_line: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "{request_line}\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
