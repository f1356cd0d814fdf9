//! Load: 200 producer connections at once, spread over 3 topics, for
//! `RILL_LOAD_SECS` seconds (default 5; 60 is the long form). No send may
//! fail, every acknowledged record must be stored exactly once, and the SPU
//! process's peak resident memory stays under a bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill::{ConsumerConfig, Isolation, Offset, Rill, TopicProducerConfigBuilder};

use crate::spu::{self, STUCK};

const CONNECTIONS: usize = 200;
const TOPICS: [&str; 3] = ["load-a", "load-b", "load-c"];
const PARTITIONS: i32 = 2;
/// Bound on the SPU's peak resident memory.
const MAX_SPU_HWM_KIB: u64 = 512 * 1024;

/// A record's `wait()` longer than this counts as slow (the producer's
/// request timeout is 1.5 s; its default retry policy can take ~55 s).
const SLOW: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Report {
    acked: usize,
    /// Waits that never resolved (within `STUCK`).
    hung: usize,
    /// Waits that took longer than `SLOW`.
    slow: usize,
    slowest: Duration,
    errors: Vec<String>,
}

async fn produce(addr: String, id: usize, stop: Arc<AtomicBool>) -> Report {
    let mut report = Report::default();
    // One client per producer: its own connection.
    let rill = match Rill::connect_to(&addr).await {
        Ok(r) => r,
        Err(e) => {
            report.errors.push(format!("connect: {e}"));
            return report;
        }
    };
    let config = TopicProducerConfigBuilder::default()
        .linger(Duration::from_millis(10))
        .isolation(if id.is_multiple_of(2) {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        })
        .build()
        .unwrap();
    let producer = match rill
        .topic_producer_with_config(TOPICS[id % TOPICS.len()], config)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            report.errors.push(format!("producer: {e}"));
            return report;
        }
    };
    let value = vec![b'v'; 100];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut window = Vec::with_capacity(20);
        for _ in 0..20 {
            match producer.send(format!("c{id}-{n}"), &value).await {
                Ok(out) => window.push(out),
                Err(e) => report.errors.push(format!("send: {e}")),
            }
            n += 1;
        }
        // An answer that never comes is a hang, reported rather than
        // waited for.
        let sent = tokio::time::Instant::now();
        for out in window {
            let answer = tokio::time::timeout_at(sent + STUCK, out.wait()).await;
            let took = sent.elapsed();
            report.slowest = report.slowest.max(took);
            if took > SLOW {
                report.slow += 1;
            }
            match answer {
                Ok(Ok(_)) => report.acked += 1,
                Ok(Err(e)) => report.errors.push(format!("wait ({took:?}): {e}")),
                Err(_) => {
                    report.hung += 1;
                    report
                        .errors
                        .push(format!("wait: no answer within {STUCK:?}"));
                }
            }
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_producer_connections_across_three_topics() {
    let secs = std::env::var("RILL_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5u64);
    let dir = tempfile::tempdir().unwrap();
    let mut spu = spu::start(dir.path(), "never");
    let addr = spu.addr.to_string();
    let admin = Rill::connect_to(&addr).await.unwrap();
    for t in TOPICS {
        admin
            .admin()
            .create_topic(t, PARTITIONS, 1, &[])
            .await
            .unwrap();
    }
    let (idle_rss, _) = spu.memory_kib().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|id| tokio::spawn(produce(addr.clone(), id, stop.clone())))
        .collect();
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        samples.push(spu.memory_kib().expect("the SPU is running").0);
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    let mut hung = 0;
    let mut slow = 0;
    let mut slowest = Duration::ZERO;
    let mut errors = Vec::new();
    for t in tasks {
        let r = tokio::time::timeout(STUCK, t)
            .await
            .expect("a producer task is stuck after stop")
            .unwrap();
        acked += r.acked;
        hung += r.hung;
        slow += r.slow;
        slowest = slowest.max(r.slowest);
        errors.extend(r.errors);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (_, hwm) = spu.memory_kib().unwrap();

    // Every acknowledged record is stored, once.
    let mut stored = 0usize;
    for t in TOPICS {
        let mut stream = admin
            .consumer(t, None, Offset::beginning(), ConsumerConfig::default())
            .await
            .unwrap();
        while let Some(_r) = tokio::time::timeout(STUCK, stream.try_next())
            .await
            .unwrap_or_else(|_| panic!("the consumer of {t} is stuck after {stored} records"))
            .unwrap()
        {
            stored += 1;
        }
    }
    println!(
        "load: {CONNECTIONS} producer connections, {} topics x {PARTITIONS} partitions, {elapsed:.1} s: \
         acknowledged {acked} ({:.0} records/s), stored {stored}, errors {}, hung waits {hung}, waits over {SLOW:?} {slow} (slowest {slowest:?}), \
         SPU VmRSS idle {} MiB, max sampled {} MiB, VmHWM {} MiB",
        TOPICS.len(),
        acked as f64 / elapsed,
        errors.len(),
        idle_rss / 1024,
        samples.iter().max().copied().unwrap_or(0) / 1024,
        hwm / 1024
    );
    assert!(
        errors.is_empty(),
        "errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(acked >= CONNECTIONS, "every producer got records through");
    assert_eq!(stored, acked, "stored exactly what was acknowledged");
    assert!(hwm < MAX_SPU_HWM_KIB, "SPU peak RSS {hwm} KiB");
    spu.kill();
}
