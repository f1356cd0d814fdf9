//! Pieces the peer binaries share.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes of one message of the loopback echo peers (`tcp_pingpong`,
/// `tcp_paced`), about a 100-byte record.
pub const ECHO_MESSAGE_BYTES: usize = 100;

/// Serves the first connection to `listener` on a new thread: every
/// message of [`ECHO_MESSAGE_BYTES`] is written back, until the peer
/// closes.
pub fn spawn_echo(listener: TcpListener) -> JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; ECHO_MESSAGE_BYTES];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(());
            }
            s.write_all(&buf)?;
        }
    })
}

/// The next positional argument parsed, or `default` when there is none.
pub fn next_arg<T>(args: &mut impl Iterator<Item = String>, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(default))
}

/// RATE and COUNT of the paced peers, both at least 1.
pub fn rate_and_count(
    args: &mut impl Iterator<Item = String>,
    default_count: u64,
) -> anyhow::Result<(u64, u64)> {
    let rate = next_arg(args, 10_000u64)?;
    let count = next_arg(args, default_count)?;
    if rate == 0 || count == 0 {
        anyhow::bail!("RATE and COUNT must be at least 1");
    }
    Ok((rate, count))
}

/// WARMUP_MS of the latency peers (default 0): how long the same traffic
/// runs first without being measured, as `rill benchmark e2e --warmup`
/// does (a new process runs its first few hundred milliseconds slower on
/// this kind of machine).
pub fn warmup(args: &mut impl Iterator<Item = String>) -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(next_arg(args, 0u64)?))
}

/// Messages sent at `rate` per second during `warmup`.
pub fn warmup_count(rate: u64, warmup: Duration) -> u64 {
    u64::try_from(u128::from(rate) * warmup.as_nanos() / 1_000_000_000).unwrap_or(u64::MAX)
}
