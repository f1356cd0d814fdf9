//! Reading records out of a batch without a copy per record.

use std::borrow::Cow;

use super::{BatchError, BatchHeader, TimestampType, HEADER_BYTES};
use crate::compression::{self, Compression};
use crate::cursor::Cursor;

/// A batch borrowed from a buffer: its decoded header and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    pub header: BatchHeader,
    bytes: &'a [u8],
}

impl<'a> RecordBatch<'a> {
    /// Borrows the batch that fills `bytes` exactly. Call
    /// [`super::validate_batch`] first when the bytes are untrusted; this only
    /// checks that the header is present.
    pub fn new(bytes: &'a [u8]) -> Result<Self, BatchError> {
        Ok(Self {
            header: BatchHeader::parse(bytes)?,
            bytes,
        })
    }

    /// The whole batch, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The record section as stored (compressed when a codec is set).
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(HEADER_BYTES..).unwrap_or_default()
    }

    /// The records, decompressed if needed into at most
    /// `max_decompressed_bytes`. Uncompressed batches are borrowed, not copied.
    pub fn records(&self, max_decompressed_bytes: usize) -> Result<RecordSet<'a>, BatchError> {
        let codec = self.header.compression()?;
        let data = match codec {
            Compression::None => Cow::Borrowed(self.payload()),
            _ => Cow::Owned(compression::decompress(
                codec,
                self.payload(),
                max_decompressed_bytes,
            )?),
        };
        Ok(RecordSet {
            header: self.header,
            data,
        })
    }
}

/// The decoded record section of one batch.
#[derive(Debug, Clone)]
pub struct RecordSet<'a> {
    header: BatchHeader,
    data: Cow<'a, [u8]>,
}

impl RecordSet<'_> {
    /// Iterates the records; each borrows from this set.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter {
            header: self.header,
            cursor: Cursor::new(&self.data),
            index: 0,
            remaining: usize::try_from(self.header.records_count).unwrap_or(0),
            failed: false,
        }
    }

    /// Bytes of the uncompressed record section.
    pub fn uncompressed_bytes(&self) -> usize {
        self.data.len()
    }
}

/// One record, borrowing its key, value and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
    /// Absolute offset: the batch's base offset plus the delta.
    pub offset: i64,
    /// Absolute timestamp, per the batch's timestamp type.
    pub timestamp: i64,
}

/// A record header: a string key and an optional value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// The headers of one record, decoded lazily. They were checked when the
/// record was read, so iteration cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Header<'a>> + 'a {
        let mut cursor = Cursor::new(self.bytes);
        (0..self.count).map_while(move |_| read_header(&mut cursor).ok())
    }
}

fn read_header<'a>(c: &mut Cursor<'a>) -> Result<Header<'a>, String> {
    let key = read_nullable(c)?.ok_or("header key is null")?;
    let value = read_nullable(c)?;
    Ok(Header { key, value })
}

/// A varint length, -1 for null, then that many bytes.
fn read_nullable<'a>(c: &mut Cursor<'a>) -> Result<Option<&'a [u8]>, String> {
    let len = c.varint().map_err(|e| e.to_string())?;
    match len {
        -1 => Ok(None),
        n if n < -1 => Err(format!("negative length {n}")),
        n => Ok(Some(c.bytes(n as usize).map_err(|e| e.to_string())?)),
    }
}

/// Iterator over the records of a [`RecordSet`]. Yields an error once and
/// then stops if a record is malformed.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    header: BatchHeader,
    cursor: Cursor<'a>,
    index: usize,
    remaining: usize,
    failed: bool,
}

impl<'a> RecordIter<'a> {
    /// Bytes after the last record that the count did not account for.
    pub fn trailing_bytes(&self) -> usize {
        self.cursor.remaining()
    }

    fn read_one(&mut self) -> Result<Record<'a>, BatchError> {
        let index = self.index;
        let bad = |e: String| BatchError::bad_record(index, e);
        let len = self.cursor.varint().map_err(|e| bad(e.to_string()))?;
        let len = usize::try_from(len).map_err(|_| bad(format!("negative length {len}")))?;
        let body = self.cursor.bytes(len).map_err(|e| bad(e.to_string()))?;
        let mut c = Cursor::new(body);
        let attributes = c.i8().map_err(|e| bad(e.to_string()))?;
        let timestamp_delta = c.varlong().map_err(|e| bad(e.to_string()))?;
        let offset_delta = c.varint().map_err(|e| bad(e.to_string()))?;
        let key = read_nullable(&mut c).map_err(bad)?;
        let value = read_nullable(&mut c).map_err(bad)?;
        let count = c.varint().map_err(|e| bad(e.to_string()))?;
        let count = usize::try_from(count).map_err(|_| bad(format!("header count {count}")))?;
        let headers_start = c.rest();
        for _ in 0..count {
            read_header(&mut c).map_err(bad)?;
        }
        let headers_len = headers_start.len() - c.remaining();
        if !c.is_empty() {
            return Err(bad(format!(
                "{} bytes left inside the record",
                c.remaining()
            )));
        }
        let header = &self.header;
        let timestamp = match header.attributes.timestamp_type() {
            TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
            TimestampType::LogAppendTime => header.max_timestamp,
        };
        Ok(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: Headers {
                bytes: headers_start.get(..headers_len).unwrap_or_default(),
                count,
            },
            offset: header.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 {
            return None;
        }
        let result = self.read_one();
        self.failed = result.is_err();
        self.remaining -= 1;
        self.index += 1;
        Some(result)
    }
}
