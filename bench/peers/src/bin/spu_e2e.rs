//! The SPU's own share of end-to-end latency, as `spu_pingpong` is of a
//! produce round trip: a producer thread sends one-record Produce requests
//! (acks 1, one at a time) at a fixed rate over a blocking socket, and a
//! consumer thread long-polls Fetch (v4) on a second socket from offset 0.
//! Each record's value starts with the nanoseconds since a start instant
//! both threads share, read just before its request is written; its latency
//! is the consumer's instant on receipt minus that stamp, as `rill benchmark
//! e2e` measures, with no client runtime in the way. One difference: with
//! one request at a time, a record due during a stall is written (and
//! stamped) only after it, so a stall shows in one record here, while
//! `rill benchmark e2e`, which pipelines, stamps every record on schedule
//! and counts the stall in each (`tcp_paced` is the open-loop floor).
//!
//! The first WARMUP_MS of records are sent and read back unmeasured.
//!
//! Usage: spu_e2e HOST:PORT TOPIC [RATE] [COUNT] [WARMUP_MS] (a new, empty topic)
//! Prints `spu_e2e p50_us=.. p99_us=.. p999_us=.. max_us=..`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use rill_protocol::batch::split_batches;
use rill_protocol::cursor::Cursor;
use rill_protocol::produce::{produce_request_front, ProduceFront};
use rill_protocol::{Compression, NewRecord, RecordBatch, RecordBatchBuilder};

/// Bytes of each record's value (the stamp and padding), as the e2e rows.
const RECORD_BYTES: usize = 100;
/// How long one Fetch may wait at the SPU for a record.
const FETCH_WAIT_MS: i32 = 500;
/// Most a decompressed batch may take while it is read.
const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "e2e".into());
    let (rate, measured) = rill_bench_peers::rate_and_count(&mut args, 20_000)?;
    let warmup = rill_bench_peers::warmup_count(rate, rill_bench_peers::warmup(&mut args)?);
    let count = measured.saturating_add(warmup);
    let start = Instant::now();
    let consumer = {
        let (addr, topic) = (addr.clone(), topic.clone());
        std::thread::spawn(move || consume(&addr, &topic, count, warmup, start))
    };
    produce(&addr, &topic, rate, count, start)?;
    let h = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))??;
    println!(
        "spu_e2e p50_us={} p99_us={} p999_us={} max_us={}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    Ok(())
}

/// Sends `count` records, record `i` due at `i / rate` s after the first,
/// each request answered before the next is written.
fn produce(addr: &str, topic: &str, rate: u64, count: u64, start: Instant) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut value = vec![b'x'; RECORD_BYTES];
    let mut answer = Vec::new();
    let t0 = Instant::now();
    for i in 0..count {
        let due = t0 + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let stamp = start.elapsed().as_nanos() as u64;
        value[..8].copy_from_slice(&stamp.to_le_bytes());
        let mut batch = RecordBatchBuilder::new(Compression::None);
        batch.push(&NewRecord::new(None, &value, 0))?;
        let records = batch.finish()?;
        let mut request = produce_request_front(
            &ProduceFront {
                version: 8,
                correlation_id: i as i32,
                client_id: "spu_e2e",
                acks: 1,
                timeout_ms: 1500,
                topic,
                partition: 0,
            },
            records.len(),
        )?;
        request.extend_from_slice(&records);
        s.write_all(&request)?;
        read_frame(&mut s, &mut answer)?;
    }
    Ok(())
}

/// Reads records from offset 0 until `count` came; the latencies in µs of
/// those after the first `warmup`.
fn consume(
    addr: &str,
    topic: &str,
    count: u64,
    warmup: u64,
    start: Instant,
) -> anyhow::Result<Histogram<u64>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut h = Histogram::<u64>::new(3)?;
    let (mut offset, mut received, mut round) = (0i64, 0u64, 0i32);
    let mut answer = Vec::new();
    while received < count {
        s.write_all(&fetch_request(topic, offset, round))?;
        round = round.wrapping_add(1);
        read_frame(&mut s, &mut answer)?;
        let now = start.elapsed().as_nanos() as u64;
        let records = fetched_records(&answer)?;
        for slice in split_batches(records) {
            let Ok(slice) = slice else { break }; // a batch cut at the end
            let batch = RecordBatch::new(slice).context("a fetched batch")?;
            let set = batch.records(MAX_DECOMPRESSED_BYTES)?;
            for r in set.iter() {
                let r = r?;
                if r.offset < offset {
                    continue;
                }
                let value = r.value.unwrap_or_default();
                let stamp = value.get(..8).context("a record shorter than its stamp")?;
                let sent = u64::from_le_bytes(stamp.try_into()?);
                if received >= warmup {
                    h.record((now.saturating_sub(sent) / 1000).max(1))?;
                }
                received += 1;
                offset = r.offset + 1;
            }
        }
    }
    Ok(h)
}

/// Fetch v4 (request header v1) of partition 0 of `topic` at `offset`.
fn fetch_request(topic: &str, offset: i64, correlation_id: i32) -> Vec<u8> {
    let client = b"spu_e2e";
    let mut b = Vec::with_capacity(96);
    b.extend_from_slice(&[0, 0, 0, 0]); // size, set below
    b.extend_from_slice(&1i16.to_be_bytes()); // api key: Fetch
    b.extend_from_slice(&4i16.to_be_bytes()); // version
    b.extend_from_slice(&correlation_id.to_be_bytes());
    b.extend_from_slice(&(client.len() as i16).to_be_bytes());
    b.extend_from_slice(client);
    b.extend_from_slice(&(-1i32).to_be_bytes()); // replica id: a consumer
    b.extend_from_slice(&FETCH_WAIT_MS.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    b.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
    b.push(0); // isolation: read uncommitted
    b.extend_from_slice(&1i32.to_be_bytes()); // one topic
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // one partition
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&(1i32 << 20).to_be_bytes()); // partition max bytes
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b
}

/// The records of the one partition of a Fetch v4 answer (response header
/// v0), refusing an error code.
fn fetched_records(answer: &[u8]) -> anyhow::Result<&[u8]> {
    let mut c = Cursor::new(answer);
    c.i32()?; // correlation id
    c.i32()?; // throttle time
    if c.i32()? != 1 {
        bail!("a Fetch answer without exactly one topic");
    }
    let name_len = c.i16()?;
    c.bytes(usize::try_from(name_len)?)?;
    if c.i32()? != 1 {
        bail!("a Fetch answer without exactly one partition");
    }
    c.i32()?; // partition
    let code = c.i16()?;
    if code != 0 {
        bail!("Fetch answered with error code {code}");
    }
    c.i64()?; // high watermark
    c.i64()?; // last stable offset
    let aborted = c.i32()?;
    for _ in 0..aborted.max(0) {
        c.i64()?;
        c.i64()?;
    }
    let len = c.i32()?;
    Ok(if len < 0 { &[] } else { c.bytes(len as usize)? })
}

/// Reads one size-prefixed frame into `buf` (without its size).
fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size)?;
    buf.resize(i32::from_be_bytes(size).max(0) as usize, 0);
    s.read_exact(buf)?;
    Ok(())
}
