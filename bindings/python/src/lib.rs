//! `rill._rill`: the Rill client (crates/rill) for Python. The pure-Python
//! package `rill` re-exports it beside its exceptions and `RecordMetadata`
//! (`python/rill/`). One tokio runtime runs everything (`runtime.rs`);
//! blocking calls release the GIL and honour Ctrl-C; `async_*` methods
//! return asyncio futures.

mod client;
mod config;
mod consumer;
mod error;
mod producer;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
fn _rill(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Rill>()?;
    m.add_class::<client::RillAdmin>()?;
    m.add_class::<client::TopicInfo>()?;
    m.add_class::<config::TopicProducerConfigBuilder>()?;
    m.add_class::<config::TopicProducerConfig>()?;
    m.add_class::<config::DeliverySemantic>()?;
    m.add_class::<config::RetryPolicy>()?;
    m.add_class::<config::RetryStrategy>()?;
    m.add_class::<config::Isolation>()?;
    m.add_class::<producer::TopicProducer>()?;
    m.add_class::<producer::ProduceOutput>()?;
    m.add_class::<consumer::Offset>()?;
    m.add_class::<consumer::PartitionConsumer>()?;
    m.add_class::<consumer::RecordStream>()?;
    m.add_class::<consumer::ConsumerRecord>()?;
    m.add_function(wrap_pyfunction!(murmur2, m)?)?;
    m.add_function(wrap_pyfunction!(partition_for_key, m)?)?;
    Ok(())
}

/// The Kafka Java client's murmur2 of `key` (signed, as Java's).
#[pyfunction]
fn murmur2(key: &[u8]) -> i32 {
    rill::producer::murmur2(key)
}

/// The partition the Kafka Java client's default partitioner gives `key`.
#[pyfunction]
fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    rill::producer::partition_for_key(key, partitions)
}
