//! `rill benchmark consume`: reads exactly what it says it reads.

use crate::spu::{stderr, TestSpu};

#[test]
fn benchmark_consume_reads_exactly_the_records() {
    let spu = TestSpu::start();
    spu.ok(&[
        "benchmark",
        "produce",
        "--count",
        "5000",
        "--record-size",
        "100",
        "--partitions",
        "3",
        "--topic",
        "b",
        "--keep-topic",
        "--batch-size",
        "4KiB",
    ]);
    // Every record of every partition (small fetches: many rounds, so the
    // prefetch runs), counted exactly.
    let json = spu.ok(&[
        "benchmark",
        "consume",
        "--topic",
        "b",
        "--fetch-max-bytes",
        "8KiB",
        "-O",
        "json",
    ]);
    assert!(
        json.contains(r#""partitions":3,"records":5000,"bytes":500000,"#),
        "{json}"
    );
    // A count below what is stored stops there; one partition of three.
    let json = spu.ok(&[
        "benchmark",
        "consume",
        "--topic",
        "b",
        "-n",
        "1234",
        "-O",
        "json",
    ]);
    assert!(json.contains(r#""records":1234,"bytes":123400,"#), "{json}");
    let table = spu.ok(&["benchmark", "consume", "--topic", "b", "-p", "1"]);
    assert!(table.contains("RECORDS/S"), "{table}");
    let json = spu.ok(&[
        "benchmark",
        "consume",
        "--topic",
        "b",
        "-p",
        "1",
        "-O",
        "json",
    ]);
    let records: u64 = json
        .split(r#""records":"#)
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("records in {json}"));
    assert!(records > 0 && records < 5000, "{json}");

    // No such topic, and an empty one, are plain errors.
    let out = spu.rill(&["benchmark", "consume", "--topic", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    spu.ok(&["topic", "create", "empty"]);
    let out = spu.rill(&["benchmark", "consume", "--topic", "empty"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no records"), "{}", stderr(&out));
}
