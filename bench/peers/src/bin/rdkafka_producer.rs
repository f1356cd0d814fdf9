//! A librdkafka producer with the same knobs as `rill benchmark produce`:
//! it writes `--count` records of `--size` bytes to a topic as fast as
//! librdkafka lets it and prints one line of results, `key=value` pairs,
//! for `bench/compare` to put beside Rill's.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

struct Settings {
    brokers: String,
    topic: String,
    count: u64,
    size: usize,
    acks: String,
    linger_ms: u64,
    batch_bytes: usize,
    compression: String,
    idempotent: bool,
}

fn parse() -> anyhow::Result<Settings> {
    let mut s = Settings {
        brokers: "127.0.0.1:9092".into(),
        topic: "bench".into(),
        count: 1_000_000,
        size: 100,
        acks: "1".into(),
        linger_ms: 5,
        batch_bytes: 16 * 1024,
        compression: "none".into(),
        idempotent: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--brokers" => s.brokers = value()?,
            "--topic" => s.topic = value()?,
            "--count" => s.count = value()?.parse()?,
            "--size" => s.size = value()?.parse()?,
            "--acks" => s.acks = value()?,
            "--linger-ms" => s.linger_ms = value()?.parse()?,
            "--batch-bytes" => s.batch_bytes = value()?.parse()?,
            "--compression" => s.compression = value()?,
            "--idempotent" => s.idempotent = true,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(s)
}

/// Collects each record's time from `send` to its delivery report.
struct Latency {
    histogram: std::sync::Mutex<Histogram<u64>>,
    failed: std::sync::atomic::AtomicU64,
}

impl ClientContext for Latency {}

impl ProducerContext for Latency {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        if result.is_err() {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let micros = sent.elapsed().as_micros() as u64;
        if let Ok(mut h) = self.histogram.lock() {
            let _ = h.record(micros.max(1));
        }
    }
}

fn main() -> anyhow::Result<()> {
    let s = parse()?;
    let context = Latency {
        histogram: std::sync::Mutex::new(Histogram::new(3)?),
        failed: Default::default(),
    };
    let producer: ThreadedProducer<Latency> = ClientConfig::new()
        .set("bootstrap.servers", &s.brokers)
        .set("acks", &s.acks)
        .set("linger.ms", s.linger_ms.to_string())
        .set("batch.size", s.batch_bytes.to_string())
        .set("compression.codec", &s.compression)
        .set("enable.idempotence", s.idempotent.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000")
        .create_with_context(context)?;
    // Values as `rill benchmark produce` makes them: windows into one block
    // of random alphanumerics, so compression has the same work to do.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let pool: Vec<u8> = (0..(1usize << 20).max(s.size * 2))
        .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
        .collect();
    let room = (pool.len() - s.size + 1) as u64;
    let started = Instant::now();
    for _ in 0..s.count {
        let at = (next() % room) as usize;
        let payload = &pool[at..at + s.size];
        let mut opaque = Box::new(Instant::now());
        loop {
            match producer.send(
                BaseRecord::<(), [u8], Box<Instant>>::with_opaque_to(&s.topic, opaque)
                    .payload(payload),
            ) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                    // The local queue is full: give the sender thread time.
                    opaque = record.delivery_opaque;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("send failed: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flush did not finish")?;
    let elapsed = started.elapsed().as_secs_f64();
    let ctx = producer.context();
    let failed = ctx.failed.load(std::sync::atomic::Ordering::Relaxed);
    let h = ctx
        .histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    println!(
        "records={} failed={} seconds={:.3} records_per_s={:.0} mb_per_s={:.1} p50_us={} p99_us={} p999_us={}",
        s.count,
        failed,
        elapsed,
        s.count as f64 / elapsed,
        (s.count as f64 * s.size as f64) / elapsed / 1e6,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
    );
    if failed > 0 {
        bail!("{failed} records were not delivered");
    }
    Ok(())
}
