//! One request: its path, query parameters, cookies and a size-limited JSON body, the access-token
//! check, and API errors that become JSON responses with the right status.

use super::http::{self, Method, Response};
use super::{MAX_BODY, TOKEN_COOKIE};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// An error answered to the client: `status` and a message for the page to show.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }
    pub fn not_found() -> ApiError {
        ApiError {
            status: 404,
            message: "not found".into(),
        }
    }
    /// A server-side failure (e.g. the disk): logged, and reported without detail to the page.
    pub fn internal(err: anyhow::Error) -> ApiError {
        eprintln!("error: {err:#}");
        ApiError {
            status: 500,
            message: format!("server error: {err}"),
        }
    }
    pub fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        Response::new(body.into_bytes())
            .with_status_code(self.status)
            .with_header("Content-Type", "application/json")
            .with_header("Cache-Control", "no-store")
    }
}

/// A request being handled.
pub struct Req {
    raw: http::Request,
    pub method: Method,
    /// The path without the query string, not percent-decoded (ids never need decoding).
    pub path: String,
    query: HashMap<String, String>,
}

impl Req {
    pub(super) fn new(raw: http::Request) -> Req {
        let url = raw.url.clone();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        Req {
            method: raw.method,
            path: path.to_string(),
            query: parse_query(query),
            raw,
        }
    }

    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn header_value(&self, name: &str) -> Option<String> {
        self.raw.header(name).map(str::to_string)
    }

    /// Check the access token (bearer header, cookie, or `?token=`). On success returns the token
    /// to set as a cookie when it came in the query string, so the page's later calls carry it.
    pub(super) fn check_token(&self, token: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(token) = token else { return Ok(None) };
        let bearer = self
            .header_value("Authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
        let cookie = self.header_value("Cookie").and_then(|c| {
            c.split(';').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == TOKEN_COOKIE).then(|| v.to_string())
            })
        });
        let query = self.param("token").map(str::to_string);
        let matches = |t: &Option<String>| t.as_deref().is_some_and(|t| constant_time_eq(t, token));
        if matches(&bearer) || matches(&cookie) {
            Ok(None)
        } else if matches(&query) {
            Ok(Some(token.to_string()))
        } else {
            Err(ApiError {
                status: 401,
                message: "missing or wrong access token: open the URL the server printed".into(),
            })
        }
    }

    /// Parse the JSON body (at most [`MAX_BODY`] bytes; larger ones get 413).
    pub fn json_body<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        if self.raw.body_len > MAX_BODY || self.raw.body.len() > MAX_BODY {
            return Err(ApiError {
                status: 413,
                message: format!("request body over {MAX_BODY} bytes"),
            });
        }
        if self.raw.body.len() < self.raw.body_len {
            return Err(ApiError::bad_request("the request body was cut short"));
        }
        serde_json::from_slice(&self.raw.body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding; `None` for invalid escapes or UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A labeler's or rater's name: 1-64 printable characters, trimmed.
pub fn person_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("enter your name first"));
    }
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "names are at most 64 printable characters",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(
            percent_decode("Ana+Lu%C3%ADsa").as_deref(),
            Some("Ana Luísa")
        );
        assert_eq!(percent_decode("%2e%2e%2F").as_deref(), Some("../"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        let q = parse_query("labeler=a%20b&x=&&y");
        assert_eq!(q["labeler"], "a b");
        assert_eq!(q["x"], "");
        assert_eq!(q["y"], "");
    }

    #[test]
    fn names() {
        assert_eq!(person_name("  Kim ").unwrap(), "Kim");
        assert_eq!(person_name("").unwrap_err().status, 400);
        assert!(person_name("a\nb").is_err());
        assert!(person_name(&"x".repeat(65)).is_err());
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
