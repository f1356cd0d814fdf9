//! The frame decoder on arbitrary bytes, fed in arbitrary pieces: it never
//! panics, never yields more bytes than arrived, and a frame it yields is
//! within the bound and exactly what the size prefix said.
//!
//! Shared by the fuzz target and the corpus replay test.

use bytes::BytesMut;
use rill_protocol::FrameDecoder;

/// Small bound so that both sides of it are reachable with small inputs.
const MAX_FRAME_BYTES: usize = 512;

/// The whole check for one input. Panics on a bug.
pub fn check(data: &[u8]) {
    // The first byte picks the piece size the bytes arrive in.
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 16) + 1;
    let decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut taken = 0usize;
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            let at = fed - buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME_BYTES, "frame over the bound");
                    let prefix = rest.get(at..at + 4).expect("a frame needs a prefix");
                    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                    assert_eq!(usize::try_from(size).ok(), Some(frame.len()));
                    assert_eq!(&rest[at + 4..at + 4 + frame.len()], &frame[..]);
                    taken += 4 + frame.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert_eq!(taken + buf.len(), fed, "bytes lost or invented");
    }
}
