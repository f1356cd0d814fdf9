//! Errors, `--addr`, the benchmark, completions and help.

use std::net::TcpListener;
use std::process::Command;

use crate::spu::{run_with_input, stderr, text, TestSpu};

/// An address where nothing listens: a port that was just free.
fn dead_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn no_cluster_is_a_plain_error() {
    let addr = dead_addr();
    let home = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 5] = [
        &["topic", "list"],
        &["topic", "create", "t"],
        &["produce", "t"],
        &["consume", "t", "-B"],
        &["benchmark", "produce", "--count", "10"],
    ];
    for args in commands {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
        cmd.args(args)
            .env("RILL_ADDR", &addr)
            .env("RILL_HOME", home.path());
        let out = run_with_input(cmd, b"x\n");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "error: no SPU answers at {addr} — start one with `rill cluster start`"
            )),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn argument_errors_exit_2_and_name_the_flag() {
    let addr = dead_addr();
    let home = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            &["topic", "create", "t", "--partitions", "0"][..],
            "'--partitions <PARTITIONS>'",
        ),
        (
            &["topic", "create", "t", "-r", "0"],
            "'--replication <REPLICATION>'",
        ),
        (
            &["produce", "t", "--batch-size", "0"],
            "'--batch-size <SIZE>'",
        ),
        (
            &["produce", "t", "--max-request-size", "0KiB"],
            "'--max-request-size <SIZE>'",
        ),
        (&["consume", "t", "-b", "0"], "'--maxbytes <SIZE>'"),
        (
            &["cluster", "start", "--foreground", "--async-threads", "0"],
            "'--async-threads <ASYNC_THREADS>'",
        ),
        (&["consume", "t", "-b", "4GiB"], "'--maxbytes <SIZE>'"),
        (
            &["benchmark", "produce", "--count", "0"],
            "'--count <COUNT>'",
        ),
        (
            &["benchmark", "produce", "--in-flight", "0"],
            "'--in-flight <IN_FLIGHT>'",
        ),
        (
            &["consume", "t", "-F", "{{nope}}"],
            "'--format <FORMAT>': unknown placeholder {{nope}}",
        ),
        (
            &["consume", "t", "--start", "5", "--end", "2"],
            "--end 2 is before --start 5",
        ),
        (
            &[
                "produce",
                "t",
                "--delivery-semantic",
                "at-most-once",
                "--max-retries",
                "3",
            ],
            "retry flags need --delivery-semantic at-least-once",
        ),
        (
            &["--addr", "nonsense", "topic", "list"],
            "invalid address \"nonsense\"",
        ),
        (
            &["topic", "list", "--addr", "127.0.0.1:http"],
            "expected HOST:PORT",
        ),
        (&["produce", "t", "--addr", ":9092"], "expected HOST:PORT"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
        cmd.args(args)
            .env("RILL_ADDR", &addr)
            .env("RILL_HOME", home.path());
        let out = run_with_input(cmd, b"x\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("no SPU answers"), "{args:?}: {err}");
    }
}

#[test]
fn addr_flag_beats_the_environment_and_the_profile() {
    let spu = TestSpu::start();
    // The profile `rill cluster start` writes, pointing nowhere.
    std::fs::write(
        spu.home().join("config.toml"),
        format!("[cluster]\naddr = \"{}\"\n", dead_addr()),
    )
    .unwrap();
    let out = spu
        .command(&["topic", "list"])
        .env_remove("RILL_ADDR")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the profile is used: {}", text(&out));
    let out = spu
        .command(&["--addr", &spu.addr, "topic", "list"])
        .env("RILL_ADDR", dead_addr())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = spu
        .command(&["topic", "list", "--addr", &dead_addr()])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("no SPU answers"), "{}", text(&out));
}

#[test]
fn bad_produce_arguments() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "t"]);
    for (args, expected) in [
        (&["produce"][..], "required arguments were not provided"),
        (&["produce", "t", "--linger", "10"][..], "needs a unit"),
        (
            &["produce", "t", "--batch-size", "1.5KiB"][..],
            "is not a whole number",
        ),
        (
            &["produce", "t", "--key", "k", "--key-separator", ":"][..],
            "cannot be used with",
        ),
        (
            &["produce", "t", "--delivery-semantic", "sometimes"][..],
            "invalid value 'sometimes'",
        ),
        (
            &[
                "produce",
                "t",
                "--delivery-semantic",
                "at-most-once",
                "--max-retries",
                "3",
            ][..],
            "retry flags need --delivery-semantic at-least-once",
        ),
        (
            &["produce", "t", "--isolation", "read-committed"][..],
            "invalid value",
        ),
        (&["produce", "nope"][..], "topic \"nope\" not found"),
        (
            &["produce", "t", "--raw", "--max-request-size", "1KiB"][..],
            "over the producer's --max-request-size of 1KiB",
        ),
        (
            &["produce", "t", "--buffer-memory", "64KiB"][..],
            "buffer_memory (65536 bytes) must hold at least one max_request_size (1048576 bytes)",
        ),
    ] {
        let out = spu.rill_with_input(args, &[b'x'; 4096]);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(spu.ok(&["consume", "t", "-B", "-d"]).is_empty());
}

