//! Latency under load: `rill benchmark produce --rate N` (open loop) and
//! `rill benchmark e2e` (produce → consume).
//!
//! Open loop: record `i` is due at `t0 + i / rate`, whatever happened to the
//! records before it. The sending task waits until a record is due and
//! sends every record that is due; an acknowledgement's latency runs from
//! the instant the record was *due*, not from when it was sent, so a slow
//! answer that holds up later sends shows in their latency instead of
//! hiding as a lower send rate (no coordinated omission). It waits on a
//! timerfd ([`PaceTimer`]), so a record goes out as soon as the runtime's
//! thread wakes at its due instant; how late that is counts against the
//! acknowledgement latency.
//!
//! `e2e`: a producer at `--rate` and a consumer of the same partition in
//! this process, on one async worker thread (see
//! `BenchmarkCommand::runtime_workers`). Each record's value starts with
//! the nanoseconds since a start instant shared by both, read just before
//! `send` (Kafka's record timestamp has only millisecond resolution, too
//! coarse next to a loopback round trip of tens of microseconds); its
//! end-to-end latency is the consumer's instant minus that stamp, on the
//! same monotonic clock.
//!
//! Warm-up: `e2e` first runs `--warmup` (1 s by default) of the same
//! traffic at the same rate and counts none of it. A new process on this
//! kind of machine runs its first 150-450 ms markedly slower (median e2e
//! latency 2-4 times the steady one, in the same process on the same
//! connections: the machine's CPUs, not the run, warm up), which is enough
//! to decide a p99 of a few seconds' run. The loopback peers `bench/compare`
//! sets beside it take the same warm-up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use rill::{Offset, ProduceOutput, Rill, TopicProducer};

use crate::bench::{new_histogram, Outcome, Values};
use crate::output::{self, table, Format, JsonObject};
use crate::pace_timer::PaceTimer;
use crate::produce::{ProducerFlags, MAX_PENDING_OUTPUTS};
use crate::units::{parse_duration, parse_usize_size};
use crate::Global;

/// Bytes of the stamp at the front of each e2e record's value.
const STAMP_BYTES: usize = 8;
/// How long the e2e consumer waits for the next record before it gives up.
const CONSUME_IDLE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct E2eArgs {
    /// Records to send in all.
    #[arg(short = 'n', long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Bytes of each record's value (at least 8, for the send stamp), e.g. 100, 1KiB.
    #[arg(long, value_parser = parse_usize_size, default_value = "100", value_name = "SIZE")]
    record_size: usize,
    /// Records per second the producer sends, on a fixed schedule.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// How long the same traffic runs first, not counted, e.g. 0, 500ms.
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    warmup: Duration,
    /// Topic to use [default: a new rill-e2e-PID topic with one partition].
    /// An existing topic is used as it is (partition 0) and never deleted.
    #[arg(long)]
    topic: Option<String>,
    /// Output format of the results.
    #[arg(short = 'O', long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    producer: ProducerFlags,
}

