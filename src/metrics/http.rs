//! The metrics endpoint: one plain blocking thread on `127.0.0.1:<metrics-port>` that
//! answers `GET /metrics` with the Prometheus exposition and anything else with 404,
//! one connection at a time. It reads only atomics and the shards' published reports.

use super::exposition::{CONTENT_TYPE, Inputs, render};
use crate::server::ServerShared;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest request head read; a longer one is answered 431 and closed.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its whole request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writing the response may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of descriptors) before the next one.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
/// After answering, what the client still sends is read and dropped for at most this
/// long and this many bytes before closing (closing a socket with unread input resets
/// the connection, and the client could lose the response).
const LINGER: Duration = Duration::from_millis(200);
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// Binds the loopback port and starts the thread.
pub fn spawn(shared: Arc<ServerShared>, port: u16) -> Result<(), String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("Could not bind the metrics port 127.0.0.1:{port}: {e}"))?;
    std::thread::Builder::new()
        .name("percore-metrics".into())
        .spawn(move || serve(&listener, &shared))
        .map_err(|e| format!("spawning the metrics thread: {e}"))?;
    Ok(())
}

fn serve(listener: &TcpListener, shared: &ServerShared) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                // A client that goes away mid-request is its own problem.
                let _ = handle(s, shared);
            }
            Err(_) => std::thread::sleep(ACCEPT_RETRY_DELAY),
        }
    }
}

/// What the request head asked for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
    TooLarge,
}

/// Routes a request from its head (`None`: the head never completed).
fn route(head: Option<&[u8]>) -> Route {
    let Some(head) = head else {
        return Route::BadRequest;
    };
    let line_end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    let line = String::from_utf8_lossy(&head[..line_end]);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/") || parts.next().is_some() {
        return Route::BadRequest;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    let path = target.split('?').next().unwrap_or("");
    if path == "/metrics" {
        Route::Metrics { head_only }
    } else {
        Route::NotFound
    }
}

/// Reads up to the end of the request head, within the size and time limits.
fn read_head(s: &mut TcpStream) -> std::io::Result<Result<Vec<u8>, Route>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Ok(buf));
        }
        if buf.len() >= MAX_REQUEST_BYTES {
            return Ok(Err(Route::TooLarge));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Err(Route::BadRequest));
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(Err(Route::BadRequest));
        }
        // At most one chunk past the limit, checked on the next round.
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn handle(mut s: TcpStream, shared: &ServerShared) -> std::io::Result<()> {
    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let r = match read_head(&mut s)? {
        Ok(head) => route(Some(&head)),
        Err(r) => r,
    };
    let (status, content_type, body, head_only) = match r {
        Route::Metrics { head_only } => (
            "200 OK",
            CONTENT_TYPE,
            render(&Inputs::gather(shared)),
            head_only,
        ),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "Not found: the metrics are at /metrics\n".to_string(),
            false,
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "Only GET and HEAD are supported\n".to_string(),
            false,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "Bad request\n".to_string(),
            false,
        ),
        Route::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain; charset=utf-8",
            "Request too large\n".to_string(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    s.write_all(&response)?;
    s.flush()?;
    linger(&mut s);
    Ok(())
}

/// Half-closes and drains the client's leftover input, bounded in time and bytes.
fn linger(s: &mut TcpStream) {
    if s.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut chunk = [0u8; 4096];
    let mut dropped = 0;
    while dropped < LINGER_MAX_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |h: &str| route(Some(h.as_bytes()));
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("GET /metrics?name[]=x HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(r("GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(None), Route::BadRequest);
    }
}