#[test]
fn benchmark_produce_reports_and_cleans_up() {
    let spu = TestSpu::start();
    let json = spu.ok(&[
        "benchmark",
        "produce",
        "--count",
        "3000",
        "--record-size",
        "100",
        "--partitions",
        "2",
        "--producers",
        "2",
        "--key-strategy",
        "random",
        "--compression",
        "lz4",
        "--linger",
        "1ms",
        "--buffer-memory",
        "2MiB",
        "-O",
        "json",
    ]);
    for field in [
        r#""records":3000,"acknowledged":3000,"failed":0,"record_size":100,"#,
        r#""linger_ms":1,"buffer_memory":2097152,"compression":"lz4","partitions":2,"producers":2,"#,
        r#""delivery_semantic":"at-least-once","#,
        r#""key_strategy":"random","#,
        r#""latency_us":{"p50":"#,
    ] {
        assert!(json.contains(field), "{field} in {json}");
    }
    assert!(
        spu.ok(&["topic", "list"]).starts_with("no topics"),
        "deleted"
    );

    let table = spu.ok(&[
        "benchmark",
        "produce",
        "--count",
        "500",
        "--topic",
        "kept",
        "--keep-topic",
        "--delivery-semantic",
        "at-most-once",
        "--key-strategy",
        "same",
    ]);
    assert!(table.contains("500 records of 1KiB to kept"), "{table}");
    assert!(table.contains("RECORDS/S"), "{table}");
    let partitions = spu.ok(&["partition", "list", "kept"]);
    assert_eq!(
        partitions.lines().nth(1).unwrap().split_whitespace().nth(5),
        Some("500"),
        "RECORDS: {partitions}"
    );

    // An existing topic is used as it is and kept.
    let json = spu.ok(&[
        "benchmark",
        "produce",
        "--count",
        "100",
        "--topic",
        "kept",
        "--partitions",
        "3",
        "-O",
        "json",
    ]);
    assert!(json.contains(r#""partitions":1,"#), "{json}");
    let partitions = spu.ok(&["partition", "list", "kept"]);
    assert_eq!(
        partitions.lines().nth(1).unwrap().split_whitespace().nth(5),
        Some("600"),
        "RECORDS: {partitions}"
    );
}

#[test]
fn completions_and_help() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rill"))
            .args(args)
            .env("RILL_HOME", home.path())
            .output()
            .unwrap()
    };
    for (shell, marker) in [
        ("bash", "_rill()"),
        ("zsh", "#compdef rill"),
        ("fish", "complete -c rill"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("consume"), "{shell}");
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["consume", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:\n  rill consume greetings"),
        "{help}"
    );
    assert!(help.contains("--disable-continuous"), "{help}");
    let out = run(&["bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn addr_is_refused_where_it_means_nothing_and_help_fits_the_command() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rill"))
            .args(args)
            .env("RILL_HOME", home.path())
            .env("RILL_ADDR", "127.0.0.1:1")
            .output()
            .unwrap()
    };
    for args in [
        &["cluster", "status", "--addr", "127.0.0.1:9092"][..],
        &["--addr", "127.0.0.1:9092", "cluster", "stop"],
        &["completions", "bash", "--addr", "127.0.0.1:9092"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            stderr(&out).contains("--addr does not apply to rill"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // RILL_ADDR in the environment does not bother them.
    let out = run(&["cluster", "stop"]);
    assert!(out.status.success(), "{}", text(&out));

    let help = String::from_utf8(run(&["consume", "--help"]).stdout).unwrap();
    assert!(
        help.contains("Only records every in-sync replica has"),
        "{help}"
    );
    assert!(!help.contains("Acknowledged once"), "{help}");
}

#[test]
fn profiles_name_clusters_and_choose_the_one_in_use() {
    let spu = TestSpu::start();
    let dead = dead_addr();
    let rill = |args: &[&str]| spu.command(args).env_remove("RILL_ADDR").output().unwrap();
    let ok = |args: &[&str]| {
        let out = rill(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(ok(&["profile", "list"]).starts_with("no profiles"));
    // The first profile is the one in use.
    assert_eq!(
        ok(&["profile", "add", "away", &dead]),
        format!("profile \"away\" → {dead} (in use)\n")
    );
    ok(&["profile", "add", "here", &spu.addr]);
    let out = rill(&["topic", "list"]);
    assert!(
        stderr(&out).contains(&format!("no SPU answers at {dead}")),
        "{}",
        text(&out)
    );

    assert_eq!(
        ok(&["profile", "use", "here"]),
        format!("using profile \"here\" ({})\n", spu.addr)
    );
    assert!(ok(&["topic", "list"]).starts_with("no topics"));
    let list = ok(&["profile", "list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*", "here", &spu.addr]),
        "{list}"
    );
    let json = ok(&["profile", "list", "-O", "json"]);
    assert!(
        json.contains(&format!(
            r#"{{"name":"here","addr":"{}","current":true}}"#,
            spu.addr
        )),
        "{json}"
    );
    // What the client library reads (`Rill::connect()`): the first addr.
    let config = std::fs::read_to_string(spu.home().join("config.toml")).unwrap();
    let first = config.lines().find(|l| l.starts_with("addr")).unwrap();
    assert_eq!(first, format!("addr = \"{}\"", spu.addr));

    for (args, expected) in [
        (
            &["profile", "use", "nope"][..],
            "no profile \"nope\" (profiles: away, here",
        ),
        (&["profile", "add", "bad", "nonsense"], "expected HOST:PORT"),
        (&["profile", "add", "bad name", "h:1"], "profile name"),
        (
            &["profile", "list", "--addr", "h:1"],
            "--addr does not apply",
        ),
    ] {
        let out = rill(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    ok(&["profile", "remove", "away"]);
    assert!(!ok(&["profile", "list"]).contains("away"));
}
