//! cargo-fuzz target: see `../checks/request_decode.rs`.
#![no_main]

#[path = "../checks/request_decode.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
