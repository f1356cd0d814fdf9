//! The bounded reader every request decoder uses, and its typed error.
//!
//! kafka-protocol's decoders size an array's buffer from the count the client
//! sends, so a request of a few bytes claiming two billion entries makes the
//! process abort on a failed allocation. The decoders in `api/*` fill the
//! same kafka-protocol structs through this reader, which checks every count
//! against the bytes that are left (each element takes at least one byte)
//! and grows buffers as elements actually arrive. Byte fields (record
//! batches) are slices of the frame, not copies. Nothing here indexes or
//! unwraps: every read is checked and a short or lying input is a
//! [`DecodeError`].

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// Elements reserved up front for an array, whatever its count says.
const MAX_PREALLOCATED_ELEMENTS: usize = 256;

/// Why a request's bytes are not a valid request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("request ended early: {needed} bytes needed, {left} left")]
    Truncated { needed: usize, left: usize },
    #[error("negative length {0}")]
    NegativeLength(i64),
    #[error("array claims {count} elements with {left} bytes left")]
    ArrayTooLong { count: u64, left: usize },
    #[error("{count} tagged fields with {left} bytes left")]
    TooManyTaggedFields { count: u32, left: usize },
    #[error("varint overflows 32 bits")]
    VarintOverflow,
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("null where {0} is required")]
    NullNotAllowed(&'static str),
}

pub(crate) type Result<T> = std::result::Result<T, DecodeError>;

/// A reader over one request frame.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    /// Compact (flexible) encodings: varint lengths, tagged fields.
    flexible: bool,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Self {
            buf,
            flexible: false,
        }
    }

    /// After the header, the body's own encoding: compact lengths and
    /// tagged fields when `flexible`.
    pub fn set_flexible(&mut self, flexible: bool) {
        self.flexible = flexible;
    }

    /// Bytes not read yet.
    #[cfg(test)]
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                left: self.buf.len(),
            });
        }
        Ok(())
    }

    pub fn i8(&mut self) -> Result<i8> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.i8()? != 0)
    }

    pub fn i16(&mut self) -> Result<i16> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    pub fn i32(&mut self) -> Result<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    pub fn i64(&mut self) -> Result<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    pub fn uuid(&mut self) -> Result<uuid::Uuid> {
        self.need(16)?;
        Ok(uuid::Uuid::from_u128(self.buf.get_u128()))
    }

    fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            self.need(1)?;
            let byte = self.buf.get_u8();
            let bits = u32::from(byte & 0x7f);
            if i == 4 && bits > 0x0f {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        // Five bytes with the continuation bit still set.
        Err(DecodeError::VarintOverflow)
    }

    fn take(&mut self, n: usize) -> Result<Bytes> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// A length: i16 (or i32 for bytes) classic, varint-plus-one compact.
    /// `None` for null.
    fn length(&mut self, wide: bool) -> Result<Option<usize>> {
        let n: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| DecodeError::NegativeLength(n)),
        }
    }

    pub fn nullable_string(&mut self) -> Result<Option<StrBytes>> {
        match self.length(false)? {
            None => Ok(None),
            Some(n) => {
                let bytes = self.take(n)?;
                StrBytes::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| DecodeError::NotUtf8)
            }
        }
    }

    pub fn string(&mut self) -> Result<StrBytes> {
        self.nullable_string()?
            .ok_or(DecodeError::NullNotAllowed("a string"))
    }

    pub fn nullable_bytes(&mut self) -> Result<Option<Bytes>> {
        match self.length(true)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    pub fn nullable_array<T>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        let count = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if count == -1 {
            return Ok(None);
        }
        let count = u64::try_from(count).map_err(|_| DecodeError::NegativeLength(count))?;
        let left = self.buf.len();
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= left)
            .ok_or(DecodeError::ArrayTooLong { count, left })?;
        let mut out = Vec::with_capacity(count.min(MAX_PREALLOCATED_ELEMENTS));
        for _ in 0..count {
            out.push(element(self)?);
        }
        Ok(Some(out))
    }

    pub fn array<T>(&mut self, element: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        self.nullable_array(element)?
            .ok_or(DecodeError::NullNotAllowed("an array"))
    }

    /// Tagged fields of a flexible version: `known` takes the tags it
    /// understands (given their bytes); the rest are kept as unknown.
    pub fn tagged(
        &mut self,
        mut known: impl FnMut(u32, Bytes) -> Result<bool>,
    ) -> Result<BTreeMap<i32, Bytes>> {
        let mut unknown = BTreeMap::new();
        if !self.flexible {
            return Ok(unknown);
        }
        let count = self.uvarint()?;
        let left = self.buf.len();
        if usize::try_from(count).map_or(true, |c| c > left) {
            return Err(DecodeError::TooManyTaggedFields { count, left });
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()?;
            let value = self.take(usize::try_from(size).unwrap_or(usize::MAX))?;
            if !known(tag, value.clone())? {
                unknown.insert(tag as i32, value);
            }
        }
        Ok(unknown)
    }

    pub fn no_known_tags(&mut self) -> Result<BTreeMap<i32, Bytes>> {
        self.tagged(|_, _| Ok(false))
    }

    pub fn topic_name(&mut self) -> Result<TopicName> {
        Ok(TopicName(self.string()?))
    }
}

