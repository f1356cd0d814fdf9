//! The isolation suite (issue 13): the leader of a partition is cut off
//! from its followers and from etcd while its process keeps running. It
//! must stop acknowledging `acks=all`; a new leader takes over; when
//! healed, the old leader truncates its unreplicated tail and follows. No
//! acknowledged record is lost.
//!
//! The cluster is the failover suite's (real etcd, three
//! `rill-reliability-spu` processes, its topic of 4 partitions with
//! replication factor 3 and `min.insync.replicas=2`, its producers), with a
//! fault proxy ([`crate::netfault`]) on every path between them:
//!
//! - one in front of each SPU's listener, which the SPU advertises
//!   (`--advertise`): the other SPUs' copy loops and every producer reach
//!   it only through that proxy;
//! - one between each SPU and etcd (its `--etcd` is its own proxy).
//!
//! Isolating SPU L puts a fault on both of L's proxies and on the
//! connections L makes through the other SPUs' proxies (recognised by the
//! client id L's copy loops send, `rill-spu-L`): L reaches nobody and
//! nobody reaches L, the test process excepted, which talks to L's own
//! listener directly. Rounds alternate the two faults: a blackhole (odd
//! rounds: connections go silent, only timeouts end them) and a cut
//! (connections closed, new ones closed at once).
//!
//! Each round: after 300-1000 ms of producing the leader L of a partition P
//! (rotating) is isolated; straight away, and again once another leader was
//! elected, the test sends L directly a Produce with `acks=all` to P (a
//! *probe*, value `probe-<round>-<n>`): L must not acknowledge it (it can
//! neither replicate it nor shrink the ISR without etcd). The leaderless
//! time is from the isolation until a surviving SPU's Metadata names
//! another leader for every partition L led. After 500-1500 ms more the
//! proxies heal; the round ends when every partition's ISR has the three
//! SPUs again and L's log says it cut P back to where it agrees with the
//! new leader (it must: the probe is an unreplicated tail).
//!
//! At the end, as in the failover suite: the copies of every partition
//! must become byte-identical, the checker must pass (acknowledged − read
//! = ∅ for acks all, no duplicates from the idempotent producers, per-key
//! order, contiguous offsets) and no probe may be read anywhere.
//!
//! `RILL_ISOLATION_ROUNDS` (default 3) sets the number of rounds.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rill::{ConsumerConfig, Isolation, Offset, PartitionDescription, Rill};
use rill_protocol::Compression;
use rill_test_support::{batch, KafkaClient, ResponseError};

use crate::checker::{self, History, Stored};
use crate::failover::{
    describe, replica_differences, wait_isr_whole, Etcd, Kind, ELECTION_BOUND, KEYS_PER_PRODUCER,
    PARTITIONS, POLL, PRODUCERS, REPAIR_BOUND, REPLICATION, REPLICA_LAG_TIME_MAX_MS,
    SESSION_TIMEOUT_MS, SPUS, TOPIC,
};
use crate::netfault::{Fault, Proxy};
use crate::producers::{self, env_usize, Librdkafka, ProducerReport, RillProducer};
use crate::spu::{ProcessSpu, STUCK};

/// How long a probe's Produce may wait for its high watermark at the SPU.
const PROBE_TIMEOUT_MS: i32 = 1000;
/// Longest a probe may take to be answered (the SPU must answer when its
/// own timeout passes).
const PROBE_ANSWER_BOUND: Duration = Duration::from_secs(10);
/// What the SPU logs when a follower truncates (see `follower.rs`).
const TRUNCATED: &str = "follower cut its log back";

