//! The loopback floor for latency under load: the open-loop counterpart of
//! `tcp_pingpong`. A pacing thread writes a 100-byte message to an echo
//! thread every 1/RATE s on a fixed schedule (sleeping as `rill benchmark
//! e2e`'s pacing thread does), whatever became of the messages before it;
//! a reader thread takes the echoes. Each message carries the instant read
//! just before it was written, and its latency runs from there to the
//! instant its echo was read: the same stamps as `rill benchmark e2e`. So
//! a stall of the machine (a vCPU not run for a few milliseconds) shows in
//! every message sent just before or during it, as it does in an open-loop
//! benchmark, where a ping-pong, which sends nothing while it waits,
//! counts it only once.
//!
//! The first WARMUP_MS of messages go out and come back unmeasured.
//!
//! Usage: tcp_paced [RATE] [COUNT] [WARMUP_MS]
//! Prints `paced p50_us=.. p99_us=.. p999_us=.. max_us=..`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rill_bench_peers::{spawn_echo, ECHO_MESSAGE_BYTES as MESSAGE_BYTES};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (rate, measured) = rill_bench_peers::rate_and_count(&mut args, 100_000)?;
    let warmup = rill_bench_peers::warmup_count(rate, rill_bench_peers::warmup(&mut args)?);
    let count = measured.saturating_add(warmup);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = spawn_echo(listener);
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let start = Instant::now();
    let mut reader_side = s.try_clone()?;
    let reader = std::thread::spawn(move || -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::<u64>::new(3)?;
        let mut buf = [0u8; MESSAGE_BYTES];
        for i in 0..count {
            reader_side.read_exact(&mut buf)?;
            let now = start.elapsed().as_nanos() as u64;
            let sent = u64::from_le_bytes(buf[..8].try_into()?);
            if i >= warmup {
                h.record((now.saturating_sub(sent) / 1000).max(1))?;
            }
        }
        Ok(h)
    });
    let mut writer = s;
    let mut buf = [7u8; MESSAGE_BYTES];
    for i in 0..count {
        let due = Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
        let now = start.elapsed();
        if due > now {
            std::thread::sleep(due - now);
        }
        let stamp = start.elapsed().as_nanos() as u64;
        buf[..8].copy_from_slice(&stamp.to_le_bytes());
        writer.write_all(&buf)?;
    }
    let h = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    drop(writer);
    let _ = echo.join();
    println!(
        "paced p50_us={} p99_us={} p999_us={} max_us={}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    Ok(())
}
