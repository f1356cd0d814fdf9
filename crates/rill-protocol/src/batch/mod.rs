//! Kafka record batch, magic 2.
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset
//!      8     4  batch_length            bytes after this field
//!     12     4  partition_leader_epoch
//!     16     1  magic (2)
//!     17     4  crc                     CRC32C of attributes .. end
//!     21     2  attributes              bits 0-2 codec, 3 timestamp type,
//!                                       4 transactional, 5 control
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61     …  records (compressed as a whole when a codec is set)
//! ```
//!
//! Because the CRC starts at `attributes`, the SPU may rewrite `base_offset`
//! (and the leader epoch) without touching the checksum.

mod builder;
mod header;
mod record;
mod validate;

pub use builder::{NewRecord, RecordBatchBuilder};
pub use header::{
    set_base_offset, set_partition_leader_epoch, set_producer, Attributes, BatchHeader,
    TimestampType,
};
pub use record::{Header, Headers, Record, RecordBatch, RecordIter, RecordSet};
pub use validate::{
    peek_batch_len, split_batches, validate_batch, verify_stored_batch, BatchSlices,
    ValidationLimits,
};

use crate::compression::{Compression, CompressionError};
use crate::cursor::DecodeError;

/// Bytes before the records: the fixed batch header.
pub const HEADER_BYTES: usize = 61;
/// `base_offset` plus `batch_length`: the part `batch_length` does not count.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only batch format Rill reads and writes.
pub const MAGIC_V2: i8 = 2;
/// First byte the CRC covers.
pub const CRC_START: usize = 21;
/// The batch-length field.
pub(crate) const BATCH_LENGTH_AT: usize = 8;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;

/// Why a record batch was refused. Each maps to a Kafka error code at the
/// SPU (`CORRUPT_MESSAGE` for most, `MESSAGE_TOO_LARGE`, `INVALID_RECORD`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("batch truncated: {0}")]
    Truncated(#[from] DecodeError),
    #[error("batch length field {declared} does not match the {actual} bytes given")]
    LengthMismatch { declared: i64, actual: usize },
    #[error("unsupported magic byte {0} (only 2 is supported)")]
    UnsupportedMagic(i8),
    #[error("CRC mismatch: batch says {stored:#010x}, data gives {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record count {count} disagrees with the batch ({reason})")]
    CountMismatch { count: i32, reason: &'static str },
    #[error("record {index} is malformed: {reason}")]
    BadRecord { index: usize, reason: String },
    #[error("batch of {size} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge { size: usize, max_bytes: usize },
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error("field too large for the wire format: {0}")]
    FieldOverflow(&'static str),
}

impl BatchError {
    pub(crate) fn bad_record(index: usize, reason: impl std::fmt::Display) -> Self {
        BatchError::BadRecord {
            index,
            reason: reason.to_string(),
        }
    }
}

/// The CRC32C that a v2 batch stores, computed over `attributes..end`.
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default())
}

/// Codec named by a batch's attributes.
pub fn codec_of(attributes: i16) -> Result<Compression, CompressionError> {
    Compression::from_id((attributes & 0x07) as u8)
}

#[cfg(test)]
mod tests;
