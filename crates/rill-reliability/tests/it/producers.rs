//! The producers the crash and failover suites run while they kill SPUs:
//! Rill producers in tasks of the test, and a librdkafka producer
//! (`tests/librdkafka_producer.py`) as a child process. Both write keyed
//! records in the form [`crate::checker`] reads (key `p<id>-k<n>`, value
//! `<key>-<per-key sequence, 8 digits>`) and report every acknowledgement.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rill::{
    ConsumerConfig, DeliverySemantic, Isolation, Offset, RetryPolicy, RetryStrategy, Rill,
    TopicProducerConfigBuilder,
};

use crate::checker::{Acked, Stored};
use crate::spu::STUCK;

pub const PYTHON: &str = "/usr/bin/python3";

/// What one producer saw.
#[derive(Debug, Default)]
pub struct ProducerReport {
    pub acked: Vec<Acked>,
    /// When each of `acked` was acknowledged (Rill producers only; the
    /// power-cut suite bounds `--flush interval` losses with it).
    pub acked_at: Vec<std::time::Instant>,
    pub failed: usize,
    /// `wait()` calls that never resolved (librdkafka: records still
    /// undelivered after its final flush).
    pub hung: usize,
    /// Acknowledged after the last restart: the producer still works.
    pub acked_after_last_restart: usize,
    /// librdkafka only: fatal errors it reported.
    pub fatal: Vec<String>,
}

/// Reads an environment variable as a number, `default` when unset or
/// not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One Rill producer of a suite.
#[derive(Debug, Clone)]
pub struct RillProducer {
    /// The SPU it bootstraps from.
    pub addr: String,
    pub topic: &'static str,
    /// Its number in the record keys (`p<id>-k<n>`).
    pub id: usize,
    pub keys: usize,
    /// `ReadCommitted` is acks all, `ReadUncommitted` acks 1.
    pub isolation: Isolation,
    /// `None`: the builder's default (at-most-once ignores it).
    pub idempotent: Option<bool>,
    pub semantic: DeliverySemantic,
}

/// At least once, with retries for up to 30 s: long enough to ride out
/// an SPU's restart or a leader election. `delay` between tries.
pub fn at_least_once(max_retries: usize, delay: Duration) -> DeliverySemantic {
    DeliverySemantic::AtLeastOnce(RetryPolicy {
        max_retries,
        initial_delay: delay,
        max_delay: delay.max(Duration::from_millis(100)),
        timeout: Duration::from_secs(30),
        strategy: RetryStrategy::FixedDelay,
    })
}

/// Sends keyed records in windows of 20 until `stop`, waiting for each
/// window's answers. An acknowledgement counts as after the last restart
/// once `restarts` reached `total_restarts` before its window was sent.
pub async fn produce(
    p: RillProducer,
    stop: Arc<AtomicBool>,
    restarts: Arc<AtomicUsize>,
    total_restarts: usize,
) -> ProducerReport {
    let mut report = ProducerReport::default();
    let rill = Rill::connect_to(&p.addr).await.expect("connect");
    let mut builder = TopicProducerConfigBuilder::default();
    builder
        .linger(Duration::from_millis(5))
        .batch_size(2048)
        .isolation(p.isolation)
        .delivery_semantic(p.semantic);
    if let Some(idempotent) = p.idempotent {
        builder.idempotent(idempotent);
    }
    let config = builder.build().expect("config");
    // A new topic's leaders may not be known to every SPU yet
    // (LEADER_NOT_AVAILABLE): try again for a while.
    let asked = tokio::time::Instant::now();
    let producer = loop {
        match rill
            .topic_producer_with_config(p.topic, config.clone())
            .await
        {
            Ok(producer) => break producer,
            Err(e) if asked.elapsed() < Duration::from_secs(30) => {
                eprintln!("producer p{}: {e}; trying again", p.id);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("producer p{}: {e}", p.id),
        }
    };
    let mut seq = vec![0u64; p.keys];
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let after_last = restarts.load(Ordering::Relaxed) == total_restarts;
        let mut window = Vec::new();
        for _ in 0..20 {
            let k = n % p.keys;
            n += 1;
            let key = format!("p{}-k{k}", p.id);
            let value = format!("{key}-{:08}", seq[k]);
            seq[k] += 1;
            match producer.send(key.clone(), value.clone()).await {
                Ok(out) => window.push((key, value, out)),
                Err(_) => report.failed += 1,
            }
        }
        // The retry policy gives up within 30 s: an answer that never comes
        // is a hang, counted rather than waited for. The answers are awaited
        // side by side, each timed when it comes: awaited in turn, a record
        // answered before an SPU's kill would be timed after the retry of
        // an earlier record of its window (the power-cut suite's bug 9).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut answers = tokio::task::JoinSet::new();
        let mut records = Vec::with_capacity(window.len());
        for (i, (key, value, out)) in window.into_iter().enumerate() {
            records.push((key, value));
            answers.spawn(async move {
                let answer = tokio::time::timeout_at(deadline, out.wait()).await;
                (i, answer, std::time::Instant::now())
            });
        }
        let mut timed = answers.join_all().await;
        timed.sort_unstable_by_key(|(i, _, _)| *i);
        for ((key, value), (_, answer, at)) in records.into_iter().zip(timed) {
            let Ok(answer) = answer else {
                report.hung += 1;
                continue;
            };
            match answer {
                Ok(meta) => {
                    report.acked_at.push(at);
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

/// The librdkafka producer as a child process (`enable.idempotence=true`,
/// acks all), and the thread reading its answers.
pub struct Librdkafka {
    child: Child,
    report: mpsc::Receiver<ProducerReport>,
}

impl Librdkafka {
    /// Starts it on `bootstrap` (`host:port`, comma-separated for several)
    /// writing keys `p<id>-k<0..keys>` to `topic`. Fails at once, saying
    /// why, when `/usr/bin/python3` has no `confluent_kafka`.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        id: usize,
        keys: usize,
        restarts: Arc<AtomicUsize>,
        total_restarts: usize,
    ) -> Self {
        let have_module = Command::new(PYTHON)
            .args(["-c", "import confluent_kafka"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            have_module,
            "the librdkafka producer needs {PYTHON} with confluent_kafka: \
             run scripts/install-deps (apt-get install python3-confluent-kafka)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/librdkafka_producer.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args([bootstrap, topic])
            .arg(id.to_string())
            .arg(keys.to_string())
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
    pub fn stop(mut self) -> ProducerReport {
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

/// Every record of `topic`, read back from the beginning for the checker
/// (the suites' records all have keys); panics if the consumer stalls.
pub async fn read_back(rill: &Rill, topic: &str) -> Vec<Stored> {
    let mut stream = rill
        .consumer(topic, None, Offset::beginning(), ConsumerConfig::default())
        .await
        .unwrap();
    let mut stored = Vec::new();
    while let Some(r) = tokio::time::timeout(STUCK, stream.try_next())
        .await
        .unwrap_or_else(|_| panic!("the consumer is stuck after {} records", stored.len()))
        .unwrap()
    {
        stored.push(Stored {
            partition: r.partition,
            offset: r.offset,
            key: String::from_utf8(r.key.expect("a key").to_vec()).unwrap(),
            value: String::from_utf8(r.value.to_vec()).unwrap(),
        });
    }
    stored
}
