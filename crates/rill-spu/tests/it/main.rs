//! Integration tests: a real SPU on 127.0.0.1:0, real TCP, real files.

mod admin;
mod alter;
mod cluster;
mod disk_errors;
mod fuzz_corpus;
mod groups;
mod hostile;
mod idempotence;
mod limits;
mod metrics;
mod produce_fetch;
mod timeouts;
mod versions;
mod writer;
