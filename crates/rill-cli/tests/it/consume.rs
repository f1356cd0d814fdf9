use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::spu::TestSpu;

/// A topic of one partition holding `v0` … `v9` at offsets 0 … 9.
fn ten(spu: &TestSpu) {
    spu.ok(&["topic", "create", "ten"]);
    let lines: String = (0..10).map(|i| format!("v{i}\n")).collect();
    spu.produce("ten", &lines, &["--key", "k"]);
}

fn values(range: std::ops::RangeInclusive<i32>) -> String {
    range.map(|i| format!("v{i}\n")).collect()
}

/// Waits for `child` to exit, killing it (and failing) after `limit`.
fn wait_at_most(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rill consume did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_start_option() {
    let spu = TestSpu::start();
    ten(&spu);
    let cases: [(&[&str], String); 8] = [
        (&["-B"], values(0..=9)),
        (&["-T", "3"], values(7..=9)),
        (&["-T", "50"], values(0..=9)),
        (&["-H", "2"], values(2..=9)),
        (&["--start", "4", "--end", "6"], values(4..=6)),
        (&["-B", "--end", "0"], values(0..=0)),
        (&["--start", "99"], String::new()),
        // Without a start option only new records come: none, with -d.
        (&[], String::new()),
    ];
    for (start, expected) in cases {
        let mut args = vec!["consume", "ten", "-d"];
        args.extend_from_slice(start);
        assert_eq!(spu.ok(&args), expected, "{args:?}");
    }
    // --end alone ends a continuous consumer once it is passed.
    assert_eq!(
        spu.ok(&["consume", "ten", "--start", "8", "--end", "9"]),
        values(8..=9)
    );
    assert_eq!(
        spu.ok(&[
            "consume",
            "ten",
            "-B",
            "-d",
            "--isolation",
            "read_committed",
            "-b",
            "1KiB",
            "-A"
        ]),
        values(0..=9)
    );
}

#[test]
fn formats_and_json() {
    let spu = TestSpu::start();
    ten(&spu);
    assert_eq!(
        spu.ok(&["consume", "ten", "-T", "2", "-d", "-k"]),
        "[k] v8\n[k] v9\n"
    );
    let out = spu.ok(&[
        "consume",
        "ten",
        "--start",
        "3",
        "--end",
        "3",
        "-d",
        "-F",
        "{{topic}}/{{partition}}@{{offset}} {{key}}={{value}} {{time}} {{timestamp}}",
    ]);
    let mut cells = out.trim_end().split(' ');
    assert_eq!(cells.next(), Some("ten/0@3"), "{out}");
    assert_eq!(cells.next(), Some("k=v3"), "{out}");
    let time = cells.next().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{out}"
    );
    let ms: i64 = cells.next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - ms).abs() < 600_000, "a recent timestamp: {out}");

    let json = spu.ok(&["consume", "ten", "-B", "-d", "-O", "json"]);
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 10);
    assert!(
        lines[5].starts_with(r#"{"topic":"ten","partition":0,"offset":5,"timestamp":"#),
        "{}",
        lines[5]
    );
    assert!(
        lines[5].ends_with(r#","key":"k","value":"v5","headers":{}}"#),
        "{}",
        lines[5]
    );
}

#[test]
fn a_continuous_consumer_prints_records_as_they_come() {
    let spu = TestSpu::start();
    ten(&spu);
    // From offset 10: nothing yet, so it waits for new records.
    let mut child = spu
        .command(&["consume", "ten", "--start", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    spu.produce("ten", "late\n", &[]);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "late\n");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_closed_pipe_ends_consume_quietly() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "many"]);
    let lines: String = (0..20_000).map(|i| format!("record {i}\n")).collect();
    spu.produce("many", &lines, &[]);
    ten(&spu);
    // `rill consume | head -n 3`: with -d and more output than a pipe
    // holds, the next write fails; without -d and all ten records written
    // at once, the consumer sits idle waiting for new records when head
    // leaves, and must notice anyway.
    for args in [
        &["consume", "many", "-B", "-d"][..],
        &["consume", "ten", "-B"][..],
    ] {
        let mut child = spu
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line == "record 0\n" || line == "v0\n", "{line}");
        drop(stdout);
        let status = wait_at_most(&mut child, Duration::from_secs(20));
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "{args:?}: {status} {err}");
        assert_eq!(err, "", "{args:?}: quiet");
    }
}

#[test]
fn bad_consume_arguments() {
    let spu = TestSpu::start();
    ten(&spu);
    for (args, expected) in [
        (
            &["consume", "ten", "-B", "-T", "3"][..],
            "cannot be used with",
        ),
        (
            &["consume", "ten", "-p", "1"][..],
            "partition 1 does not exist",
        ),
        (
            &["consume", "ten", "-p", "0", "-A"][..],
            "cannot be used with",
        ),
        (
            &["consume", "ten", "--start", "5", "--end", "2"][..],
            "--end 2 is before --start 5",
        ),
        (
            &["consume", "ten", "-F", "{{vaule}}"][..],
            "unknown placeholder {{vaule}}",
        ),
        (
            &["consume", "ten", "-k", "-O", "json"][..],
            "cannot be used with",
        ),
        (&["consume", "ten", "-T", "-1"][..], "unexpected argument"),
        (
            &["consume", "missing", "-B"][..],
            "topic \"missing\" not found",
        ),
    ] {
        let out = spu.rill(args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = crate::spu::stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn binary_values_as_raw_hex_or_base64() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "bin"]);
    spu.produce("bin", "hi\nfoo\n", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let blob = [0u8, 255, b'\n', 13, 7];
    std::fs::write(&path, blob).unwrap();
    spu.ok(&["produce", "bin", "--raw", "-f", path.to_str().unwrap()]);
    assert_eq!(
        spu.ok(&["consume", "bin", "-B", "-d", "-O", "hex"]),
        "6869\n666f6f\n00ff0a0d07\n"
    );
    assert_eq!(
        spu.ok(&["consume", "bin", "-B", "-d", "-O", "base64"]),
        "aGk=\nZm9v\nAP8KDQc=\n"
    );
    let out = spu.rill(&["consume", "bin", "--start", "2", "-n", "1", "-O", "raw"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, blob, "the bytes exactly, no newline");
}

#[test]
fn describe_shows_each_partitions_offsets() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "d", "-p", "2"]);
    spu.produce("d", "a\nb\nc\n", &["-p", "1"]);
    let out = spu.ok(&["topic", "describe", "d"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("PARTITION"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [["0", "0", "0", "0", "0"], ["1", "0", "0", "3", "3"]],
        "PARTITION LEADER START END RECORDS: {out}"
    );
    let json = spu.ok(&["topic", "describe", "d", "-O", "json"]);
    assert!(
        json.contains(r#""offsets":[{"partition":0,"leader":0,"start_offset":0,"end_offset":0,"records":0,"replicas":[0],"isr":[0]},{"partition":1,"leader":0,"start_offset":0,"end_offset":3,"records":3,"replicas":[0],"isr":[0]}]"#),
        "{json}"
    );
}

/// `--async-threads 1`: the SPU's one async thread serves a consumer parked
/// at the end of the log (a waiting Fetch) and the producer whose records
/// wake it.
#[test]
fn one_async_thread_serves_a_waiting_consumer_and_its_producer() {
    let spu = TestSpu::start_with(&["--async-threads", "1"]);
    spu.ok(&["topic", "create", "t"]);
    let consumer = spu
        .command(&["consume", "t", "--start", "0", "--end", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    spu.produce("t", "a\nb\nc\n", &[]);
    let out = consumer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", crate::spu::text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\nc\n");
}
