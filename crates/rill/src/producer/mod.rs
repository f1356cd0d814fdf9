//! The producer. Its decisions live in state machines with no I/O and time
//! passed in: the accumulator (batching and linger), the partitioner, the
//! retry policy and each partition's pipeline (in-flight window, retries,
//! sequence numbers, deadlines). The async parts only sleep, move bytes and
//! wake each other.
//!
//! Modules, each importing only those listed after it: `topic_producer`
//! (the API and the sender task) → `lane` (a partition's driver) →
//! `shared` (state the tasks share) → `completion` → `pipeline`.

pub mod accumulator;
pub mod partitioner;
pub mod retry;

pub use accumulator::{Accumulator, AccumulatorConfig, PushError, Pushed, ReadyBatch};
pub use partitioner::{murmur2, partition_for_key, PartitionPicker, Partitioner};
pub use retry::{RetryDelays, RetryPolicy, RetryStrategy};
mod completion;
mod lane;
mod pipeline;
mod shared;
mod topic_producer;

pub use completion::RecordMetadata;
pub use topic_producer::{ProduceOutput, RecordKey, TopicProducer};
