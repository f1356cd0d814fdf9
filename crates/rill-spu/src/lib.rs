//! The Rill SPU (streaming processing unit): the broker that keeps partition
//! logs and speaks the Kafka wire protocol.
//!
//! The listener, connections and request handlers arrive with the SPU issue;
//! for now this crate ties the protocol and storage crates together so the
//! workspace builds as the design lays it out.

pub use rill_protocol as protocol;
pub use rill_storage as storage;
