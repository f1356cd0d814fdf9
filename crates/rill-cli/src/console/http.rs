//! A small HTTP/1.1 server: one request per connection (`Connection:
//! close`), a bounded request head and body, a bounded number of
//! connections. The request parsing is a pure function over bytes
//! ([`parse_head`]); the network shell around it is thin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Largest request line plus headers, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body, in bytes (a test record's key, value, headers).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its whole request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string (not percent-decoded).
    pub path: String,
    /// The raw query string after `?`, if any.
    pub query: String,
    pub content_length: usize,
    /// The Content-Type header's media type, lower case (empty if none).
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of query parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "",
    }
}

/// Why a request head was refused, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadError {
    pub status: u16,
    pub message: String,
}

fn bad(status: u16, message: impl Into<String>) -> HeadError {
    HeadError {
        status,
        message: message.into(),
    }
}

/// Parses a complete request head (up to and including the blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| bad(400, "request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(400, format!("malformed request line {line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad(400, format!("unsupported protocol {version:?}")));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(400, format!("malformed method {method:?}")));
    }
    if !target.starts_with('/') {
        return Err(bad(400, format!("malformed target {target:?}")));
    }
    let mut content_length = 0;
    let mut content_type = String::new();
    for h in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = h.split_once(':') else {
            return Err(bad(400, format!("malformed header {h:?}")));
        };
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value
                .trim()
                .parse()
                .map_err(|_| bad(400, "malformed Content-Length"))?;
        } else if name.eq_ignore_ascii_case("content-type") {
            let media = value.split(';').next().unwrap_or_default();
            content_type = media.trim().to_ascii_lowercase();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(
                400,
                "chunked bodies are not accepted; send Content-Length",
            ));
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err(bad(
            413,
            format!("body of {content_length} bytes exceeds {MAX_BODY_BYTES} bytes"),
        ));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        content_length,
        content_type,
        body: Vec::new(),
    })
}

/// `%XX` and `+` decoded; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the blank line ending the head is, if it has arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Reads one request: the head (at most [`MAX_HEAD_BYTES`]) and its body.
async fn read_request(stream: &mut TcpStream) -> Result<Request, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(bad(
                431,
                format!("request head exceeds {MAX_HEAD_BYTES} bytes"),
            ));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| bad(400, format!("reading the request: {e}")))?;
        if n == 0 {
            return Err(bad(400, "connection closed before the request head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if end > MAX_HEAD_BYTES {
        return Err(bad(
            431,
            format!("request head exceeds {MAX_HEAD_BYTES} bytes"),
        ));
    }
    let mut req = parse_head(&buf[..end])?;
    let mut body = buf.split_off(end);
    while body.len() < req.content_length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| bad(400, format!("reading the body: {e}")))?;
        if n == 0 {
            return Err(bad(400, "connection closed before the body ended"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(req.content_length);
    req.body = body;
    Ok(req)
}

/// Something that answers requests.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl std::future::Future<Output = Response> + Send;
}

/// Serves `handler` on `listener` until the task is dropped.
pub async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (mut stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "console: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let response = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await
            {
                Ok(Ok(req)) => handler.handle(req).await,
                Ok(Err(e)) => Response::error(e.status, &e.message),
                Err(_) => Response::error(408, "the request did not arrive in time"),
            };
            if let Err(e) = stream.write_all(&response.encode()).await {
                tracing::debug!(%peer, error = %e, "console: writing the answer failed");
            }
            let _ = stream.shutdown().await;
        });
    }
}

/// Binds `addr` (port 0: a free port).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e} (choose another with --listen)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_bad_ones_are_refused() {
        let r = parse_head(b"GET /api/topics?x=a%20b HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/api/topics"));
        assert_eq!(r.param("x").as_deref(), Some("a b"));
        let r = parse_head(
            b"POST / HTTP/1.1\r\ncontent-length: 5\r\nContent-Type: Application/JSON; charset=utf-8\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.content_length, 5);
        assert_eq!(r.content_type, "application/json");
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / SPDY/3\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            assert_eq!(parse_head(head).unwrap_err().status, 400, "{head:?}");
        }
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(parse_head(big.as_bytes()).unwrap_err().status, 413);
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
