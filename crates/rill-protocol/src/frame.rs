//! Size-prefixed frames: a big-endian i32 length, then that many bytes. Every
//! Kafka request and response travels in one.
//!
//! The length is checked against `max_frame_bytes` before any buffer grows
//! for it, so a peer cannot make the reader allocate by lying about size.

use bytes::{Buf, BufMut, BytesMut};

/// Kafka's default `socket.request.max.bytes`: 100 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 104_857_600;
/// The length prefix.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Why a frame was refused. The connection cannot be read further after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame declares {size} bytes, over the limit of {max_frame_bytes} bytes")]
    TooLarge { size: usize, max_frame_bytes: usize },
    #[error("frame declares a negative size {0}")]
    NegativeSize(i32),
}

/// Splits frames off a read buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// The payload size declared by the frame at the front of `src`, checked
    /// against the bound; `Ok(None)` while its prefix is incomplete. Lets a
    /// reader choose where to put a large payload before reading it.
    pub fn declared_size(&self, src: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = src.get(..FRAME_PREFIX_BYTES) else {
            return Ok(None);
        };
        let mut prefix_bytes = [0u8; FRAME_PREFIX_BYTES];
        prefix_bytes.copy_from_slice(prefix);
        let declared = i32::from_be_bytes(prefix_bytes);
        let size = usize::try_from(declared).map_err(|_| FrameError::NegativeSize(declared))?;
        if size > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size,
                max_frame_bytes: self.max_frame_bytes,
            });
        }
        Ok(Some(size))
    }

    /// Takes one whole frame's payload off the front of `src`, or returns
    /// `Ok(None)` when more bytes are needed (having reserved room for them
    /// only once the size passed the bound).
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(size) = self.declared_size(src)? else {
            return Ok(None);
        };
        let total = FRAME_PREFIX_BYTES + size;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(FRAME_PREFIX_BYTES);
        Ok(Some(src.split_to(size)))
    }

    /// Appends `payload` as one frame.
    pub fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        if payload.len() > self.max_frame_bytes || i32::try_from(payload.len()).is_err() {
            return Err(FrameError::TooLarge {
                size: payload.len(),
                max_frame_bytes: self.max_frame_bytes,
            });
        }
        dst.reserve(FRAME_PREFIX_BYTES + payload.len());
        dst.put_i32(payload.len() as i32);
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oversized_frame_is_refused_before_allocating() {
        let dec = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        buf.put_i32(1025);
        let cap_before = buf.capacity();
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooLarge {
                size: 1025,
                max_frame_bytes: 1024
            })
        );
        assert_eq!(buf.capacity(), cap_before);
    }

    #[test]
    fn negative_and_huge_sizes() {
        let dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(dec.decode(&mut buf), Err(FrameError::NegativeSize(-5)));
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let dec = FrameDecoder::default();
        let mut whole = BytesMut::new();
        dec.encode(b"hello", &mut whole).unwrap();
        dec.encode(b"", &mut whole).unwrap();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in whole.iter() {
            buf.put_u8(*byte);
            while let Some(frame) = dec.decode(&mut buf).unwrap() {
                out.push(frame.to_vec());
            }
        }
        assert_eq!(out, vec![b"hello".to_vec(), Vec::new()]);
        assert!(buf.is_empty());
    }

    proptest! {
        #[test]
        fn frames_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let dec = FrameDecoder::new(1000);
            let mut buf = BytesMut::new();
            for p in &payloads {
                dec.encode(p, &mut buf).unwrap();
            }
            let mut out = Vec::new();
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                out.push(f.to_vec());
            }
            prop_assert_eq!(out, payloads);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let dec = FrameDecoder::new(32);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
