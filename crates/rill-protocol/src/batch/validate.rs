//! Checking untrusted batches, and splitting a buffer into batches.

use super::{
    batch_crc, BatchError, BatchHeader, RecordBatch, BATCH_LENGTH_AT, HEADER_BYTES,
    LOG_OVERHEAD_BYTES, MAGIC_AT, MAGIC_V2,
};
use crate::cursor::{Cursor, DecodeError};

/// Bounds applied while validating a batch.
#[derive(Debug, Clone, Copy)]
pub struct ValidationLimits {
    /// The largest batch accepted, header included (Kafka's
    /// `max.message.bytes`).
    pub max_batch_bytes: usize,
    /// The most bytes a compressed record section may expand to.
    pub max_decompressed_bytes: usize,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            // Kafka's default max.message.bytes: 1 MiB plus a little.
            max_batch_bytes: 1_048_588,
            // Room for any batch a well-behaved client builds; a bomb is not.
            max_decompressed_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Checks that `bytes` is exactly one well-formed v2 batch: length, magic,
/// CRC32C, and that the records agree with the count and the offset deltas
/// (decompressing when a codec is set). Returns the decoded header.
pub fn validate_batch(bytes: &[u8], limits: &ValidationLimits) -> Result<BatchHeader, BatchError> {
    if bytes.len() > limits.max_batch_bytes {
        return Err(BatchError::TooLarge {
            size: bytes.len(),
            max_bytes: limits.max_batch_bytes,
        });
    }
    let header = BatchHeader::parse(bytes)?;
    if header.total_bytes() != Some(bytes.len()) {
        return Err(BatchError::LengthMismatch {
            declared: i64::from(header.batch_length),
            actual: bytes.len().saturating_sub(LOG_OVERHEAD_BYTES),
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let computed = batch_crc(bytes);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let count = header.records_count;
    if count <= 0 {
        return Err(BatchError::CountMismatch {
            count,
            reason: "a batch must hold at least one record",
        });
    }
    if header.last_offset_delta != count - 1 {
        return Err(BatchError::CountMismatch {
            count,
            reason: "last offset delta is not count - 1",
        });
    }
    let batch = RecordBatch::new(bytes)?;
    let records = batch.records(limits.max_decompressed_bytes)?;
    let mut iter = records.iter();
    let mut seen: i32 = 0;
    loop {
        if iter.trailing_bytes() == 0 && seen < count {
            return Err(BatchError::CountMismatch {
                count,
                reason: "fewer records than the count",
            });
        }
        let Some(record) = iter.next() else { break };
        let record = record?;
        if record.offset_delta != seen {
            return Err(BatchError::bad_record(
                seen as usize,
                format!("offset delta {} where {seen} was due", record.offset_delta),
            ));
        }
        seen += 1;
    }
    if seen != count {
        return Err(BatchError::CountMismatch {
            count,
            reason: "fewer records than the count",
        });
    }
    if iter.trailing_bytes() != 0 {
        return Err(BatchError::CountMismatch {
            count,
            reason: "bytes remain after the last counted record",
        });
    }
    Ok(header)
}

/// The cheap check for batches already stored: the length field matches
/// `bytes`, magic is 2, the CRC matches and `last_offset_delta` is sane.
/// The records are not walked; recovery uses this to find a torn tail.
pub fn verify_stored_batch(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if header.total_bytes() != Some(bytes.len()) {
        return Err(BatchError::LengthMismatch {
            declared: i64::from(header.batch_length),
            actual: bytes.len().saturating_sub(LOG_OVERHEAD_BYTES),
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let computed = batch_crc(bytes);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.last_offset_delta < 0 || header.base_offset < 0 {
        return Err(BatchError::CountMismatch {
            count: header.records_count,
            reason: "negative base offset or last offset delta",
        });
    }
    Ok(header)
}

/// Reads just enough of `bytes` to know how long its first batch is:
/// `Ok(None)` when fewer than 12 bytes are there.
pub fn peek_batch_len(bytes: &[u8]) -> Result<Option<usize>, BatchError> {
    let Some(prefix) = bytes.get(..LOG_OVERHEAD_BYTES) else {
        return Ok(None);
    };
    let mut c = Cursor::new(prefix.get(BATCH_LENGTH_AT..).unwrap_or_default());
    let declared = c.i32()?;
    let total = usize::try_from(declared)
        .ok()
        .map(|n| n + LOG_OVERHEAD_BYTES)
        .filter(|&n| n >= HEADER_BYTES)
        .ok_or(BatchError::LengthMismatch {
            declared: i64::from(declared),
            actual: bytes.len().saturating_sub(LOG_OVERHEAD_BYTES),
        })?;
    if let Some(&magic) = bytes.get(MAGIC_AT) {
        if magic as i8 != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic as i8));
        }
    }
    Ok(Some(total))
}

/// Splits a buffer of concatenated batches (a produce request's record set,
/// a segment's contents) into one slice per batch. Only lengths are checked;
/// a buffer that ends inside a batch yields an error for that batch.
pub fn split_batches(bytes: &[u8]) -> BatchSlices<'_> {
    BatchSlices { rest: bytes }
}

/// Iterator returned by [`split_batches`].
#[derive(Debug, Clone)]
pub struct BatchSlices<'a> {
    rest: &'a [u8],
}

impl<'a> BatchSlices<'a> {
    /// Bytes not yet handed out.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for BatchSlices<'a> {
    type Item = Result<&'a [u8], BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let total = match peek_batch_len(self.rest) {
            Ok(Some(total)) => total,
            Ok(None) => {
                let err = DecodeError::UnexpectedEnd {
                    needed: LOG_OVERHEAD_BYTES,
                    available: self.rest.len(),
                };
                self.rest = &[];
                return Some(Err(err.into()));
            }
            Err(e) => {
                self.rest = &[];
                return Some(Err(e));
            }
        };
        match self.rest.split_at_checked(total) {
            Some((batch, tail)) => {
                self.rest = tail;
                Some(Ok(batch))
            }
            None => {
                let err = DecodeError::UnexpectedEnd {
                    needed: total,
                    available: self.rest.len(),
                };
                self.rest = &[];
                Some(Err(err.into()))
            }
        }
    }
}
