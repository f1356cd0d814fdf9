//! An SPU in its own process: the `rill` binary's `cluster start
//! --foreground`, or a bare SPU binary such as `rill-reliability-spu`.
//! Stopped by its PID only: SIGTERM for a clean stop, SIGKILL for a crash.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than any wait the suites expect: past it a task is stuck, and the
/// test fails saying where instead of hanging.
pub const STUCK: Duration = Duration::from_secs(120);

/// How long a clean stop may take before the process is killed.
const STOP_FOR: Duration = Duration::from_secs(10);

/// What the SPU prints first on stdout, followed by its address.
const LISTENING: &str = "rill SPU listening on ";

/// How to start a [`ProcessSpu`].
#[derive(Debug, Clone)]
pub struct ProcessSpuBuilder {
    program: PathBuf,
    /// Arguments before `--listen` and `--data-dir`.
    command: Vec<OsString>,
    /// Arguments after them.
    extra: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    quiet: bool,
    /// Where stderr goes instead of the test's stderr (appended to).
    stderr_file: Option<PathBuf>,
}

impl ProcessSpuBuilder {
    /// One more argument after `--listen ADDR --data-dir DIR`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.extra.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments after `--listen ADDR --data-dir DIR`.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.extra
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for the SPU process.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Drops the SPU's stderr instead of passing it through to the test's.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Appends the SPU's stderr (its log) to the file at `path`, across
    /// restarts, instead of passing it through to the test's.
    pub fn stderr_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.stderr_file = Some(path.into());
        self
    }

    /// Starts on `127.0.0.1:0` with its data in `data_dir` and waits for it
    /// to say where it listens.
    pub fn start(self, data_dir: impl Into<PathBuf>) -> ProcessSpu {
        let data_dir = data_dir.into();
        let (child, stdout, addr) =
            spawn(&self, &data_dir, "127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        ProcessSpu {
            child: Some(child),
            _stdout: Some(stdout),
            addr,
            data_dir,
            builder: self,
            peak_hwm_kib: 0,
        }
    }
}

/// An SPU child process. Dropping it kills the process (SIGKILL, by PID)
/// and reaps it.
#[derive(Debug)]
pub struct ProcessSpu {
    child: Option<Child>,
    /// Held open: a process whose stdout reader went away dies of SIGPIPE
    /// the next time it prints.
    _stdout: Option<BufReader<ChildStdout>>,
    /// Where it listens, the same across restarts.
    pub addr: SocketAddr,
    data_dir: PathBuf,
    builder: ProcessSpuBuilder,
    /// Highest VmHWM (KiB) seen across this SPU's processes, by
    /// [`memory_kib`](Self::memory_kib) and [`kill`](Self::kill).
    pub peak_hwm_kib: u64,
}

impl ProcessSpu {
    /// The `rill` binary at `rill`: `rill cluster start --foreground`.
    /// Pass `env!("CARGO_BIN_EXE_rill")` from the crate that owns it.
    pub fn rill_cli(rill: impl Into<PathBuf>) -> ProcessSpuBuilder {
        ProcessSpuBuilder {
            program: rill.into(),
            command: ["cluster", "start", "--foreground"]
                .iter()
                .map(OsString::from)
                .collect(),
            extra: Vec::new(),
            env: Vec::new(),
            quiet: false,
            stderr_file: None,
        }
    }

    /// A binary that takes `--listen ADDR --data-dir DIR` itself and prints
    /// `rill SPU listening on ADDR` first, such as `rill-reliability-spu`.
    pub fn bare(program: impl Into<PathBuf>) -> ProcessSpuBuilder {
        ProcessSpuBuilder {
            program: program.into(),
            command: Vec::new(),
            extra: Vec::new(),
            env: Vec::new(),
            quiet: false,
            stderr_file: None,
        }
    }

    /// The address as `host:port`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Where its data lives.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The PID of the running process; `None` once stopped or killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `(VmRSS, VmHWM)` of the running process in KiB, tracking the peak;
    /// `None` if it is not running.
    pub fn memory_kib(&mut self) -> Option<(u64, u64)> {
        let pid = self.pid()?;
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

    /// SIGKILL, as `kill -9 <pid>`: no flush, no goodbye. Then reaped.
    pub fn kill(&mut self) {
        let _ = self.memory_kib();
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the SPU");
            child.wait().expect("reap the SPU");
        }
        self._stdout = None;
    }

