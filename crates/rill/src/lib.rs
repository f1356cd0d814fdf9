//! The Rill client library: connection, producer, consumer and admin.
//!
//! So far this holds the producer's pure parts: batching as a state machine
//! with time passed in ([`producer::Accumulator`]), the Kafka-compatible
//! partitioner ([`producer::Partitioner`]) and retry policies
//! ([`producer::RetryPolicy`]). This crate depends only on the sans-IO
//! protocol crate, never on the server.

pub mod producer;

pub use rill_protocol as protocol;
