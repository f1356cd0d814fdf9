//! The failover suite (issue 13): a real etcd and three SPU processes
//! (`rill-reliability-spu --id N --etcd URL`), a topic with replication
//! factor 3 and `min.insync.replicas=2`, producers writing keyed records
//! while, round after round, the leader of one partition is killed with
//! SIGKILL (by PID), a new leader is elected from the ISR, and the killed
//! SPU is started again on its data directory and rejoins the ISR.
//!
//! Producers (record format of [`crate::checker`]):
//!
//! - 0, 1: Rill, idempotent, acks all (`Isolation::ReadCommitted`),
//!   at least once with a patient retry policy;
//! - 2: Rill, acks 1 (`Isolation::ReadUncommitted`), at least once, not
//!   idempotent (as Kafka, which allows idempotence only with acks all).
//!   A leader may acknowledge a batch its followers never got and then die:
//!   the new leader does not have it. Its losses are measured, not judged;
//! - 3: librdkafka (`tests/librdkafka_producer.py`), idempotent, acks all,
//!   bootstrapped with all three SPUs.
//!
//! Each round: the current leader of a partition (rotating) is killed; the
//! suite polls Metadata (`describe_topic`) every 50 ms and measures how long
//! that partition had no live leader (from the kill to the first answer
//! naming another SPU); producing goes on; the SPU is restarted on the same
//! data directory and port; the suite waits (bounded) until every
//! partition's ISR has the three SPUs again.
//!
//! At the end producing stops, the suite waits (bounded) until the three
//! copies of every partition are byte-identical (the concatenation of its
//! `*.log` segment files, sorted by name, in each SPU's
//! `<data>/<topic>-<p>/`), reads every partition from the beginning with the
//! Rill consumer and runs [`crate::checker::check`]: nothing acknowledged
//! with acks all lost, no duplicates from the idempotent producers, per-key
//! order, contiguous offsets; acks-1 losses counted.
//!
//! `RILL_FAILOVER_ROUNDS` (default 3) sets the number of rounds. Every
//! process is stopped by its PID at the end, also when the test fails
//! (then the temp dir with etcd's and the SPUs' logs is kept and its path
//! printed).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill::{Isolation, PartitionDescription, Rill};

use crate::checker::{self, History, Promise};
use crate::producers::{self, env_usize, Librdkafka, ProducerReport, RillProducer};
use crate::spu::{ProcessSpu, STUCK};

pub(crate) const TOPIC: &str = "failover";
pub(crate) const PARTITIONS: i32 = 4;
pub(crate) const SPUS: usize = 3;
pub(crate) const REPLICATION: i16 = 3;
pub(crate) const KEYS_PER_PRODUCER: usize = 12;
pub(crate) const SESSION_TIMEOUT_MS: u64 = 1500;
pub(crate) const REPLICA_LAG_TIME_MAX_MS: u64 = 2000;
/// Longest a partition may stay without a live leader after its leader is
/// killed: the session timeout, then an election.
pub(crate) const ELECTION_BOUND: Duration = Duration::from_secs(20);
/// Longest the ISR may take to be whole again after a restart, and the
/// copies to be identical once producing stopped.
pub(crate) const REPAIR_BOUND: Duration = Duration::from_secs(30);
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// The producers, in key order (`p<index>-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Rill, idempotent, acks all.
    RillIdempotent,
    /// Rill, at least once, not idempotent, acks 1.
    RillAcksOne,
    /// librdkafka, idempotent, acks all.
    Librdkafka,
}

pub(crate) const PRODUCERS: [Kind; 4] = [
    Kind::RillIdempotent,
    Kind::RillIdempotent,
    Kind::RillAcksOne,
    Kind::Librdkafka,
];

impl Kind {
    pub(crate) fn promise(self) -> Promise {
        match self {
            Kind::RillIdempotent | Kind::Librdkafka => Promise {
                no_loss: true,
                no_duplicates: true,
            },
            Kind::RillAcksOne => Promise {
                no_loss: false,
                no_duplicates: false,
            },
        }
    }

