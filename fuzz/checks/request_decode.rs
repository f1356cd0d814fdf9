//! Every request decoder the SPU uses, on arbitrary bytes: never a panic,
//! and never an allocation sized by a count the bytes cannot back.
//! `decode_request` is the SPU's own decode entry (`api::request::decode`),
//! the function the server calls on every frame.
//!
//! The input is read two ways: as a whole request frame (header and body,
//! as the SPU decodes it before handling), and as an API key and version
//! (first 4 bytes, mapped onto the supported ranges) followed by a body, so
//! every decoder is reached at every version directly.
//!
//! Shared by the fuzz target and the corpus replay test.

use bytes::Bytes;
use rill_spu::fuzzing::{decode_body, decode_request, RequestError};
use rill_spu::SUPPORTED_APIS;

/// The whole check for one input. Panics on a bug.
pub fn check(data: &[u8]) {
    let _ = decode_request(Bytes::copy_from_slice(data));
    if data.len() < 4 {
        return;
    }
    let (selector, body) = data.split_at(4);
    let (key, min, max) = SUPPORTED_APIS[usize::from(selector[1]) % SUPPORTED_APIS.len()];
    let span = u16::try_from(max - min + 1).unwrap_or(1);
    let version = min + i16::try_from(u16::from(selector[3]) % span).unwrap_or(0);
    let decoded = decode_body(key, version, Bytes::copy_from_slice(body));
    // A supported key and version never fail for that reason.
    if let Err(e) = &decoded {
        assert!(
            !matches!(
                e,
                RequestError::UnsupportedVersion { .. } | RequestError::UnknownApiKey(_)
            ),
            "{key} v{version}: {e}"
        );
    }
}