/// Sends `count` records at `rate` records/s on a fixed schedule and
/// settles their acknowledgements, each measured from its due instant;
/// the first `warmup` of them are sent and settled alike but not measured
/// (a failure among them still counts). With `stamp`, each value starts
/// with the nanoseconds from that instant to the send (little-endian
/// u64). At most `pending` outputs wait for their answers; beyond that the
/// sending waits, and the records it could not send on time carry the
/// delay in their latency.
///
/// It waits for each due instant on a [`PaceTimer`], in the same task
/// that sends: run as a task of the runtime the producer's lanes and
/// connection run on, the thread that wakes at the due instant is the one
/// that writes the record (no hand-over from a pacing thread). The answers
/// are settled between sends, from the instant each arrived
/// ([`ProduceOutput::try_wait`]): nothing is woken per record to take them.
pub(crate) async fn produce_paced(
    producer: TopicProducer,
    count: u64,
    mut values: Values,
    rate: u64,
    pending: usize,
    stamp: Option<Instant>,
    warmup: u64,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome {
        latency_us: new_histogram()?,
        failed: 0,
        first_error: None,
    };
    let pending = pending.max(1);
    let timer = PaceTimer::new().context("creating the pacing timer")?;
    // Each output with its due instant, or `None` for a warm-up record.
    let mut waiting: VecDeque<(Option<Instant>, ProduceOutput)> = VecDeque::with_capacity(pending);
    let t0 = Instant::now();
    let mut buf = Vec::new();
    for i in 0..count {
        let due = t0 + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
        settle_answered(&mut waiting, &mut outcome);
        if waiting.len() >= pending {
            if let Some((sent_due, output)) = waiting.pop_front() {
                let (answer, at) = output.answered().await;
                outcome.settle_if_measured(sent_due, answer, at);
            }
        }
        timer
            .sleep_until(due)
            .await
            .context("waiting on the pacing timer")?;
        buf.clear();
        buf.extend_from_slice(values.next());
        if let Some(base) = stamp {
            let at = Instant::now().saturating_duration_since(base).as_nanos() as u64;
            buf[..STAMP_BYTES].copy_from_slice(&at.to_le_bytes());
        }
        match producer.send(None::<Vec<u8>>, &buf).await {
            Ok(output) => waiting.push_back(((i >= warmup).then_some(due), output)),
            Err(e) => {
                // This record and the ones never sent.
                outcome.failed += count - i;
                outcome.first_error.get_or_insert(e);
                break;
            }
        }
    }
    if let Err(e) = producer.flush().await {
        outcome.first_error.get_or_insert(e);
    }
    for (due, output) in waiting {
        let (answer, at) = output.answered().await;
        outcome.settle_if_measured(due, answer, at);
    }
    Ok(outcome)
}

/// Settles the outputs at the front of `waiting` that have their answers.
fn settle_answered(
    waiting: &mut VecDeque<(Option<Instant>, ProduceOutput)>,
    outcome: &mut Outcome,
) {
    while let Some((due, output)) = waiting.front() {
        let Some((answer, at)) = output.try_wait() else {
            return;
        };
        outcome.settle_if_measured(*due, answer, at);
        waiting.pop_front();
    }
}

/// Percentiles of a histogram in microseconds, as a JSON object.
fn latency_json(h: &Histogram<u64>) -> String {
    JsonObject::new()
        .raw("p50", h.value_at_quantile(0.5))
        .raw("p99", h.value_at_quantile(0.99))
        .raw("p99_9", h.value_at_quantile(0.999))
        .raw("max", h.max())
        .finish()
}

fn latency_row(name: &str, h: &Histogram<u64>) -> Vec<String> {
    let us = |v: u64| format!("{v} us");
    vec![
        name.to_owned(),
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
    ]
}

