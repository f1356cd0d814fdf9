//! Reliability suites against SPUs in their own processes
//! (`rill-reliability-spu`, alone or three of a cluster with etcd), killed
//! with SIGKILL by PID.
//!
//! Short forms run in CI; `RILL_CRASH_ROUNDS`, `RILL_FAILOVER_ROUNDS`,
//! `RILL_ISOLATION_ROUNDS`, `RILL_POWERCUT_CUTS`,
//! `RILL_POWERCUT_CLUSTER_CUTS` and `RILL_LOAD_SECS` make them longer (see
//! RELIABILITY.md at the repository root).

mod checker;
mod crash;
mod disk_full;
mod failover;
mod isolation;
mod load;
mod netfault;
mod power_cut;
mod power_cut_cluster;
mod producers;
mod spu;
