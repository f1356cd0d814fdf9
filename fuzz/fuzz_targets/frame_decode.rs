//! cargo-fuzz target: see `../checks/frame_decode.rs`.
#![no_main]

#[path = "../checks/frame_decode.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
