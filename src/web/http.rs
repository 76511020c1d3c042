//! A minimal HTTP/1.1 server on `std::net`: one thread per connection, one request per
//! connection (`Connection: close`), bounded header and body sizes, and read/write timeouts.
//!
//! Why not `tiny_http`: its connection pool can queue a new keep-alive connection behind threads
//! that each hold an idle browser connection, so a browser loading eight images at once saw two
//! of them hang indefinitely (reproduced with `curl --parallel`). A labeling page needs none of
//! keep-alive's speed, and closing every connection makes that class of stall impossible.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Other,
}

/// A parsed request. `body` holds at most `body_limit + 1` bytes; `body_len` is what the client
/// declared.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_len: usize,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A complete response: status, headers and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(body: Vec<u8>) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }
    pub fn with_status_code(mut self, status: u16) -> Response {
        self.status = status;
        self
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// Read one request; `Ok(None)` when the client sent nothing or something that is not HTTP.
fn read_request(stream: &TcpStream, body_limit: usize) -> std::io::Result<Result<Request, u16>> {
    let mut r = BufReader::new(stream.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(Err(400));
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Ok(Err(431));
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = match first.next() {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        Some(_) => Method::Other,
        None => return Ok(Err(400)),
    };
    let Some(url) = first.next().map(str::to_string) else {
        return Ok(Err(400));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body_len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    r.take(body_len.min(body_limit + 1) as u64)
        .read_to_end(&mut body)?;
    Ok(Ok(Request {
        method,
        url,
        headers,
        body,
        body_len,
    }))
}

fn write_response(mut stream: &TcpStream, resp: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        // Header values here are constants or validated tokens; drop anything that could split lines.
        if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&resp.body)?;
    stream.flush()
}

/// A listening server. [`Server::stop`] stops accepting and waits for the accept loop.
pub struct Server {
    pub addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `addr` and answer every request with `handle` on its own thread.
    pub fn start(
        addr: &str,
        body_limit: usize,
        handle: Arc<dyn Fn(Request) -> Response + Send + Sync>,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let handle = handle.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(TIMEOUT));
                    let _ = stream.set_write_timeout(Some(TIMEOUT));
                    let resp = match read_request(&stream, body_limit) {
                        Ok(Ok(req)) => handle(req),
                        Ok(Err(status)) => Response::new(Vec::new()).with_status_code(status),
                        Err(_) => return,
                    };
                    let _ = write_response(&stream, &resp);
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Ok(Server {
            addr,
            stopping,
            accept: Some(accept),
        })
    }

    /// Stop accepting new connections (requests in flight finish on their own threads).
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }

    /// Serve until the process is stopped.
    pub fn wait(mut self) {
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}