/// etcd, the SPUs and their proxies; every process stopped by PID when
/// dropped, the temp dir kept (and its path printed) on a failure.
struct Cluster {
    spus: Vec<ProcessSpu>,
    /// In front of each SPU's listener (what it advertises).
    fronts: Vec<Proxy>,
    /// Between each SPU and etcd.
    to_etcd: Vec<Proxy>,
    etcd: Option<Etcd>,
    dir: Option<tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rill-isolation-")
            .tempdir()
            .expect("a temp dir");
        let path = dir.path().to_path_buf();
        let mut cluster = Cluster {
            spus: Vec::new(),
            fronts: Vec::new(),
            to_etcd: Vec::new(),
            etcd: None,
            dir: Some(dir),
        };
        let etcd = tokio::task::block_in_place(|| Etcd::start(&path));
        let etcd_addr: SocketAddr = etcd
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("etcd's client address");
        cluster.etcd = Some(etcd);
        for id in 0..SPUS {
            let front = Proxy::start(true).await;
            let to_etcd = Proxy::start(false).await;
            to_etcd.set_upstream(etcd_addr);
            let etcd_url = format!("http://{}", to_etcd.addr);
            let advertise = front.addr.to_string();
            let log = path.join(format!("spu-{id}.log"));
            let data = path.join(format!("spu-{id}"));
            let spu = tokio::task::block_in_place(|| {
                ProcessSpu::bare(env!("CARGO_BIN_EXE_rill-reliability-spu"))
                    .args(["--flush", "never", "--id", &id.to_string()])
                    .args(["--etcd", &etcd_url, "--advertise", &advertise])
                    .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
                    .args([
                        "--replica-lag-time-max-ms",
                        &REPLICA_LAG_TIME_MAX_MS.to_string(),
                    ])
                    .stderr_to(log)
                    .start(data)
            });
            front.set_upstream(spu.addr);
            cluster.spus.push(spu);
            cluster.fronts.push(front);
            cluster.to_etcd.push(to_etcd);
        }
        cluster
    }

    /// The SPUs' own listeners (the test's way in, past the proxies).
    fn direct(&self) -> Vec<String> {
        self.spus.iter().map(ProcessSpu::addr).collect()
    }

    /// What the SPUs advertise: the proxies (the producers' way in).
    fn advertised(&self) -> Vec<String> {
        self.fronts.iter().map(|p| p.addr.to_string()).collect()
    }

    /// Cuts SPU `l` off from the other SPUs and from etcd.
    fn isolate(&self, l: usize, fault: Fault) {
        self.fronts[l].isolate(fault);
        self.to_etcd[l].isolate(fault);
        for (i, front) in self.fronts.iter().enumerate() {
            if i != l {
                front.isolate_spu(l as u32, fault);
            }
        }
    }

    fn heal(&self) {
        for p in self.fronts.iter().chain(&self.to_etcd) {
            p.heal();
        }
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("the temp dir").path()
    }

    /// Lines of SPU `id`'s log saying it truncated `partition`.
    fn truncations(&self, id: usize, partition: u32) -> usize {
        let log =
            std::fs::read_to_string(self.path().join(format!("spu-{id}.log"))).unwrap_or_default();
        let dir = format!("{TOPIC}-{partition}");
        log.lines()
            .filter(|l| l.contains(TRUNCATED) && l.contains(&dir))
            .count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.fronts.clear();
        self.to_etcd.clear();
        // Each ProcessSpu kills its own process by PID when dropped.
        self.spus.clear();
        self.etcd = None;
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "isolation suite failed: etcd's and the SPUs' data and logs are kept in {}",
                    kept.display()
                );
            }
        }
    }
}

/// A probe's outcome: the error code the SPU answered, or `None` when it
/// did not answer within [`PROBE_ANSWER_BOUND`].
#[derive(Debug, Clone, Copy)]
struct Probe {
    code: Option<i16>,
    took: Duration,
}

impl Probe {
    fn describe(&self) -> String {
        match self.code {
            None => format!("no answer within {PROBE_ANSWER_BOUND:?}"),
            Some(0) => "ACKNOWLEDGED".to_string(),
            Some(c) => format!(
                "{} after {} ms",
                ResponseError::try_from_code(c)
                    .map_or_else(|| format!("code {c}"), |e| format!("{e:?}")),
                self.took.as_millis()
            ),
        }
    }
}

