//! The fixed 61-byte batch header.

use super::{BatchError, HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::compression::{Compression, CompressionError};
use crate::cursor::{Cursor, DecodeError};

/// How a batch's timestamps are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Each record's time is base_timestamp + its delta.
    CreateTime,
    /// Every record's time is the batch's max_timestamp, set by the broker.
    LogAppendTime,
}

/// The attribute bits of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    const TIMESTAMP_TYPE: i16 = 1 << 3;
    const TRANSACTIONAL: i16 = 1 << 4;
    const CONTROL: i16 = 1 << 5;

    pub fn compression(self) -> Result<Compression, CompressionError> {
        super::codec_of(self.0)
    }

    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    pub(crate) fn new(codec: Compression) -> Self {
        Attributes(i16::from(codec.id()))
    }
}

/// Every field of the fixed header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: Attributes,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header from the first 61 bytes of `bytes`. Checks nothing
    /// but that the bytes are there; see [`super::validate_batch`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        let mut c = Cursor::new(bytes);
        Ok(BatchHeader {
            base_offset: c.i64()?,
            batch_length: c.i32()?,
            partition_leader_epoch: c.i32()?,
            magic: c.i8()?,
            crc: c.u32()?,
            attributes: Attributes(c.i16()?),
            last_offset_delta: c.i32()?,
            base_timestamp: c.i64()?,
            max_timestamp: c.i64()?,
            producer_id: c.i64()?,
            producer_epoch: c.i16()?,
            base_sequence: c.i32()?,
            records_count: c.i32()?,
        })
    }

    /// Whole size of the batch on the wire: the length field plus the 12
    /// bytes before it. `None` when the length field is negative.
    pub fn total_bytes(&self) -> Option<usize> {
        usize::try_from(self.batch_length)
            .ok()
            .map(|n| n + LOG_OVERHEAD_BYTES)
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset just past the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    pub fn compression(&self) -> Result<Compression, CompressionError> {
        self.attributes.compression()
    }

    /// Records from an idempotent or transactional producer carry an id.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Rewrites the `base_offset` of the batch that starts `batch`. The CRC does
/// not cover it, so the batch stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), BatchError> {
    let available = batch.len();
    let slot = batch
        .get_mut(0..8)
        .ok_or(BatchError::Truncated(DecodeError::UnexpectedEnd {
            needed: HEADER_BYTES,
            available,
        }))?;
    slot.copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Rewrites the `partition_leader_epoch` of the batch that starts `batch`
/// (bytes 12..16). The CRC does not cover it, so the batch stays valid: a
/// leader stamps its epoch into each batch it stores.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    const EPOCH_AT: usize = 12;
    let available = batch.len();
    let slot = batch
        .get_mut(EPOCH_AT..EPOCH_AT + 4)
        .ok_or(BatchError::Truncated(DecodeError::UnexpectedEnd {
            needed: HEADER_BYTES,
            available,
        }))?;
    slot.copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Rewrites the producer id, epoch and base sequence of the whole batch in
/// `batch` and recomputes its CRC (which covers them). A producer uses it to
/// send a batch again under a new producer id after its sequence broke.
pub fn set_producer(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), BatchError> {
    // Offsets of the fields in the fixed header (see `BatchHeader::parse`).
    const PRODUCER_ID_AT: usize = 43;
    const CRC_AT: usize = 17;
    let available = batch.len();
    let truncated = || {
        BatchError::Truncated(DecodeError::UnexpectedEnd {
            needed: HEADER_BYTES,
            available,
        })
    };
    let header = BatchHeader::parse(batch)?;
    let total = header.total_bytes().ok_or_else(truncated)?;
    let fields = batch
        .get_mut(PRODUCER_ID_AT..PRODUCER_ID_AT + 14)
        .ok_or_else(truncated)?;
    let mut new_fields = Vec::with_capacity(14);
    new_fields.extend_from_slice(&producer_id.to_be_bytes());
    new_fields.extend_from_slice(&producer_epoch.to_be_bytes());
    new_fields.extend_from_slice(&base_sequence.to_be_bytes());
    fields.copy_from_slice(&new_fields);
    let crc = crc32c::crc32c(batch.get(super::CRC_START..total).ok_or_else(truncated)?);
    batch
        .get_mut(CRC_AT..CRC_AT + 4)
        .ok_or_else(truncated)?
        .copy_from_slice(&crc.to_be_bytes());
    Ok(())
}
