//! The SPU as a child process (`rill-reliability-spu`, through
//! rill-test-support's `ProcessSpu`): started on a data directory, killed
//! with SIGKILL by PID, started again on the same directory and port; its
//! memory read from `/proc/<pid>/status`.

use std::path::Path;

pub use rill_test_support::{ProcessSpu, STUCK};

/// Starts `rill-reliability-spu` on 127.0.0.1:0 with its data in
/// `data_dir` and the flush policy `flush` (`always` or `never`).
pub fn start(data_dir: &Path, flush: &str) -> ProcessSpu {
    ProcessSpu::bare(env!("CARGO_BIN_EXE_rill-reliability-spu"))
        .args(["--flush", flush])
        .start(data_dir)
}
