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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill::{DeliverySemantic, Isolation, Rill};

use crate::checker::{self, History, Promise};
use crate::producers::{self, env_usize, Librdkafka, RillProducer};
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

fn producer_name(id: usize) -> String {
    match PRODUCERS.get(id) {
        Some(kind) => format!("Rill {kind:?}"),
        None => "librdkafka idempotent".to_string(),
    }
}

fn no_duplicates(id: usize) -> bool {
    PRODUCERS.get(id).is_none_or(|k| k.no_duplicates())
}

fn semantic(kind: Kind) -> DeliverySemantic {
    match kind {
        Kind::AtMostOnce => DeliverySemantic::AtMostOnce,
        // Long enough to ride out a restart.
        _ => producers::at_least_once(200, Duration::from_millis(20)),
    }
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
            let p = RillProducer {
                addr: addr.clone(),
                topic: TOPIC,
                id,
                keys: KEYS_PER_PRODUCER,
                isolation: Isolation::ReadCommitted,
                idempotent: (kind != Kind::AtMostOnce).then_some(kind == Kind::Idempotent),
                semantic: semantic(kind),
            };
            tokio::spawn(producers::produce(
                p,
                stop.clone(),
                restarts.clone(),
                rounds,
            ))
        })
        .collect();
    let librdkafka = Librdkafka::start(
        &addr,
        TOPIC,
        LIBRDKAFKA,
        KEYS_PER_PRODUCER,
        restarts.clone(),
        rounds,
    );

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
    let stored = producers::read_back(&rill, TOPIC).await;
    // Every acknowledged record where it was acknowledged (all producers
    // write with acks all), offsets contiguous, keys in one partition,
    // order per key, no duplicates from idempotent and at-most-once.
    let histories: Vec<History<'_>> = reports
        .iter()
        .enumerate()
        .map(|(id, r)| History {
            name: producer_name(id),
            promise: Promise {
                no_loss: true,
                no_duplicates: no_duplicates(id),
            },
            acked: &r.acked,
        })
        .collect();
    let outcome = checker::check(&stored, &histories);
    let acked_total: usize = reports.iter().map(|r| r.acked.len()).sum();
    let duplicates: Vec<usize> = outcome.producers.iter().map(|o| o.duplicates).collect();

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
        outcome.lost_promised(),
        duplicates.iter().sum::<usize>(),
        (0..duplicates.len())
            .filter(|&id| no_duplicates(id))
            .map(|id| duplicates[id])
            .sum::<usize>(),
        spu.peak_hwm_kib / 1024
    );

    outcome.assert_ok();
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
