//! The small local web server behind `label` and `compare`: binding, the access token, request
//! parsing with size limits, and serving images by id only. HTTP itself is `http` (std only,
//! a thread per connection; a labeling team is tens of people, not thousands).
//!
//! Pages are single HTML files compiled into the binary; they talk to a JSON API under `/api/`.

pub mod http;
pub mod images;
pub mod request;

pub use images::ImageTable;
pub use request::{ApiError, Req};

use anyhow::{bail, Context, Result};
use http::{Response, Server};
use std::net::SocketAddr;
use std::sync::Arc;

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

/// A handler answers one request; it runs on that connection's thread.
pub type Handler = dyn Fn(&mut Req) -> Result<Response, ApiError> + Send + Sync;

/// A running server. Dropping it does not stop it; call [`RunningServer::stop`] or
/// [`RunningServer::wait`].
pub struct RunningServer {
    server: Server,
    pub addr: SocketAddr,
}

impl RunningServer {
    /// Stop accepting connections (requests in flight finish).
    pub fn stop(self) {
        self.server.stop();
    }

    /// Serve until the process is stopped.
    pub fn wait(self) {
        self.server.wait();
    }
}

/// What a site serves: its page at `/`, the shared `/common.js`, its images at `/image/<id>`,
/// and everything else (the JSON API) through `api`.
pub struct Site {
    pub page: &'static str,
    pub images: ImageTable,
    pub api: Arc<Handler>,
}

impl Site {
    fn answer(&self, req: &mut Req) -> Result<Response, ApiError> {
        match (&req.method, req.path.as_str()) {
            (http::Method::Get, "/") => Ok(html(self.page)),
            (http::Method::Get, "/common.js") => Ok(common_script()),
            (http::Method::Get, p) if p.starts_with("/image/") => {
                self.images.respond(&p["/image/".len()..])
            }
            _ => (self.api)(req),
        }
    }
}

/// Bind and serve. Port 0 picks a free port (see `RunningServer::addr`).
pub fn serve(opts: &ServeOptions, site: Site) -> Result<RunningServer> {
    let bind = format!("{}:{}", opts.host, opts.port);
    let token: Option<Arc<str>> = opts.token.as_deref().map(Arc::from);
    let handle = Arc::new(move |raw: http::Request| {
        handle_one(raw, token.as_deref(), |r: &mut Req| site.answer(r))
    });
    let server = Server::start(&bind, MAX_BODY, handle)
        .with_context(|| format!("could not listen on {bind}"))?;
    let addr = server.addr;
    Ok(RunningServer { server, addr })
}

fn handle_one(
    raw: http::Request,
    token: Option<&str>,
    handler: impl Fn(&mut Req) -> Result<Response, ApiError>,
) -> Response {
    let mut req = Req::new(raw);
    let response = match req.check_token(token) {
        Err(e) => Err(e),
        Ok(set_cookie) => handler(&mut req).map(|r| match set_cookie {
            Some(t) => r.with_header(
                "Set-Cookie",
                &format!("{TOKEN_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
            ),
            None => r,
        }),
    };
    response.unwrap_or_else(|e| e.into_response())
}

/// `200` with a body and content type, never cached (labels change under the page).
pub fn ok(content_type: &str, body: Vec<u8>) -> Response {
    Response::new(body)
        .with_header("Content-Type", content_type)
        .with_header("Cache-Control", "no-store")
        .with_header("X-Content-Type-Options", "nosniff")
}

/// A JSON `200`.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.into()))?;
    Ok(ok("application/json", body))
}

/// The script both pages load (`GET /common.js`).
pub fn common_script() -> Response {
    ok(
        "text/javascript; charset=utf-8",
        include_str!("common.js").as_bytes().to_vec(),
    )
}

/// An HTML page.
pub fn html(page: &str) -> Response {
    ok("text/html; charset=utf-8", page.as_bytes().to_vec())
}
