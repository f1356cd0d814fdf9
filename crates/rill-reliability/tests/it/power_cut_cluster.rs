//! Power cuts in a 3-SPU cluster (issue #21, part 3): etcd as in the
//! failover suite, each SPU on its own `rill-lazyfs` mount, replication
//! factor 3, `min.insync.replicas=2`, two idempotent Rill producers with
//! acks all. Round after round SPUs are killed with SIGKILL and their
//! mounts cut at once; they restart on what survived, and the suite waits
//! until every ISR is whole again.
//!
//! - One SPU (rotating) per round, `--flush never` and `interval:200`:
//!   nothing acknowledged may be lost, the other replicas had it when the
//!   cut one lost its unsynced tail.
//! - All three at once, `--flush always`: nothing acknowledged lost.
//! - All three at once, `--flush never`: the loss is measured; the log
//!   must still read back whole (contiguous offsets, order, no duplicates).
//!
//! `RILL_POWERCUT_CLUSTER_CUTS` (default 3) sets the rounds of each.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill::{Isolation, Rill};
use rill_lazyfs::mount::{unavailable, Mount};

use crate::checker::{self, History, Promise};
use crate::failover::{
    wait_isr_whole, Etcd, PARTITIONS, POLL, REPAIR_BOUND, REPLICATION, SESSION_TIMEOUT_MS, SPUS,
    TOPIC,
};
use crate::producers::{self, env_usize, RillProducer};
use crate::spu::{ProcessSpu, STUCK};

const PRODUCERS: usize = 2;
const KEYS_PER_PRODUCER: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spu_cut_loses_nothing_acknowledged_with_acks_all_and_flush_never() {
    if let Some(outcome) = run(Cut::OneSpu, "never").await {
        outcome.assert_ok();
    }
}

/// As above under `flush interval:200`: what the cut SPU loses is at most
/// the last interval's, and the other replicas have it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spu_cut_loses_nothing_acknowledged_with_acks_all_and_flush_interval() {
    if let Some(outcome) = run(Cut::OneSpu, "interval:200").await {
        outcome.assert_ok();
    }
}

/// Its first runs lost acknowledged records (bug 7 in RELIABILITY.md):
/// the SPUs had been started with `--flush never`, not `always`.
/// `assert_flush` now checks every SPU process's command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_spus_cut_at_once_lose_nothing_acknowledged_with_flush_always() {
    if let Some(outcome) = run(Cut::AllSpus, "always").await {
        outcome.assert_ok();
    }
}

