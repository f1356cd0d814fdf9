//! `rill benchmark produce` (design.md §7): throughput and latency from
//! `send` to acknowledgement.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use rill::{DeliverySemantic, Isolation, Partitioner, ProduceOutput, Rill, TopicProducerConfig};

use crate::output::{self, table, Format, JsonObject};
use crate::produce::{ProducerFlags, MAX_PENDING_OUTPUTS};
use crate::units::{format_bytes, parse_positive_usize, parse_usize_size};
use crate::Global;

#[derive(Debug, Subcommand)]
pub enum BenchmarkCommand {
    /// Produce records as fast as the settings allow and report records/s,
    /// MB/s and the latency from `send` to acknowledgement.
    #[command(after_help = "Examples:
  rill benchmark produce
  rill benchmark produce --count 1000000 --record-size 100 --linger 5ms --batch-size 64KiB
  rill benchmark produce --partitions 4 --producers 2 --key-strategy random --compression lz4
  rill benchmark produce --delivery-semantic at-most-once --isolation read_committed -O json")]
    Produce(BenchArgs),
    /// Read a topic from its beginning to its end as fast as the consumer
    /// can and report records/s and MB/s.
    #[command(after_help = "Examples:
  rill benchmark consume --topic t
  rill benchmark consume --topic t -p 0 -p 1 --count 1000000 -O json")]
    Consume(crate::bench_consume::ConsumeBenchArgs),
    /// Produce at a fixed rate and consume the same partition; latency from
    /// each record's send to its arrival at the consumer.
    #[command(after_help = "Examples:
  rill benchmark e2e --rate 10000 --linger 0
  rill benchmark e2e --rate 100000 -n 1000000 -O json")]
    E2e(crate::bench_e2e::E2eArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyStrategy {
    /// No keys: the partitioner places records.
    None,
    /// Every record has the same key (one partition gets everything).
    Same,
    /// Each producer uses its own key.
    PerProducer,
    /// A random key out of --keys.
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionerArg {
    /// Keyless records cycle over the partitions.
    RoundRobin,
    /// Keyless records fill one partition's batch, then move on.
    Sticky,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Records to send in all.
    #[arg(short = 'n', long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Bytes of each record's value, e.g. 100, 1KiB.
    #[arg(long, value_parser = parse_usize_size, default_value = "1KiB", value_name = "SIZE")]
    record_size: usize,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// Producers sending at once, each with its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    producers: u32,
    /// How records are keyed.
    #[arg(long, value_enum, default_value = "none")]
    key_strategy: KeyStrategy,
    /// Distinct keys for --key-strategy random.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    keys: u32,
    /// Placement of keyless records.
    #[arg(long, value_enum, default_value = "round-robin")]
    partitioner: PartitionerArg,
    /// Topic to produce to [default: a new rill-bench-PID topic]. An
    /// existing topic is used as it is and never deleted.
    #[arg(long)]
    topic: Option<String>,
    /// Keep the topic this run created instead of deleting it.
    #[arg(long)]
    keep_topic: bool,
    /// Records each producer may have sent and not yet seen acknowledged;
    /// 1 measures the latency of one record at a time.
    #[arg(long, default_value_t = MAX_PENDING_OUTPUTS, value_parser = parse_positive_usize)]
    in_flight: usize,
    /// Send this many records per second in all, on a fixed schedule (open
    /// loop); latency then runs from each record's due instant.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "RECORDS_PER_S")]
    rate: Option<u64>,
    /// Output format of the results.
    #[arg(short = 'O', long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    producer: ProducerFlags,
}

/// What one producer saw.
pub(crate) struct Outcome {
    pub latency_us: Histogram<u64>,
    pub failed: u64,
    pub first_error: Option<rill::RillError>,
}

impl Outcome {
    /// Counts one record's answer; its latency runs from its send to the
    /// instant its answer arrived, however late it is looked at.
    pub(crate) fn settle(
        &mut self,
        sent_at: Instant,
        answer: Result<rill::RecordMetadata, rill::RillError>,
        answered_at: Instant,
    ) {
        self.settle_if_measured(Some(sent_at), answer, answered_at);
    }

    /// [`Self::settle`]; `None` for `sent_at` marks a warm-up record, whose
    /// latency is not counted (a failure is).
    pub(crate) fn settle_if_measured(
        &mut self,
        sent_at: Option<Instant>,
        answer: Result<rill::RecordMetadata, rill::RillError>,
        answered_at: Instant,
    ) {
        match answer {
            Ok(_) => {
                if let Some(sent_at) = sent_at {
                    self.latency_us.saturating_record(
                        answered_at.saturating_duration_since(sent_at).as_micros() as u64,
                    );
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// Records settled between progress bar updates.
const PROGRESS_STEP: u64 = 1024;

/// Values are windows into one block of random alphanumerics: distinct
/// records, compressible like text, and no generating cost while timing.
pub(crate) struct Values {
    pool: Vec<u8>,
    size: usize,
    rng: u64,
}

impl Values {
    pub(crate) fn new(size: usize, seed: u64) -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let len = (1 << 20).max(size * 2);
        let pool = (0..len)
            .map(|_| ALPHABET[(xorshift(&mut rng) % ALPHABET.len() as u64) as usize])
            .collect();
        Self { pool, size, rng }
    }

    pub(crate) fn next(&mut self) -> &[u8] {
        let room = (self.pool.len() - self.size + 1) as u64;
        let at = (xorshift(&mut self.rng) % room) as usize;
        &self.pool[at..at + self.size]
    }

    fn random(&mut self, below: u32) -> u32 {
        (xorshift(&mut self.rng) % u64::from(below.max(1))) as u32
    }
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

impl BenchmarkCommand {
    /// Async worker threads to run this benchmark on, `None` for the
    /// runtime's default (one per core).
    ///
    /// `produce` gets one worker per producer (at most one per core). A
    /// producer's work is one sending task plus its lanes and its
    /// connection's reader, which wake each other once per batch; with more
    /// workers than that, each wake-up tends to land on another, parked,
    /// worker (a futex wake and a context switch per batch), and on a
    /// machine the SPU shares the spare worker also takes CPU from it. One
    /// producer of 64 KiB batches of 1 KiB records went from 12 k to 2 k
    /// client context switches and about 1.4x the records/s on two cores.
    ///
    /// `consume` runs on one worker too, its loop a task of it: the
    /// connection's reader task and the loop that decodes then share a
    /// thread, so a Fetch answer is handed over without waking another
    /// thread, and the SPU on the same machine keeps the other core. On
    /// two cores 1 KiB records went from 1.31-2.21 M to 1.69-2.89 M
    /// records/s in nine interleaved pairs (the loop on the main thread
    /// beside one or two workers was slower either way).
    ///
    /// `e2e` runs on one worker: at 10 k records/s there is little work,
    /// and what matters is how many threads each record wakes. Its paced
    /// producer waits on a timerfd in a task of that worker
    /// ([`crate::pace_timer`]), so the thread that wakes at a record's due
    /// instant writes it, reads its acknowledgement and its Fetch answer.
    pub fn runtime_workers(&self) -> Option<usize> {
        match self {
            BenchmarkCommand::Produce(args) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                Some((args.producers as usize).clamp(1, cores))
            }
            BenchmarkCommand::E2e(_) | BenchmarkCommand::Consume(_) => Some(1),
        }
    }
}

pub async fn run(cmd: BenchmarkCommand, global: &Global) -> anyhow::Result<()> {
    let args = match cmd {
        BenchmarkCommand::Produce(args) => args,
        BenchmarkCommand::Consume(args) => return crate::bench_consume::run(args, global).await,
        BenchmarkCommand::E2e(args) => return crate::bench_e2e::run_e2e(args, global).await,
    };
    let mut builder = args.producer.builder()?;
    builder.partitioner(match args.partitioner {
        PartitionerArg::RoundRobin => Partitioner::RoundRobin,
        PartitionerArg::Sticky => Partitioner::Sticky,
    });
    let config = builder.build()?;
    let rill = global.connect().await?;
    let admin = rill.admin();
    let existing = match &args.topic {
        Some(t) => admin
            .list_topics()
            .await?
            .into_iter()
            .find(|i| &i.name == t),
        None => None,
    };
    let (topic, created) = match (&args.topic, &existing) {
        (Some(t), Some(_)) => (t.clone(), false),
        (Some(t), None) => (t.clone(), true),
        (None, _) => (format!("rill-bench-{}", std::process::id()), true),
    };
    // An existing topic keeps its own partition count; report that one.
    let partitions = existing.map_or(args.partitions, |t| t.partitions);
    if created {
        let partitions = i32::try_from(args.partitions).context("--partitions is too large")?;
        admin
            .create_topic(&topic, partitions, 1, &[])
            .await
            .with_context(|| format!("creating the benchmark topic {topic:?}"))?;
    }
    let result = measure(&rill, &topic, &args, &config).await;
    if created && !args.keep_topic {
        if let Err(e) = admin.delete_topic(&topic).await {
            crate::output::eprint(&format!(
                "warning: could not delete the benchmark topic {topic:?}: {e}\n"
            ));
        }
    }
    let (outcome, elapsed) = result?;
    report(&args, partitions, &config, &topic, &outcome, elapsed)?;
    match outcome.first_error {
        None => Ok(()),
        Some(e) => Err(anyhow::Error::from(e).context(format!(
            "{} of {} records were not acknowledged",
            outcome.failed, args.count
        ))),
    }
}

async fn measure(
    rill: &Rill,
    topic: &str,
    args: &BenchArgs,
    config: &TopicProducerConfig,
) -> anyhow::Result<(Outcome, Duration)> {
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(args.count);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records {per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Producers connect and get their producer ids before the clock starts.
    let mut producers = Vec::new();
    for i in 0..args.producers {
        let client = if i == 0 {
            rill.clone()
        } else {
            Rill::connect_to(rill.addr()).await?
        };
        producers.push(
            client
                .topic_producer_with_config(topic, config.clone())
                .await?,
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, producer) in producers.into_iter().enumerate() {
        let share = args.count / u64::from(args.producers)
            + u64::from((i as u64) < args.count % u64::from(args.producers));
        let values = Values::new(args.record_size, i as u64 + 1);
        let in_flight = args.in_flight;
        let key_strategy = args.key_strategy;
        let keys = args.keys;
        let progress = progress.clone();
        let rate = args.rate.map(|r| (r / u64::from(args.producers)).max(1));
        tasks.push(tokio::spawn(async move {
            if let Some(rate) = rate {
                return crate::bench_e2e::produce_paced(
                    producer, share, values, rate, in_flight, None, 0,
                )
                .await;
            }
            produce_share(
                producer,
                share,
                values,
                (key_strategy, keys),
                (i, in_flight),
                progress,
            )
            .await
        }));
    }
    let mut total = Outcome {
        latency_us: new_histogram()?,
        failed: 0,
        first_error: None,
    };
    for task in tasks {
        let outcome = task.await.context("a producer task panicked")??;
        total
            .latency_us
            .add(&outcome.latency_us)
            .context("merging latency histograms")?;
        total.failed += outcome.failed;
        if total.first_error.is_none() {
            total.first_error = outcome.first_error;
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok((total, elapsed))
}

pub(crate) fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds from 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a latency histogram")
}

/// One producer's part: sends without awaiting, keeping the outputs (at
/// most `MAX_PENDING_OUTPUTS`) in send order. Answered ones are taken off
/// the front as it goes; each latency is the output's own answer instant
/// minus its send instant, so taking it late does not inflate it.
async fn produce_share(
    producer: rill::TopicProducer,
    count: u64,
    mut values: Values,
    (key_strategy, keys): (KeyStrategy, u32),
    (index, in_flight): (usize, usize),
    progress: indicatif::ProgressBar,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome {
        latency_us: new_histogram()?,
        failed: 0,
        first_error: None,
    };
    // Each output carries the instant `send` read for the record's
    // timestamp: the latency's start, without a second clock read per
    // record here (clock reads were 6-8 % of this loop's CPU).
    let mut pending: std::collections::VecDeque<ProduceOutput> =
        std::collections::VecDeque::with_capacity(MAX_PENDING_OUTPUTS);
    let mut settled = 0u64;
    let same_key = b"rill-bench-key".to_vec();
    let own_key = format!("producer-{index}").into_bytes();
    let mut send_error = None;
    let mut unsent = 0;
    for i in 0..count {
        let key: Option<Vec<u8>> = match key_strategy {
            KeyStrategy::None => None,
            KeyStrategy::Same => Some(same_key.clone()),
            KeyStrategy::PerProducer => Some(own_key.clone()),
            KeyStrategy::Random => Some(format!("key-{}", values.random(keys)).into_bytes()),
        };
        match producer.send(key, values.next()).await {
            Ok(output) => pending.push_back(output),
            Err(e) => {
                unsent = count - i;
                send_error = Some(e);
                break;
            }
        }
        while let Some(output) = pending.front() {
            let Some((answer, at)) = output.try_wait() else {
                break;
            };
            outcome.settle(output.sent_at(), answer, at);
            pending.pop_front();
            settled += 1;
        }
        if pending.len() >= in_flight {
            if let Some(output) = pending.pop_front() {
                let (answer, at) = output.answered().await;
                outcome.settle(output.sent_at(), answer, at);
                settled += 1;
            }
        }
        if settled >= PROGRESS_STEP {
            progress.inc(settled);
            settled = 0;
        }
    }
    let flushed = producer.flush().await;
    for output in pending {
        let (answer, at) = output.answered().await;
        outcome.settle(output.sent_at(), answer, at);
        settled += 1;
    }
    progress.inc(settled);
    outcome.failed += unsent;
    if let Some(e) = send_error.or(flushed.err()) {
        outcome.first_error.get_or_insert(e);
    }
    Ok(outcome)
}

fn report(
    args: &BenchArgs,
    partitions: u32,
    config: &TopicProducerConfig,
    topic: &str,
    outcome: &Outcome,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let acked = args.count - outcome.failed;
    let records_per_sec = acked as f64 / secs;
    let mb_per_sec = acked as f64 * args.record_size as f64 / secs / 1e6;
    let h = &outcome.latency_us;
    let pct = |q: f64| h.value_at_quantile(q);
    let semantic = match config.delivery_semantic {
        DeliverySemantic::AtMostOnce => "at-most-once",
        DeliverySemantic::AtLeastOnce(_) => "at-least-once",
    };
    let isolation = match config.isolation {
        Isolation::ReadUncommitted => "read_uncommitted",
        Isolation::ReadCommitted => "read_committed",
    };
    let key_strategy = args
        .key_strategy
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let text = match args.output {
        Format::Json => {
            let latency = JsonObject::new()
                .raw("p50", pct(0.5))
                .raw("p99", pct(0.99))
                .raw("p99_9", pct(0.999))
                .raw("max", h.max())
                .finish();
            JsonObject::new()
                .str("topic", topic)
                .raw("records", args.count)
                .raw("acknowledged", acked)
                .raw("failed", outcome.failed)
                .raw("record_size", args.record_size)
                .raw("batch_size", config.batch_size)
                .raw("linger_ms", config.linger.as_millis())
                .raw("buffer_memory", config.buffer_memory)
                .str("compression", config.compression.name())
                .raw("partitions", partitions)
                .raw("producers", args.producers)
                .str("isolation", isolation)
                .str("delivery_semantic", semantic)
                .raw("idempotent", config.idempotent)
                .str("key_strategy", &key_strategy)
                .raw("elapsed_s", format!("{secs:.3}"))
                .raw("records_per_sec", format!("{records_per_sec:.0}"))
                .raw("mb_per_sec", format!("{mb_per_sec:.2}"))
                .raw("latency_us", latency)
                .finish()
                + "\n"
        }
        Format::Table => {
            let settings = format!(
                "{} records of {} to {topic} ({} partition{}, {} producer{}, keys {key_strategy})\n\
                 batch {}, linger {:?}, buffer {}, compression {}, {semantic}{}, {isolation}\n\n",
                args.count,
                format_bytes(args.record_size as i64),
                partitions,
                if partitions == 1 { "" } else { "s" },
                args.producers,
                if args.producers == 1 { "" } else { "s" },
                format_bytes(config.batch_size as i64),
                config.linger,
                format_bytes(config.buffer_memory as i64),
                config.compression.name(),
                if config.idempotent { " (idempotent)" } else { "" },
            );
            let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
            let rows = vec![vec![
                format!("{records_per_sec:.0}"),
                format!("{mb_per_sec:.2}"),
                ms(pct(0.5)),
                ms(pct(0.99)),
                ms(pct(0.999)),
                ms(h.max()),
                format!("{secs:.3} s"),
            ]];
            settings
                + &table(
                    &[
                        "RECORDS/S",
                        "MB/S",
                        "LATENCY P50",
                        "P99",
                        "P99.9",
                        "MAX",
                        "ELAPSED",
                    ],
                    &rows,
                )
        }
    };
    output::print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_windows_of_the_requested_size() {
        let mut v = Values::new(100, 1);
        let a = v.next().to_vec();
        let b = v.next().to_vec();
        assert_eq!(a.len(), 100);
        assert_ne!(a, b, "successive records differ");
        assert!(a.iter().all(u8::is_ascii_alphanumeric));
        let mut big = Values::new(3 << 20, 2);
        assert_eq!(big.next().len(), 3 << 20);
        assert!((0..1000).all(|_| v.random(7) < 7));
    }

    #[derive(Debug, clap::Parser)]
    struct Line {
        #[command(subcommand)]
        cmd: BenchmarkCommand,
    }

    fn workers(args: &[&str]) -> Option<usize> {
        use clap::Parser;
        let line = Line::try_parse_from(std::iter::once("benchmark").chain(args.iter().copied()))
            .expect("a valid command line");
        line.cmd.runtime_workers()
    }

    #[test]
    fn produce_runs_one_worker_per_producer_and_consume_and_e2e_one() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(workers(&["produce"]), Some(1));
        assert_eq!(
            workers(&["produce", "--producers", "2"]),
            Some(2.min(cores))
        );
        assert_eq!(workers(&["produce", "--producers", "1000"]), Some(cores));
        assert_eq!(workers(&["consume", "--topic", "t"]), Some(1));
        assert_eq!(workers(&["e2e"]), Some(1));
    }
}
