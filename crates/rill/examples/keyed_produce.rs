//! Produces keyed records: every record with the same key lands in the same
//! partition (the Kafka Java client's murmur2), so per-key order holds.
//! Usage: keyed_produce TOPIC COUNT   (creates TOPIC with 3 partitions if missing)

use rill::{Rill, RillError};

#[tokio::main]
async fn main() -> Result<(), RillError> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "orders".into());
    let count: usize = args.next().and_then(|c| c.parse().ok()).unwrap_or(100);
    let rill = Rill::connect().await?;
    if !rill
        .admin()
        .list_topics()
        .await?
        .iter()
        .any(|t| t.name == topic)
    {
        rill.admin().create_topic(&topic, 3, 1, &[]).await?;
    }
    let producer = rill.topic_producer(&topic).await?;
    let mut outputs = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("customer-{}", i % 10);
        outputs.push(producer.send(key, format!("order {i}")).await?);
    }
    producer.flush().await?;
    let mut per_partition = [0usize; 3];
    for out in outputs {
        let md = out.wait().await?;
        if let Some(n) = per_partition.get_mut(md.partition as usize) {
            *n += 1;
        }
    }
    println!("{count} keyed records acknowledged; per partition {per_partition:?}");
    Ok(())
}