/// Once in 4 runs the ISRs were not whole 30 s after a cut of all three:
/// the recorded leader came back first and went on at its old leader epoch
/// from a log that had lost its tail, and a follower was stuck (bug 8 in
/// RELIABILITY.md, fixed: such a leader now gets the next epoch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_spus_cut_at_once_with_flush_never_lose_records_but_no_log_breaks() {
    if let Some(outcome) = run(Cut::AllSpus, "never").await {
        let broken: Vec<&String> = outcome
            .offset_errors
            .iter()
            .chain(&outcome.foreign)
            .chain(&outcome.split_keys)
            .chain(&outcome.order_errors)
            .collect();
        assert!(broken.is_empty(), "{broken:#?}");
        for p in &outcome.producers {
            assert_eq!(p.duplicates, 0, "{}: duplicates", p.name);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// One SPU per round, rotating.
    OneSpu,
    /// All three SPUs at once.
    AllSpus,
}

/// Runs the rounds; `None` when FUSE is not available here (skipped).
async fn run(mode: Cut, flush: &str) -> Option<checker::Outcome> {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return None;
    }
    let cuts = env_usize("RILL_POWERCUT_CLUSTER_CUTS", 3);
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    // Mounts first: dropped last, after the SPUs on them are killed.
    let mut mounts = Vec::new();
    for id in 0..SPUS {
        let at = dir.path().join(format!("disk-{id}"));
        std::fs::create_dir(&at).unwrap();
        let mount = Mount::new(&at).unwrap();
        mount.durable_dir("data").unwrap();
        mounts.push(mount);
    }
    let mut spus: Vec<ProcessSpu> = (0..SPUS)
        .map(|id| {
            ProcessSpu::bare(env!("CARGO_BIN_EXE_rill-reliability-spu"))
                .args([
                    "--flush",
                    flush,
                    "--id",
                    &id.to_string(),
                    "--etcd",
                    &etcd.url,
                ])
                .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
                .stderr_to(dir.path().join(format!("spu-{id}.log")))
                .start(mounts[id].path().join("data"))
        })
        .collect();
    for spu in &spus {
        assert_flush(spu, flush);
    }
    let addrs: Vec<String> = spus.iter().map(ProcessSpu::addr).collect();
    let rill = Rill::connect_to(&addrs[0]).await.unwrap();
    let asked = Instant::now();
    while rill
        .admin()
        .describe_cluster()
        .await
        .map_or(true, |c| c.spus.len() != SPUS)
    {
        assert!(
            asked.elapsed() < REPAIR_BOUND,
            "SPU 0 does not see the others"
        );
        tokio::time::sleep(POLL).await;
    }
    rill.admin()
        .create_topic(
            TOPIC,
            PARTITIONS,
            REPLICATION,
            &[("min.insync.replicas", "2"), ("segment.bytes", "65536")],
        )
        .await
        .unwrap();
    wait_isr_whole(&addrs, REPAIR_BOUND)
        .await
        .expect("the new topic's ISRs whole");

    let stop = Arc::new(AtomicBool::new(false));
    let restarts = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let p = RillProducer {
                addr: addrs[id % SPUS].clone(),
                topic: TOPIC,
                id,
                keys: KEYS_PER_PRODUCER,
                isolation: Isolation::ReadCommitted,
                idempotent: Some(true),
                semantic: producers::at_least_once(10_000, Duration::from_millis(50)),
            };
            tokio::spawn(producers::produce(p, stop.clone(), restarts.clone(), cuts))
        })
        .collect();

    let started = Instant::now();
    for round in 1..=cuts {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victims: Vec<usize> = match mode {
            Cut::OneSpu => vec![round % SPUS],
            Cut::AllSpus => (0..SPUS).collect(),
        };
        let seed = 0x5eed_u64 ^ ((round as u64) << 8) ^ u64::from(std::process::id());
        println!("cluster power cut {round}/{cuts}: SPUs {victims:?}, seed {seed}");
        // All killed before any is cut: one power failure for them all.
        for &v in &victims {
            spus[v].kill();
        }
        for &v in &victims {
            mounts[v].cut(Some(seed ^ v as u64)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for &v in &victims {
            spus[v].restart();
            assert_flush(&spus[v], flush);
        }
        restarts.store(round, Ordering::Relaxed);
        if let Err(last) = wait_isr_whole(&addrs, REPAIR_BOUND).await {
            print_log_tails(dir.path());
            panic!("ISRs not whole {REPAIR_BOUND:?} after cut {round}: {last:#?}");
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(
            tokio::time::timeout(STUCK, t)
                .await
                .expect("stuck")
                .unwrap(),
        );
    }
    let stored = crate::power_cut::read_topic(&addrs[0], TOPIC).await;
    let histories: Vec<History<'_>> = reports
        .iter()
        .enumerate()
        .map(|(id, r)| History {
            name: format!("p{id} idempotent acks=all"),
            promise: Promise {
                no_loss: mode == Cut::OneSpu || flush == "always",
                no_duplicates: true,
            },
            acked: &r.acked,
        })
        .collect();
    let outcome = checker::check(&stored, &histories);
    if !outcome.violations().is_empty() {
        // The logs go with the temporary directory: the CI failure of bug
        // 11 left no trace of which SPU led what.
        print_log_tails(dir.path());
    }
    let acked: usize = reports.iter().map(|r| r.acked.len()).sum();
    let lost: usize = outcome.producers.iter().map(|p| p.lost.len()).sum();
    println!(
        "cluster power cuts ({mode:?}, flush {flush}, acks all): {cuts} cuts in {:.1} s, \
         acknowledged {acked}, read {}, lost {lost}",
        started.elapsed().as_secs_f64(),
        stored.len(),
    );
    for spu in &mut spus {
        spu.kill();
    }
    drop(spus);
    drop(mounts);
    assert!(acked > 0, "nothing acknowledged");
    Some(outcome)
}

/// Asserts that the running SPU process was started with `--flush
/// flush`, read from its command line in `/proc`: the all-SPU `always`
/// test once started its SPUs with `never` (a literal where `flush`
/// belonged), and its loss was reported as a bug in the SPUs (bug 7 in
/// RELIABILITY.md).
fn assert_flush(spu: &ProcessSpu, flush: &str) {
    let pid = spu.pid().expect("the SPU is running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let given: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == b"--flush")
        .map(|w| String::from_utf8_lossy(w[1]).into_owned())
        .collect();
    assert_eq!(given, [flush], "the SPU's --flush (pid {pid})");
}

/// Prints the last lines of every SPU's log (kept in the temporary
/// directory, removed when the test ends), for a failure to explain.
fn print_log_tails(dir: &std::path::Path) {
    const LINES: usize = 60;
    for id in 0..SPUS {
        let path = dir.join(format!("spu-{id}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        println!("--- {} (last {LINES} lines)", path.display());
        for line in &lines[lines.len().saturating_sub(LINES)..] {
            println!("{line}");
        }
    }
}
