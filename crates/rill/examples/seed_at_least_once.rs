//! The second example of producers.md / design.md §2: at least once with an
//! exponential retry policy (delays 10, 100, 1000, 2000, 2000 ms).

use std::time::Duration;

use rill::{DeliverySemantic, RetryPolicy, RetryStrategy, Rill, TopicProducerConfigBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rill = Rill::connect().await?;
    let policy = RetryPolicy {
        max_retries: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        strategy: RetryStrategy::ExponentialBackoff,
    };
    let config = TopicProducerConfigBuilder::default()
        .delivery_semantic(DeliverySemantic::AtLeastOnce(policy))
        .build()?;
    let producer = rill.topic_producer_with_config("greetings", config).await?;
    let md = producer.send("Hello", "again").await?.wait().await?;
    println!(
        "at-least-once: partition {} offset {}",
        md.partition, md.offset
    );
    Ok(())
}
