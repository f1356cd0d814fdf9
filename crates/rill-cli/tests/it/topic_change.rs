//! `rill topic add-partitions`, `rill topic alter-config` and consumers
//! that start at a time (`--since`, `--start-time`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::spu::{stderr, text, TestSpu};

/// Runs `rill` and insists it fails with `code` and says `says`.
fn fails(spu: &TestSpu, args: &[&str], code: i32, says: &str) {
    let out = spu.rill(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
    let err = stderr(&out);
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn add_partitions_by_total_or_by_how_many_more() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "grow"]);
    assert_eq!(
        spu.ok(&["topic", "add-partitions", "grow", "--count", "3"]),
        "topic \"grow\" now has 3 partitions (was 1)\n"
    );
    assert_eq!(
        spu.ok(&["topic", "add-partitions", "grow", "--add", "2"]),
        "topic \"grow\" now has 5 partitions (was 3)\n"
    );
    assert!(spu
        .ok(&["topic", "describe", "grow"])
        .contains("partitions: 5"));
    assert_eq!(spu.ok(&["partition", "list", "grow"]).lines().count(), 6);
    // A producer started now spreads keyed records over all five.
    let lines: String = (0..40).map(|i| format!("k{i}:v{i}\n")).collect();
    spu.produce("grow", &lines, &["--key-separator", ":"]);
    let partitions = spu.ok(&["consume", "grow", "-B", "-d", "-F", "{{partition}}"]);
    let mut used: Vec<&str> = partitions.lines().collect();
    assert_eq!(used.len(), 40, "{partitions}");
    used.sort_unstable();
    used.dedup();
    assert_eq!(used, ["0", "1", "2", "3", "4"]);

    // Argument errors: exit 2, naming the flag.
    for (args, says) in [
        (
            &["topic", "add-partitions", "grow", "--count", "5"][..],
            "--count 5 is not more than the 5 partitions",
        ),
        (
            &["topic", "add-partitions", "grow", "--count", "2"][..],
            "partitions can only be added",
        ),
        (
            &["topic", "add-partitions", "grow", "--count", "0"][..],
            "--count",
        ),
        (
            &["topic", "add-partitions", "grow", "--add", "0"][..],
            "--add",
        ),
        (
            &["topic", "add-partitions", "grow", "--add", "9999"][..],
            "--add 9999 would give",
        ),
        (&["topic", "add-partitions", "grow"][..], "--count"),
        (
            &[
                "topic",
                "add-partitions",
                "grow",
                "--count",
                "9",
                "--add",
                "1",
            ][..],
            "cannot be used with",
        ),
    ] {
        fails(&spu, args, 2, says);
    }
    fails(
        &spu,
        &["topic", "add-partitions", "missing", "--add", "1"],
        1,
        "topic \"missing\" not found",
    );
}

