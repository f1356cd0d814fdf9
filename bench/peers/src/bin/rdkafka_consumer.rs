//! A librdkafka consumer beside `rill benchmark consume`: it reads
//! `--count` records of a topic's partitions from the beginning (assigned,
//! no group, no commits) and prints one line of `key=value` pairs for
//! `bench/compare`. MB/s counts key and value bytes, as Rill's does.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Longest wait for the next record before giving up.
const STALL: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let mut brokers = "127.0.0.1:9092".to_owned();
    let mut topic = "bench".to_owned();
    let mut count: u64 = 1_000_000;
    let mut partitions: i32 = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--brokers" => brokers = value()?,
            "--topic" => topic = value()?,
            "--count" => count = value()?.parse()?,
            "--partitions" => partitions = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "rill-bench-peer")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut got = 0u64;
    let mut bytes = 0u64;
    let mut started = None;
    let mut last = Instant::now();
    while got < count {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                started.get_or_insert_with(Instant::now);
                got += 1;
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
                last = Instant::now();
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            None if last.elapsed() > STALL => bail!("no record for {STALL:?} after {got}"),
            None => {}
        }
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    println!(
        "records={got} seconds={secs:.3} records_per_s={:.0} mb_per_s={:.1}",
        got as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
