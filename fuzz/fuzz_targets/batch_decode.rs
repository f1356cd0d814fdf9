//! cargo-fuzz target: see `../checks/batch_decode.rs`.
#![no_main]

#[path = "../checks/batch_decode.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
