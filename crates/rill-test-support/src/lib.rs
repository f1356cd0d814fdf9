//! Helpers shared by the integration tests of every Rill crate, so each
//! crate does not grow its own SPU starter, proxy and batch builder.
//!
//! - [`TestSpu`]: an SPU in this process on `127.0.0.1:0` in a temp dir,
//!   configured by [`TestSpuBuilder`]; its settings survive restarts.
//! - [`ProcessSpu`]: an SPU child process (the `rill` binary or
//!   `rill-reliability-spu`), stopped by its PID.
//! - [`FaultProxy`]: a TCP proxy between a client and an SPU that cuts,
//!   delays or swallows answers.
//! - [`KafkaClient`]: a minimal Kafka client, one request at a time at any
//!   version, over TCP or any byte stream.
//! - [`batch`], [`idempotent_batch`], [`values`]: record batches v2.
//! - [`ResponseError`]: Kafka's error codes (`ResponseError::X.code()`), the
//!   same names the SPU answers with.
//!
//! Every server a helper starts is stopped by the test that started it:
//! explicitly, or when the helper is dropped.

mod batch;
mod client;
mod process;
mod proxy;
mod spu;

pub use batch::{batch, idempotent_batch, values};
pub use client::{creatable, create_topic, topic_name, KafkaClient};
pub use kafka_protocol::error::ResponseError;
pub use process::{ProcessSpu, ProcessSpuBuilder, STUCK};
pub use proxy::FaultProxy;
pub use spu::{TestSpu, TestSpuBuilder};
