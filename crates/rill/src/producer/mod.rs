//! The producer's building blocks. The accumulator, partitioner and retry
//! policy are pure (no I/O, time passed in); the async producer that drives
//! them over a connection comes with the client issue.

pub mod accumulator;
pub mod partitioner;
pub mod retry;

pub use accumulator::{Accumulator, AccumulatorConfig, PushError, Pushed, ReadyBatch};
pub use partitioner::{murmur2, partition_for_key, PartitionPicker, Partitioner};
pub use retry::{RetryDelays, RetryPolicy, RetryStrategy};
mod completion;
mod lane;
mod topic_producer;

pub use topic_producer::{ProduceOutput, RecordKey, RecordMetadata, TopicProducer};
