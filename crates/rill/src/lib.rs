//! The Rill client library: connection, producer, consumer and admin.
//!
//! The producer and consumer arrive with the client issue. This crate depends
//! only on the sans-IO protocol crate, never on the server.

pub use rill_protocol as protocol;
