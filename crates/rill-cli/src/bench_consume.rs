//! `rill benchmark consume`: reads a topic from its beginning to its end
//! (as the end was when the run started) and reports records/s and MB/s.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rill::{ConsumerConfig, Offset, Rill};

use crate::output::{self, table, Format, JsonObject};
use crate::units::{format_bytes, parse_nonzero_size};
use crate::Global;

/// Longest wait for the next record before the run fails: the records
/// counted at the start are all stored, so a stall is a fault.
const STALL: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct ConsumeBenchArgs {
    /// Topic to read (it must exist and hold records).
    #[arg(long)]
    topic: String,
    /// Read only this partition (repeat for several) [default: all].
    #[arg(short = 'p', long = "partition", value_name = "N")]
    partitions: Vec<u32>,
    /// Stop after this many records [default: every record stored when
    /// the run starts].
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Bytes asked for per Fetch, e.g. 1MiB.
    #[arg(long, value_parser = parse_nonzero_size, default_value = "1MiB", value_name = "SIZE")]
    fetch_max_bytes: usize,
    /// Output format of the results.
    #[arg(short = 'O', long, value_enum, default_value_t)]
    output: Format,
}

/// What one run read.
struct Tally {
    records: u64,
    /// Key and value bytes.
    bytes: u64,
    elapsed: Duration,
}

pub async fn run(args: ConsumeBenchArgs, global: &Global) -> anyhow::Result<()> {
    let rill = global.connect().await?;
    let info = rill
        .admin()
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == args.topic)
        .with_context(|| format!("topic {:?} does not exist", args.topic))?;
    let partitions: Vec<u32> = if args.partitions.is_empty() {
        (0..info.partitions).collect()
    } else {
        let mut ps = args.partitions.clone();
        ps.sort_unstable();
        ps.dedup();
        ps
    };
    let config = ConsumerConfig {
        max_bytes: i32::try_from(args.fetch_max_bytes).context("--fetch-max-bytes is too large")?,
        ..ConsumerConfig::default()
    };
    let stored = stored_records(&rill, &args.topic, &partitions, &config).await?;
    let target = args.count.map_or(stored, |n| n.min(stored));
    if target == 0 {
        anyhow::bail!("topic {:?} has no records to read", args.topic);
    }
    // A task of the runtime (one worker, see
    // `BenchmarkCommand::runtime_workers`), not this main future: the
    // connection's reader task then hands each Fetch answer to the loop on
    // the same thread, with no thread woken for it.
    let tally = {
        let (rill, topic, partitions) = (rill.clone(), args.topic.clone(), partitions.clone());
        tokio::spawn(async move { measure(&rill, &topic, &partitions, config, target).await })
            .await
            .context("the consuming task panicked")??
    };
    report(&args, &partitions, &tally)
}

/// Records between each partition's beginning and end, summed.
async fn stored_records(
    rill: &Rill,
    topic: &str,
    partitions: &[u32],
    config: &ConsumerConfig,
) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for &p in partitions {
        let consumer = rill
            .partition_consumer_with_config(topic, p, config.clone())
            .await?;
        let first = consumer.stream(Offset::Beginning).await?.next_offset();
        let end = consumer.stream(Offset::End).await?.next_offset();
        total += u64::try_from(end.saturating_sub(first)).unwrap_or(0);
    }
    Ok(total)
}

/// Reads `target` records; the clock runs from the first record to the
/// last (connecting and finding leaders are not counted, as for the
/// librdkafka consumer beside it in bench/compare).
async fn measure(
    rill: &Rill,
    topic: &str,
    partitions: &[u32],
    config: ConsumerConfig,
    target: u64,
) -> anyhow::Result<Tally> {
    let mut stream = rill
        .consumer(topic, Some(partitions), Offset::Beginning, config)
        .await?;
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut started = None;
    while records < target {
        let record = match stream.next_buffered() {
            Some(r) => r,
            None => tokio::time::timeout(STALL, stream.next())
                .await
                .with_context(|| format!("no record for {STALL:?} after {records}"))??,
        };
        started.get_or_insert_with(Instant::now);
        records += 1;
        bytes += (record.value.len() + record.key.as_ref().map_or(0, |k| k.len())) as u64;
    }
    Ok(Tally {
        records,
        bytes,
        elapsed: started.map_or(Duration::ZERO, |s| s.elapsed()),
    })
}

fn report(args: &ConsumeBenchArgs, partitions: &[u32], tally: &Tally) -> anyhow::Result<()> {
    let secs = tally.elapsed.as_secs_f64().max(1e-9);
    let records_per_sec = tally.records as f64 / secs;
    let mb_per_sec = tally.bytes as f64 / secs / 1e6;
    let text = match args.output {
        Format::Json => {
            JsonObject::new()
                .str("topic", &args.topic)
                .raw("partitions", partitions.len())
                .raw("records", tally.records)
                .raw("bytes", tally.bytes)
                .raw("fetch_max_bytes", args.fetch_max_bytes)
                .raw("elapsed_s", format!("{secs:.3}"))
                .raw("records_per_sec", format!("{records_per_sec:.0}"))
                .raw("mb_per_sec", format!("{mb_per_sec:.2}"))
                .finish()
                + "\n"
        }
        Format::Table => {
            let settings = format!(
                "{} records ({} of keys and values) from {} ({} partition{}), fetches of {}\n\n",
                tally.records,
                format_bytes(i64::try_from(tally.bytes).unwrap_or(i64::MAX)),
                args.topic,
                partitions.len(),
                if partitions.len() == 1 { "" } else { "s" },
                format_bytes(i64::try_from(args.fetch_max_bytes).unwrap_or(i64::MAX)),
            );
            let rows = vec![vec![
                format!("{records_per_sec:.0}"),
                format!("{mb_per_sec:.2}"),
                format!("{secs:.3} s"),
            ]];
            settings + &table(&["RECORDS/S", "MB/S", "ELAPSED"], &rows)
        }
    };
    output::print(&text)
}
