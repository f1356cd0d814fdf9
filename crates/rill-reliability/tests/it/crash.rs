//! The crash suite: producers of every kind write keyed records to a
//! multi-partition topic with acks all (`Isolation::ReadCommitted`) while
//! the SPU process is killed with SIGKILL at random moments and started
//! again on the same data directory. At the end a consumer reads every
//! partition and the suite checks:
//!
//! - every acknowledged record is stored at the offset it was acknowledged
//!   with (lost = 0);
//! - offsets are unique and contiguous from 0 in every partition;
//! - per key, records are stored in the order they were sent, and every
//!   key stays in one partition;
//! - no duplicates from the idempotent and the at-most-once producers
//!   (duplicates from at-least-once without idempotence are counted).
//!
//! The five Rill producers are joined by a librdkafka producer
//! (`tests/librdkafka_producer.py`, run with `/usr/bin/python3` and
//! Debian's python3-confluent-kafka, which `scripts/install-deps` installs)
//! with `enable.idempotence=true`: every record it acknowledges is checked
//! the same way, and it may store no duplicates.
//!
//! `RILL_CRASH_ROUNDS` (default 4) sets the number of kills;
//! `RILL_CRASH_FLUSH=always` runs the SPU with fsync on every append.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rill::{
    ConsumerConfig, DeliverySemantic, Isolation, Offset, RetryPolicy, RetryStrategy, Rill,
    TopicProducerConfigBuilder,
};

use crate::spu::{self, STUCK};

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 4;
const KEYS_PER_PRODUCER: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idempotent,
    AtLeastOnce,
    AtMostOnce,
}

impl Kind {
    fn no_duplicates(self) -> bool {
        matches!(self, Kind::Idempotent | Kind::AtMostOnce)
    }
}

/// The Rill producers; the librdkafka producer comes after them, with id
/// `PRODUCERS.len()`.
const PRODUCERS: [Kind; 5] = [
    Kind::Idempotent,
    Kind::Idempotent,
    Kind::AtLeastOnce,
    Kind::AtLeastOnce,
    Kind::AtMostOnce,
];
const LIBRDKAFKA: usize = PRODUCERS.len();
const PYTHON: &str = "/usr/bin/python3";

fn producer_name(id: usize) -> String {
    match PRODUCERS.get(id) {
        Some(kind) => format!("Rill {kind:?}"),
        None => "librdkafka idempotent".to_string(),
    }
}

fn no_duplicates(id: usize) -> bool {
    PRODUCERS.get(id).is_none_or(|k| k.no_duplicates())
}

/// A key's partition and its stored (offset, value)s in offset order.
type KeyRecords<'a> = (u32, Vec<(i64, &'a str)>);

/// One acknowledged record.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    value: String,
    partition: u32,
    offset: i64,
}

#[derive(Debug, Default)]
struct ProducerReport {
    acked: Vec<Acked>,
    failed: usize,
    /// `wait()` calls that never resolved.
    hung: usize,
    /// Acknowledged after the last restart: the producer still works.
    acked_after_last_restart: usize,
    /// librdkafka only: fatal errors it reported.
    fatal: Vec<String>,
}

/// The librdkafka producer as a child process, and the thread reading its
/// answers.
struct Librdkafka {
    child: Child,
    report: mpsc::Receiver<ProducerReport>,
}

impl Librdkafka {
    fn start(addr: &str, restarts: Arc<AtomicUsize>, total_restarts: usize) -> Self {
        let have_module = Command::new(PYTHON)
            .args(["-c", "import confluent_kafka"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            have_module,
            "the crash suite's librdkafka producer needs {PYTHON} with confluent_kafka: \
             run scripts/install-deps (apt-get install python3-confluent-kafka)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/librdkafka_producer.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args([addr, TOPIC])
            .arg(LIBRDKAFKA.to_string())
            .arg(KEYS_PER_PRODUCER.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the librdkafka producer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, report) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = ProducerReport::default();
            let mut done = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["ack", key, value, partition, offset] => {
                        r.acked.push(Acked {
                            key: key.to_string(),
                            value: value.to_string(),
                            partition: partition.parse().expect("partition"),
                            offset: offset.parse().expect("offset"),
                        });
                        if restarts.load(Ordering::Relaxed) == total_restarts {
                            r.acked_after_last_restart += 1;
                        }
                    }
                    ["fail", ..] => r.failed += 1,
                    ["fatal", ..] => r.fatal.push(line.clone()),
                    ["done", _produced, _acked, _failed, undelivered] => {
                        r.hung += undelivered.parse::<usize>().expect("undelivered");
                        done = true;
                    }
                    _ => panic!("librdkafka producer said {line:?}"),
                }
            }
            if !done {
                r.fatal.push("exited without its final line".to_string());
            }
            let _ = tx.send(r);
        });
        Self { child, report }
    }

    /// Closes its stdin (it flushes and exits) and collects what it saw.
    fn stop(mut self) -> ProducerReport {
        drop(self.child.stdin.take());
        let report = self.report.recv_timeout(STUCK);
        if report.is_err() {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("reap the librdkafka producer");
        let report = report.expect("the librdkafka producer is stuck after stop");
        assert!(
            status.success(),
            "the librdkafka producer exited with {status}"
        );
        report
    }
}

