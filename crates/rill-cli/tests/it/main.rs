//! End-to-end tests of the `rill` binary.

mod cluster;
