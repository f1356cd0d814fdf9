//! Produces `COUNT` keyed records with each codec to topics
//! `<prefix>-<codec>` (created here), for the interop suite to read back
//! with Kafka clients. Usage: produce_codecs ADDR PREFIX COUNT

use std::time::Duration;

use rill::{Compression, Isolation, Rill, RillError, TopicProducerConfigBuilder};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), RillError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, prefix, count] = args.as_slice() else {
        eprintln!("usage: produce_codecs ADDR PREFIX COUNT");
        std::process::exit(2);
    };
    let count: usize = count
        .parse()
        .map_err(|_| RillError::Config("COUNT must be a number".into()))?;
    let rill = Rill::connect_to(addr).await?;
    for codec in Compression::ALL {
        let topic = format!("{prefix}-{}", codec.name());
        rill.admin().create_topic(&topic, 2, 1, &[]).await?;
        let config = TopicProducerConfigBuilder::default()
            .compression(codec)
            .linger(Duration::from_millis(5))
            .isolation(Isolation::ReadCommitted)
            .build()?;
        let producer = rill.topic_producer_with_config(&topic, config).await?;
        let mut outputs = Vec::with_capacity(count);
        for i in 0..count {
            // Repetitive values so every codec really compresses.
            let value = format!("record {i} of {topic} ").repeat(1 + i % 7);
            outputs.push(producer.send(format!("key-{i}"), value).await?);
        }
        producer.flush().await?;
        for out in outputs {
            out.wait().await?;
        }
        println!("{topic} {count}");
    }
    Ok(())
}