    /// SIGTERM (`kill -TERM <pid>`) and waits for a clean exit, killing it
    /// if it takes longer than 10 s. Panics if it did not exit cleanly.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None)
                    if term.as_ref().is_ok_and(|s| s.success()) && started.elapsed() < STOP_FOR =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        self._stdout = None;
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("the SPU exited with {s} after SIGTERM"),
            None => panic!("the SPU did not stop within {STOP_FOR:?} of SIGTERM ({term:?})"),
        }
    }

    /// Starts again on the same data directory and port, so clients
    /// reconnect to the address they know. The port can be briefly
    /// unavailable after a kill, so this retries for a few seconds.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill or stop first");
        let mut last = None;
        for _ in 0..50 {
            match spawn(&self.builder, &self.data_dir, &self.addr.to_string()) {
                Ok((child, stdout, addr)) => {
                    assert_eq!(addr, self.addr, "restarted on another address");
                    self.child = Some(child);
                    self._stdout = Some(stdout);
                    return;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("SPU did not restart on {}: {last:?}", self.addr);
    }
}

impl Drop for ProcessSpu {
    fn drop(&mut self) {
        // By PID, this test's own child only.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the process and reads its first line for the address; a process
/// that says anything else is killed and reaped.
fn spawn(
    b: &ProcessSpuBuilder,
    data_dir: &Path,
    listen: &str,
) -> Result<(Child, BufReader<ChildStdout>, SocketAddr), String> {
    let mut cmd = Command::new(&b.program);
    cmd.args(&b.command)
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(data_dir)
        .args(&b.extra)
        .envs(b.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(match (&b.stderr_file, b.quiet) {
            (Some(path), _) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("opening {}: {e}", path.display()))?
                .into(),
            (None, true) => Stdio::null(),
            (None, false) => Stdio::inherit(),
        });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", b.program.display()))?;
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    let addr = line
        .trim()
        .strip_prefix(LISTENING)
        .and_then(|a| a.parse().ok());
    match (read, addr) {
        (Ok(_), Some(addr)) => Ok((child, stdout, addr)),
        _ => {
            let _ = child.kill();
            let status = child.wait();
            Err(format!(
                "{} did not start ({status:?}), said {line:?}",
                b.program.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in SPU: a shell script that prints the line a real SPU
    /// prints (with the address it was given) and waits, exiting cleanly on
    /// SIGTERM. Enough to check starting, stopping, killing and restarting
    /// by PID without building the real binaries.
    fn stand_in(dir: &Path) -> PathBuf {
        let script = dir.join("fake-spu");
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             trap 'exit 0' TERM\n\
             echo \"$@\" > \"$4/args\"\n\
             echo \"rill SPU listening on $2\"\n\
             while :; do sleep 0.05; done\n",
        )
        .unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        script
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn starts_stops_kills_and_restarts_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let script = stand_in(dir.path());
        // The stand-in listens nowhere, so give it a concrete address.
        let mut spu = ProcessSpu::bare(&script)
            .args(["--flush", "never"])
            .quiet()
            .start(dir.path());
        assert_eq!(spu.addr(), "127.0.0.1:0");
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.trim(),
            format!(
                "--listen 127.0.0.1:0 --data-dir {} --flush never",
                dir.path().display()
            )
        );
        let first = spu.pid().unwrap();
        assert!(spu.is_running());
        assert!(spu.memory_kib().is_some());

        spu.kill();
        assert!(!alive(first) && !spu.is_running());
        spu.restart();
        let second = spu.pid().unwrap();
        assert_ne!(first, second);
        assert!(spu.is_running());

        spu.stop();
        assert!(!alive(second) && spu.pid().is_none());
        spu.restart();
        let third = spu.pid().unwrap();
        drop(spu);
        assert!(!alive(third), "dropping kills the process");
    }

    #[test]
    fn the_cli_form_puts_cluster_start_first() {
        let b = ProcessSpu::rill_cli("/bin/rill").arg("--x");
        assert_eq!(b.command, ["cluster", "start", "--foreground"]);
        assert_eq!(b.extra, ["--x"]);
    }
}
