//! The SPU as a child process: started on a data directory, killed with
//! SIGKILL (`Child::kill`, by PID), started again on the same directory and
//! port; its memory read from `/proc/<pid>/status`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longer than any wait the suites expect: past it a task is stuck, and the
/// test fails saying where instead of hanging.
pub const STUCK: Duration = Duration::from_secs(120);

pub struct SpuProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    data_dir: PathBuf,
    flush: &'static str,
    /// Highest VmHWM (KiB) seen across this SPU's processes.
    pub peak_hwm_kib: u64,
}

fn spawn(data_dir: &Path, listen: &str, flush: &str) -> std::io::Result<(Child, SocketAddr)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rill-reliability-spu"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", listen, "--flush", flush])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
    let addr = line
        .trim()
        .strip_prefix("rill SPU listening on ")
        .and_then(|a| a.parse().ok());
    match (read, addr) {
        (Ok(_), Some(addr)) => Ok((child, addr)),
        _ => {
            let _ = child.kill();
            let status = child.wait();
            Err(std::io::Error::other(format!(
                "SPU did not start ({status:?}), said {line:?}"
            )))
        }
    }
}

impl SpuProcess {
    pub fn start(data_dir: &Path, flush: &'static str) -> Self {
        let (child, addr) = spawn(data_dir, "127.0.0.1:0", flush).expect("SPU starts");
        Self {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            flush,
            peak_hwm_kib: 0,
        }
    }

    /// `(VmRSS, VmHWM)` of the running SPU process in KiB, tracking the
    /// peak; `None` if it is not running.
    pub fn memory_kib(&mut self) -> Option<(u64, u64)> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        let (rss, hwm) = (field("VmRSS:")?, field("VmHWM:")?);
        self.peak_hwm_kib = self.peak_hwm_kib.max(hwm);
        Some((rss, hwm))
    }

    /// Whether the SPU process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, as `kill -9 <pid>`: no flush, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.memory_kib();
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Starts again on the same data directory and port (clients reconnect
    /// to the address they know). The port can be briefly unavailable.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill first");
        let mut last = None;
        for _ in 0..50 {
            match spawn(&self.data_dir, &self.addr.to_string(), self.flush) {
                Ok((child, addr)) => {
                    assert_eq!(addr, self.addr);
                    self.child = Some(child);
                    return;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("SPU did not restart on {}: {last:?}", self.addr);
    }
}

impl Drop for SpuProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
