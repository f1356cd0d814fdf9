//! A read cursor over a byte slice whose every read is checked: running off
//! the end is an error value, never a panic.

use crate::varint::{unzigzag32, unzigzag64, MAX_VARINT_BYTES, MAX_VARLONG_BYTES};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a field did.
    #[error("input ended early: needed {needed} more bytes, {available} left")]
    UnexpectedEnd { needed: usize, available: usize },
    /// A varint ran past the most bytes its type allows.
    #[error("varint longer than {max_bytes} bytes or out of range")]
    VarintOverflow { max_bytes: usize },
}

/// A forward-only reader over a slice.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                available: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Unsigned LEB128 of at most `max_bytes` bytes.
    fn uvarint(&mut self, max_bytes: usize) -> Result<u64, DecodeError> {
        // Most varints of a record (lengths, deltas, counts) are one byte:
        // taken without the loop, which the consumer's profile showed.
        if let Some((&byte, tail)) = self.rest.split_first() {
            if byte < 0x80 {
                self.rest = tail;
                return Ok(u64::from(byte));
            }
        }
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let [byte] = self.array::<1>()?;
            let shift = 7 * i as u32;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte of a u64 has room for one bit only.
            if shift == 63 && bits > 1 {
                return Err(DecodeError::VarintOverflow { max_bytes });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow { max_bytes })
    }

    /// Zig-zag i32.
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let raw = self.uvarint(MAX_VARINT_BYTES)?;
        let raw = u32::try_from(raw).map_err(|_| DecodeError::VarintOverflow {
            max_bytes: MAX_VARINT_BYTES,
        })?;
        Ok(unzigzag32(raw))
    }

    /// Zig-zag i64.
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag64(self.uvarint(MAX_VARLONG_BYTES)?))
    }
}
