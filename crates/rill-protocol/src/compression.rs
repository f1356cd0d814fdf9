//! Per-batch compression in the formats Kafka clients write and read.
//!
//! - gzip: a gzip stream (several members are accepted when reading).
//! - snappy: Rill writes the xerial framing that Kafka's Java client writes;
//!   it reads both that and a raw snappy block (what librdkafka writes).
//! - lz4: the LZ4 frame format, independent 64 KiB blocks.
//! - zstd: a standard zstd frame.
//!
//! Decompression is always bounded by a caller-given `max_output_bytes`, so
//! a small hostile batch cannot expand into a huge allocation.

use std::io::{Read, Write};

/// Attribute bits 0-2 of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Why a batch's payload could not be compressed or decompressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    #[error("unknown compression codec id {0}")]
    UnknownCodec(u8),
    #[error("decompressed data exceeds the limit of {max_output_bytes} bytes")]
    TooLarge { max_output_bytes: usize },
    #[error("{codec:?} data is corrupt: {reason}")]
    Corrupt { codec: Compression, reason: String },
}

/// The magic that opens a xerial-framed snappy stream.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version and compatible-version: the xerial stream header.
const XERIAL_HEADER_BYTES: usize = 16;
/// Uncompressed bytes per xerial block, as the Java client's default.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// The zstd level Kafka's producer uses by default.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The codec id written in batch attribute bits 0-2.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn from_id(id: u8) -> Result<Self, CompressionError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(CompressionError::UnknownCodec(other)),
        })
    }

    /// Every codec, `None` first.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The lower-case name Kafka's `compression.type` uses.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = CompressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CompressionError::Corrupt {
                codec: Compression::None,
                reason: format!("unknown codec name {s:?} (none, gzip, snappy, lz4, zstd)"),
            })
    }
}

fn corrupt(codec: Compression, err: impl std::fmt::Display) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        reason: err.to_string(),
    }
}

/// Appends `input` compressed with `codec` to `out`.
pub fn compress(
    codec: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            enc.write_all(input).map_err(|e| corrupt(codec, e))?;
            enc.finish().map_err(|e| corrupt(codec, e))?;
        }
        Compression::Snappy => xerial_compress(input, out)?,
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(out);
            enc.write_all(input).map_err(|e| corrupt(codec, e))?;
            enc.finish().map_err(|e| corrupt(codec, e))?;
        }
        Compression::Zstd => zstd_compress(input, out).map_err(|e| corrupt(codec, e))?,
    }
    Ok(())
}

thread_local! {
    /// A zstd context per thread, kept between batches: making one costs
    /// far more than compressing a 16 KiB batch with it.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// One zstd frame of `input` (content size in the header, no checksum),
/// appended to `out`.
fn zstd_compress(input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    ZSTD.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| std::io::Error::other("zstd context in use"))?;
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        let at = out.len() as u64;
        let mut cursor = std::io::Cursor::new(out);
        cursor.set_position(at);
        compressor.compress_to_buffer(input, &mut cursor)?;
        Ok(())
    })
}

/// Decompresses `input`, refusing to produce more than `max_output_bytes`.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output_bytes: usize,
) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => {
            if input.len() > max_output_bytes {
                return Err(CompressionError::TooLarge { max_output_bytes });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(
            codec,
            flate2::read::MultiGzDecoder::new(input),
            max_output_bytes,
        ),
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                xerial_decompress(input, max_output_bytes)
            } else {
                snappy_raw_decompress(input, max_output_bytes, Vec::new())
            }
        }
        Compression::Lz4 => read_bounded(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            max_output_bytes,
        ),
        Compression::Zstd => {
            let dec =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, dec, max_output_bytes)
        }
    }
}

/// Reads a decoder to its end, stopping with an error one byte past the bound.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    max_output_bytes: usize,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max_output_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > max_output_bytes {
        return Err(CompressionError::TooLarge { max_output_bytes });
    }
    Ok(out)
}

