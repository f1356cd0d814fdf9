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

/// The checks every batch gets: the length field matches `bytes`, magic is
/// 2, and the CRC32C over attributes..end matches.
fn check_envelope(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
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
    Ok(header)
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
    let header = check_envelope(bytes)?;
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
    let codec = header.compression()?;
    let decompressed;
    let records = match codec {
        crate::Compression::None => batch.payload(),
        _ => {
            decompressed = crate::compression::decompress(
                codec,
                batch.payload(),
                limits.max_decompressed_bytes,
            )?;
            &decompressed
        }
    };
    walk_records(records, count)?;
    Ok(header)
}

/// Why a record failed the walk, turned into a `BatchError` off the hot path.
enum WalkError {
    Malformed(usize),
    OffsetDelta { index: usize, delta: i32 },
    TooFew,
    Trailing,
}

/// Unsigned LEB128 at `*pos`, at most `max_bytes` long. One- and two-byte
/// values (every length and delta of a typical record) take the fast path.
#[inline(always)]
fn uvarint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let b0 = *buf.get(*pos)?;
    if b0 < 0x80 {
        *pos += 1;
        return Some(u64::from(b0));
    }
    let b1 = *buf.get(*pos + 1)?;
    if b1 < 0x80 {
        *pos += 2;
        return Some(u64::from(b0 & 0x7f) | (u64::from(b1) << 7));
    }
    let mut value = u64::from(b0 & 0x7f) | (u64::from(b1 & 0x7f) << 7);
    *pos += 2;
    for i in 2..max_bytes {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Zig-zag i32 varint; `None` when truncated or out of range.
#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let raw = uvarint(buf, pos, crate::varint::MAX_VARINT_BYTES)?;
    let raw = u32::try_from(raw).ok()?;
    Some(crate::varint::unzigzag32(raw))
}

/// Skips a varint length and that many bytes, staying within `end`; -1
/// (null) only where `nullable`.
#[inline(always)]
fn skip_sized(buf: &[u8], pos: &mut usize, end: usize, nullable: bool) -> Option<()> {
    let n = varint(buf, pos)?;
    if n < 0 {
        return (n == -1 && nullable).then_some(());
    }
    let next = pos.checked_add(n as usize)?;
    if next > end {
        return None;
    }
    *pos = next;
    Some(())
}

/// One record's fields from `pos` (just past its length prefix) to `end`.
#[inline(always)]
fn walk_one(buf: &[u8], mut pos: usize, end: usize, index: i32) -> Result<(), WalkError> {
    let bad = WalkError::Malformed(index as usize);
    pos += 1; // attributes
    let fields = (|| {
        uvarint(buf, &mut pos, crate::varint::MAX_VARLONG_BYTES)?; // timestamp delta
        let delta = varint(buf, &mut pos)?;
        skip_sized(buf, &mut pos, end, true)?; // key
        skip_sized(buf, &mut pos, end, true)?; // value
        let headers = varint(buf, &mut pos)?;
        for _ in 0..headers.max(0) {
            skip_sized(buf, &mut pos, end, false)?; // header key
            skip_sized(buf, &mut pos, end, true)?; // header value
        }
        (headers >= 0 && pos == end).then_some(delta)
    })();
    match fields {
        None => Err(bad),
        Some(delta) if delta != index => Err(WalkError::OffsetDelta {
            index: index as usize,
            delta,
        }),
        Some(_) => Ok(()),
    }
}

fn walk(records: &[u8], count: i32) -> Result<(), WalkError> {
    let mut pos = 0usize;
    for index in 0..count {
        if pos >= records.len() {
            return Err(WalkError::TooFew);
        }
        let len = varint(records, &mut pos).ok_or(WalkError::Malformed(index as usize))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| pos.checked_add(len))
            .filter(|&e| e <= records.len() && e > pos)
            .ok_or(WalkError::Malformed(index as usize))?;
        walk_one(records, pos, end, index)?;
        pos = end;
    }
    if pos != records.len() {
        return Err(WalkError::Trailing);
    }
    Ok(())
}

/// Checks the structure of every record without building it: each length
/// prefix, the varints inside, that offset deltas run 0, 1, 2 ..., that
/// keys, values and headers fit their record, and that exactly `count`
/// records fill the section. This is the hot path of every produce.
fn walk_records(records: &[u8], count: i32) -> Result<(), BatchError> {
    walk(records, count).map_err(|e| match e {
        WalkError::Malformed(index) => BatchError::bad_record(index, "malformed record fields"),
        WalkError::OffsetDelta { index, delta } => {
            BatchError::bad_record(index, format!("offset delta {delta} where {index} was due"))
        }
        WalkError::TooFew => BatchError::CountMismatch {
            count,
            reason: "fewer records than the count",
        },
        WalkError::Trailing => BatchError::CountMismatch {
            count,
            reason: "bytes remain after the last counted record",
        },
    })
}

/// The cheap check for batches already stored: the length field matches
/// `bytes`, magic is 2, the CRC matches and `last_offset_delta` is sane.
/// The records are not walked; recovery uses this to find a torn tail.
pub fn verify_stored_batch(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = check_envelope(bytes)?;
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
