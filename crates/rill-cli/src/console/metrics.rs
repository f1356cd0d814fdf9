//! What the console learns from the SPUs' metrics endpoints: partition
//! sizes on disk and each SPU's readiness, memory, connections and
//! under-replicated partitions. A hand-written HTTP/1.1 GET (one request
//! per connection, a bounded answer, a timeout) and a small parser for the
//! Prometheus/OpenMetrics text format, both pure functions over bytes; the
//! scrapes are cached for [`CACHE_TTL`] so page polling does not hammer
//! the SPUs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer read from a metrics endpoint, head and body, in bytes.
pub const MAX_SCRAPE_BYTES: usize = 8 * 1024 * 1024;
/// Time one GET to a metrics endpoint may take, connecting included.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one round of scrapes is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// Most metrics endpoints scraped.
pub const MAX_ENDPOINTS: usize = 64;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples in a text exposition; `#` lines and lines that do not
/// parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = line.get(..name_end)?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = line.get(name_end..)?;
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    // The value; a timestamp or exemplar may follow.
    let value = rest.split_ascii_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"}` (after the `{`): the labels and what follows the `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = s.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let mut chars = after.trim_start().strip_prefix('"')?.char_indices();
        let body = after.trim_start().get(1..)?;
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        // `end` counts from after the opening quote.
        s = body.get(end..)?.strip_prefix('"')?.trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        }
    }
}

/// Splits an HTTP/1.x answer into its status and body (read until the
/// server closed; `Content-Length`, if given, cuts the body).
pub fn parse_response(raw: &[u8]) -> Result<(u16, &[u8]), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete head")?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| "the answer's head is not UTF-8")?;
    let body = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("malformed status line {status_line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("malformed status line {status_line:?}"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| format!("malformed status line {status_line:?}"))?;
    let mut body = body;
    for h in lines {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked answers are not read".into());
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| "malformed Content-Length")?;
            body = body
                .get(..n)
                .ok_or("the answer ended before its Content-Length")?;
        }
    }
    Ok((status, body))
}

/// GETs `path` from `addr`: its status and body, within [`SCRAPE_TIMEOUT`]
/// and at most [`MAX_SCRAPE_BYTES`].
pub async fn get(addr: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("sending to {addr}: {e}"))?;
        let mut raw = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading from {addr}: {e}"))?;
            if n == 0 {
                break;
            }
            if raw.len() + n > MAX_SCRAPE_BYTES {
                return Err(format!(
                    "the answer from {addr} exceeds {MAX_SCRAPE_BYTES} bytes"
                ));
            }
            raw.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        let (status, body) = parse_response(&raw)?;
        Ok((status, body.to_vec()))
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {SCRAPE_TIMEOUT:?}"))?
}

/// One endpoint's scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub addr: String,
    /// `/health/ready` answered 200 (None: it did not answer).
    pub ready: Option<bool>,
    pub samples: Vec<Sample>,
    pub error: Option<String>,
}

impl Scrape {
    /// The first sample named `name`.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    }
}

async fn scrape(addr: String) -> Scrape {
    let (ready, metrics) = tokio::join!(get(&addr, "/health/ready"), get(&addr, "/metrics"));
    let ready = match ready {
        Ok((status, _)) => Some(status == 200),
        Err(_) => None,
    };
    match metrics {
        Ok((200, body)) => Scrape {
            samples: parse(&String::from_utf8_lossy(&body)),
            addr,
            ready,
            error: None,
        },
        Ok((status, _)) => Scrape {
            error: Some(format!("{addr}/metrics answered {status}")),
            addr,
            ready,
            samples: Vec::new(),
        },
        Err(e) => Scrape {
            addr,
            ready,
            samples: Vec::new(),
            error: Some(e),
        },
    }
}

/// The endpoints and the last round of scrapes.
#[derive(Debug)]
pub struct Metrics {
    endpoints: Vec<String>,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Vec<Scrape>>)>>,
}