fn snappy_raw_decompress(
    block: &[u8],
    max_output_bytes: usize,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    // The block states its own decompressed length: check it before allocating.
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(codec, e))?;
    let start = out.len();
    if start.saturating_add(len) > max_output_bytes {
        return Err(CompressionError::TooLarge { max_output_bytes });
    }
    out.resize(start + len, 0);
    let target = out.get_mut(start..).unwrap_or_default();
    snap::raw::Decoder::new()
        .decompress(block, target)
        .map_err(|e| corrupt(codec, e))?;
    Ok(out)
}

fn xerial_compress(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
        let len_at = out.len();
        out.extend_from_slice(&[0u8; 4]);
        let start = out.len();
        out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
        let target = out.get_mut(start..).unwrap_or_default();
        let written = encoder
            .compress(chunk, target)
            .map_err(|e| corrupt(Compression::Snappy, e))?;
        out.truncate(start + written);
        let len = i32::try_from(written).map_err(|e| corrupt(Compression::Snappy, e))?;
        if let Some(slot) = out.get_mut(len_at..len_at + 4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

fn xerial_decompress(input: &[u8], max_output_bytes: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    let mut rest = input
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| corrupt(codec, "xerial header truncated"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len_bytes, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(codec, "xerial block length truncated"))?;
        let len = usize::try_from(i32::from_be_bytes(*len_bytes))
            .map_err(|_| corrupt(codec, "negative xerial block length"))?;
        let block = tail
            .get(..len)
            .ok_or_else(|| corrupt(codec, "xerial block truncated"))?;
        out = snappy_raw_decompress(block, max_output_bytes, out)?;
        rest = tail.get(len..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_codec_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100_000)) {
            for codec in Compression::ALL {
                let mut packed = Vec::new();
                compress(codec, &data, &mut packed).unwrap();
                let unpacked = decompress(codec, &packed, data.len()).unwrap();
                prop_assert_eq!(&unpacked, &data, "{:?}", codec);
            }
        }

        #[test]
        fn garbage_never_panics(codec_id in 0u8..5, data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let codec = Compression::from_id(codec_id).unwrap();
            let _ = decompress(codec, &data, 1 << 20);
        }
    }

    #[test]
    fn output_bound_is_enforced() {
        let data = vec![7u8; 1 << 20];
        for codec in Compression::ALL {
            let mut packed = Vec::new();
            compress(codec, &data, &mut packed).unwrap();
            match decompress(codec, &packed, 1000) {
                Err(CompressionError::TooLarge {
                    max_output_bytes: 1000,
                }) => {}
                other => panic!("{codec:?}: expected TooLarge, got {other:?}"),
            }
        }
    }

    #[test]
    fn snappy_reads_raw_blocks_and_writes_xerial() {
        let data = b"hello hello hello hello snappy".repeat(100);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            data
        );
        let mut framed = Vec::new();
        compress(Compression::Snappy, &data, &mut framed).unwrap();
        assert!(framed.starts_with(&XERIAL_MAGIC));
        assert_eq!(&framed[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn xerial_multi_block_from_java_layout() {
        // Build a stream the way the Java client lays it out: header, then
        // length-prefixed raw blocks, here two blocks of different content.
        let a = vec![1u8; 40_000];
        let b = b"second block".to_vec();
        let mut stream = XERIAL_MAGIC.to_vec();
        stream.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for part in [&a, &b] {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            stream.extend_from_slice(&(block.len() as i32).to_be_bytes());
            stream.extend_from_slice(&block);
        }
        let out = decompress(Compression::Snappy, &stream, 1 << 20).unwrap();
        assert_eq!(out.len(), a.len() + b.len());
        assert!(out.ends_with(b"second block"));
    }

    #[test]
    fn lz4_writes_a_standard_frame() {
        let mut packed = Vec::new();
        compress(Compression::Lz4, b"abc", &mut packed).unwrap();
        // LZ4 frame magic number, little-endian 0x184D2204.
        assert_eq!(&packed[..4], &[0x04, 0x22, 0x4d, 0x18]);
    }

    #[test]
    fn codec_ids_and_names() {
        for codec in Compression::ALL {
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
            assert_eq!(codec.name().parse::<Compression>().unwrap(), codec);
        }
        assert!(Compression::from_id(5).is_err());
        assert!("brotli".parse::<Compression>().is_err());
    }
}
