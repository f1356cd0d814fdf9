//! The first example of producers.md / design.md §2, as written there with
//! only the crate name changed. Run against a cluster that has the topic
//! `greetings` (`RILL_ADDR` picks the SPU).

use rill::{DeliverySemantic, Rill, TopicProducerConfigBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rill = Rill::connect().await?;
    let config = TopicProducerConfigBuilder::default()
        .delivery_semantic(DeliverySemantic::AtMostOnce)
        .build()?;
    let producer = rill.topic_producer_with_config("greetings", config).await?;
    let output = producer.send("Hello", "Rill!").await?;
    output.wait().await?; // wait for the response, considering `Isolation` as well
    println!("at-most-once: sent and acknowledged");
    Ok(())
}
