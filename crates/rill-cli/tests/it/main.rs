//! End-to-end tests of the `rill` binary. Each test starts its own SPU
//! (`rill cluster start --foreground` on 127.0.0.1:0) and stops it by pid.

mod bench_consume;
mod bench_latency;
mod cluster;
mod console;
mod consume;
mod everyday;
mod group;
mod metrics;
mod multi;
mod outage;
mod produce;
mod spu;
mod topic;
mod topic_change;