/// Sends `value` with `acks=all` to `partition` at the SPU listening on
/// `addr` (directly, past its proxy).
async fn probe(addr: SocketAddr, partition: u32, value: String) -> Probe {
    let started = Instant::now();
    let ask = async {
        let mut c = KafkaClient::connect(addr).await;
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(PROBE_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition as i32)
                    .with_records(Some(batch(
                        &[value.as_bytes()],
                        1,
                        Compression::None,
                    )))])]);
        let resp = c.send(req, 9).await;
        resp.responses[0].partition_responses[0].error_code
    };
    let code = tokio::time::timeout(PROBE_ANSWER_BOUND, ask).await.ok();
    Probe {
        code,
        took: started.elapsed(),
    }
}

/// What one round saw.
#[derive(Debug)]
struct Round {
    isolated: usize,
    fault: Fault,
    partition: u32,
    /// From the isolation until every partition it led had another leader.
    leaderless: Duration,
    /// The probes: at the isolation, and once another leader was elected.
    probes: [Probe; 2],
    /// From the heal to every partition's ISR whole again.
    isr_whole: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_stops_acknowledging_and_follows_after_healing() {
    let rounds = env_usize("RILL_ISOLATION_ROUNDS", 3);
    let started = Instant::now();
    let cluster = Cluster::start().await;
    let direct = cluster.direct();
    let advertised = cluster.advertised();
    let rill = Rill::connect_to(&direct[0]).await.unwrap();
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
    if let Err(last) = wait_isr_whole(&direct, REPAIR_BOUND).await {
        panic!("the new topic's ISRs are not whole within {REPAIR_BOUND:?}: {last:#?}");
    }

    // The producers reach the SPUs through their proxies only.
    let stop = Arc::new(AtomicBool::new(false));
    let heals = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut librdkafka = None;
    for (id, kind) in PRODUCERS.iter().enumerate() {
        let (isolation, idempotent) = match kind {
            Kind::RillIdempotent => (Isolation::ReadCommitted, true),
            Kind::RillAcksOne => (Isolation::ReadUncommitted, false),
            Kind::Librdkafka => {
                librdkafka = Some(Librdkafka::start(
                    &advertised.join(","),
                    TOPIC,
                    id,
                    KEYS_PER_PRODUCER,
                    heals.clone(),
                    rounds,
                ));
                continue;
            }
        };
        let p = RillProducer {
            addr: advertised[id % SPUS].clone(),
            topic: TOPIC,
            id,
            keys: KEYS_PER_PRODUCER,
            isolation,
            idempotent: Some(idempotent),
            semantic: producers::at_least_once(10_000, Duration::from_millis(50)),
        };
        tasks.push((
            id,
            tokio::spawn(producers::produce(p, stop.clone(), heals.clone(), rounds)),
        ));
    }

    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut seen: Vec<Round> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep(Duration::from_millis(300 + next(700))).await;
        let asked = Instant::now();
        let layout = loop {
            if let Some(d) = describe(&direct[round % SPUS]).await {
                break d;
            }
            assert!(
                asked.elapsed() < REPAIR_BOUND,
                "round {round}: SPU {} gives no Metadata for {REPAIR_BOUND:?}",
                round % SPUS
            );
            tokio::time::sleep(POLL).await;
        };
        let last = seen.last().map(|r| r.isolated);
        let candidates: Vec<&PartitionDescription> = (0..PARTITIONS as usize)
            .map(|i| &layout[(round - 1 + i) % PARTITIONS as usize])
            .filter(|p| p.leader.is_some())
            .collect();
        let target = candidates
            .iter()
            .find(|p| p.leader.map(|l| l as usize) != last)
            .or(candidates.first())
            .unwrap_or_else(|| panic!("round {round}: no partition has a leader: {layout:#?}"));
        let (partition, old_epoch) = (target.partition, target.leader_epoch);
        let isolated = target.leader.unwrap() as usize;
        let led: BTreeSet<u32> = layout
            .iter()
            .filter(|p| p.leader == Some(isolated as i32))
            .map(|p| p.partition)
            .collect();
        let survivors: Vec<String> = (0..SPUS)
            .filter(|&i| i != isolated)
            .map(|i| direct[i].clone())
            .collect();
        let fault = if round % 2 == 1 {
            Fault::Blackhole
        } else {
            Fault::Cut
        };
        let truncated_before = cluster.truncations(isolated, partition);

        let isolated_at = Instant::now();
        cluster.isolate(isolated, fault);
        let first_probe = tokio::spawn(probe(
            cluster.spus[isolated].addr,
            partition,
            format!("probe-{round}-0"),
        ));
        // Until a survivor names another leader for every partition the
        // isolated SPU led.
        let (new_leader, new_epoch) = loop {
            if isolated_at.elapsed() > ELECTION_BOUND {
                panic!(
                    "round {round}: SPU {isolated} isolated {ELECTION_BOUND:?} ago and its partitions {led:?} still lack another leader; logs in {}",
                    cluster.path().display()
                );
            }
            let mut found = None;
            for addr in &survivors {
                if let Some(d) = describe(addr).await {
                    let moved = led
                        .iter()
                        .all(|&p| d[p as usize].leader.is_some_and(|l| l as usize != isolated));
                    if moved {
                        let p = &d[partition as usize];
                        found = p.leader.map(|l| (l, p.leader_epoch));
                    }
                    break;
                }
            }
            if let Some(f) = found {
                break f;
            }
            tokio::time::sleep(POLL).await;
        };
        let leaderless = isolated_at.elapsed();
        // The isolated SPU still thinks it leads: it must not acknowledge.
        let second_probe = probe(
            cluster.spus[isolated].addr,
            partition,
            format!("probe-{round}-1"),
        )
        .await;
        let first_probe = first_probe.await.expect("the first probe's task");
        println!(
            "round {round}: {fault:?} isolated SPU {isolated} (leader of {led:?}; partition {partition} at epoch {old_epoch}); \
             SPU {new_leader} leads partition {partition} at epoch {new_epoch} after {} ms; \
             probes to SPU {isolated}: {} / {}",
            leaderless.as_millis(),
            first_probe.describe(),
            second_probe.describe()
        );
        for (i, p) in [first_probe, second_probe].iter().enumerate() {
            if p.code.is_none_or(|c| c == 0) {
                failures.push(format!(
                    "round {round}: probe {i} to the isolated SPU {isolated}, partition {partition}: {}",
                    p.describe()
                ));
            }
        }

        // Producing goes on without it, then the network heals.
        tokio::time::sleep(Duration::from_millis(500 + next(1000))).await;
        let healed_at = Instant::now();
        cluster.heal();
        heals.store(round, Ordering::Relaxed);
        let isr_whole = match wait_isr_whole(&direct, REPAIR_BOUND).await {
            Ok(t) => t,
            Err(last) => panic!(
                "round {round}: the ISRs are not whole {REPAIR_BOUND:?} after healing SPU {isolated}: {last:#?}; logs in {}",
                cluster.path().display()
            ),
        };
        // Its unreplicated tail (the probes at least) is cut off.
        while cluster.truncations(isolated, partition) == truncated_before {
            assert!(
                healed_at.elapsed() < REPAIR_BOUND,
                "round {round}: SPU {isolated} did not truncate partition {partition} within {REPAIR_BOUND:?} of healing; logs in {}",
                cluster.path().display()
            );
            tokio::time::sleep(POLL).await;
        }
        println!(
            "round {round}: healed; SPU {isolated} truncated partition {partition}; every ISR whole again after {} ms",
            isr_whole.as_millis()
        );
        seen.push(Round {
            isolated,
            fault,
            partition,
            leaderless,
            probes: [first_probe, second_probe],
            isr_whole,
        });
    }
    // Producers must still work after the last heal.
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

