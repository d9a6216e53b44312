//! The smallest HTTP/1.1 responder that serves `GET /metrics`: one request
//! per connection, `Connection: close`, no keep-alive, no chunking. A
//! Prometheus scraper needs nothing more, and a client crate or server
//! framework would be most of rvsd's dependency tree.

use std::io::{self, Read, Write};
use std::time::Duration;

/// Longest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// How long a client may take to send its request or read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// GET (or HEAD: `head` is true) /metrics.
    Metrics {
        /// Whether to leave the body out.
        head: bool,
    },
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    BadMethod,
    /// Not HTTP: 400.
    BadRequest,
}

/// Reads a request head from `r` and says what it asks for.
pub fn read_request(r: &mut impl Read) -> io::Result<Route> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            return Ok(Route::BadRequest);
        }
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(route(&head))
}

/// Routes a request head.
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head: false },
        ("HEAD", "/metrics") => Route::Metrics { head: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::BadMethod,
    }
}

/// Writes a complete response and flushes it.
pub fn respond(
    w: &mut impl Write,
    status: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    w.write_all(out.as_bytes())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"\x00\x01garbage"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }

    #[test]
    fn reads_a_split_request_and_caps_the_head() {
        let mut r = &b"GET /metrics HTTP/1.1\r\nA: b\r\n\r\nbody"[..];
        assert_eq!(
            read_request(&mut r).unwrap(),
            Route::Metrics { head: false }
        );
        let long = vec![b'a'; MAX_HEAD * 2];
        assert_eq!(
            read_request(&mut long.as_slice()).unwrap(),
            Route::BadRequest
        );
    }

    #[test]
    fn response_shape() {
        let mut out = Vec::new();
        respond(&mut out, "200 OK", "text/plain", "abc\n", false).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 4\r\n"));
        assert!(s.ends_with("\r\n\r\nabc\n"));
    }
}
