//! `librill_java`: the Rill client (crates/rill) for Java, over JNI. The
//! Java classes of `dev.rill.client` (`java/dev/rill/client/`) call the
//! static natives of `dev.rill.client.Native`, implemented here:
//!
//! - `runtime.rs`: the one tokio runtime, the JavaVM, blocking waits;
//! - `error.rs`: every native runs inside [`error::guard`], which catches
//!   panics and turns `RillError`s into `RillException`s;
//! - `handle.rs`: Rust objects boxed behind `long` handles, freed once;
//! - `client.rs` (connect, admin), `config.rs`, `producer.rs`,
//!   `consumer.rs`: the natives themselves.

mod client;
mod config;
mod consumer;
mod error;
mod handle;
mod producer;
mod runtime;
