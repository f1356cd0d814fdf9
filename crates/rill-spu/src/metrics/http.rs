//! The metrics endpoint: a small HTTP/1.1 server for GET only, one request
//! per connection (`Connection: close`).
//!
//! - `/metrics`: OpenMetrics text (Prometheus scrapes it).
//! - `/health/live`: 200 while the process serves.
//! - `/health/ready`: 200 once the SPU has joined its cluster and opened
//!   its partitions, until it starts shutting down; 503 otherwise.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections are served at once
//! (more wait in the listen backlog), a request head is at most
//! [`MAX_REQUEST_HEAD_BYTES`] (431 beyond), and a connection gets
//! [`CONNECTION_TIMEOUT`] to send its head and take the answer.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::Metrics;
use crate::api::Context;

/// Largest request head (request line and headers) read, in bytes.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest a connection may take to send its head and read the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint serves; the context is set once the SPU is up.
#[derive(Debug)]
pub(crate) struct Exporter {
    pub metrics: Arc<Metrics>,
    pub ctx: OnceLock<Arc<Context>>,
}

/// Serves `listener` until `stop` changes.
pub(crate) async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            // A slot first, then a connection: beyond the limit, clients
            // wait in the listen backlog.
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => accepted.map(|a| (a, permit)),
                },
                Err(_) => break,
            },
        };
        match accepted {
            Ok(((stream, _peer), permit)) => {
                let exporter = exporter.clone();
                connections.spawn(async move {
                    let _ =
                        tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &exporter)).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    connections.shutdown().await;
}

/// Reads the head, writes the answer, closes.
async fn answer(mut stream: TcpStream, exporter: &Exporter) -> std::io::Result<()> {
    let response = match read_head(&mut stream).await? {
        Head::TooLarge => {
            let answer = plain(
                431,
                "Request Header Fields Too Large",
                "request head too large\n",
            );
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            // Closing with unread input would reset the connection and
            // could lose the answer: read on a little, bounded.
            let mut sink = [0u8; 4096];
            let mut left = DRAIN_BYTES;
            while left > 0 {
                match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut sink)).await {
                    Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                    _ => break,
                }
            }
            return Ok(());
        }
        Head::Complete(head) => route(&head, exporter).await,
        Head::Closed => return Ok(()),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// Most bytes read and dropped after refusing an oversized head.
const DRAIN_BYTES: usize = 64 * 1024;

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
}

/// The request head up to its blank line, within the limit.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(Head::Complete(head));
        }
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Ok(Head::TooLarge);
        }
    }
}

async fn route(head: &[u8], exporter: &Exporter) -> Vec<u8> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return plain(400, "Bad Request", "bad request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain(400, "Bad Request", "HTTP/1.x only\n");
    }
    let path = target.split('?').next().unwrap_or_default();
    let known = matches!(path, "/metrics" | "/health/live" | "/health/ready");
    if !known {
        return plain(
            404,
            "Not Found",
            "not found: try /metrics, /health/live, /health/ready\n",
        );
    }
    if method != "GET" {
        return response(
            405,
            "Method Not Allowed",
            "text/plain; charset=utf-8",
            "Allow: GET\r\n",
            b"only GET\n",
        );
    }
    match path {
        "/health/live" => plain(200, "OK", "live\n"),
        "/health/ready" if exporter.metrics.is_ready() => plain(200, "OK", "ready\n"),
        "/health/ready" => plain(503, "Service Unavailable", "not ready\n"),
        _ => metrics(exporter).await,
    }
}

async fn metrics(exporter: &Exporter) -> Vec<u8> {
    let metrics = exporter.metrics.clone();
    let ctx = exporter.ctx.get().cloned();
    // Reading the state takes partition log locks: off the async threads.
    let rendered =
        tokio::task::spawn_blocking(move || super::render(&metrics, ctx.as_deref())).await;
    match rendered {
        Ok(Ok(text)) => response(
            200,
            "OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "",
            text.as_bytes(),
        ),
        _ => plain(
            500,
            "Internal Server Error",
            "could not render the metrics\n",
        ),
    }
}

fn plain(status: u16, reason: &str, body: &str) -> Vec<u8> {
    response(
        status,
        reason,
        "text/plain; charset=utf-8",
        "",
        body.as_bytes(),
    )
}

fn response(status: u16, reason: &str, content_type: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Binds the endpoint.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::SpuError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::SpuError::Bind { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporter() -> Exporter {
        Exporter {
            metrics: Arc::new(Metrics::new()),
            ctx: OnceLock::new(),
        }
    }

    fn status(response: &[u8]) -> String {
        String::from_utf8_lossy(response)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn routes() {
        let e = exporter();
        assert_eq!(
            status(&route(b"GET /nope HTTP/1.1", &e).await),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(&route(b"POST /metrics HTTP/1.1", &e).await),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            status(&route(b"GET /health/live HTTP/1.1", &e).await),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(
            status(&route(b"GET /health/ready HTTP/1.1", &e).await),
            "HTTP/1.1 503 Service Unavailable"
        );
        e.metrics.set_ready(true);
        assert_eq!(
            status(&route(b"GET /health/ready HTTP/1.1", &e).await),
            "HTTP/1.1 200 OK"
        );
        let m = route(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a", &e).await;
        assert_eq!(status(&m), "HTTP/1.1 200 OK");
        assert!(String::from_utf8_lossy(&m).ends_with("# EOF\n"));
        assert_eq!(
            status(&route(b"garbage", &e).await),
            "HTTP/1.1 400 Bad Request"
        );
    }
}
