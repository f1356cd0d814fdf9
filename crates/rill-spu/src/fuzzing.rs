//! Entry points for the fuzz targets in `fuzz/` and the tests that replay
//! their corpus. Not part of the SPU's API: hidden from the docs and free
//! to change. They are the very decoders the server runs: [`decode_request`]
//! is the server's decode entry.

pub use crate::api::reader::DecodeError;
pub use crate::api::request::{
    decode as decode_request, decode_body, Decoded, Request, RequestError,
};
