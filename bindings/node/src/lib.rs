//! `rill.<platform>.node`: the Rill client (crates/rill) for Node.js,
//! through napi-rs. The JavaScript package (`lib/index.js`) wraps these
//! native classes into the public API (`Rill.connect`, `topicProducer`,
//! error classes, async iterators); nothing here is meant to be called
//! directly. All Rust work runs on the addon's own tokio runtime
//! (`runtime.rs`), never on the event loop's thread; a call that would
//! wait returns a Promise.

#![deny(clippy::all)]
// napi-derive registers exports only outside `cfg(test)`: there the exported
// functions look unused.
#![cfg_attr(test, allow(dead_code))]

mod client;
mod config;
mod consumer;
mod error;
mod producer;
mod runtime;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// The Kafka Java client's murmur2 of `key` (signed, as Java's).
#[napi]
pub fn murmur2(key: Buffer) -> i32 {
    rill::producer::murmur2(&key)
}

/// The partition the Kafka Java client's default partitioner gives `key`.
#[napi]
pub fn partition_for_key(key: Buffer, partitions: u32) -> u32 {
    rill::producer::partition_for_key(&key, partitions)
}
