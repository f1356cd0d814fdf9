//! Building a batch record by record.
//!
//! Records are encoded straight into one buffer as they are pushed (no
//! allocation per record), behind room left for the header; `build`
//! compresses the records once, writes the header in front and fills in the
//! CRC. `finish` on an uncompressed batch writes the header into the room
//! left for it and hands over the buffer: the records are never copied.

use super::{
    batch_crc, Attributes, BatchError, CRC_AT, HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use crate::compression::{self, Compression};
use crate::varint::{put_varint, put_varlong, varint_len, varlong_len};

/// A record to add to a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Header keys are strings in Kafka; the bytes should be UTF-8.
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl<'a> NewRecord<'a> {
    pub fn new(key: Option<&'a [u8]>, value: &'a [u8], timestamp: i64) -> Self {
        Self {
            key,
            value: Some(value),
            headers: &[],
            timestamp,
        }
    }
}

/// Accumulates records into one v2 batch.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    compression: Compression,
    /// `HEADER_BYTES` of room for the header, then the encoded records;
    /// empty (no allocation) until the first push.
    records: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

fn nullable_len(bytes: Option<&[u8]>) -> Result<usize, BatchError> {
    Ok(match bytes {
        None => varint_len(-1),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| BatchError::FieldOverflow("length"))?;
            varint_len(n) + b.len()
        }
    })
}

fn put_nullable(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(buf, -1),
        Some(b) => {
            // Lengths were checked to fit an i32 when the size was computed.
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

impl RecordBatchBuilder {
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            records: Vec::new(),
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }

    /// Starts with room for `bytes` of encoded records.
    pub fn with_capacity(compression: Compression, bytes: usize) -> Self {
        let mut b = Self::new(compression);
        b.records.reserve(HEADER_BYTES + bytes);
        b
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Like [`Self::producer`], on a builder already in use.
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if built uncompressed now.
    pub fn uncompressed_bytes(&self) -> usize {
        self.records.len().max(HEADER_BYTES)
    }

    /// Bytes `record` would add if pushed next (its length prefix included).
    pub fn encoded_len(&self, record: &NewRecord<'_>) -> Result<usize, BatchError> {
        let body = self.body_len(record)?;
        let body_i32 = i32::try_from(body).map_err(|_| BatchError::FieldOverflow("record"))?;
        Ok(varint_len(body_i32) + body)
    }

    fn timestamp_delta(&self, timestamp: i64) -> i64 {
        timestamp.wrapping_sub(self.base_timestamp.unwrap_or(timestamp))
    }

    fn body_len(&self, r: &NewRecord<'_>) -> Result<usize, BatchError> {
        let headers_count =
            i32::try_from(r.headers.len()).map_err(|_| BatchError::FieldOverflow("headers"))?;
        let mut n = 1 // attributes
            + varlong_len(self.timestamp_delta(r.timestamp))
            + varint_len(self.count)
            + nullable_len(r.key)?
            + nullable_len(r.value)?
            + varint_len(headers_count);
        for (k, v) in r.headers {
            n += nullable_len(Some(k))? + nullable_len(*v)?;
        }
        Ok(n)
    }

    /// Appends a record. Its offset delta is its position in the batch.
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<(), BatchError> {
        if self.count == i32::MAX {
            return Err(BatchError::FieldOverflow("records count"));
        }
        let body = self.body_len(record)?;
        let body = i32::try_from(body).map_err(|_| BatchError::FieldOverflow("record"))?;
        let base = *self.base_timestamp.get_or_insert(record.timestamp);
        let buf = &mut self.records;
        if buf.is_empty() {
            buf.resize(HEADER_BYTES, 0);
        }
        buf.reserve(body as usize + 5);
        put_varint(buf, body);
        buf.push(0); // record attributes: unused in v2
        put_varlong(buf, record.timestamp.wrapping_sub(base));
        put_varint(buf, self.count);
        put_nullable(buf, record.key);
        put_nullable(buf, record.value);
        put_varint(buf, record.headers.len() as i32);
        for (k, v) in record.headers {
            put_nullable(buf, Some(k));
            put_nullable(buf, *v);
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        Ok(())
    }

    /// Encodes the batch with base offset 0, compressing the records.
    pub fn build(&self) -> Result<Vec<u8>, BatchError> {
        let mut out = Vec::with_capacity(self.uncompressed_bytes());
        self.build_into(&mut out)?;
        Ok(out)
    }

    /// Like [`Self::build`], appending the batch to `out`.
    pub fn build_into(&self, out: &mut Vec<u8>) -> Result<(), BatchError> {
        let start = out.len();
        self.put_header(out);
        let records = self.records.get(HEADER_BYTES..).unwrap_or_default();
        compression::compress(self.compression, records, out)?;
        seal(out.get_mut(start..).unwrap_or_default())
    }

    /// The batch, like [`Self::build`], consuming the builder. Without
    /// compression the records stay where they are: no copy.
    pub fn finish(mut self) -> Result<Vec<u8>, BatchError> {
        if self.compression != Compression::None {
            return self.build();
        }
        if self.records.len() < HEADER_BYTES {
            self.records.resize(HEADER_BYTES, 0);
        }
        let mut header = Vec::with_capacity(HEADER_BYTES);
        self.put_header(&mut header);
        if let Some(room) = self.records.get_mut(..HEADER_BYTES) {
            room.copy_from_slice(&header);
        }
        seal(&mut self.records)?;
        Ok(self.records)
    }

    /// The fixed header, with the length and CRC left 0 for `seal`.
    fn put_header(&self, out: &mut Vec<u8>) {
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        out.extend_from_slice(&0i64.to_be_bytes()); // base offset
        out.extend_from_slice(&0i32.to_be_bytes()); // batch length, sealed later
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, sealed later
        out.extend_from_slice(&Attributes::new(self.compression).0.to_be_bytes());
        out.extend_from_slice(&(self.count - 1).max(0).to_be_bytes()); // last offset delta
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
    }

    /// Empties the builder for reuse, keeping its buffer.
    pub fn clear(&mut self) {
        self.records.truncate(HEADER_BYTES);
        self.count = 0;
        self.base_timestamp = None;
        self.max_timestamp = -1;
    }
}

/// Fills in the length and CRC of the whole batch in `batch`.
fn seal(batch: &mut [u8]) -> Result<(), BatchError> {
    let length = i32::try_from(batch.len().saturating_sub(LOG_OVERHEAD_BYTES))
        .map_err(|_| BatchError::FieldOverflow("batch length"))?;
    if let Some(slot) = batch.get_mut(8..12) {
        slot.copy_from_slice(&length.to_be_bytes());
    }
    let crc = batch_crc(batch);
    if let Some(slot) = batch.get_mut(CRC_AT..CRC_AT + 4) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(())
}
