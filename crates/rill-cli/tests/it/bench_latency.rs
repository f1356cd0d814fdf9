//! `rill benchmark produce --rate` and `rill benchmark e2e`: every record is
//! sent, acknowledged and (for e2e) read back, and the latencies are real
//! measurements (ordered percentiles, no zero).

use crate::spu::TestSpu;

/// The number after `"name":` in `json` (the first such field).
fn field(json: &str, name: &str) -> u64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + name.len()
        + 3;
    json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {json}"))
}

/// The latency object `"name":{...}` in `json`, as (p50, p99, p99.9, max).
fn latencies(json: &str, name: &str) -> (u64, u64, u64, u64) {
    let at = json
        .find(&format!("\"{name}\":{{"))
        .unwrap_or_else(|| panic!("no {name} in {json}"));
    let obj = &json[at..];
    let obj = &obj[..obj.find('}').unwrap()];
    let p = (
        field(obj, "p50"),
        field(obj, "p99"),
        field(obj, "p99_9"),
        field(obj, "max"),
    );
    assert!(
        0 < p.0 && p.0 <= p.1 && p.1 <= p.2 && p.2 <= p.3,
        "{name}: {p:?}"
    );
    p
}

#[test]
fn e2e_reads_back_every_record_it_sends_at_the_rate_asked() {
    let spu = TestSpu::start();
    let json = spu.ok(&[
        "benchmark",
        "e2e",
        "-n",
        "400",
        "--rate",
        "4000",
        "--linger",
        "0ms",
        "-O",
        "json",
    ]);
    assert_eq!(field(&json, "records"), 400, "{json}");
    assert_eq!(field(&json, "received"), 400, "{json}");
    assert_eq!(field(&json, "failed"), 0, "{json}");
    latencies(&json, "e2e_latency_us");
    latencies(&json, "ack_latency_us");
    // Open loop: 400 records at 4000/s take at least 0.1 s.
    let elapsed: f64 = json
        .split("\"elapsed_s\":")
        .nth(1)
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no elapsed_s in {json}"));
    assert!(elapsed >= 0.099, "{json}");
}

#[test]
fn produce_at_a_rate_settles_every_record() {
    let spu = TestSpu::start();
    let json = spu.ok(&[
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
    ]);
    assert_eq!(field(&json, "records"), 600, "{json}");
    assert_eq!(field(&json, "acknowledged"), 600, "{json}");
    assert_eq!(field(&json, "failed"), 0, "{json}");
    latencies(&json, "latency_us");
}
