//! The small local web server behind `label` and `compare`: binding, the access token, request
//! parsing with size limits, and serving images by id only. Built on `tiny_http` (synchronous,
//! a handful of worker threads; a labeling team is tens of people, not thousands).
//!
//! Pages are single HTML files compiled into the binary; they talk to a JSON API under `/api/`.

pub mod images;
pub mod request;

pub use images::ImageTable;
pub use request::{ApiError, Req};

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Header, Response, Server};

/// Largest request body accepted (answers and votes are a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;

/// Cookie that carries the access token after the first `?token=` visit.
pub const TOKEN_COOKIE: &str = "rlhf_t2i_token";

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// Required on every request when set.
    pub token: Option<String>,
    pub threads: usize,
}

impl ServeOptions {
    /// Validate the host/token combination: any host other than loopback needs a token, and one
    /// is generated (and returned for printing) when none was given.
    pub fn resolve(host: &str, port: u16, token: Option<String>) -> Result<(ServeOptions, bool)> {
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "::1");
        let mut generated = false;
        let token = match token {
            Some(t) if t.len() < 16 => bail!("--token must be at least 16 characters"),
            Some(t)
                if !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                bail!("--token may hold only letters, digits, '-' and '_'")
            }
            Some(t) => Some(t),
            None if loopback => None,
            None => {
                generated = true;
                Some(random_token())
            }
        };
        let opts = ServeOptions {
            host: host.to_string(),
            port,
            token,
            threads: 8,
        };
        Ok((opts, generated))
    }

    /// The URL to open in a browser (with the token, when there is one).
    pub fn url(&self, addr: SocketAddr) -> String {
        let host = if self.host == "0.0.0.0" {
            "<this machine's address>".to_string()
        } else {
            addr.ip().to_string()
        };
        match &self.token {
            Some(t) => format!("http://{host}:{}/?token={t}", addr.port()),
            None => format!("http://{host}:{}/", addr.port()),
        }
    }
}

/// 128 bits from the OS-seeded thread RNG, hex.
fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A handler answers one request; it runs on one of the worker threads.
pub type Handler =
    dyn Fn(&mut Req) -> Result<Response<std::io::Cursor<Vec<u8>>>, ApiError> + Send + Sync;

/// A running server. Dropping it does not stop it; call [`RunningServer::stop`] or
/// [`RunningServer::wait`].
pub struct RunningServer {
    server: Arc<Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl RunningServer {
    /// Stop accepting, finish the requests in flight, and join the workers.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers {
            let _ = w.join();
        }
    }

    /// Block until the workers exit (they do not on their own: this serves until killed).
    pub fn wait(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// Bind and start the worker threads. Port 0 picks a free port (see `RunningServer::addr`).
pub fn serve(opts: &ServeOptions, handler: Arc<Handler>) -> Result<RunningServer> {
    let bind = format!("{}:{}", opts.host, opts.port);
    let server =
        Server::http(&bind).map_err(|e| anyhow::anyhow!("could not listen on {bind}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("the server is not listening on an IP address")?;
    let server = Arc::new(server);
    let token: Option<Arc<str>> = opts.token.as_deref().map(Arc::from);
    let stopping = Arc::new(AtomicBool::new(false));
    let workers = (0..opts.threads.max(1))
        .map(|_| {
            let server = server.clone();
            let handler = handler.clone();
            let token = token.clone();
            let stopping = stopping.clone();
            std::thread::spawn(move || loop {
                match server.recv() {
                    Ok(raw) => handle_one(raw, token.as_deref(), &*handler),
                    // A failed accept is one connection's problem, not the server's.
                    Err(_) if !stopping.load(Ordering::SeqCst) => continue,
                    Err(_) => break,
                }
            })
        })
        .collect();
    Ok(RunningServer {
        server,
        stopping,
        workers,
        addr,
    })
}

fn handle_one(raw: tiny_http::Request, token: Option<&str>, handler: &Handler) {
    let mut req = Req::new(raw);
    let response = match req.check_token(token) {
        Err(e) => Err(e),
        Ok(set_cookie) => handler(&mut req).map(|r| match set_cookie {
            Some(t) => r.with_header(header(
                "Set-Cookie",
                &format!("{TOKEN_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
            )),
            None => r,
        }),
    };
    let response = response.unwrap_or_else(|e| e.into_response());
    req.respond(response);
}

/// A response header; names and values here are ASCII constants or validated tokens.
pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

/// `200` with a body and content type, never cached (labels change under the page).
pub fn ok(content_type: &str, body: Vec<u8>) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

/// A JSON `200`.
pub fn json<T: serde::Serialize>(
    value: &T,
) -> Result<Response<std::io::Cursor<Vec<u8>>>, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.into()))?;
    Ok(ok("application/json", body))
}

/// An HTML page.
pub fn html(page: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    ok("text/html; charset=utf-8", page.as_bytes().to_vec())
}