impl Drop for Librdkafka {
    fn drop(&mut self) {
        // Only when the test failed before stop(): kill by PID and reap.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn semantic(kind: Kind) -> DeliverySemantic {
    match kind {
        Kind::AtMostOnce => DeliverySemantic::AtMostOnce,
        _ => DeliverySemantic::AtLeastOnce(RetryPolicy {
            max_retries: 200,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            // Long enough to ride out a restart.
            timeout: Duration::from_secs(30),
            strategy: RetryStrategy::FixedDelay,
        }),
    }
}

/// Sends keyed records in windows of 20 until `stop`, waiting for each
/// window's answers.
async fn produce(
    addr: String,
    id: usize,
    kind: Kind,
    stop: Arc<AtomicBool>,
    restarts: Arc<AtomicUsize>,
    total_restarts: usize,
) -> ProducerReport {
    let mut report = ProducerReport::default();
    let rill = Rill::connect_to(&addr).await.expect("connect");
    let mut builder = TopicProducerConfigBuilder::default();
    builder
        .linger(Duration::from_millis(5))
        .batch_size(2048)
        .isolation(Isolation::ReadCommitted)
        .delivery_semantic(semantic(kind));
    if kind != Kind::AtMostOnce {
        builder.idempotent(kind == Kind::Idempotent);
    }
    let producer = rill
        .topic_producer_with_config(TOPIC, builder.build().expect("config"))
        .await
        .expect("producer");
    let mut seq = [0u64; KEYS_PER_PRODUCER];
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let mut window = Vec::new();
        for _ in 0..20 {
            let k = n % KEYS_PER_PRODUCER;
            n += 1;
            let key = format!("p{id}-k{k}");
            let value = format!("{key}-{:08}", seq[k]);
            seq[k] += 1;
            match producer.send(key.clone(), value.clone()).await {
                Ok(out) => window.push((key, value, out)),
                Err(_) => report.failed += 1,
            }
        }
        let after_last = restarts.load(Ordering::Relaxed) == total_restarts;
        // The retry policy gives up within 30 s: an answer that never comes
        // is a hang, counted rather than waited for.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for (key, value, out) in window {
            let Ok(answer) = tokio::time::timeout_at(deadline, out.wait()).await else {
                report.hung += 1;
                continue;
            };
            match answer {
                Ok(meta) => {
                    report.acked.push(Acked {
                        key,
                        value,
                        partition: meta.partition,
                        offset: meta.offset,
                    });
                    if after_last {
                        report.acked_after_last_restart += 1;
                    }
                }
                Err(_) => report.failed += 1,
            }
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let rounds = env_usize("RILL_CRASH_ROUNDS", 4);
    let flush = match std::env::var("RILL_CRASH_FLUSH").as_deref() {
        Ok("always") => "always",
        _ => "never",
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spu = spu::start(dir.path(), flush);
    let addr = spu.addr.to_string();
    let rill = Rill::connect_to(&addr).await.unwrap();
    rill.admin()
        .create_topic(TOPIC, PARTITIONS, 1, &[("segment.bytes", "65536")])
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let restarts = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = PRODUCERS
        .iter()
        .enumerate()
        .map(|(id, &kind)| {
            tokio::spawn(produce(
                addr.clone(),
                id,
                kind,
                stop.clone(),
                restarts.clone(),
                rounds,
            ))
        })
        .collect();
    let librdkafka = Librdkafka::start(&addr, restarts.clone(), rounds);

    // Kill at random moments: 150..1150 ms of producing, down 0..300 ms.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let started = Instant::now();
    for round in 1..=rounds {
        tokio::time::sleep(Duration::from_millis(150 + next(1000))).await;
        spu.kill();
        tokio::time::sleep(Duration::from_millis(next(300))).await;
        spu.restart();
        restarts.store(round, Ordering::Relaxed);
    }
    // Producers must still work after the last restart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(
            tokio::time::timeout(STUCK, t)
                .await
                .expect("a producer task is stuck after stop")
                .unwrap(),
        );
    }
    reports.push(librdkafka.stop());
    // One more kill with nothing in flight: the final read is of what
    // recovery made of the files.
    spu.kill();
    spu.restart();

