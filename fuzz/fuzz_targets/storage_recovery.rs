//! cargo-fuzz target: see `../checks/storage_recovery.rs`.
#![no_main]

#[path = "../checks/storage_recovery.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
