//! `rill benchmark produce --rate` and `rill benchmark e2e`: every record is
//! sent, acknowledged and (for e2e) read back, and the latencies are real
//! measurements (ordered percentiles, no zero).

use serde_json::Value;

use crate::spu::TestSpu;

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The latency object `name` of `report`, checked to be ordered and non-zero.
fn check_latencies(report: &Value, name: &str) {
    let p = ["p50", "p99", "p99_9", "max"].map(|q| {
        report[name][q]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name}.{q} in {report}"))
    });
    assert!(
        0 < p[0] && p[0] <= p[1] && p[1] <= p[2] && p[2] <= p[3],
        "{name}: {p:?}"
    );
}

#[test]
fn e2e_reads_back_every_record_it_sends_at_the_rate_asked() {
    let spu = TestSpu::start();
    let report = parse(&spu.ok(&[
        "benchmark",
        "e2e",
        "-n",
        "400",
        "--rate",
        "4000",
        "--warmup",
        "100ms",
        "--linger",
        "0ms",
        "-O",
        "json",
    ]));
    assert_eq!(report["records"], 400, "{report}");
    // 100 ms at 4000/s go first and are read back but not measured.
    assert_eq!(report["warmup_records"], 400, "{report}");
    assert_eq!(report["received"], 400, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    check_latencies(&report, "e2e_latency_us");
    check_latencies(&report, "ack_latency_us");
    // Open loop: 800 records in all at 4000/s take at least 0.2 s.
    let elapsed = report["elapsed_s"].as_f64().expect("elapsed_s");
    assert!(elapsed >= 0.199, "{report}");
}

#[test]
fn produce_at_a_rate_settles_every_record() {
    let spu = TestSpu::start();
    let report = parse(&spu.ok(&[
        "benchmark",
        "produce",
        "--count",
        "600",
        "--record-size",
        "100",
        "--rate",
        "6000",
        "--linger",
        "0ms",
        "-O",
        "json",
    ]));
    assert_eq!(report["records"], 600, "{report}");
    assert_eq!(report["acknowledged"], 600, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    check_latencies(&report, "latency_us");
}