    // Read everything back.
    let rill = Rill::connect_to(&addr).await.unwrap();
    let mut stream = rill
        .consumer(TOPIC, None, Offset::beginning(), ConsumerConfig::default())
        .await
        .unwrap();
    let mut stored: BTreeMap<(u32, i64), (String, String)> = BTreeMap::new();
    let mut duplicate_offsets = 0;
    while let Some(r) = tokio::time::timeout(STUCK, stream.try_next())
        .await
        .unwrap_or_else(|_| panic!("the consumer is stuck after {} records", stored.len()))
        .unwrap()
    {
        let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
        let value = String::from_utf8(r.value.to_vec()).unwrap();
        if stored
            .insert((r.partition, r.offset), (key, value))
            .is_some()
        {
            duplicate_offsets += 1;
        }
    }
    assert_eq!(duplicate_offsets, 0, "an offset was read twice");

    // Offsets unique and contiguous from 0 per partition.
    for p in 0..PARTITIONS as u32 {
        let offsets: Vec<i64> = stored.range((p, 0)..(p + 1, 0)).map(|(k, _)| k.1).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {p}: offsets not contiguous");
    }

    // Every acknowledged record where it was acknowledged.
    let mut lost = Vec::new();
    let acked_total: usize = reports.iter().map(|r| r.acked.len()).sum();
    for a in reports.iter().flat_map(|r| &r.acked) {
        match stored.get(&(a.partition, a.offset)) {
            Some((k, v)) if *k == a.key && *v == a.value => {}
            other => lost.push((a.clone(), other.cloned())),
        }
    }

    // Duplicates and per-key order.
    let mut copies: HashMap<&str, usize> = HashMap::new();
    let mut per_key: HashMap<&str, KeyRecords<'_>> = HashMap::new();
    for ((p, offset), (k, v)) in &stored {
        *copies.entry(v.as_str()).or_default() += 1;
        let entry = per_key.entry(k.as_str()).or_insert((*p, Vec::new()));
        assert_eq!(entry.0, *p, "key {k} in two partitions");
        entry.1.push((*offset, v.as_str()));
    }
    let producer_of = |s: &str| -> usize { s[1..s.find('-').unwrap()].parse().unwrap() };
    let mut duplicates = [0usize; PRODUCERS.len() + 1];
    for (v, n) in &copies {
        if *n > 1 {
            duplicates[producer_of(v)] += n - 1;
        }
    }
    let acked_at: HashMap<&str, (u32, i64)> = reports
        .iter()
        .flat_map(|r| &r.acked)
        .map(|a| (a.value.as_str(), (a.partition, a.offset)))
        .collect();
    for (k, (p, values)) in &per_key {
        // Values carry a zero-padded sequence. Stored order must be sent
        // order: a value below the highest seen so far may only be a second
        // copy (an at-least-once retry of a batch whose answer was lost,
        // counted above), never a first.
        let mut seen = std::collections::HashSet::new();
        let mut highest = "";
        for (i, (_, v)) in values.iter().enumerate() {
            let first_copy = seen.insert(*v);
            if first_copy && *v < highest {
                let around = &values[i.saturating_sub(4)..(i + 4).min(values.len())];
                let described: Vec<String> = around
                    .iter()
                    .map(|(o, v)| format!("{o}:{v} acked at {:?}", acked_at.get(v)))
                    .collect();
                panic!("key {k} (partition {p}): stored out of order: {described:#?}");
            }
            highest = highest.max(*v);
        }
    }

    println!(
        "crash suite: {rounds} SIGKILL rounds (+1 final), flush {flush}, {:.1} s, {} partitions",
        started.elapsed().as_secs_f64(),
        PARTITIONS
    );
    for (id, r) in reports.iter().enumerate() {
        println!(
            "  producer {id} {}: acknowledged {}, failed {}, hung {}, after last restart {}, duplicates stored {}",
            producer_name(id),
            r.acked.len(),
            r.failed,
            r.hung,
            r.acked_after_last_restart,
            duplicates[id]
        );
    }
    println!(
        "  acknowledged {acked_total}, read {}, lost {}, duplicates {} (idempotent/at-most-once: {}), SPU peak VmHWM {} MiB",
        stored.len(),
        lost.len(),
        duplicates.iter().sum::<usize>(),
        (0..duplicates.len())
            .filter(|&id| no_duplicates(id))
            .map(|id| duplicates[id])
            .sum::<usize>(),
        spu.peak_hwm_kib / 1024
    );

    assert!(
        lost.is_empty(),
        "lost {} acknowledged records: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    for (id, &d) in duplicates.iter().enumerate() {
        if no_duplicates(id) {
            assert_eq!(
                d,
                0,
                "producer {id} ({}) stored duplicates",
                producer_name(id)
            );
        }
    }
    for (id, r) in reports.iter().enumerate() {
        assert!(
            r.acked_after_last_restart > 0,
            "producer {id} ({}) got nothing acknowledged after the last restart",
            producer_name(id)
        );
    }
    assert!(
        reports[LIBRDKAFKA].fatal.is_empty(),
        "librdkafka producer: {:?}",
        reports[LIBRDKAFKA].fatal
    );
    assert!(acked_total <= stored.len());
    let hung: usize = reports.iter().map(|r| r.hung).sum();
    assert_eq!(hung, 0, "records whose wait() never resolved");
}
