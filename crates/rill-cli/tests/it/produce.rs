use rill::producer::partition_for_key;

use crate::spu::{sorted_lines, stderr, TestSpu};

/// Total records stored in `topic`, from `rill partition list -O json`.
fn stored(spu: &TestSpu, topic: &str) -> i64 {
    let json = spu.ok(&["partition", "list", topic, "-O", "json"]);
    json.split("\"records\":")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("{json}"))
        })
        .sum()
}

#[test]
fn keys_from_a_separator_land_where_murmur2_puts_them() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "users", "-p", "3"]);
    let input: String = (0..60).map(|i| format!("user{i}=>name {i}\n")).collect();
    spu.produce(
        "users",
        &format!("{input}no separator\n"),
        &["--key-separator", "=>"],
    );

    let out = spu.ok(&[
        "consume",
        "users",
        "-B",
        "-d",
        "-F",
        "{{partition}} {{key}} {{value}}",
    ]);
    let lines = sorted_lines(&out);
    assert_eq!(lines.len(), 61, "{out}");
    for line in &lines {
        let mut cells = line.splitn(3, ' ');
        let partition: u32 = cells.next().unwrap().parse().unwrap();
        let key = cells.next().unwrap();
        let value = cells.next().unwrap();
        if key == "null" {
            assert_eq!(value, "no separator", "{line}");
            continue;
        }
        assert_eq!(value, format!("name {}", &key[4..]), "{line}");
        assert_eq!(partition, partition_for_key(key.as_bytes(), 3), "{line}");
    }

    let keyed = spu.ok(&["consume", "users", "-B", "-d", "-k"]);
    assert!(keyed.lines().any(|l| l == "[user7] name 7"), "{keyed}");
    assert!(keyed.lines().any(|l| l == "[null] no separator"), "{keyed}");
}

#[test]
fn one_key_or_one_partition_for_every_record() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "t", "-p", "4"]);
    spu.produce("t", "a\nb\nc\n", &["--key", "same"]);
    let want = partition_for_key(b"same", 4).to_string();
    let out = spu.ok(&["consume", "t", "-B", "-d", "-F", "{{partition}} {{key}}"]);
    assert_eq!(out, format!("{want} same\n").repeat(3));

    spu.produce("t", "x\ny\n", &["-p", "2"]);
    // Partition 2 holds x and y, after a, b, c if "same" hashes there too.
    let mut expected = String::new();
    if want == "2" {
        expected.push_str("a\nb\nc\n");
    }
    expected.push_str("x\ny\n");
    assert_eq!(spu.ok(&["consume", "t", "-p", "2", "-B", "-d"]), expected);
    let out = spu.rill_with_input(&["produce", "t", "-p", "4"], b"z\n");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("topic \"t\" has 4 partitions; --partition 4 does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_codec_round_trips() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "codecs"]);
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let lines: String = (0..500).map(|i| format!("{codec} record {i}\n")).collect();
        spu.produce(
            "codecs",
            &lines,
            &["--compression", codec, "--linger", "5ms"],
        );
        expected.extend(lines.lines().map(str::to_owned));
    }
    let out = spu.ok(&["consume", "codecs", "-B", "-d"]);
    let got: Vec<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(got, expected, "one partition keeps the order");
}

#[test]
fn a_refused_batch_fails_with_the_count_not_acknowledged() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "zonly", "--compression-type", "zstd"]);
    spu.produce("zonly", "fine\n", &["--compression", "zstd"]);
    let lines: String = (0..100).map(|i| format!("r{i}\n")).collect();
    let out = spu.rill_with_input(
        &["produce", "zonly", "--compression", "gzip"],
        lines.as_bytes(),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("100 of 100 records sent were not acknowledged"),
        "{err}"
    );
    assert!(err.contains("INVALID_RECORD"), "{err}");
    assert_eq!(stored(&spu, "zonly"), 1);
}

