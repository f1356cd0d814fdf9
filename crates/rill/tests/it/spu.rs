//! The in-process SPU every client test starts: rill-test-support's
//! `TestSpu` (127.0.0.1:0 in a temp dir, restartable on the same port).

pub use rill_test_support::TestSpu;
