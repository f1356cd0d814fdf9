//! The Rill SPU (streaming processing unit): the broker that keeps partition
//! logs and speaks the Kafka wire protocol on TCP.
//!
//! [`Spu::start`] binds a listener and serves until [`SpuHandle::shutdown`].
//! Requests are decoded with the `kafka-protocol` crate's message structs;
//! record batches go through `rill-protocol` and are stored by
//! `rill-storage` exactly as they arrived.

// Request decoding and handling cannot panic on what a client sends.
#[cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
mod api;
mod cluster;
mod config;
mod connection;
mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
pub mod group;
mod idempotence;
mod meta;
// The metrics endpoint parses what any HTTP client sends.
#[cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
mod metrics;
mod producer_ids;
mod registry;
pub mod replication;
mod sendfile;
mod server;
pub mod topic;
#[cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
mod writer;

pub use api::SUPPORTED_APIS;
pub use config::{ClusterSettings, ClusterStore, SpuConfig};
pub use error::SpuError;
pub use group::{GroupConfig, GroupLimits};
pub use metrics::http::{MAX_CONNECTIONS as MAX_METRICS_CONNECTIONS, MAX_REQUEST_HEAD_BYTES};
pub use server::{Spu, SpuHandle};
pub use topic::{TopicConfig, TopicSpec};
pub use writer::INLINE_APPEND_MAX_BYTES;
