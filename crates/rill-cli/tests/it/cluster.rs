use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs `rill` with its cluster directory at `home`.
pub(crate) fn rill(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rill"))
        .args(args)
        .env("RILL_HOME", home)
        .env_remove("RILL_ADDR")
        .output()
        .expect("running rill")
}

/// Its stdout and stderr, for messages and assertions.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A port that was free a moment ago (the background start needs a fixed one).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops the SPU by its recorded pid if a test fails midway.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("spu.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

#[test]
fn start_status_stop_in_the_background() {
    let home = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let addr = format!("127.0.0.1:{}", free_port());

    let out = rill(home.path(), &["cluster", "status"]);
    assert!(!out.status.success(), "nothing runs yet: {}", text(&out));

    let out = rill(home.path(), &["cluster", "start", "--listen", &addr]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&addr), "{}", text(&out));
    let profile = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    assert!(profile.contains(&format!("addr = \"{addr}\"")), "{profile}");
    assert!(home.path().join("data").is_dir());
    assert!(home.path().join("logs/spu.log").is_file());
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        .expect("the SPU answers");

    let out = rill(home.path(), &["cluster", "start", "--listen", &addr]);
    assert!(out.status.success());
    assert!(text(&out).contains("already running"), "{}", text(&out));

    let out = rill(home.path(), &["cluster", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("running"));

    let out = rill(home.path(), &["cluster", "stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)).is_err()
    );
    let log = std::fs::read_to_string(home.path().join("logs/spu.log")).unwrap();
    assert!(
        log.contains("SPU stopped"),
        "graceful stop is logged: {log}"
    );

    let out = rill(home.path(), &["cluster", "status"]);
    assert!(!out.status.success());
    let out = rill(home.path(), &["cluster", "stop"]);
    assert!(
        out.status.success(),
        "stopping twice is harmless: {}",
        text(&out)
    );
}

#[test]
fn foreground_prints_the_bound_port_of_port_zero() {
    let home = tempfile::tempdir().unwrap();
    // ProcessSpu reads the first line, `rill SPU listening on ADDR`.
    let mut spu = rill_test_support::ProcessSpu::rill_cli(env!("CARGO_BIN_EXE_rill"))
        .quiet()
        .start(home.path().join("data"));
    assert_ne!(spu.addr.port(), 0);
    TcpStream::connect(spu.addr).expect("connects to the printed address");
    // SIGTERM by pid; stop() insists on a clean exit.
    spu.stop();
    assert!(spu.pid().is_none());
}

#[test]
fn a_taken_port_is_a_plain_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args([
            "cluster",
            "start",
            "--foreground",
            "--listen",
            &addr,
            "--data-dir",
        ])
        .arg(home.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot listen on"), "{}", text(&out));
}

#[test]
fn a_taken_port_fails_the_background_start() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let home = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let out = rill(home.path(), &["cluster", "start", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("Rill is running"), "{}", text(&out));
    let out = rill(home.path(), &["cluster", "status"]);
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn a_second_start_elsewhere_needs_its_own_cluster_directory() {
    let home = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let _other_cleanup = Cleanup(other.path());
    let first = format!("127.0.0.1:{}", free_port());
    let second = format!("127.0.0.1:{}", free_port());
    let out = rill(home.path(), &["cluster", "start", "--listen", &first]);
    assert!(out.status.success(), "{}", text(&out));

    let out = rill(home.path(), &["cluster", "start", "--listen", &second]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("a cluster already runs from") && err.contains(&first),
        "{err}"
    );
    assert!(err.contains("RILL_HOME="), "says how: {err}");
    assert!(
        TcpStream::connect_timeout(&second.parse().unwrap(), Duration::from_millis(300)).is_err(),
        "nothing was started on the second address"
    );

    let out = rill(other.path(), &["cluster", "start", "--listen", &second]);
    assert!(out.status.success(), "{}", text(&out));
    for home in [home.path(), other.path()] {
        let out = rill(home, &["cluster", "status"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = rill(home, &["cluster", "stop"]);
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// Writes the files `cluster start` leaves: the pid and the address.
fn pretend_started(home: &Path, pid: u32, addr: &str) {
    std::fs::write(home.join("spu.pid"), format!("{pid}\n")).unwrap();
    std::fs::write(home.join("spu.addr"), format!("{addr}\n")).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!("[cluster]\naddr = \"{addr}\"\n"),
    )
    .unwrap();
}

#[test]
fn status_checks_the_pid_listens_and_answers_as_an_spu() {
    let home = tempfile::tempdir().unwrap();
    // A live pid (a sleeping child) and something else on the address.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap().to_string();
    pretend_started(home.path(), sleeper.id(), &addr);
    let out = rill(home.path(), &["cluster", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "pid {} runs but does not listen on {addr}",
            sleeper.id()
        )),
        "{}",
        text(&out)
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // This test's own process listens there but speaks no Kafka.
    pretend_started(home.path(), std::process::id(), &addr);
    let out = rill(home.path(), &["cluster", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not answer"), "{}", text(&out));

    // A real SPU's pid and address.
    let mut spu = rill_test_support::ProcessSpu::rill_cli(env!("CARGO_BIN_EXE_rill"))
        .quiet()
        .start(home.path().join("data"));
    pretend_started(home.path(), spu.pid().unwrap(), &spu.addr());
    let out = rill(home.path(), &["cluster", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("running: SPU pid"), "{}", text(&out));
    spu.stop();
}

/// Runs `rill` with stdout (or stderr) a pipe whose reader has already
/// gone, as in `rill cluster status | (exec 0<&-; true)`.
fn rill_into_closed_pipe(home: &Path, args: &[&str], close_stderr: bool) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
    cmd.args(args)
        .env("RILL_HOME", home)
        .env_remove("RILL_ADDR");
    if close_stderr {
        cmd.stderr(writer);
    } else {
        cmd.stdout(writer);
    }
    cmd.output().expect("running rill")
}

#[test]
fn a_closed_stdout_or_stderr_never_panics() {
    let home = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(home.path());
    let addr = format!("127.0.0.1:{}", free_port());
    let no_panic = |out: &Output, args: &[&str], code: i32| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    };
    // `rill cluster start | head -1`: the SPU still starts.
    let args = ["cluster", "start", "--listen", &addr];
    no_panic(&rill_into_closed_pipe(home.path(), &args, false), &args, 0);
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        .expect("the SPU answers");
    for args in [
        &["cluster", "status"][..],
        &["cluster", "start", "--listen", &addr],
        &["--help"],
        &["completions", "bash"],
        &["topic", "list"],
        &["cluster", "stop"],
        &["cluster", "stop"],
    ] {
        no_panic(&rill_into_closed_pipe(home.path(), args, false), args, 0);
    }
    // Errors to a closed stderr keep their exit status.
    for (args, code) in [
        (&["cluster", "status"][..], 1),
        (&["topic", "list"], 1),
        (&["topic", "create", "t", "--partitions", "0"], 2),
    ] {
        no_panic(&rill_into_closed_pipe(home.path(), args, true), args, code);
    }
}
