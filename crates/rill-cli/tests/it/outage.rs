//! An SPU that goes away while `produce` or `consume` runs: the command
//! says so within seconds, retries, and gives up with a summary after its
//! retry timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::spu::TestSpu;

/// Lines of the child's stderr as they come, with the instant each came.
fn stderr_lines(stderr: ChildStderr) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The first stderr line containing `what`, within `limit`.
fn expect_line(rx: &mpsc::Receiver<(Instant, String)>, what: &str, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((at, line)) if line.contains(what) => return at,
            Ok((_, line)) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no {what:?} on stderr within {limit:?}; saw {seen:?}");
}

fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rill did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn produce_says_the_spu_is_unreachable_and_gives_up_at_the_retry_timeout() {
    let mut spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    let mut child = spu
        .command(&["produce", "t", "--retry-timeout", "4s", "--linger", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let errors = stderr_lines(child.stderr.take().unwrap());
    stdin.write_all(b"before\n").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while spu.ok(&["consume", "t", "-B", "-d"]) != "before\n" {
        assert!(Instant::now() < deadline, "the first record never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = spu.addr.clone();
    spu.process().kill();
    let killed = Instant::now();
    stdin.write_all(b"during\n").unwrap();
    stdin.flush().unwrap();
    // stdin stays open: the command must not wait for more input.
    let said = expect_line(
        &errors,
        &format!("SPU at {addr} unreachable, retrying; 1 record waiting"),
        Duration::from_secs(8),
    );
    assert!(
        said - killed < Duration::from_secs(6),
        "{:?}",
        said - killed
    );
    let summary = expect_line(
        &errors,
        "1 of 2 records sent were not acknowledged",
        Duration::from_secs(15),
    );
    assert!(
        summary - killed < Duration::from_secs(4 + 5),
        "gave up {:?} after the kill",
        summary - killed
    );
    let status = exit_within(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(1));
    drop(stdin);
}

#[test]
fn consume_says_the_spu_is_unreachable_goes_on_when_it_is_back_and_gives_up() {
    let mut spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    spu.produce("t", "one\n", &[]);
    let mut child = spu
        .command(&["consume", "t", "-B", "--retry-timeout", "3s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let errors = stderr_lines(child.stderr.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "one\n");
    let addr = spu.addr.clone();

    // Away, then back within the retry timeout: nothing lost, nothing twice.
    spu.process().kill();
    expect_line(
        &errors,
        &format!("SPU at {addr} unreachable, retrying for up to 3s"),
        Duration::from_secs(5),
    );
    spu.process().restart();
    spu.produce("t", "two\n", &[]);
    expect_line(&errors, "answers again", Duration::from_secs(5));
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "two\n");

    // Away for good: a summary after the retry timeout.
    spu.process().kill();
    let killed = Instant::now();
    let gave_up = expect_line(
        &errors,
        &format!(
            "SPU at {addr} unreachable for 3s; gave up (--retry-timeout) after printing 2 records"
        ),
        Duration::from_secs(10),
    );
    assert!(gave_up - killed < Duration::from_secs(3 + 4));
    let status = exit_within(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(1));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing printed twice");
}
