//! Reads every partition of a topic from the beginning and prints each
//! record, stopping when no new record arrives within the long-poll wait.
//! Usage: consume TOPIC

use rill::{ConsumerConfig, Offset, Rill, RillError};

#[tokio::main]
async fn main() -> Result<(), RillError> {
    let topic = std::env::args().nth(1).unwrap_or_else(|| "orders".into());
    let rill = Rill::connect().await?;
    let mut stream = rill
        .consumer(&topic, None, Offset::beginning(), ConsumerConfig::default())
        .await?;
    let mut n = 0;
    while let Some(r) = stream.try_next().await? {
        let key = r
            .key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        println!(
            "{}@{} {key} {}",
            r.partition,
            r.offset,
            String::from_utf8_lossy(&r.value)
        );
        n += 1;
    }
    eprintln!("{n} records");
    Ok(())
}
