//! Integration tests for the partition log: one test binary, one module per
//! concern.

mod basics;
mod crash;
mod helpers;
mod index;
mod model;
mod power;
mod replication;
mod retention;