#[test]
fn files_stream_by_line_or_go_whole_with_raw() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "files"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.txt");
    std::fs::write(&path, "one\ntwo\n\nthree").unwrap();
    let file = path.to_str().unwrap();
    spu.ok(&["produce", "files", "-f", file]);
    assert_eq!(
        spu.ok(&["consume", "files", "-B", "-d"]),
        "one\ntwo\n\nthree\n"
    );

    spu.ok(&["produce", "files", "-f", file, "--raw", "--key", "whole"]);
    let out = spu.ok(&["consume", "files", "--start", "4", "-d", "-O", "json"]);
    assert!(
        out.contains(r#""offset":4,"#)
            && out.contains(r#""key":"whole","value":"one\ntwo\n\nthree""#),
        "{out}"
    );

    let missing = spu.rill(&["produce", "files", "-f", "/nonexistent/input"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("opening /nonexistent/input"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_hundred_thousand_piped_lines_all_arrive() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "bulk", "-p", "2"]);
    let lines: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
    spu.produce("bulk", &lines, &[]);
    assert_eq!(stored(&spu, "bulk"), 100_000);
    let out = spu.ok(&["consume", "bulk", "-B", "-d"]);
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = lines.lines().collect();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn at_most_once_and_read_committed_produce() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "modes"]);
    spu.produce("modes", "a\nb\n", &["--delivery-semantic", "at-most-once"]);
    spu.produce(
        "modes",
        "c\n",
        &[
            "--isolation",
            "read_committed",
            "--max-retries",
            "2",
            "--retry-strategy",
            "fixed",
            "--initial-delay",
            "10ms",
            "--no-idempotent",
        ],
    );
    assert_eq!(spu.ok(&["consume", "modes", "-B", "-d"]), "a\nb\nc\n");
}

