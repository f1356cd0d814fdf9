//! `rill console` against an SPU process: the HTTP layer refuses bad
//! requests with the right status, the API lists, creates and produces
//! through the Kafka protocol, and `rill cluster start` serves it, with
//! topic sizes from the SPU's metrics endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{rill, text};
use crate::spu::TestSpu;

/// A `rill console` process, stopped by its pid when dropped.
struct Console {
    child: Child,
    addr: SocketAddr,
    _home: tempfile::TempDir,
}

impl Console {
    /// A console with no metrics endpoint (an empty home: no
    /// `metrics_addr` to default to).
    fn start(bootstrap: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
            .env("RILL_HOME", home.path())
            .args([
                "console",
                "--listen",
                "127.0.0.1:0",
                "--bootstrap",
                bootstrap,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rill console");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        Console {
            child,
            addr,
            _home: home,
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `raw` and returns the status and body of the answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (and close) before reading all of an
    // oversized head; the answer is what matters.
    let _ = s.write_all(raw);
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = exchange(addr, raw.as_bytes());
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

#[test]
fn the_http_layer_answers_bad_requests_with_their_status() {
    let spu = TestSpu::start();
    let console = Console::start(&spu.addr);
    let (status, _) = exchange(console.addr, b"NONSENSE\r\n\r\n");
    assert_eq!(status, 400);
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(64 * 1024));
    assert_eq!(exchange(console.addr, long.as_bytes()).0, 431);
    let (status, body) = request(console.addr, "GET", "/no/such/page", "");
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("/no/such/page"),
        "{body}"
    );
    assert_eq!(request(console.addr, "DELETE", "/api/topics", "").0, 405);
    // A form post from another site's page (no JSON content type) is refused.
    let body = r#"{"name": "x"}"#;
    let form = format!(
        "POST /api/topics HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(exchange(console.addr, form.as_bytes()).0, 415);
    let (status, page) = exchange(console.addr, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Rill console</title>"), "{page}");
}

#[test]
fn the_api_creates_lists_produces_and_tails_through_the_kafka_protocol() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "existing", "-p", "2"]);
    let console = Console::start(&spu.addr);

    let (status, cluster) = request(console.addr, "GET", "/api/cluster", "");
    assert_eq!(status, 200);
    assert_eq!(cluster["healthy"], true, "{cluster}");
    assert_eq!(cluster["spus"].as_array().unwrap().len(), 1, "{cluster}");

    let (status, topics) = request(console.addr, "GET", "/api/topics", "");
    assert_eq!(status, 200);
    let t = &topics["topics"][0];
    assert_eq!(t["name"], "existing", "{topics}");
    assert_eq!(t["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(t["partitions"][0]["log_end"], 0);
    assert_eq!(t["retention_ms"], "604800000");
    // No metrics endpoint: the size is not known, and the API says why.
    assert_eq!(t["size_bytes"], Value::Null, "{topics}");
    assert_eq!(topics["metrics_configured"], false, "{topics}");
    assert_eq!(cluster["metrics_configured"], false, "{cluster}");

    let create = r#"{"name": "made-here", "partitions": 3, "replication": 1}"#;
    assert_eq!(request(console.addr, "POST", "/api/topics", create).0, 201);
    assert_eq!(request(console.addr, "POST", "/api/topics", create).0, 409);
    for bad in [
        r#"{"name": "a b"}"#,
        r#"{"name": "ok", "partitions": 0}"#,
        r#"{"name": "ok", "partitions": "many"}"#,
        "not json",
    ] {
        let (status, body) = request(console.addr, "POST", "/api/topics", bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert!(spu.ok(&["topic", "list"]).contains("made-here"));

    let record =
        r#"{"key": "k1", "value": "{\"n\": 1}", "headers": [{"name": "h", "value": "v"}]}"#;
    let (status, stored) = request(console.addr, "POST", "/api/topics/existing/records", record);
    assert_eq!(status, 201, "{stored}");
    let (status, _) = request(console.addr, "POST", "/api/topics/missing/records", record);
    assert_eq!(status, 404);
    let consumed = spu.ok(&["consume", "existing", "-B", "-d"]);
    assert!(consumed.contains(r#"{"n": 1}"#), "{consumed}");

    let (status, tail) = request(console.addr, "GET", "/api/topics/existing/records", "");
    assert_eq!(status, 200);
    let r = &tail["records"][0];
    assert_eq!(r["value"]["text"], r#"{"n": 1}"#, "{tail}");
    assert_eq!(r["key"]["text"], "k1");
    assert_eq!(r["headers"][0]["name"], "h");
    let next = tail["next"].as_str().unwrap().to_owned();
    let (_, again) = request(
        console.addr,
        "GET",
        &format!("/api/topics/existing/records?from={next}"),
        "",
    );
    assert_eq!(again["records"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(
        request(
            console.addr,
            "GET",
            "/api/topics/existing/records?from=x",
            ""
        )
        .0,
        400
    );
}

#[test]
fn cluster_start_serves_the_console_and_prints_its_address() {
    let home = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (spu, console) = (free(), free());
    let out = rill(
        home.path(),
        &[
            "cluster",
            "start",
            "--listen",
            &spu.to_string(),
            "--console-listen",
            &console.to_string(),
        ],
    );
    let stop = || rill(home.path(), &["cluster", "stop"]);
    if !out.status.success() {
        stop();
        panic!("{}", text(&out));
    }
    let said = text(&out);
    let (status, page) = exchange(console, b"GET / HTTP/1.1\r\n\r\n");
    let (_, cluster) = request(console, "GET", "/api/cluster", "");
    stop();
    assert!(
        said.contains(&format!("console: http://{console}/")),
        "{said}"
    );
    assert_eq!(status, 200);
    assert!(page.contains("Rill console"));
    assert_eq!(cluster["bootstrap"], spu.to_string(), "{cluster}");
    assert_eq!(cluster["healthy"], true, "{cluster}");
}

/// A foreground `rill cluster start` process, stopped by its pid.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sum of `rill_partition_disk_bytes` for `topic` in a text exposition.
fn disk_bytes_in(exposition: &str, topic: &str) -> u64 {
    let label = format!("topic=\"{topic}\"");
    exposition
        .lines()
        .filter(|l| l.starts_with("rill_partition_disk_bytes{") && l.contains(&label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn topic_sizes_and_spu_health_come_from_the_metrics_endpoint() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
        .env("RILL_HOME", home.path())
        .env_remove("RILL_ADDR")
        .args([
            "cluster",
            "start",
            "--foreground",
            "--listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting rill cluster start --foreground");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _spu = Foreground(child);
    let mut next = || lines.next().expect("a line").expect("stdout");
    let spu = next().replace("rill SPU listening on ", "");
    let metrics: SocketAddr = next()
        .split("http://")
        .nth(1)
        .and_then(|m| m.strip_suffix("/metrics"))
        .expect("the metrics address")
        .parse()
        .unwrap();
    let console: SocketAddr = next()
        .split("http://")
        .nth(1)
        .and_then(|c| c.strip_suffix('/'))
        .expect("the console address")
        .parse()
        .unwrap();
    let ok = |args: &[&str], input: &str| {
        let out = crate::spu::run_with_input(
            {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
                cmd.env("RILL_HOME", home.path())
                    .env("RILL_ADDR", spu.trim())
                    .args(args);
                cmd
            },
            input.as_bytes(),
        );
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    };
    ok(&["topic", "create", "sized", "-p", "2"], "");
    let records: String = (0..200).map(|i| format!("record number {i}\n")).collect();
    ok(&["produce", "sized"], &records);

    // The console caches scrapes for a moment: read until both agree.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (status, topic) = request(console, "GET", "/api/topics/sized", "");
        assert_eq!(status, 200, "{topic}");
        let (status, exposition) = exchange(
            metrics,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        let scraped = disk_bytes_in(&exposition, "sized");
        let per_partition: u64 = topic["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["size_bytes"].as_u64().expect("each partition's size"))
            .sum();
        if topic["size_bytes"].as_u64() == Some(scraped) && per_partition == scraped {
            assert!(scraped > 0, "{topic}");
            assert_eq!(topic["metrics_configured"], true);
            let (_, cluster) = request(console, "GET", "/api/cluster", "");
            let m = &cluster["metrics"][0];
            assert_eq!(m["addr"], metrics.to_string(), "{cluster}");
            assert_eq!(m["ready"], true, "{cluster}");
            assert!(m["rss_bytes"].as_f64().unwrap() > 0.0, "{cluster}");
            assert!(m["connections_open"].as_f64().is_some(), "{cluster}");
            assert_eq!(m["under_replicated"].as_f64(), Some(0.0), "{cluster}");
            return;
        }
        seen.push((topic["size_bytes"].clone(), scraped));
        std::thread::sleep(Duration::from_millis(2500));
    }
    panic!("the console's sizes never matched /metrics: {seen:?}");
}
