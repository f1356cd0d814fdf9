//! Sans-IO wire formats for Rill.
//!
//! Everything here is a pure function over bytes: the Kafka record batch v2
//! codec ([`batch`]), per-batch compression ([`compression`]), and the
//! size-prefixed frame codec ([`frame`]). No sockets, no files, no runtime:
//! the SPU and the client put their own I/O around it.
//!
//! Every decoder in this crate must return an error, never panic, on any
//! input. The crate denies `unwrap`, `expect`, `panic!` and slice indexing
//! outside tests so that the compiler enforces the rule; the fuzz target in
//! `fuzz/` checks it.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod batch;
pub mod compression;
pub mod cursor;
pub mod frame;
pub mod produce;
pub mod varint;

pub use batch::{
    BatchError, BatchHeader, NewRecord, Record, RecordBatch, RecordBatchBuilder, TimestampType,
};
pub use compression::{Compression, CompressionError};
pub use frame::{FrameDecoder, FrameError};