#[test]
fn alter_config_sets_and_resets_on_the_running_topic() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "cfg"]);
    assert_eq!(
        spu.ok(&[
            "topic",
            "alter-config",
            "cfg",
            "--set",
            "retention.ms=1h",
            "--set",
            "max.message.bytes=300",
        ]),
        "topic \"cfg\": retention.ms = 3600000 (1h)\n\
         topic \"cfg\": max.message.bytes = 300 (300B)\n"
    );
    let describe = spu.ok(&["topic", "describe", "cfg", "-O", "json"]);
    assert!(
        describe.contains(r#"{"name":"retention.ms","value":"3600000","source":"topic"}"#),
        "{describe}"
    );
    // The running topic refuses a record over the new limit, and takes it
    // once the limit is back to its default.
    let line = format!("{}\n", "x".repeat(500));
    let out = spu.rill_with_input(&["produce", "cfg"], line.as_bytes());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("MESSAGE_TOO_LARGE"), "{}", text(&out));
    assert_eq!(
        spu.ok(&[
            "topic",
            "alter-config",
            "cfg",
            "--delete",
            "max.message.bytes"
        ]),
        "topic \"cfg\": max.message.bytes = 1048588 (1048588B) (default)\n"
    );
    spu.produce("cfg", &line, &[]);
    assert_eq!(spu.ok(&["consume", "cfg", "-B", "-d"]), line);
    let list = spu.ok(&["topic", "list"]);
    assert!(list.lines().nth(1).unwrap().contains(" 1h "), "{list}");

    for (args, says) in [
        (&["topic", "alter-config", "cfg"][..], "--set"),
        (
            &["topic", "alter-config", "cfg", "--set", "retention.ms"][..],
            "KEY=VALUE",
        ),
        (
            &["topic", "alter-config", "cfg", "--set", "retention.ms=1.5h"][..],
            "--set",
        ),
        (
            &["topic", "alter-config", "cfg", "--set", "retention.ms="][..],
            "--delete retention.ms",
        ),
        (
            &[
                "topic",
                "alter-config",
                "cfg",
                "--set",
                "retention.ms=1h",
                "--delete",
                "retention.ms",
            ][..],
            "retention.ms is given more than once",
        ),
    ] {
        fails(&spu, args, 2, says);
    }
    // What the SPU refuses: exit 1 with its reason.
    fails(
        &spu,
        &[
            "topic",
            "alter-config",
            "cfg",
            "--set",
            "cleanup.policy=compact",
        ],
        1,
        "only \"delete\"",
    );
    fails(
        &spu,
        &[
            "topic",
            "alter-config",
            "cfg",
            "--set",
            "message.timestamp.type=LogAppendTime",
        ],
        1,
        "not supported by Rill",
    );
    fails(
        &spu,
        &[
            "topic",
            "alter-config",
            "missing",
            "--set",
            "retention.ms=1h",
        ],
        1,
        "topic \"missing\" not found",
    );
}

#[test]
fn consume_from_a_time() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "timed", "-p", "2"]);
    spu.produce("timed", "a\nb\nc\n", &[]);
    std::thread::sleep(Duration::from_millis(2500));
    spu.produce("timed", "d\ne\n", &[]);
    let sorted = |s: String| {
        let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
        lines.sort();
        lines.join(",")
    };
    assert_eq!(
        sorted(spu.ok(&["consume", "timed", "--since", "2s", "-d"])),
        "d,e"
    );
    assert_eq!(
        sorted(spu.ok(&["consume", "timed", "--since", "1h", "-d"])),
        "a,b,c,d,e"
    );
    // The time of `d`, from the record itself: --start-time starts there.
    let d_time = spu.ok(&["consume", "timed", "-B", "-d", "-F", "{{time}} {{value}}"]);
    let d_time = d_time
        .lines()
        .find_map(|l| l.strip_suffix(" d"))
        .unwrap_or_else(|| panic!("{d_time}"))
        .to_owned();
    assert_eq!(
        sorted(spu.ok(&["consume", "timed", "--start-time", &d_time, "-d"])),
        "d,e"
    );
    assert_eq!(
        sorted(spu.ok(&["consume", "timed", "--start-time", "2000-01-01", "-d"])),
        "a,b,c,d,e"
    );
    // After the last record: only new records.
    assert_eq!(
        spu.ok(&[
            "consume",
            "timed",
            "--start-time",
            "2099-01-01T00:00:00Z",
            "-d"
        ]),
        ""
    );
    let mut child = spu
        .command(&[
            "consume",
            "timed",
            "--start-time",
            "2099-01-01T00:00:00+01:00",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Give the consumer a moment to resolve its start before producing.
    std::thread::sleep(Duration::from_millis(500));
    spu.produce("timed", "late\n", &[]);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "late\n");
    let _ = child.kill();
    let _ = child.wait();

    for (args, says) in [
        (&["consume", "timed", "--since", "1.5h"][..], "--since"),
        (&["consume", "timed", "--since", "0"][..], "--since"),
        (
            &["consume", "timed", "--start-time", "yesterday"][..],
            "RFC 3339",
        ),
        (
            &["consume", "timed", "--start-time", "2026-12-01T10:00:00"][..],
            "time zone",
        ),
        (
            &["consume", "timed", "--start-time", "1969-07-20T20:17:00Z"][..],
            "--start-time is before 1970",
        ),
        (
            &["consume", "timed", "--since", "1h", "-B"][..],
            "cannot be used with",
        ),
        (
            &[
                "consume",
                "timed",
                "--since",
                "1h",
                "--start-time",
                "2026-01-01",
            ][..],
            "cannot be used with",
        ),
    ] {
        fails(&spu, args, 2, says);
    }
}
