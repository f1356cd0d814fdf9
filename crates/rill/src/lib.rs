//! The Rill client library: connection, producer and admin.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rill::RillError> {
//! use rill::{DeliverySemantic, Rill, TopicProducerConfigBuilder};
//! let rill = Rill::connect().await?;
//! let config = TopicProducerConfigBuilder::default()
//!     .delivery_semantic(DeliverySemantic::AtMostOnce)
//!     .build()?;
//! let producer = rill.topic_producer_with_config("greetings", config).await?;
//! let output = producer.send("Hello", "Rill!").await?;
//! output.wait().await?;
//! # Ok(()) }
//! ```
//!
//! The producer's batching is a state machine with time passed in
//! ([`producer::Accumulator`]), and so is each partition's send path
//! (in-flight window, retries, sequence numbers, deadlines, splits: see
//! the `producer` module); partitioning follows the Kafka Java client
//! ([`producer::Partitioner`]); retries follow [`RetryPolicy`]. The crate
//! depends only on the sans-IO protocol crate, never on the server.

#![warn(missing_docs)]

mod admin;
mod admin_changes;
mod admin_groups;
mod client;
mod cluster_info;
mod config;
mod connection;
mod consumer;
mod error;
mod group;
mod low_water;
pub mod producer;
mod receive_buffer;
mod recycle;
mod routes;

pub use admin::{Admin, TopicDescription, TopicInfo};
pub use admin_changes::ConfigChange;
pub use admin_groups::{GroupDescription, GroupListing, GroupMember, GroupPartition, ResetTo};
pub use client::{discover_addr, Rill, DEFAULT_ADDR};
pub use cluster_info::{ClusterInfo, ReplicaLogEnd, SpuInfo};
pub use config::{DeliverySemantic, Isolation, TopicProducerConfig, TopicProducerConfigBuilder};
pub use consumer::{
    ConsumerConfig, ConsumerRecord, ConsumerStream, MultiPartitionStream, Offset,
    PartitionConsumer, RecordStream,
};
pub use error::{error_name, is_retriable, RillError};
pub use group::{
    GroupConfig, GroupConsumer, GroupRecord, GroupRecordStream, Rebalance, RebalanceCallback,
    TopicPartition,
};
/// Kafka's error codes by name, with their retriability (`kafka-protocol`'s
/// table, the one every part of Rill uses).
pub use kafka_protocol::error::ResponseError;
pub use producer::{
    Partitioner, ProduceOutput, RecordKey, RecordMetadata, RetryPolicy, RetryStrategy,
    TopicProducer,
};
pub use rill_protocol as protocol;
pub use rill_protocol::Compression;
pub use routes::PartitionDescription;