/// Test helpers shared by every API's decoder tests.
#[cfg(test)]
pub(crate) mod testing {
    use bytes::BytesMut;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    use super::{Reader, Result};

    pub fn s(x: &str) -> StrBytes {
        StrBytes::from_string(x.to_owned())
    }

    pub fn name(x: &str) -> TopicName {
        TopicName(s(x))
    }

    /// Encodes with kafka-protocol, decodes with both kafka-protocol and
    /// ours, and checks they agree and ours read every byte.
    pub fn same<M>(req: M, v: i16, ours: fn(&mut Reader, i16) -> Result<M>)
    where
        M: Encodable + Decodable + PartialEq + std::fmt::Debug,
    {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("encode v{v}: {e}"));
        let bytes = buf.freeze();
        let theirs = M::decode(&mut bytes.clone(), v).unwrap();
        let mut r = Reader::new(bytes);
        let mine = ours(&mut r, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!(mine, theirs, "v{v}");
        assert_eq!(r.remaining(), 0, "v{v}: bytes left over");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, b'a']));
        assert_eq!(
            r.string(),
            Err(DecodeError::Truncated {
                needed: 32767,
                left: 1
            })
        );
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xfe]));
        assert_eq!(r.string(), Err(DecodeError::NegativeLength(-2)));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(r.string(), Err(DecodeError::NullNotAllowed("a string")));
        let mut r = Reader::new(Bytes::from_static(&[0, 2, 0xc3, 0x28]));
        assert_eq!(r.string(), Err(DecodeError::NotUtf8));
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 9, 1, 2]));
        assert_eq!(
            r.array(|r| r.i8()),
            Err(DecodeError::ArrayTooLong { count: 9, left: 2 })
        );
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]));
        assert_eq!(r.array(|r| r.i8()), Err(DecodeError::NegativeLength(-2)));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x1f]));
        r.set_flexible(true);
        assert_eq!(r.array(|r| r.i8()), Err(DecodeError::VarintOverflow));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0]));
        r.set_flexible(true);
        assert_eq!(r.array(|r| r.i8()), Err(DecodeError::VarintOverflow));
        let mut r = Reader::new(Bytes::from_static(&[5, 0]));
        r.set_flexible(true);
        assert_eq!(
            r.no_known_tags(),
            Err(DecodeError::TooManyTaggedFields { count: 5, left: 1 })
        );
    }

    #[test]
    fn compact_lengths_and_tags() {
        // Compact string "ab" (length 2 + 1), one unknown tag 7 of 1 byte.
        let mut r = Reader::new(Bytes::from_static(&[3, b'a', b'b', 1, 7, 1, 0xee]));
        r.set_flexible(true);
        assert_eq!(r.string().unwrap().as_str(), "ab");
        let tags = r.no_known_tags().unwrap();
        assert_eq!(tags.get(&7).map(|b| b.as_ref()), Some(&[0xee][..]));
        assert_eq!(r.remaining(), 0);
    }
}
