//! The loopback floor for latency: a plain TCP ping-pong on 127.0.0.1 with
//! 100-byte messages, one in flight, measured in the same run as Rill's
//! latency case. Round trips go on for WARMUP_MS first, not measured.
//!
//! Usage: tcp_pingpong [ROUNDS] [WARMUP_MS]
//! Prints `rtt p50_us=.. p99_us=.. p999_us=..`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use hdrhistogram::Histogram;
use rill_bench_peers::{spawn_echo, ECHO_MESSAGE_BYTES as MESSAGE_BYTES};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = rill_bench_peers::next_arg(&mut args, 20_000)?;
    let warmup = rill_bench_peers::warmup(&mut args)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = spawn_echo(listener);
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = [7u8; MESSAGE_BYTES];
    let mut h = Histogram::<u64>::new(3)?;
    let warm_until = Instant::now() + warmup;
    while Instant::now() < warm_until {
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
    }
    for _ in 0..rounds {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        h.record((t.elapsed().as_nanos() as u64 / 1000).max(1))?;
    }
    drop(s);
    let _ = echo.join();
    println!(
        "rtt p50_us={} p99_us={} p999_us={}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999)
    );
    Ok(())
}
