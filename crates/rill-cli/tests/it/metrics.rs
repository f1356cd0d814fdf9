//! `rill cluster start` serves metrics and health checks and says where.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::{free_port, rill, text};

/// GET `path` at `addr`: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: rill\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The address in a `http://ADDR/metrics` line.
fn metrics_addr_in(line: &str) -> SocketAddr {
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("a metrics URL in {line:?}"));
    url.trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap()
}

fn answers(addr: SocketAddr) {
    assert_eq!(get(addr, "/health/live").0, 200);
    assert_eq!(get(addr, "/health/ready"), (200, "ready\n".to_owned()));
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("rill_process_resident_memory_bytes"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
}

/// Kills the process by pid if the test fails midway.
struct Kill(u32);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

#[test]
fn foreground_start_prints_a_metrics_address_that_answers() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args([
            "cluster",
            "start",
            "--foreground",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(home.path().join("data"))
        .env("RILL_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _kill = Kill(child.id());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("rill SPU listening on "), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert!(second.starts_with("rill SPU metrics at "), "{second}");
    let metrics = metrics_addr_in(&second);
    assert_ne!(metrics.port(), 0);
    answers(metrics);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success(), "a clean stop");
}

fn recorded(home: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(home.join("metrics_addr"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn background_start_prints_and_records_the_metrics_address() {
    let home = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let out = rill(home.path(), &["cluster", "start", "--listen", &addr]);
    let pid = std::fs::read_to_string(home.path().join("spu.pid")).ok();
    let _kill = pid.and_then(|p| p.trim().parse().ok()).map(Kill);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    let line = printed
        .lines()
        .find(|l| l.trim_start().starts_with("metrics: "))
        .unwrap_or_else(|| panic!("a metrics line: {printed}"));
    let metrics = metrics_addr_in(line);
    assert_eq!(recorded(home.path()), Some(metrics), "home/metrics_addr");
    answers(metrics);
    let out = rill(home.path(), &["cluster", "stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(recorded(home.path()), None, "forgotten at stop");
    assert!(TcpStream::connect_timeout(&metrics, Duration::from_millis(500)).is_err());
}