impl Metrics {
    pub fn new(mut endpoints: Vec<String>) -> Self {
        endpoints.truncate(MAX_ENDPOINTS);
        Metrics {
            endpoints,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    pub fn configured(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// Every endpoint's scrape, at most [`CACHE_TTL`] old.
    pub async fn scrapes(&self) -> Arc<Vec<Scrape>> {
        let mut cache = self.cache.lock().await;
        if let Some((at, scrapes)) = cache.as_ref() {
            if at.elapsed() < CACHE_TTL {
                return scrapes.clone();
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, addr) in self.endpoints.iter().enumerate() {
            let addr = addr.clone();
            tasks.spawn(async move { (i, scrape(addr).await) });
        }
        let mut out: Vec<(usize, Scrape)> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(s) = done {
                out.push(s);
            }
        }
        out.sort_by_key(|(i, _)| *i);
        let scrapes = Arc::new(out.into_iter().map(|(_, s)| s).collect::<Vec<_>>());
        *cache = Some((Instant::now(), scrapes.clone()));
        scrapes
    }
}

/// Bytes on disk of each of `topic`'s partitions the scrapes report. A
/// partition hosted by several SPUs (its replicas) counts once, at its
/// largest copy.
pub fn partition_bytes(scrapes: &[Scrape], topic: &str) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for s in scrapes.iter().flat_map(|s| &s.samples) {
        if s.name != "rill_partition_disk_bytes" || s.label("topic") != Some(topic) {
            continue;
        }
        let Some(p) = s.label("partition").and_then(|p| p.parse::<i64>().ok()) else {
            continue;
        };
        if !(s.value.is_finite() && s.value >= 0.0) {
            continue;
        }
        let bytes = s.value as u64;
        let e = out.entry(p).or_insert(0);
        *e = (*e).max(bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_with_labels_escapes_and_trailers() {
        let text = "# HELP rill_x A thing\n# TYPE rill_x gauge\n\
            rill_partition_disk_bytes{topic=\"orders\",partition=\"0\"} 1234\n\
            rill_partition_disk_bytes{topic=\"a\\\"b}\",partition=\"1\"} 5 1700000000\n\
            rill_connections_open 3\n\
            rill_h_bucket{le=\"+Inf\"} 7 # {trace_id=\"x\"} 1\n\
            rill_inf +Inf\n\
            # EOF\n";
        let s = parse(text);
        assert_eq!(s.len(), 5, "{s:?}");
        assert_eq!(s[0].label("topic"), Some("orders"));
        assert_eq!(s[0].value, 1234.0);
        assert_eq!(s[1].label("topic"), Some("a\"b}"));
        assert_eq!(s[1].label("partition"), Some("1"));
        assert_eq!(s[2].name, "rill_connections_open");
        assert!(s[2].labels.is_empty());
        assert_eq!(s[3].label("le"), Some("+Inf"));
        assert_eq!(s[4].value, f64::INFINITY);
        let scrape = Scrape {
            samples: s,
            ..Scrape::default()
        };
        assert_eq!(scrape.value("rill_connections_open"), Some(3.0));
        let sizes = partition_bytes(std::slice::from_ref(&scrape), "orders");
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![(0, 1234)]);
    }

    #[test]
    fn hostile_input_is_skipped_without_panicking() {
        for line in [
            "{",
            "}",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
            "x{a=\"\\",
            "x{a=\"v\"",
            "x{a=\"v\"}",
            "x{a=\"v\"} ",
            "x{a=\"v\"} notanumber",
            "x{=\"v\"} 1",
            "x{a b=\"v\"} 1",
            "x{a=v} 1",
            "x 1e999999999999",
            "na-me 1",
            "é{a=\"é\"} x",
            "x{a=\"é\\",
            "\u{0}\u{0}",
            "x{a=\"v\"b=\"w\"} 1",
        ] {
            let parsed = parse(line);
            // A value that overflows parses as infinity; nothing else here
            // is a sample, and nothing panics.
            if line != "x 1e999999999999" && line != "x{a=\"v\"b=\"w\"} 1" {
                assert!(parsed.is_empty(), "{line:?}: {parsed:?}");
            }
        }
        // Random bytes, lossily decoded, never panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"x{}=\",\\ 1e+-#\n\xc3"[(seed % 15) as usize]
                })
                .collect();
            let _ = parse(&String::from_utf8_lossy(&bytes));
            let _ = parse_response(&bytes);
        }
    }

    #[test]
    fn answers_split_into_status_and_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(raw), Ok((200, &b"abc"[..])));
        let raw = b"HTTP/1.0 503 Service Unavailable\r\n\r\nnot ready";
        assert_eq!(parse_response(raw), Ok((503, &b"not ready"[..])));
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SPDY 200\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            assert!(parse_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replicas_of_a_partition_count_once() {
        let s = |v: f64, p: &str| Scrape {
            samples: vec![Sample {
                name: "rill_partition_disk_bytes".into(),
                labels: vec![("topic".into(), "t".into()), ("partition".into(), p.into())],
                value: v,
            }],
            ..Scrape::default()
        };
        let sizes = partition_bytes(
            &[s(10.0, "0"), s(12.0, "0"), s(5.0, "1"), s(-1.0, "2")],
            "t",
        );
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![(0, 12), (1, 5)]);
    }
}
