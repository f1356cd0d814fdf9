//! Reads a topic written by the interop suite's confluent-kafka check with
//! Rill's consumer and checks every record (key, value, headers). For the
//! interop suite: read_confluent ADDR TOPIC PARTITIONS COUNT

use std::collections::BTreeMap;
use std::process::ExitCode;

use rill::{Offset, Rill, RillError};

fn expected(i: usize) -> (String, String) {
    let key = format!("key-{}", i % 37);
    let value = format!("value-{i:06} ") + &"lorem ipsum dolor sit amet ".repeat(1 + i % 5);
    (key, value)
}

async fn check(addr: &str, topic: &str, partitions: u32, count: usize) -> Result<String, String> {
    let e = |e: RillError| e.to_string();
    let rill = Rill::connect_to(addr).await.map_err(e)?;
    let mut seen = BTreeMap::new();
    for p in 0..partitions {
        let consumer = rill.partition_consumer(topic, p).await.map_err(e)?;
        let mut stream = consumer.stream(Offset::beginning()).await.map_err(e)?;
        while let Some(r) = stream.try_next().await.map_err(e)? {
            let header = |name: &str| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.clone())
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
            };
            let i: usize = header("idx")
                .and_then(|s| s.parse().ok())
                .ok_or(format!("{topic}-{p}@{}: no idx header", r.offset))?;
            let (key, value) = expected(i);
            if r.key.as_deref() != Some(key.as_bytes()) || r.value.as_ref() != value.as_bytes() {
                return Err(format!("record {i}: key or value differs"));
            }
            if header("origin").as_deref() != Some("confluent")
                || header("empty").as_deref() != Some("")
            {
                return Err(format!("record {i}: headers differ: {:?}", r.headers));
            }
            if seen.insert(i, (p, r.offset)).is_some() {
                return Err(format!("record {i} read twice"));
            }
        }
    }
    if seen.len() != count || seen.keys().copied().ne(0..count) {
        return Err(format!("read {} distinct records of {count}", seen.len()));
    }
    Ok(format!("{count} records written by librdkafka read back by the Rill consumer with keys and headers"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, topic, partitions, count] = args.as_slice() else {
        eprintln!("usage: read_confluent ADDR TOPIC PARTITIONS COUNT");
        return ExitCode::from(2);
    };
    let (Ok(partitions), Ok(count)) = (partitions.parse(), count.parse()) else {
        eprintln!("PARTITIONS and COUNT must be numbers");
        return ExitCode::from(2);
    };
    match check(addr, topic, partitions, count).await {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            println!("FAIL: {msg}");
            ExitCode::FAILURE
        }
    }
}
