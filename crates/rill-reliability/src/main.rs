//! A bare SPU process for the reliability suites (`tests/it/`): the suites
//! kill it with SIGKILL at random moments and start it again on the same
//! data directory, and read its memory from `/proc/<pid>/status`.
//!
//! ```text
//! rill-reliability-spu --data-dir DIR [--listen 127.0.0.1:0] [--flush always|never]
//! ```
//!
//! The first line on stdout is `rill SPU listening on ADDR`. It runs until
//! killed. (The `rill` binary's `cluster start --foreground` does the same
//! for users; this one keeps the suites free of the CLI crate.)

use std::io::Write;
use std::process::ExitCode;

use rill_spu::{Spu, SpuConfig};
use rill_storage::FlushPolicy;

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\nusage: rill-reliability-spu --data-dir DIR [--listen ADDR] [--flush always|never]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut data_dir = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut flush = FlushPolicy::Never;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{arg} needs a value"));
        };
        match arg.as_str() {
            "--data-dir" => data_dir = Some(value),
            "--listen" => listen = value,
            "--flush" => {
                flush = match value.as_str() {
                    "always" => FlushPolicy::Always,
                    "never" => FlushPolicy::Never,
                    other => return usage(&format!("unknown flush policy {other:?}")),
                }
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let Some(data_dir) = data_dir else {
        return usage("--data-dir is required");
    };
    let Ok(listen) = listen.parse() else {
        return usage(&format!("bad address {listen:?}"));
    };
    let mut config = SpuConfig::new(listen, data_dir);
    config.flush = flush;
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
