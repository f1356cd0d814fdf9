//! A bare SPU process for the reliability suites (`tests/it/`): the suites
//! kill it with SIGKILL at random moments and start it again on the same
//! data directory, and read its memory from `/proc/<pid>/status`.
//!
//! ```text
//! rill-reliability-spu --data-dir DIR [--listen 127.0.0.1:0] [--advertise HOST:PORT]
//!     [--flush always|never|interval:MS]
//!     [--id N --etcd URL[,URL...] [--session-timeout-ms MS] [--replica-lag-time-max-ms MS]]
//! ```
//!
//! Without `--etcd` it is one SPU with its metadata in local files (the
//! crash, load and disk-full suites). With `--etcd` it is SPU `--id` of a
//! cluster whose metadata is in that etcd (the failover suite), and it logs
//! to stderr (`RILL_LOG` = error, warn, info (default), debug or trace).
//! `--advertise` is the address it gives clients and the other SPUs
//! (Metadata, its registration) instead of the one it listens on: the
//! isolation suite puts a fault proxy there.
//!
//! The first line on stdout is `rill SPU listening on ADDR`. It runs until
//! killed. (The `rill` binary's `cluster start --foreground` does the same
//! for users; this one keeps the suites free of the CLI crate.)

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rill_spu::{ClusterSettings, Spu, SpuConfig};
use rill_storage::FlushPolicy;

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "{problem}\nusage: rill-reliability-spu --data-dir DIR [--listen ADDR] [--advertise HOST:PORT] \
         [--flush always|never|interval:MS] \
         [--id N --etcd URL[,URL...] [--session-timeout-ms MS] [--replica-lag-time-max-ms MS]]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut data_dir = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut advertised: Option<(String, u16)> = None;
    let mut flush = FlushPolicy::Never;
    let mut id: Option<i32> = None;
    let mut etcd: Option<Vec<String>> = None;
    let mut session_timeout_ms: Option<u64> = None;
    let mut replica_lag_time_max_ms: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{arg} needs a value"));
        };
        match arg.as_str() {
            "--data-dir" => data_dir = Some(value),
            "--listen" => listen = value,
            "--advertise" => match value.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                Some((host, Ok(port))) if !host.is_empty() => {
                    advertised = Some((host.to_owned(), port))
                }
                _ => return usage(&format!("bad advertised address {value:?} (HOST:PORT)")),
            },
            "--flush" => {
                flush = match value.as_str() {
                    "always" => FlushPolicy::Always,
                    "never" => FlushPolicy::Never,
                    // `interval:MS`: fsync at least every MS milliseconds.
                    other => match other.strip_prefix("interval:").map(str::parse::<u64>) {
                        Some(Ok(ms)) if ms > 0 => FlushPolicy::Interval {
                            messages: u64::MAX,
                            interval: Duration::from_millis(ms),
                        },
                        _ => return usage(&format!("unknown flush policy {other:?}")),
                    },
                }
            }
            "--id" => match value.parse() {
                Ok(n) if n >= 0 => id = Some(n),
                _ => return usage(&format!("bad SPU id {value:?}")),
            },
            "--etcd" => etcd = Some(value.split(',').map(str::to_owned).collect()),
            "--session-timeout-ms" => match value.parse() {
                Ok(ms) if ms >= 100 => session_timeout_ms = Some(ms),
                _ => return usage(&format!("bad session timeout {value:?} (at least 100)")),
            },
            "--replica-lag-time-max-ms" => match value.parse() {
                Ok(ms) if ms >= 100 => replica_lag_time_max_ms = Some(ms),
                _ => return usage(&format!("bad replica lag time {value:?} (at least 100)")),
            },
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let Some(data_dir) = data_dir else {
        return usage("--data-dir is required");
    };
    let Ok(listen) = listen.parse() else {
        return usage(&format!("bad address {listen:?}"));
    };
    init_tracing();
    let mut config = SpuConfig::new(listen, data_dir);
    config.flush = flush;
    config.advertised = advertised;
    match (etcd, id) {
        (Some(endpoints), Some(id)) => {
            config.node_id = id;
            let mut cluster = ClusterSettings::etcd(endpoints);
            if let Some(ms) = session_timeout_ms {
                cluster.session_timeout = Duration::from_millis(ms);
            }
            if let Some(ms) = replica_lag_time_max_ms {
                cluster.replica_lag_time_max = Duration::from_millis(ms);
            }
            config.cluster = Some(cluster);
        }
        (None, None) if session_timeout_ms.is_none() && replica_lag_time_max_ms.is_none() => {}
        _ => return usage("--id and --etcd go together, and the timeouts need them"),
    }
    let spu = match Spu::start(config).await {
        Ok(spu) => spu,
        Err(e) => {
            eprintln!("rill-reliability-spu: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "rill SPU listening on {}", spu.local_addr());
    let _ = out.flush();
    // Serve until killed.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

/// Logs to stderr, as `rill spu run` does (the suites send it to a file).
fn init_tracing() {
    let level = match std::env::var("RILL_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