    if let Err(last) = wait_isr_whole(&direct, REPAIR_BOUND).await {
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

    // Read everything back; the probes apart.
    let rill = Rill::connect_to(&direct[0]).await.unwrap();
    let mut stream = rill
        .consumer(TOPIC, None, Offset::beginning(), ConsumerConfig::default())
        .await
        .unwrap();
    let mut stored = Vec::new();
    let mut probes_read = Vec::new();
    while let Some(r) = tokio::time::timeout(STUCK, stream.try_next())
        .await
        .unwrap_or_else(|_| panic!("the consumer is stuck after {} records", stored.len()))
        .unwrap()
    {
        let value = String::from_utf8(r.value.to_vec()).unwrap();
        if value.starts_with("probe-") {
            probes_read.push(format!("{value} at {}:{}", r.partition, r.offset));
            continue;
        }
        stored.push(Stored {
            partition: r.partition,
            offset: r.offset,
            key: String::from_utf8(r.key.expect("a key").to_vec()).unwrap(),
            value,
        });
    }
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

    let acked_by = |k: Kind| -> usize {
        PRODUCERS
            .iter()
            .zip(&reports)
            .filter(|(kind, _)| **kind == k)
            .map(|(_, r)| r.acked.len())
            .sum()
    };
    let acks_one_lost: usize = PRODUCERS
        .iter()
        .zip(&outcome.producers)
        .filter(|(kind, _)| **kind == Kind::RillAcksOne)
        .map(|(_, o)| o.lost.len())
        .sum();
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
            "  {}: acknowledged {}, failed {}, hung {}, after last heal {}, read {}, lost {} (missing {}, moved {}), duplicates {}",
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
    let probes_sent = seen.iter().map(|r| r.probes.len()).sum::<usize>();
    let probes_refused = seen
        .iter()
        .flat_map(|r| r.probes.iter())
        .filter(|p| p.code.is_some_and(|c| c != 0))
        .count();
    let isolated: Vec<String> = seen
        .iter()
        .map(|r| format!("{:?} SPU {} (p{})", r.fault, r.isolated, r.partition))
        .collect();
    println!(
        "isolation suite: {rounds} rounds ({}), {} partitions x {REPLICATION} replicas, {:.1} s producing; \
         acked acks=all Rill idempotent {}, librdkafka idempotent {}, acks=1 {}; read {}; \
         lost (acks=all) {}; duplicates (idempotent) {idempotent_duplicates}; acks=1 lost {acks_one_lost}; \
         probes to the isolated leader refused {probes_refused} of {probes_sent}, read {}; \
         longest leaderless {} ms; longest ISR repair {} ms; replicas identical: {} (after {} ms)",
        isolated.join(", "),
        PARTITIONS,
        produced_for.as_secs_f64(),
        acked_by(Kind::RillIdempotent),
        acked_by(Kind::Librdkafka),
        acked_by(Kind::RillAcksOne),
        outcome.read,
        outcome.lost_promised(),
        probes_read.len(),
        longest_leaderless.as_millis(),
        longest_isr.as_millis(),
        if differences.is_empty() { "yes" } else { "NO" },
        copies_took.as_millis()
    );

    failures.extend(outcome.violations());
    if !probes_read.is_empty() {
        failures.push(format!(
            "records sent only to an isolated leader were read: {probes_read:?}"
        ));
    }
    if !differences.is_empty() {
        failures.push(format!(
            "the copies differ {REPAIR_BOUND:?} after producing stopped: {differences:#?}"
        ));
    }
    for (id, r) in reports.iter().enumerate() {
        if r.acked_after_last_restart == 0 {
            failures.push(format!(
                "{}: nothing acknowledged after the last heal",
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
    drop(cluster);
}
