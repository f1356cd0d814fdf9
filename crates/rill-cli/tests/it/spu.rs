//! A real SPU for CLI tests: `rill cluster start --foreground` on
//! 127.0.0.1:0 (rill-test-support's `ProcessSpu`), stopped by its pid when
//! the test ends; and helpers to run `rill` against it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rill_test_support::ProcessSpu;

/// The SPU process and a private RILL_HOME for the `rill` commands run
/// against it.
/// Dropping it kills the SPU (SIGKILL by pid) and removes its home.
pub struct TestSpu {
    spu: ProcessSpu,
    pub addr: String,
    home: tempfile::TempDir,
}

impl TestSpu {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With `args` added to `rill cluster start --foreground`.
    pub fn start_with(args: &[&str]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let spu = ProcessSpu::rill_cli(env!("CARGO_BIN_EXE_rill"))
            .args(args)
            .quiet()
            .start(home.path().join("data"));
        Self {
            addr: spu.addr(),
            spu,
            home,
        }
    }

    /// `rill` with this SPU in RILL_ADDR and a private RILL_HOME.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
        cmd.args(args)
            .env("RILL_ADDR", &self.addr)
            .env("RILL_HOME", self.home.path());
        cmd
    }

    pub fn rill(&self, args: &[&str]) -> Output {
        self.rill_with_input(args, b"")
    }

    /// Runs `rill` with `input` on a pipe as stdin.
    pub fn rill_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        run_with_input(self.command(args), input)
    }

    /// Runs `rill` and insists it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rill(args);
        assert!(out.status.success(), "rill {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn produce(&self, topic: &str, lines: &str, extra: &[&str]) {
        let mut args = vec!["produce", topic];
        args.extend_from_slice(extra);
        let out = self.rill_with_input(&args, lines.as_bytes());
        assert!(out.status.success(), "rill {args:?}: {}", text(&out));
    }

    /// The SPU process, to kill (SIGKILL by pid) and restart.
    pub fn process(&mut self) -> &mut ProcessSpu {
        &mut self.spu
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }
}

pub fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running rill");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: a large input must not deadlock against a
    // child that fills its stdout pipe before reading all of stdin.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Stdout and stderr together, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Lines of stdout, sorted (records of several partitions interleave).
pub fn sorted_lines(stdout: &str) -> Vec<String> {
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}