/// `rill benchmark e2e`.
pub async fn run_e2e(args: E2eArgs, global: &Global) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.record_size >= STAMP_BYTES,
        "--record-size must be at least {STAMP_BYTES} bytes (the send stamp)"
    );
    let config = args.producer.builder()?.build()?;
    let rill = global.connect().await?;
    let admin = rill.admin();
    let (topic, created) = match &args.topic {
        Some(t) => (t.clone(), false),
        None => (format!("rill-e2e-{}", std::process::id()), true),
    };
    if created {
        admin
            .create_topic(&topic, 1, 1, &[])
            .await
            .with_context(|| format!("creating the benchmark topic {topic:?}"))?;
    }
    let warmup = warmup_records(args.rate, args.warmup);
    let result = measure_e2e(&rill, &topic, &args, config, warmup).await;
    if created {
        if let Err(e) = admin.delete_topic(&topic).await {
            output::eprint(&format!(
                "warning: could not delete the benchmark topic {topic:?}: {e}\n"
            ));
        }
    }
    let (acks, e2e, elapsed) = result?;
    let received = e2e.len();
    let sent = args.count.saturating_add(warmup);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let text = match args.output {
        Format::Json => {
            JsonObject::new()
                .str("topic", &topic)
                .raw("records", args.count)
                .raw("warmup_records", warmup)
                .raw("received", received)
                .raw("failed", acks.failed)
                .raw("record_size", args.record_size)
                .raw("rate", args.rate)
                .raw("elapsed_s", format!("{secs:.3}"))
                .raw(
                    "records_per_sec",
                    format!("{:.0}", received.saturating_add(warmup) as f64 / secs),
                )
                .raw("e2e_latency_us", latency_json(&e2e))
                .raw("ack_latency_us", latency_json(&acks.latency_us))
                .finish()
                + "\n"
        }
        Format::Table => {
            let head = format!(
                "{} records of {} B to {topic} at {} records/s after {warmup} warm-up records; ",
                args.count, args.record_size, args.rate
            );
            let rows = [
                latency_row("end to end", &e2e),
                latency_row("acknowledgement", &acks.latency_us),
            ];
            head + &format!("{received} consumed in {secs:.3} s\n\n")
                + &table(&["LATENCY", "P50", "P99", "P99.9", "MAX"], &rows)
        }
    };
    output::print(&text)?;
    match acks.first_error {
        None if received == args.count => Ok(()),
        None => anyhow::bail!(
            "{} of {} records were not consumed",
            args.count - received,
            args.count
        ),
        Some(e) => Err(anyhow::Error::from(e).context(format!(
            "{} of {sent} records (warm-up included) were not acknowledged",
            acks.failed
        ))),
    }
}

/// Records sent during `warmup` at `rate` records/s.
fn warmup_records(rate: u64, warmup: Duration) -> u64 {
    u64::try_from(u128::from(rate) * warmup.as_nanos() / 1_000_000_000).unwrap_or(u64::MAX)
}

/// Sends `warmup` records and then `args.count` more and reads them all
/// back; the latencies are those of the records after the warm-up.
async fn measure_e2e(
    rill: &Rill,
    topic: &str,
    args: &E2eArgs,
    config: rill::TopicProducerConfig,
    warmup: u64,
) -> anyhow::Result<(Outcome, Histogram<u64>, Duration)> {
    let consumer = rill.partition_consumer(topic, 0).await?;
    // The start offset is fixed before the first send.
    let mut stream = consumer.stream(Offset::end()).await?;
    let producer = rill.topic_producer_with_config(topic, config).await?;
    let base = Instant::now();
    let count = args.count.saturating_add(warmup);
    let reader = tokio::spawn(async move {
        let mut h = new_histogram()?;
        for i in 0..count {
            let record = tokio::time::timeout(CONSUME_IDLE_LIMIT, stream.next())
                .await
                .context("no record for 30 s")??;
            let now = base.elapsed().as_nanos() as u64;
            let mut stamp = [0u8; STAMP_BYTES];
            stamp.copy_from_slice(
                record
                    .value
                    .get(..STAMP_BYTES)
                    .context("a record shorter than its stamp")?,
            );
            let sent = u64::from_le_bytes(stamp);
            // One partition keeps the send order: the first ones read are
            // the warm-up.
            if i >= warmup {
                h.saturating_record((now.saturating_sub(sent) / 1000).max(1));
            }
        }
        anyhow::Ok(h)
    });
    let values = Values::new(args.record_size, 1);
    // A task, not awaited here: the main thread's future is not run by the
    // worker the producer's lanes and the connections run on.
    let rate = args.rate;
    let acks = tokio::spawn(produce_paced(
        producer,
        count,
        values,
        rate,
        MAX_PENDING_OUTPUTS,
        Some(base),
        warmup,
    ))
    .await
    .context("the producing task panicked")??;
    let e2e = if acks.failed > 0 {
        // Not every record will arrive: stop reading.
        reader.abort();
        new_histogram()?
    } else {
        reader.await.context("the consumer task panicked")??
    };
    Ok((acks, e2e, base.elapsed()))
}