/// SIGINT by pid, as ctrl-c in a terminal.
fn interrupt(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_flushes_what_the_producer_holds_and_says_how_much_was_acknowledged() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    // A long linger: without the flush on ctrl-c these records are lost.
    let mut child = spu
        .command(&["produce", "t", "--linger", "1h"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "interrupted: 3 of 3 records acknowledged\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(spu.ok(&["consume", "t", "-B", "-d"]), "one\ntwo\nthree\n");
    drop(stdin);

    // With the SPU gone the wait is bounded, and the count says so.
    let mut child = spu
        .command(&["produce", "t", "--linger", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    spu.process().kill();
    stdin.write_all(b"lost\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let interrupted = Instant::now();
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(9),
        "{:?}",
        interrupted.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).ends_with("interrupted: 0 of 1 records acknowledged\n"),
        "{}",
        stderr(&out)
    );
    drop(stdin);
}

#[test]
fn large_records_name_their_line_size_and_flag_and_the_input_goes_on() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "small"]);
    let big = "x".repeat(2 << 20);
    let input = format!("first\n{big}\nlast\n");

    // Over the producer's --max-request-size (1MiB by default).
    let out = spu.rill_with_input(&["produce", "small"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("line 2 is 2097152 bytes, over the producer's --max-request-size of 1MiB"),
        "{err}"
    );
    assert!(
        err.contains("1 of 3 records sent were not acknowledged"),
        "{err}"
    );
    assert_eq!(spu.ok(&["consume", "small", "-B", "-d"]), "first\nlast\n");

    // Within the producer's limit, over the topic's max.message.bytes.
    let out = spu.rill_with_input(
        &["produce", "small", "--max-request-size", "8MiB"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("line 2 (2097152 bytes) is larger than the topic's max.message.bytes"),
        "{err}"
    );
    assert!(
        err.contains("rill topic alter-config TOPIC --set max.message.bytes=4MiB"),
        "{err}"
    );
    assert!(err.contains("MESSAGE_TOO_LARGE"), "{err}");
    assert!(
        err.contains("1 of 3 records sent were not acknowledged"),
        "{err}"
    );
    assert_eq!(stored(&spu, "small"), 4);

    // A topic made for them takes them.
    spu.ok(&["topic", "create", "big", "--max-message-bytes", "8MiB"]);
    let describe = spu.ok(&["topic", "describe", "big"]);
    assert!(describe.contains("8388608 (8MiB)"), "{describe}");
    let huge = "y".repeat(5_000_000);
    spu.produce(
        "big",
        &format!("{huge}\nafter\n"),
        &["--max-request-size", "8MiB"],
    );
    let out = spu.ok(&["consume", "big", "-B", "-d", "-b", "8MiB"]);
    assert_eq!(out, format!("{huge}\nafter\n"));
}

#[test]
fn a_directory_is_not_an_input_file() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    let dir = tempfile::tempdir().unwrap();
    let out = spu.rill(&["produce", "t", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("is a directory"), "{err}");
    assert!(!err.contains("0 of 0"), "{err}");
}

#[test]
fn kcat_habits_escaped_separators_headers_and_templates() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    spu.produce(
        "t",
        "k1\tv1\nk2\tv\\2\n",
        &["-K", "\\t", "--header", "source=import", "-H", "n=2=two"],
    );
    let out = spu.ok(&[
        "consume",
        "t",
        "-B",
        "-d",
        "-F",
        "{{key}}\\t{{value}}\\t{{headers}}\\\\",
    ]);
    assert_eq!(
        out,
        "k1\tv1\tsource=import,n=2=two\\\nk2\tv\\2\tsource=import,n=2=two\\\n"
    );
    let json = spu.ok(&["consume", "t", "-B", "-d", "-O", "json", "-n", "1"]);
    assert!(
        json.ends_with("\"key\":\"k1\",\"value\":\"v1\",\"headers\":{\"source\":\"import\",\"n\":\"2=two\"}}\n"),
        "{json}"
    );

    for (args, expected) in [
        (
            &["produce", "t", "--key-separator", ""][..],
            "the separator is empty",
        ),
        (
            &["produce", "t", "--header", "novalue"],
            "is not NAME=VALUE",
        ),
        (&["produce", "t", "--header", "=v"], "is not NAME=VALUE"),
        (&["consume", "t", "-n", "0"], "'--count <N>'"),
    ] {
        let out = spu.rill_with_input(args, b"x\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(stored(&spu, "t"), 2, "nothing sent by the refused commands");
}

#[test]
fn consume_count_and_create_if_not_exists() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "t", "-p", "2"]);
    let lines: String = (0..20).map(|i| format!("r{i}\n")).collect();
    spu.produce("t", &lines, &[]);
    // -n stops a continuous consumer too.
    let out = spu.ok(&["consume", "t", "-B", "-n", "5"]);
    assert_eq!(out.lines().count(), 5, "{out}");
    let out = spu.ok(&["consume", "t", "-p", "1", "-B", "--count", "3"]);
    assert_eq!(out.lines().count(), 3, "{out}");

    let again = spu.rill(&["topic", "create", "t"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("--if-not-exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        spu.ok(&["topic", "create", "t", "--if-not-exists"]),
        "topic \"t\" already exists (left as it is)\n"
    );
    assert!(spu
        .ok(&["topic", "describe", "t"])
        .contains("partitions: 2"));
    assert_eq!(
        spu.ok(&["topic", "create", "u", "--if-not-exists"]),
        "topic \"u\" created (1 partition)\n"
    );
}

/// `rill produce` on a terminal: `script` gives it a pseudo-terminal whose
/// input is written here (ctrl-c and ctrl-d as the terminal's own bytes).
fn produce_on_a_terminal(spu: &TestSpu, keys: &[u8]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("{} produce t", env!("CARGO_BIN_EXE_rill")),
            "/dev/null",
        ])
        .env("RILL_ADDR", &spu.addr)
        .env("RILL_HOME", spu.home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.lock().unwrap().contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?} in {:?}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("> ");
    stdin.write_all(b"hello\n").unwrap();
    stdin.flush().unwrap();
    wait_for("Ok! (partition 0, offset ");
    stdin.write_all(keys).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{:?}", seen.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    reader.join().unwrap();
    let text = seen.lock().unwrap().replace('\r', "");
    (status.code(), text)
}

#[test]
fn on_a_terminal_each_line_is_acknowledged_and_the_end_sums_up() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    // ctrl-d: the input ends.
    let (code, text) = produce_on_a_terminal(&spu, b"\x04");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("> hello\nOk! (partition 0, offset 0)\n"),
        "{text}"
    );
    assert!(text.ends_with("1 of 1 record acknowledged\n"), "{text}");
    // ctrl-c: the same summary, exit 130.
    let (code, text) = produce_on_a_terminal(&spu, b"\x03");
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("Ok! (partition 0, offset 1)"), "{text}");
    assert!(
        text.ends_with("interrupted: 1 of 1 record acknowledged\n"),
        "{text}"
    );
    assert_eq!(spu.ok(&["consume", "t", "-B", "-d"]), "hello\nhello\n");
}
