//! `rill cluster start --spus 3`: a local etcd and three SPU processes,
//! `status` (table and JSON), the walkthrough's topic commands, an SPU
//! killed and seen down, `stop` by pid.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::cluster::{rill, text};

/// A first port whose next two are free too (a moment ago).
fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base < 65_000 && (1..3).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

/// Every pid in the cluster's record (SPUs and etcd).
fn recorded_pids(home: &Path) -> Vec<String> {
    std::fs::read_to_string(home.join("cluster.state"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            match cells.as_slice() {
                ["etcd", pid, _] | ["spu", _, pid, _] if *pid != "0" => Some((*pid).to_owned()),
                _ => None,
            }
        })
        .collect()
}

/// Kills whatever the test started if it fails midway.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for pid in recorded_pids(self.0) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn three_spus_with_etcd_start_answer_show_a_dead_spu_and_stop() {
    let home = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let base = three_free_ports();
    let first = format!("127.0.0.1:{base}");

    let out = rill(
        home.path(),
        &[
            "cluster",
            "start",
            "--spus",
            "3",
            "--listen",
            &first,
            "--session-timeout-ms",
            "1500",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for i in 0..3 {
        assert!(
            text(&out).contains(&format!("SPU {i} at 127.0.0.1:{}", base + i as u16)),
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        recorded_pids(home.path()).len(),
        4,
        "etcd and three SPUs recorded"
    );

    // A second start refuses while it runs.
    let out = rill(
        home.path(),
        &["cluster", "start", "--spus", "3", "--listen", &first],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already runs"), "{}", text(&out));

    let out = rill(home.path(), &["cluster", "status", "-O", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(json.matches("\"alive\":true").count(), 4, "{json}");
    assert!(json.contains("\"controller\":"), "{json}");
    assert!(!json.contains("\"controller\":null"), "{json}");

    // The walkthrough's first steps, through the profile (SPU 0).
    let out = rill(
        home.path(),
        &["topic", "create", "walk", "--partitions", "6"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = rill(home.path(), &["topic", "list"]);
    assert!(text(&out).contains("walk"), "{}", text(&out));
    let leaders = |home: &Path| {
        let out = rill(home, &["partition", "list", "walk", "-O", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        let json = String::from_utf8_lossy(&out.stdout).into_owned();
        (0..3)
            .map(|id| json.matches(&format!("\"leader\":{id},")).count())
            .chain([json.matches("\"leader\":null").count()])
            .collect::<Vec<_>>()
    };
    assert_eq!(
        leaders(home.path()),
        [2, 2, 2, 0],
        "two partitions led by each SPU"
    );

    // kill -9 one SPU: status says it is down and fails.
    let state = std::fs::read_to_string(home.path().join("cluster.state")).unwrap();
    let spu2 = state
        .lines()
        .find_map(|l| l.strip_prefix("spu 2 "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    Command::new("kill")
        .args(["-KILL", &spu2])
        .status()
        .unwrap();
    let out = rill(home.path(), &["cluster", "status"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("DOWN"), "{}", text(&out));
    // Its session lapses (1.5 s): its two partitions have no leader, and
    // `partition list` says so without waiting for them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = leaders(home.path());
        if now == [2, 2, 0, 2] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "leaders {now:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Each replica's log end is asked of its own SPU: SPU 2's copies are
    // unknown (null), the others' lag nothing.
    let listed = rill(home.path(), &["partition", "list", "walk", "-O", "json"]);
    let json = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(
        json.matches(r#""replica_log_end":{"2":null},"replica_lag":{"2":null}"#)
            .count(),
        2,
        "{json}"
    );
    assert_eq!(
        json.matches(r#""replica_lag":{"0":0}"#).count(),
        2,
        "{json}"
    );
    assert_eq!(
        json.matches(r#""replica_lag":{"1":0}"#).count(),
        2,
        "{json}"
    );
    assert!(
        text(&out).contains("1 of 3 SPUs are down"),
        "{}",
        text(&out)
    );

    let pids = recorded_pids(home.path());
    let out = rill(home.path(), &["cluster", "stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("etcd"), "{}", text(&out));
    for pid in &pids {
        assert!(!alive(pid), "pid {pid} still runs after stop");
    }
    assert!(!home.path().join("cluster.state").exists());
    let out = rill(home.path(), &["cluster", "status"]);
    assert!(!out.status.success(), "nothing runs: {}", text(&out));
}

#[test]
fn a_taken_port_in_the_range_fails_the_cluster_start_and_leaves_nothing() {
    let home = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let base = three_free_ports();
    let _held = TcpListener::bind(("127.0.0.1", base + 2)).unwrap();
    let out = rill(
        home.path(),
        &[
            "cluster",
            "start",
            "--spus",
            "3",
            "--listen",
            &format!("127.0.0.1:{base}"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("127.0.0.1:{}", base + 2)),
        "{}",
        text(&out)
    );
    assert!(recorded_pids(home.path()).is_empty());
}

#[test]
fn an_unreachable_etcd_is_a_plain_error() {
    let home = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let base = three_free_ports();
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = rill(
        home.path(),
        &[
            "cluster",
            "start",
            "--spus",
            "2",
            "--listen",
            &format!("127.0.0.1:{base}"),
            "--etcd",
            &format!("http://127.0.0.1:{dead}"),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot reach etcd"), "{}", text(&out));
    assert!(
        recorded_pids(home.path()).is_empty(),
        "the failed SPUs were stopped"
    );
    assert!(!home.path().join("cluster.state").exists());
}
