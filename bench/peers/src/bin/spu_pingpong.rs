//! The SPU's own share of a produce round trip: one-record Produce requests
//! (acks 1, built once) sent one at a time over a plain blocking socket, with
//! no client runtime in the way. Prints `spu p50_us=.. p99_us=.. p999_us=..`.
//! Usage: spu_pingpong HOST:PORT TOPIC [ROUNDS]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use hdrhistogram::Histogram;
use rill_protocol::produce::{produce_request_front, ProduceFront};
use rill_protocol::{Compression, NewRecord, RecordBatchBuilder};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "pingpong".into());
    let rounds: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let mut batch = RecordBatchBuilder::new(Compression::None);
    batch.push(&NewRecord::new(None, &[b'x'; 100], 0))?;
    let records = batch.finish()?;
    let mut s = TcpStream::connect(&addr)?;
    s.set_nodelay(true)?;
    let mut h = Histogram::<u64>::new(3)?;
    let mut answer = Vec::new();
    for round in 0..rounds {
        let mut request = produce_request_front(
            &ProduceFront {
                version: 8,
                correlation_id: round as i32,
                client_id: "pingpong",
                acks: 1,
                timeout_ms: 1500,
                topic: &topic,
                partition: 0,
            },
            records.len(),
        )?;
        request.extend_from_slice(&records);
        let t = Instant::now();
        s.write_all(&request)?;
        let mut size = [0u8; 4];
        s.read_exact(&mut size)?;
        answer.resize(i32::from_be_bytes(size) as usize, 0);
        s.read_exact(&mut answer)?;
        h.record((t.elapsed().as_nanos() as u64 / 1000).max(1))?;
    }
    println!(
        "spu p50_us={} p99_us={} p999_us={}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999)
    );
    Ok(())
}
