use crate::spu::{stderr, TestSpu};

#[test]
fn topic_lifecycle() {
    let spu = TestSpu::start();
    let out = spu.ok(&[
        "topic",
        "create",
        "orders",
        "-p",
        "3",
        "--retention-time",
        "2d",
        "--segment-size",
        "16MiB",
        "--max-partition-size",
        "1GiB",
        "--compression-type",
        "zstd",
    ]);
    assert_eq!(out, "topic \"orders\" created (3 partitions)\n");
    spu.ok(&["topic", "create", "events"]);

    let again = spu.rill(&["topic", "create", "orders"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("topic \"orders\" already exists"),
        "{}",
        stderr(&again)
    );

    let list = spu.ok(&["topic", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{list}");
    let cells: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        cells,
        ["orders", "3", "2d", "16MiB", "1GiB", "zstd"],
        "{list}"
    );
    assert!(lines[1].starts_with("events  "), "sorted by name: {list}");

    let json = spu.ok(&["topic", "list", "-O", "json"]);
    assert!(json.starts_with('['), "{json}");
    assert!(
        json.contains(r#"{"name":"orders","partitions":3,"retention_ms":172800000,"segment_bytes":16777216,"retention_bytes":1073741824,"compression_type":"zstd"}"#),
        "{json}"
    );

    let describe = spu.ok(&["topic", "describe", "orders"]);
    assert!(describe.contains("partitions: 3"), "{describe}");
    let segment = describe
        .lines()
        .find(|l| l.starts_with("segment.bytes"))
        .unwrap_or_else(|| panic!("{describe}"));
    assert!(
        segment.contains("16777216 (16MiB)") && segment.ends_with("topic"),
        "{segment}"
    );
    let json = spu.ok(&["topic", "describe", "orders", "-O", "json"]);
    assert!(
        json.contains(r#"{"name":"retention.ms","value":"172800000","source":"topic"}"#),
        "{json}"
    );

    let partitions = spu.ok(&["partition", "list", "orders"]);
    let rows: Vec<&str> = partitions.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{partitions}");
    assert_eq!(
        rows[2].split_whitespace().collect::<Vec<_>>(),
        ["orders", "2", "0", "0", "0", "0", "0", "0", "0:0", "0:0"],
        "TOPIC PARTITION LEADER START END RECORDS REPLICAS ISR LOG-END LAG"
    );
    let every = spu.ok(&["partition", "list", "-O", "json"]);
    assert_eq!(every.matches("\"partition\":").count(), 4, "{every}");
    // One copy each, on SPU 0, which is its own leader: no lag.
    assert_eq!(every.matches(r#""replica_log_end":{"0":"#).count(), 4);
    assert_eq!(
        every.matches(r#""replica_lag":{"0":0}"#).count(),
        4,
        "{every}"
    );

    assert_eq!(
        spu.ok(&["topic", "delete", "orders"]),
        "topic \"orders\" deleted\n"
    );
    let list = spu.ok(&["topic", "list"]);
    assert!(!list.contains("orders"), "{list}");
    for args in [
        ["topic", "delete", "orders"],
        ["topic", "describe", "orders"],
    ] {
        let out = spu.rill(&args);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("topic \"orders\" not found (see `rill topic list`)"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    spu.ok(&["topic", "delete", "events"]);
    assert!(spu.ok(&["topic", "list"]).starts_with("no topics"));
    assert_eq!(spu.ok(&["topic", "list", "-O", "json"]), "[]\n");
}

#[test]
fn topic_settings_are_checked() {
    let spu = TestSpu::start();
    for (args, expected) in [
        (
            &["topic", "create", "t", "--partitions", "0"][..],
            "'--partitions <PARTITIONS>'",
        ),
        (
            &["topic", "create", "t", "--retention-time", "7x"][..],
            "unknown duration unit",
        ),
        (
            &["topic", "create", "t", "--segment-size", "lots"][..],
            "is not a size",
        ),
        (
            &["topic", "create", "t", "--compression-type", "brotli"][..],
            "invalid value 'brotli'",
        ),
        (
            &["topic", "create", "bad/name"][..],
            "INVALID_TOPIC_EXCEPTION",
        ),
        (
            &["topic", "create", "t", "-r", "2"][..],
            "INVALID_REPLICATION_FACTOR",
        ),
    ] {
        let out = spu.rill(args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(spu.ok(&["topic", "list"]).starts_with("no topics"));
}

#[test]
fn names_the_file_system_cannot_hold_and_reserved_names_are_refused_up_front() {
    let spu = TestSpu::start();
    let longest = "n".repeat(245);
    spu.ok(&["topic", "create", &longest]);
    spu.produce(&longest, "fits\n", &[]);
    assert_eq!(spu.ok(&["consume", &longest, "-B", "-d"]), "fits\n");
    for (name, expected) in [
        (
            "m".repeat(246),
            "the topic name is 246 bytes; at most 245 fit",
        ),
        (
            "m".repeat(249),
            "the topic name is 249 bytes; at most 245 fit",
        ),
        ("__rill_meta".into(), "reserved for Rill's own topics"),
    ] {
        let out = spu.rill(&["topic", "create", &name]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("KAFKA_STORAGE_ERROR"),
            "{}",
            stderr(&out)
        );
    }
    let list = spu.ok(&["topic", "list", "-O", "json"]);
    assert_eq!(list.matches("\"name\"").count(), 1, "{list}");
}

#[test]
fn durations_are_checked_as_durations() {
    let spu = TestSpu::start();
    for (value, expected) in [
        ("1.5h", "\"1.5h\" is not a whole number (write 90m)"),
        (
            "1M",
            "ambiguous: write 1min (or 1m) for minutes, or days for months (30d)",
        ),
        ("0", "a retention of 0 would delete every record at once"),
        ("1ns", "not a whole number of milliseconds"),
    ] {
        let out = spu.rill(&["topic", "create", "t", "--retention-time", value]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("'--retention-time <DURATION>'"), "{err}");
        assert!(err.contains(expected), "{value}: {err}");
        assert!(!err.contains("1536B"), "not about sizes: {err}");
    }
    for (flag, value) in [("--retry-timeout", "0"), ("--retry-timeout", "1ns")] {
        let out = spu.rill_with_input(&["produce", "t", flag, value], b"x\n");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
    }
    spu.ok(&[
        "topic",
        "create",
        "kept",
        "--retention-time",
        "unlimited",
        "--max-partition-size",
        "unlimited",
    ]);
    let json = spu.ok(&["topic", "describe", "kept", "-O", "json"]);
    assert!(
        json.contains(r#"{"name":"retention.ms","value":"-1","source":"topic"}"#),
        "{json}"
    );
    let list = spu.ok(&["topic", "list"]);
    assert!(list.contains("forever"), "{list}");
    spu.ok(&["topic", "create", "ninety", "--retention-time", "90min"]);
    assert!(spu.ok(&["topic", "list"]).contains("90m"));
}