    pub(crate) fn name(self, id: usize) -> String {
        match self {
            Kind::RillIdempotent => format!("p{id} Rill idempotent acks=all"),
            Kind::RillAcksOne => format!("p{id} Rill at-least-once acks=1"),
            Kind::Librdkafka => format!("p{id} librdkafka idempotent acks=all"),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// Debian's etcd on two free loopback ports, its data and log in `dir`.
pub(crate) struct Etcd {
    child: Child,
    pub(crate) url: String,
}

impl Etcd {
    pub(crate) fn start(dir: &Path) -> Self {
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log_path = dir.join("etcd.log");
        let log = std::fs::File::create(&log_path).expect("etcd's log file");
        let mut child = Command::new("etcd")
            .args(["--name", "rill", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("rill={peer_url}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd's log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting etcd: {e} (scripts/install-deps installs Debian's etcd-server)")
            });
        let started = Instant::now();
        while !listening(client) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("etcd exited with {status}; see {}", log_path.display());
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "etcd did not listen within 20 s; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // By PID: this test's own child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// etcd and the SPUs, all stopped by PID when dropped; on a failure the
/// temp dir (data and logs) is kept and its path printed.
struct Cluster {
    spus: Vec<ProcessSpu>,
    etcd: Option<Etcd>,
    dir: Option<tempfile::TempDir>,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rill-failover-")
            .tempdir()
            .expect("a temp dir");
        let path = dir.path().to_path_buf();
        // The guard first: an SPU that fails to start leaves its log kept.
        let mut cluster = Cluster {
            spus: Vec::new(),
            etcd: None,
            dir: Some(dir),
        };
        let etcd = Etcd::start(&path);
        let url = etcd.url.clone();
        cluster.etcd = Some(etcd);
        for id in 0..SPUS {
            let spu = ProcessSpu::bare(env!("CARGO_BIN_EXE_rill-reliability-spu"))
                .args(["--flush", "never", "--id", &id.to_string(), "--etcd", &url])
                .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
                .args([
                    "--replica-lag-time-max-ms",
                    &REPLICA_LAG_TIME_MAX_MS.to_string(),
                ])
                .stderr_to(path.join(format!("spu-{id}.log")))
                .start(path.join(format!("spu-{id}")));
            cluster.spus.push(spu);
        }
        cluster
    }

    fn addrs(&self) -> Vec<String> {
        self.spus.iter().map(ProcessSpu::addr).collect()
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("the temp dir").path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Each ProcessSpu kills its own process by PID when dropped.
        self.spus.clear();
        self.etcd = None;
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "failover suite failed: etcd's and the SPUs' data and logs are kept in {}",
                    kept.display()
                );
            }
        }
    }
}

/// The topic's partitions, asking a live SPU; `None` when it does not
/// answer or the answer is partial.
pub(crate) async fn describe(addr: &str) -> Option<Vec<PartitionDescription>> {
    let ask = async {
        let rill = Rill::connect_to(addr).await.ok()?;
        let d = rill.admin().describe_topic(TOPIC).await.ok()?;
        (d.partition_details.len() == PARTITIONS as usize).then_some(d.partition_details)
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// Waits, up to `bound`, until every SPU's Metadata shows every partition
/// with a leader and all three SPUs in its ISR; how long it took, or what
/// was last seen.
pub(crate) async fn wait_isr_whole(
    addrs: &[String],
    bound: Duration,
) -> Result<Duration, Option<Vec<PartitionDescription>>> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < bound {
        let mut whole = 0;
        for addr in addrs {
            let Some(d) = describe(addr).await else { break };
            if !d.iter().all(|p| p.leader.is_some() && p.isr.len() == SPUS) {
                last = Some(d);
                break;
            }
            whole += 1;
        }
        if whole == addrs.len() {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(last)
}

/// What one round saw.
#[derive(Debug)]
struct Round {
    killed: usize,
    /// From the kill to the first Metadata answer naming another leader.
    leaderless: Duration,
    /// From the restart to every partition's ISR whole again.
    isr_whole: Duration,
}

/// The concatenated `*.log` segment files (sorted by name) of `partition`
/// in an SPU's data directory.
fn log_bytes(data_dir: &Path, partition: u32) -> std::io::Result<Vec<u8>> {
    let dir = data_dir.join(format!("{TOPIC}-{partition}"));
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    let mut bytes = Vec::new();
    for n in names {
        bytes.extend(std::fs::read(n)?);
    }
    Ok(bytes)
}

/// Every partition whose copies differ, with how: empty when the three
/// copies of every partition are byte-identical.
pub(crate) fn replica_differences(spus: &[ProcessSpu]) -> Vec<String> {
    let mut out = Vec::new();
    for p in 0..PARTITIONS as u32 {
        let copies: Vec<std::io::Result<Vec<u8>>> =
            spus.iter().map(|s| log_bytes(s.data_dir(), p)).collect();
        let Ok(first) = &copies[0] else {
            out.push(format!("partition {p}: SPU 0's files: {:?}", copies[0]));
            continue;
        };
        for (i, c) in copies.iter().enumerate().skip(1) {
            match c {
                Ok(c) if c == first => {}
                Ok(c) => {
                    let at = first
                        .iter()
                        .zip(c.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(first.len().min(c.len()));
                    out.push(format!(
                        "partition {p}: SPU 0 has {} bytes, SPU {i} {} bytes, first difference at byte {at}",
                        first.len(),
                        c.len()
                    ));
                }
                Err(e) => out.push(format!("partition {p}: SPU {i}'s files: {e}")),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_leader_failover() {
    let rounds = env_usize("RILL_FAILOVER_ROUNDS", 3);
    let started = Instant::now();
    let mut cluster = tokio::task::block_in_place(Cluster::start);
    let addrs = cluster.addrs();
    let rill = Rill::connect_to(&addrs[0]).await.unwrap();
    // SPU 0's view of the cluster may not list the others yet (then
    // CreateTopics says INVALID_REPLICATION_FACTOR): wait until it does.
    let asked = Instant::now();
    loop {
        let spus = rill.admin().describe_cluster().await.map(|c| c.spus.len());
        if spus.as_ref().is_ok_and(|&n| n == SPUS) {
            break;
        }
        assert!(
            asked.elapsed() < REPAIR_BOUND,
            "SPU 0 does not see {SPUS} SPUs within {REPAIR_BOUND:?}: {spus:?}"
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
    if let Err(last) = wait_isr_whole(&addrs, REPAIR_BOUND).await {
        panic!("the new topic's ISRs are not whole within {REPAIR_BOUND:?}: {last:#?}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let restarts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut librdkafka = None;
    for (id, kind) in PRODUCERS.iter().enumerate() {
        let (isolation, idempotent) = match kind {
            Kind::RillIdempotent => (Isolation::ReadCommitted, true),
            Kind::RillAcksOne => (Isolation::ReadUncommitted, false),
            Kind::Librdkafka => {
                librdkafka = Some(Librdkafka::start(
                    &addrs.join(","),
                    TOPIC,
                    id,
                    KEYS_PER_PRODUCER,
                    restarts.clone(),
                    rounds,
                ));
                continue;
            }
        };
        let p = RillProducer {
            // Spread the bootstrap SPUs.
            addr: addrs[id % SPUS].clone(),
            topic: TOPIC,
            id,
            keys: KEYS_PER_PRODUCER,
            isolation,
            idempotent: Some(idempotent),
            semantic: producers::at_least_once(10_000, Duration::from_millis(50)),
        };
        tasks.push((
            id,
            tokio::spawn(producers::produce(
                p,
                stop.clone(),
                restarts.clone(),
                rounds,
            )),
        ));
    }

    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut seen: Vec<Round> = Vec::new();
    for round in 1..=rounds {
        // Produce a while, then kill a partition's leader, rotating over
        // partitions and preferring an SPU other than the last one killed.
        tokio::time::sleep(Duration::from_millis(300 + next(700))).await;
        let asked = Instant::now();
        let layout = loop {
            if let Some(d) = describe(&addrs[round % SPUS]).await {
                break d;
            }
            assert!(
                asked.elapsed() < REPAIR_BOUND,
                "round {round}: SPU {} gives no Metadata for {REPAIR_BOUND:?}",
                round % SPUS
            );
            tokio::time::sleep(POLL).await;
        };
        let last_killed = seen.last().map(|r| r.killed);
        let candidates: Vec<&PartitionDescription> = (0..PARTITIONS as usize)
            .map(|i| &layout[(round - 1 + i) % PARTITIONS as usize])
            .filter(|p| p.leader.is_some())
            .collect();
        let target = candidates
            .iter()
            .find(|p| p.leader.map(|l| l as usize) != last_killed)
            .or(candidates.first())
            .unwrap_or_else(|| panic!("round {round}: no partition has a leader: {layout:#?}"));
        let (partition, old_epoch) = (target.partition, target.leader_epoch);
        let killed = target.leader.unwrap() as usize;
        let survivors: Vec<String> = (0..SPUS)
            .filter(|&i| i != killed)
            .map(|i| addrs[i].clone())
            .collect();

        let killed_at = Instant::now();
        cluster.spus[killed].kill();
        // How long the partition has no live leader: until an answer names
        // another SPU.
        let (new_leader, new_epoch) = loop {
            if killed_at.elapsed() > ELECTION_BOUND {
                panic!(
                    "round {round}: partition {partition} has no leader {ELECTION_BOUND:?} after SPU {killed} was killed; logs in {}",
                    cluster.path().display()
                );
            }
            let mut found = None;
            for addr in &survivors {
                if let Some(d) = describe(addr).await {
                    let p = &d[partition as usize];
                    if let Some(l) = p.leader.filter(|&l| l as usize != killed) {
                        found = Some((l, p.leader_epoch));
                    }
                    break;
                }
            }
            if let Some(f) = found {
                break f;
            }
            tokio::time::sleep(POLL).await;
        };
        let leaderless = killed_at.elapsed();
        println!(
            "round {round}: killed SPU {killed} (leader of partition {partition}, epoch {old_epoch}); \
             SPU {new_leader} leads it at epoch {new_epoch} after {} ms",
            leaderless.as_millis()
        );

        // Producing goes on without it, then it comes back on its data.
        tokio::time::sleep(Duration::from_millis(200 + next(600))).await;
        tokio::task::block_in_place(|| cluster.spus[killed].restart());
        restarts.store(round, Ordering::Relaxed);
        let isr_whole = match wait_isr_whole(&addrs, REPAIR_BOUND).await {
            Ok(t) => t,
            Err(last) => panic!(
                "round {round}: the ISRs are not whole {REPAIR_BOUND:?} after SPU {killed} restarted: {last:#?}; logs in {}",
                cluster.path().display()
            ),
        };
        println!(
            "round {round}: SPU {killed} restarted; every ISR whole again after {} ms",
            isr_whole.as_millis()
        );
        seen.push(Round {
            killed,
            leaderless,
            isr_whole,
        });
    }
    // Producers must still work after the last restart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut reports: Vec<ProducerReport> = Vec::new();
    for (id, kind) in PRODUCERS.iter().enumerate() {
        let report = if *kind == Kind::Librdkafka {
            librdkafka.take().expect("the librdkafka producer").stop()
        } else {
            let i = tasks.iter().position(|(i, _)| *i == id).unwrap();
            let (_, task) = tasks.remove(i);
            tokio::time::timeout(STUCK, task)
                .await
                .expect("a producer task is stuck after stop")
                .unwrap()
        };
        reports.push(report);
    }
    let produced_for = started.elapsed();

    // The copies: whole ISRs, then byte-identical files (bounded).
    if let Err(last) = wait_isr_whole(&addrs, REPAIR_BOUND).await {
        panic!(
            "the ISRs are not whole {REPAIR_BOUND:?} after producing stopped: {last:#?}; logs in {}",
            cluster.path().display()
        );
    }
    let copies_from = Instant::now();
    let mut differences = replica_differences(&cluster.spus);
    while !differences.is_empty() && copies_from.elapsed() < REPAIR_BOUND {
        tokio::time::sleep(Duration::from_millis(200)).await;
        differences = replica_differences(&cluster.spus);
    }
    let copies_took = copies_from.elapsed();

    // Read everything back.
    let rill = Rill::connect_to(&addrs[0]).await.unwrap();
    let stored = producers::read_back(&rill, TOPIC).await;
    let histories: Vec<History<'_>> = PRODUCERS
        .iter()
        .enumerate()
        .map(|(id, kind)| History {
            name: kind.name(id),
            promise: kind.promise(),
            acked: &reports[id].acked,
        })
        .collect();
    let outcome = checker::check(&stored, &histories);

    // The summary.
    let acked_by = |k: Kind| -> usize {
        PRODUCERS
            .iter()
            .zip(&reports)
            .filter(|(kind, _)| **kind == k)
            .map(|(_, r)| r.acked.len())
            .sum()
    };
    let of_kind = |k: Kind| {
        PRODUCERS
            .iter()
            .zip(&outcome.producers)
            .filter(move |(kind, _)| **kind == k)
    };
    let acks_one_lost: usize = of_kind(Kind::RillAcksOne).map(|(_, o)| o.lost.len()).sum();
    let acks_one_missing: usize = of_kind(Kind::RillAcksOne).map(|(_, o)| o.missing).sum();
    let acks_one_duplicates: usize = of_kind(Kind::RillAcksOne).map(|(_, o)| o.duplicates).sum();
    let idempotent_duplicates: usize = outcome
        .producers
        .iter()
        .filter(|o| o.no_duplicates)
        .map(|o| o.duplicates)
        .sum();
    let longest_leaderless = seen.iter().map(|r| r.leaderless).max().unwrap_or_default();
    let longest_isr = seen.iter().map(|r| r.isr_whole).max().unwrap_or_default();
    for (id, (r, o)) in reports.iter().zip(&outcome.producers).enumerate() {
        println!(
            "  {}: acknowledged {}, failed {}, hung {}, after last restart {}, read {}, lost {} (missing {}, moved {}), duplicates {}",
            PRODUCERS[id].name(id),
            r.acked.len(),
            r.failed,
            r.hung,
            r.acked_after_last_restart,
            o.read,
            o.lost.len(),
            o.missing,
            o.moved,
            o.duplicates
        );
    }
    println!(
        "failover suite: {rounds} rounds, {} partitions x {REPLICATION} replicas, {:.1} s producing; \
         acked acks=all Rill idempotent {}, librdkafka idempotent {}, acks=1 {}; read {}; \
         lost (acks=all) {}; duplicates (idempotent) {idempotent_duplicates}; \
         acks=1 lost {acks_one_lost} (read nowhere {acks_one_missing}), acks=1 duplicates {acks_one_duplicates}; \
         longest leaderless {} ms; longest ISR repair {} ms; replicas identical: {} (after {} ms)",
        PARTITIONS,
        produced_for.as_secs_f64(),
        acked_by(Kind::RillIdempotent),
        acked_by(Kind::Librdkafka),
        acked_by(Kind::RillAcksOne),
        outcome.read,
        outcome.lost_promised(),
        longest_leaderless.as_millis(),
        longest_isr.as_millis(),
        if differences.is_empty() { "yes" } else { "NO" },
        copies_took.as_millis()
    );

    let mut failures = outcome.violations();
    if !differences.is_empty() {
        failures.push(format!(
            "the copies differ {REPAIR_BOUND:?} after producing stopped: {differences:#?}"
        ));
    }
    for (id, r) in reports.iter().enumerate() {
        if r.acked_after_last_restart == 0 {
            failures.push(format!(
                "{}: nothing acknowledged after the last restart",
                PRODUCERS[id].name(id)
            ));
        }
        if r.hung > 0 {
            failures.push(format!(
                "{}: {} records never answered",
                PRODUCERS[id].name(id),
                r.hung
            ));
        }
        if !r.fatal.is_empty() {
            failures.push(format!("{}: {:?}", PRODUCERS[id].name(id), r.fatal));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures (logs in {}):\n{}",
        failures.len(),
        cluster.path().display(),
        failures.join("\n")
    );
    // Stop every process by PID now (the guard does it on failure too).
    drop(cluster);
}
