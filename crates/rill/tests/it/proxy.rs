//! The fault-injecting TCP proxy between the client and the SPU:
//! rill-test-support's `FaultProxy`.

pub use rill_test_support::FaultProxy;
